#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The real k0s-tsagent in a network namespace with a TUN tailscale0 held by the fake
tailscaled, the fake k0s recording argv/signals/exits, and a stand-in NOTIFY_SOCKET.
One scenario per run: `test_agent.py NAME`. Exit 0 pass, 1 fail, 77 skip (not root, no netns
or no TUN). Environment: AGENT, FAKE_K0S, FAKE_TAILSCALED, PYTHONPATH=tests/fakes."""

import json
import os
import re
import shutil
import signal
import sys
import time

import netns
from netns import Fail, Skip, check, pid_alive, wait_until

IP = "100.64.0.10"
IP6 = "fd7a:115c:a1e0::a"
IP_NEW = "100.64.0.20"
DNS = "node1.tail1234.ts.net."
SETTLE = 2.0
STOP_TIMEOUT = 3.0
REGISTRY = "registry.tailnet.test:5000"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def prepare(env):
    write(env.path("k0stoken"), "H4sIAAAAAAAC/fake-join-token\n")


def running(env, role="worker", fake_state="Running", agent_env=None, watchdog_usec=None,
            **cfg):
    """Fake tailscaled Running with IP, agent started, k0s started once. Returns (fake, agent,
    start event)."""
    prepare(env)
    env.start_notify()
    fake = env.start_fake(state=fake_state)
    conf = env.config(role=role, **cfg)
    agent = env.start_agent(conf, env=agent_env, watchdog_usec=watchdog_usec)
    if not env.k0s.wait_starts(1, 10):
        raise Fail("k0s was not started within 10 s of a Running tailnet; last STATUS: %r"
                   % env.notify.last_status())
    return fake, agent, env.k0s.starts()[0]


def wait_k0s_running(env, agent, pid=None, timeout=5.0):
    st = agent.wait_status(lambda s: s["k0s"]["state"] == "running"
                           and s["k0s"]["pid"] > 0 and (pid is None or s["k0s"]["pid"] == pid),
                           timeout)
    check(st, "status.json never showed k0s running%s: %s" % (
        "" if pid is None else " with pid %d" % pid, agent.status()))
    return st


def worker_argv(env, ip):
    return ["worker", "--token-file=" + env.path("k0stoken"),
            "--kubelet-extra-args=--node-ip=" + ip]


def hosts_toml(env, name=REGISTRY):
    return env.path("certs.d", name, "hosts.toml")


def assert_no_signals(env, what):
    sigs = env.k0s.signals()
    check(not sigs, "%s: k0s got signals %s" % (what, [(s["pid"], s["signal"]) for s in sigs]))


# --- 1 -----------------------------------------------------------------------------------
def t_gate(env):
    prepare(env)
    n = env.start_notify()
    agent = env.start_agent(env.config())
    st = n.wait("STATUS", timeout=5, mark=agent.notify_mark,
                pred=lambda v: "Waiting" in v and "tailscale0" in v)
    check(st, "no STATUS with 'Waiting' and 'tailscale0' while the link is absent: %s"
          % n.statuses())
    # Long enough for any reconnect backoff to have grown to seconds: tailscaled coming up
    # must still be noticed at once (after a power cut the agent starts long before it).
    time.sleep(4.0)
    check(not env.k0s.starts(), "k0s started without tailscale0")
    check(agent.alive(), "agent exited while waiting")
    s = agent.status()
    check(s and s["gate"] == "closed" and s["k0s"]["state"] == "idle",
          "status.json while waiting: %s" % s)
    check(s["interface"]["present"] is False, "interface.present while absent: %s" % s)

    fake = env.start_fake()
    check(env.k0s.wait_starts(1, 10), "k0s not started after the tailnet came up; last "
          "STATUS: %r" % n.last_status())
    start = env.k0s.starts()[0]
    delay = start["time"] - fake.ready_time
    print("gate opened -> k0s start: %.0f ms" % (delay * 1000))
    # The first start is immediate once the tailnet is ready: settle does not apply, and the
    # agent should not sit in a LocalAPI reconnect backoff while tailscale0 has just appeared.
    check(delay < 1.0, "k0s started %.2f s after tailscaled was up with its address; the first "
          "start must be immediate (LocalAPI reconnect backoff not reset when tailscale0 "
          "appeared?)" % delay)
    check(start["argv"][1:] == worker_argv(env, IP),
          "k0s argv %s != %s" % (start["argv"][1:], worker_argv(env, IP)))
    check(os.path.basename(start["argv"][0]) == "fake-k0s", "argv[0] %s" % start["argv"][0])
    check("K0S_TSAGENT_MANAGED=1" in start["env"], "K0S_TSAGENT_MANAGED=1 not in k0s env")
    check("FAKE_K0S_VERSION=v1.35.7+k0s.0" in start["env"], "agent env not passed to k0s")
    for f in (hosts_toml(env), env.path("containerd.d", "registry.toml")):
        check(os.path.exists(f), "%s not written" % f)
        mt = os.stat(f).st_mtime
        check(mt <= start["time"], "%s written %.3f s after k0s started" % (
            f, mt - start["time"]))
    with open(hosts_toml(env)) as f:
        ht = f.read()
    check('[host."http://100.64.0.99:5000"]' in ht, "hosts.toml lacks the host table:\n" + ht)
    with open(env.path("containerd.d", "registry.toml")) as f:
        dr = f.read()
    check("version = 2" in dr and env.path("certs.d") in dr,
          "drop-in for k0s 1.35 should be version 2 with config_path:\n" + dr)
    pid = start["pid"]
    st = n.wait("STATUS", timeout=5, pred=lambda v: "running" in v and IP in v
                and str(pid) in v)
    check(st, "no STATUS saying k0s runs (pid %d) on %s: %s" % (pid, IP, n.statuses()))
    s = wait_k0s_running(env, agent, pid)
    check(s["gate"] == "open" and s["address"] == IP, "status.json gate/address: %s" % s)
    check(s["k0s"]["version"] == "v1.35.7+k0s.0", "k0s.version %s" % s["k0s"]["version"])
    check(len(env.k0s.starts()) == 1, "k0s started twice")


# --- 2 -----------------------------------------------------------------------------------
def t_require_running(env):
    prepare(env)
    n = env.start_notify()
    fake = env.start_fake(state="NeedsLogin")
    link = env.link()
    check(link and not link["ipv4"], "NeedsLogin fake should have no address: %s" % link)
    # Real tailscaled has no address in NeedsLogin; add one by hand so only the LocalAPI gate
    # holds k0s back.
    env.ip("addr", "add", IP + "/32", "dev", "tailscale0")
    agent = env.start_agent(env.config())
    time.sleep(2.0)
    check(not env.k0s.starts(), "k0s started while BackendState is NeedsLogin")
    check(n.wait("STATUS", timeout=3, pred=lambda v: "NeedsLogin" in v),
          "no STATUS mentions NeedsLogin: %s" % n.statuses())
    s = agent.status()
    check(s["gate"] == "closed" and s["tailnet"]["backend_state"] == "NeedsLogin",
          "status.json: %s" % s)
    check(IP in s["interface"]["ipv4"], "status.json interface.ipv4: %s" % s["interface"])

    # Login completes: Running with the same address, and k0s starts.
    fake.control.state("Running")
    check(env.k0s.wait_starts(1, 8), "k0s not started after BackendState became Running")
    check(env.k0s.starts()[0]["argv"][1:] == worker_argv(env, IP), "argv after login")
    check(agent.stop() == 0, "agent exit code on SIGTERM")
    fake.stop()

    # require_running: false and no LocalAPI at all: the address alone opens the gate.
    shutil.rmtree(env.path("ts"), ignore_errors=True)
    env.start_fake(state="NeedsLogin", localapi=False)
    env.ip("addr", "add", IP + "/32", "dev", "tailscale0")
    conf = env.config("agent2.yaml", tailscale={"require_running": False})
    before = len(env.k0s.starts())
    env.start_agent(conf)
    check(env.k0s.wait_starts(before + 1, 8),
          "require_running: false with no LocalAPI: k0s not started")
    check(env.k0s.starts()[-1]["argv"][1:] == worker_argv(env, IP), "argv without LocalAPI")


# --- 3 -----------------------------------------------------------------------------------
def t_flap(env):
    fake, agent, start = running(env)
    wait_k0s_running(env, agent)
    t0 = time.monotonic()
    for _ in range(3):
        env.ip("link", "set", "tailscale0", "down")
        env.ip("link", "set", "tailscale0", "up")
        env.ip("addr", "del", IP + "/32", "dev", "tailscale0")
        time.sleep(0.1)
        env.ip("addr", "add", IP + "/32", "dev", "tailscale0")
        time.sleep(0.2)
    # Link down drops the IPv6 address; tailscaled's router puts it back.
    env.ip("-6", "addr", "replace", IP6 + "/128", "dev", "tailscale0", "nodad")
    check(time.monotonic() - t0 < SETTLE, "flaps took longer than settle (slow machine?)")
    time.sleep(2 * SETTLE)
    check(len(env.k0s.starts()) == 1, "k0s restarted by a flap that ended with the same IP")
    assert_no_signals(env, "after flaps")
    check(pid_alive(start["pid"]), "k0s died")
    s = wait_k0s_running(env, agent, start["pid"])
    check(s["interface"]["ipv4"] == [IP] and s["interface"]["up"] is True,
          "status.json interface after flaps: %s" % s["interface"])
    check(s["k0s"]["restarts"] == 0, "k0s.restarts %s" % s["k0s"]["restarts"])


# --- 4 -----------------------------------------------------------------------------------
def t_ip_change(env):
    fake, agent, start = running(env)
    wait_k0s_running(env, agent)
    old = start["pid"]
    t_change = time.time()
    fake.control.ips(ipv4=IP_NEW)
    check(env.k0s.wait_starts(2, SETTLE + 15), "k0s not restarted after the IP change")
    time.sleep(1.0)
    starts = env.k0s.starts()
    check(len(starts) == 2, "%d k0s starts, want 2" % len(starts))
    terms = [s for s in env.k0s.signals(old) if s["signal"] == "SIGTERM"]
    check(len(terms) == 1, "old k0s got %d SIGTERMs" % len(terms))
    check(len(env.k0s.signals()) == 1, "other signals: %s" % env.k0s.signals())
    waited = terms[0]["time"] - t_change
    print("IP change -> SIGTERM: %.3f s (settle %.1f s)" % (waited, SETTLE))
    check(waited >= SETTLE - 0.01, "SIGTERM %.3f s after the change, before settle" % waited)
    ex = env.k0s.exits(old)
    check(ex and ex[0]["time"] <= starts[1]["time"], "new k0s started before the old exited")
    check(starts[1]["argv"][1:] == worker_argv(env, IP_NEW),
          "new argv %s" % starts[1]["argv"][1:])
    check(not pid_alive(old), "old k0s still alive")
    s = wait_k0s_running(env, agent, starts[1]["pid"])
    check(s["address"] == IP_NEW, "status.json address %s" % s["address"])


# --- 5 -----------------------------------------------------------------------------------
def t_tailscaled_restart(env):
    fake, agent, start = running(env)
    wait_k0s_running(env, agent)
    s = agent.wait_status(lambda s: s["tailnet"]["connected"] and
                          s["tailnet"]["backend_state"] == "Running", 5)
    check(s, "tailnet not connected before the restart: %s" % agent.status())
    # First the v1.102 "fell behind" end of the IPN bus: the agent must watch again.
    req0 = fake.control.get()["requests"]
    fake.control.lag()
    ok = wait_until(lambda: (lambda g: g["watchers"] >= 1 and g["requests"] > req0)(
        fake.control.get()), 6, interval=0.1)
    check(ok, "agent did not re-watch the IPN bus after the lag ErrMessage: %s"
          % fake.control.get())
    idx1 = env.link()["ifindex"]
    fake.stop()
    shutil.rmtree(env.path("ts"))  # systemd removes RuntimeDirectory=tailscale
    check(env.link() is None, "tailscale0 survived tailscaled's exit")
    s = agent.wait_status(lambda s: not s["interface"]["present"] and
                          not s["tailnet"]["connected"], 3)
    check(s, "agent did not notice tailscaled going away: %s" % agent.status())
    time.sleep(2.0)
    fake2 = env.start_fake()
    idx2 = env.link()["ifindex"]
    check(idx2 != idx1, "same ifindex %d after restart" % idx1)
    s = agent.wait_status(lambda s: s["tailnet"]["connected"] and
                          s["tailnet"]["backend_state"] == "Running" and
                          s["interface"]["ifindex"] == idx2 and
                          s["interface"]["ipv4"] == [IP], 8)
    check(s, "agent did not reconnect to the new tailscaled: %s" % agent.status())
    check(fake2.control.get()["watchers"] >= 1, "agent is not watching the new IPN bus")
    time.sleep(SETTLE + 0.5)
    check(len(env.k0s.starts()) == 1, "k0s restarted across a tailscaled restart")
    assert_no_signals(env, "tailscaled restart")
    check(pid_alive(start["pid"]), "k0s died")


# --- 6 -----------------------------------------------------------------------------------
def t_crash_backoff(env):
    write(env.path("k0s-control"), "exit 1 300\n")
    fake, agent, start = running(env)
    check(env.k0s.wait_starts(3, 10), "k0s not restarted after exit 1 (3 starts)")
    write(env.path("k0s-control") + ".new", "exit 0 300\n")
    os.rename(env.path("k0s-control") + ".new", env.path("k0s-control"))
    st = env.k0s.starts()
    gaps = [st[i + 1]["time"] - st[i]["time"] for i in range(2)]
    print("start gaps: %s" % ", ".join("%.3f s" % g for g in gaps))
    check(gaps[0] >= 0.3 + 0.5 - 0.01, "first restart %.3f s: no backoff" % gaps[0])
    check(gaps[1] > gaps[0] + 0.2, "backoff does not grow: %s" % gaps)
    codes = [e["code"] for e in env.k0s.exits()]
    check(codes[:2] == [1, 1], "exit codes %s" % codes)
    # Now k0s exits 0 (an autopilot-like stop): it must be restarted all the same.
    ok = wait_until(lambda: any(e["code"] == 0 for e in env.k0s.exits()), 10)
    check(ok, "k0s never exited 0 after the control change")
    t0 = [e for e in env.k0s.exits() if e["code"] == 0][0]["time"]
    ok = wait_until(lambda: any(s["time"] > t0 for s in env.k0s.starts()), 8)
    check(ok, "k0s not restarted after exit 0")
    s = agent.status()
    check(s["k0s"]["restarts"] >= 3, "k0s.restarts %s" % s["k0s"]["restarts"])
    check(s["k0s"]["last_exit"], "k0s.last_exit empty")
    assert_no_signals(env, "crash loop")
    pids = [s["pid"] for s in env.k0s.starts()]
    alive = [p for p in pids if pid_alive(p)]
    check(len(alive) <= 1, "two k0s at once: %s" % alive)


# --- 7 -----------------------------------------------------------------------------------
def t_stop_timeout(env):
    write(env.path("k0s-control"), "ignore-term\n")
    fake, agent, start = running(env)
    wait_k0s_running(env, agent)
    pid = start["pid"]
    t0 = time.time()
    agent.signal(signal.SIGTERM)
    try:
        rc = agent.proc.wait(timeout=STOP_TIMEOUT + 10)
    except Exception:
        raise Fail("agent did not exit after SIGTERM")
    t_exit = time.time()
    check(rc == 0, "agent exit code %s" % rc)
    check(not pid_alive(pid), "k0s (ignoring SIGTERM) still alive after the agent exited")
    terms = env.k0s.signals(pid)
    check([s["signal"] for s in terms] == ["SIGTERM"], "k0s signals %s" % terms)
    killed_after = t_exit - terms[0]["time"]
    print("SIGTERM -> agent exit (after SIGKILL): %.3f s" % killed_after)
    check(STOP_TIMEOUT - 0.05 <= killed_after <= STOP_TIMEOUT + 2.5,
          "k0s killed %.3f s after SIGTERM, stop_timeout %.1f" % (killed_after, STOP_TIMEOUT))
    check(terms[0]["time"] - t0 < 1.0, "SIGTERM to k0s late")
    check(env.notify.wait("STOPPING", "1", timeout=1), "no STOPPING=1")
    check(not env.k0s.exits(pid), "fake k0s logged a clean exit: it was not SIGKILLed")


# --- 8 -----------------------------------------------------------------------------------
def reload_cycle(n, mark, timeout=5.0):
    """RELOADING=1, then READY=1 after it (in that order), since mark."""
    def seen():
        keys = [(k, v) for _, k, v in n.since(mark)]
        if ("RELOADING", "1") not in keys:
            return False
        return ("READY", "1") in keys[keys.index(("RELOADING", "1")) + 1:]
    return wait_until(seen, timeout)


def t_reload(env):
    fake, agent, start = running(env)
    wait_k0s_running(env, agent)
    n = env.notify
    conf = agent.config
    good = open(conf).read()
    # A broken config: role on line 3, column 7.
    write(conf, good.replace('role: "worker"', 'role: "bogus"', 1))
    check(open(conf).read().splitlines()[2].startswith("role:"), "test config layout")
    m = n.mark()
    agent.signal(signal.SIGHUP)
    check(reload_cycle(n, m), "no RELOADING=1 then READY=1 after SIGHUP: %s"
          % n.since(m))
    check(agent.alive(), "agent exited on a bad config")
    ok = wait_until(lambda: re.search(re.escape(conf) + r":3:\d+:", agent.log_text()), 3)
    check(ok, "stderr lacks %s:3:COLUMN: for the bad role" % conf)
    bad_yaml = good.replace('role: "worker"', 'role: [worker', 1)
    write(conf, bad_yaml)
    m = n.mark()
    agent.signal(signal.SIGHUP)
    check(reload_cycle(n, m), "no RELOADING=1 then READY=1 after a YAML syntax error")
    ok = wait_until(lambda: len(re.findall(re.escape(conf) + r":\d+:\d+:",
                                           agent.log_text())) >= 2, 3)
    check(ok, "no FILE:LINE:COLUMN for the YAML syntax error")
    check(agent.alive(), "agent exited on bad YAML")

    # A valid config with a second registry: hosts.toml appears, k0s untouched.
    env.config(registries=[
        {"name": REGISTRY, "endpoints": [{"url": "http://100.64.0.99:5000"}]},
        {"name": "registry2.tailnet.test:5001", "endpoints": [{"url": "http://100.64.0.98:5001"}]},
    ])
    m = n.mark()
    agent.signal(signal.SIGHUP)
    check(reload_cycle(n, m), "RELOADING/READY around the good reload: %s" % n.since(m))
    h2 = hosts_toml(env, "registry2.tailnet.test:5001")
    check(wait_until(lambda: os.path.exists(h2), 5), "second registry's hosts.toml not written")
    check("http://100.64.0.98:5001" in open(h2).read(), "second hosts.toml content")
    time.sleep(SETTLE + 0.5)
    assert_no_signals(env, "registry reload")
    check(len(env.k0s.starts()) == 1, "k0s restarted for a hosts.toml change")

    # The second registry leaves the config: the directory the agent created (it has the
    # marker) goes away; a directory the operator made by hand for another name stays.
    own = env.path("certs.d", "mirror.tailnet.test:5002")
    os.makedirs(own)
    write(os.path.join(own, "hosts.toml"), 'server = "http://100.64.0.97:5002"\n')
    check(os.path.exists(os.path.join(os.path.dirname(h2), ".k0s-tsagent-managed")),
          "the agent's registry dir lacks its marker")
    env.config(registries=[{"name": REGISTRY, "endpoints": [{"url": "http://100.64.0.99:5000"}]}])
    m = n.mark()
    agent.signal(signal.SIGHUP)
    check(reload_cycle(n, m), "RELOADING/READY around the registry removal: %s" % n.since(m))
    check(wait_until(lambda: not os.path.exists(os.path.dirname(h2)), 5),
          "the removed registry's directory is still there")
    check(os.path.exists(os.path.join(own, "hosts.toml")),
          "a directory without the agent's marker was touched")
    check(os.path.exists(hosts_toml(env)), "the remaining registry's hosts.toml went away")
    assert_no_signals(env, "registry removal")
    check(agent.stop() == 0, "agent exit code")

    # Controller: an MTU change regenerates k0s.yaml and restarts k0s after settle. The base
    # config chooses Calico (the agent never picks a CNI for the cluster).
    with open(env.path("k0s.yaml"), "w") as f:
        f.write("spec:\n  network:\n    provider: calico\n")
    conf2 = env.config("agent-ctrl.yaml", role="controller")
    base = len(env.k0s.starts())
    agent2 = env.start_agent(conf2)
    check(env.k0s.wait_starts(base + 1, 10), "controller not started")
    gen = env.path("k0s-tsagent.yaml")
    y = netns.parse_yaml(open(gen).read())
    check(y["spec"]["network"]["calico"]["mtu"] == 1230, "mtu before: %s" % y)
    cpid = env.k0s.starts()[-1]["pid"]
    wait_k0s_running(env, agent2, cpid)
    env.config("agent-ctrl.yaml", role="controller",
               calico={"mtu": 1300, "iptables_mark_mask": "0xff00ff00"})
    t_hup = time.time()
    agent2.signal(signal.SIGHUP)

    def mtu():
        try:
            return netns.parse_yaml(open(gen).read())["spec"]["network"]["calico"]["mtu"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
    check(wait_until(lambda: mtu() == 1300, 5 + SETTLE), "k0s-tsagent.yaml not regenerated "
          "with mtu 1300 (is %s)" % mtu())
    check(env.k0s.wait_starts(base + 2, SETTLE + 8), "controller not restarted for the MTU")
    time.sleep(0.5)
    terms = env.k0s.signals(cpid)
    check([s["signal"] for s in terms] == ["SIGTERM"], "old controller signals %s" % terms)
    print("SIGHUP -> SIGTERM: %.3f s" % (terms[0]["time"] - t_hup))
    check(terms[0]["time"] - t_hup >= SETTLE - 0.01, "restart before settle")
    check(len(env.k0s.starts()) == base + 2, "more than one restart")


# --- 9 -----------------------------------------------------------------------------------
def t_adopt(env):
    fake, agent, start = running(env)
    wait_k0s_running(env, agent)
    pid = start["pid"]
    check(os.path.exists(os.path.join(env.cfg["state_dir"], "k0s.pid")), "no state_dir/k0s.pid")
    agent.signal(signal.SIGKILL)
    agent.proc.wait(timeout=5)
    time.sleep(0.3)
    check(pid_alive(pid), "k0s died with the agent (it must survive SIGKILL of the agent)")
    agent2 = env.start_agent(agent.config)
    s = agent2.wait_status(lambda s: s["k0s"]["pid"] == pid and s["k0s"]["adopted"] is True
                           and s["k0s"]["state"] == "running", 8)
    check(s, "new agent did not adopt pid %d: %s" % (pid, agent2.status()))
    time.sleep(1.0)
    check(len(env.k0s.starts()) == 1, "a second k0s was started next to the adopted one")
    assert_no_signals(env, "adoption")
    t_change = time.time()
    fake.control.ips(ipv4=IP_NEW)
    check(env.k0s.wait_starts(2, SETTLE + 10), "adopted k0s not replaced after an IP change")
    time.sleep(0.5)
    terms = [x for x in env.k0s.signals(pid) if x["signal"] == "SIGTERM"]
    check(len(terms) == 1, "adopted k0s got %d SIGTERMs" % len(terms))
    check(terms[0]["time"] - t_change >= SETTLE - 0.01, "adopted k0s stopped before settle")
    check(not pid_alive(pid), "adopted k0s still alive")
    new = env.k0s.starts()[1]
    check(new["argv"][1:] == worker_argv(env, IP_NEW), "new argv %s" % new["argv"][1:])
    check(len(env.k0s.starts()) == 2, "more than one new k0s")
    s = wait_k0s_running(env, agent2, new["pid"])
    check(s["k0s"]["adopted"] is False, "a k0s the agent started itself shows adopted")


# --- 10 ----------------------------------------------------------------------------------
def t_roles(env):
    prepare(env)
    env.start_notify()
    env.start_fake()
    gen = env.path("k0s-tsagent.yaml")
    base = env.path("k0s.yaml")
    cases = [
        ("controller", None, ["--enable-worker", "--single"]),
        ("controller+worker", None, []),
        ("single", None, []),
        ("controller", "apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n"
         "metadata:\n  name: mycluster\nspec:\n  telemetry:\n    enabled: false\n"
         "  api:\n    port: 6443\n", []),
        ("single", "apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n"
         "metadata:\n  name: solo\nspec:\n  storage:\n    type: etcd\n"
         "  workerProfiles:\n  - name: custom\n    values:\n      maxPods: 42\n", []),
    ]
    for i, (role, base_text, _) in enumerate(cases):
        if base_text is None:
            if os.path.exists(base):
                os.unlink(base)
        else:
            write(base, base_text)
        if os.path.exists(gen):
            os.unlink(gen)
        conf = env.config("agent-%d.yaml" % i, role=role)
        before = len(env.k0s.starts())
        agent = env.start_agent(conf)
        check(env.k0s.wait_starts(before + 1, 10), "%s: k0s not started" % role)
        argv = env.k0s.starts()[-1]["argv"][1:]
        # k0sctl's spelling (host.go K0sInstallFlags); joining roles get the token file.
        want = ["controller", "--config=" + gen]
        if role == "controller+worker":
            want += ["--enable-worker=true", "--token-file=" + env.path("k0stoken"),
                     "--kubelet-extra-args=--node-ip=" + IP]
        elif role == "single":
            want += ["--single=true", "--kubelet-extra-args=--node-ip=" + IP]
        else:
            want += ["--token-file=" + env.path("k0stoken")]
        check(argv == want, "%s argv %s != %s" % (role, argv, want))
        check(os.path.exists(gen), "%s: %s not generated" % (role, gen))
        check(os.stat(gen).st_mtime <= env.k0s.starts()[-1]["time"],
              "%s: k0s.yaml written after k0s started" % role)
        y = netns.parse_yaml(open(gen).read())
        spec = y["spec"]
        check(spec["api"]["address"] == IP, "%s: api.address %s" % (role, spec["api"]))
        check(IP in spec["api"]["sans"] and DNS.rstrip(".") in spec["api"]["sans"],
              "%s: api.sans %s" % (role, spec["api"].get("sans")))
        # No provider in these bases: k0s's default (kube-router) stays, nothing is pinned.
        net = spec.get("network") or {}
        check("provider" not in net and "calico" not in net,
              "%s: the agent wrote a CNI setting: %s" % (role, net))
        etcd = ((spec.get("storage") or {}).get("etcd") or {}).get("peerAddress")
        if role == "single" and base_text is None:
            check(etcd is None, "single without etcd in the base got etcd.peerAddress %s" % etcd)
        else:
            check(etcd == IP, "%s: storage.etcd.peerAddress %s" % (role, etcd))
        if base_text and "mycluster" in base_text:
            check(y["metadata"]["name"] == "mycluster", "metadata.name lost: %s" % y["metadata"])
            check(spec.get("telemetry") == {"enabled": False}, "telemetry lost: %s" % spec)
            check(spec["api"].get("port") == 6443, "api.port lost: %s" % spec["api"])
        if base_text and "solo" in base_text:
            check(spec["storage"]["type"] == "etcd", "storage.type lost: %s" % spec["storage"])
            check(spec["workerProfiles"][0]["values"]["maxPods"] == 42,
                  "workerProfiles lost: %s" % spec.get("workerProfiles"))
        print("%s%s: ok" % (role, " (with base)" if base_text else ""))
        check(agent.stop() == 0, "%s: agent exit code" % role)
        check(not pid_alive(env.k0s.starts()[-1]["pid"]), "%s: k0s left running" % role)


# --- 11 ----------------------------------------------------------------------------------
def t_storm(env):
    fake, agent, start = running(env)
    wait_k0s_running(env, agent)
    lines = []
    for i in range(1000):
        a = "100.%d.%d.%d/32" % (65 + i % 50, (i // 50) % 250, 1 + i % 250)
        lines.append("addr add %s dev tailscale0" % a)
        lines.append("addr del %s dev tailscale0" % a)
    # The real address goes away in the middle of the storm (another one standing in for it a
    # while) and is back, alone, at the end.
    lines[500:500] = ["addr del %s/32 dev tailscale0" % IP, "addr add 100.99.0.1/32 dev "
                      "tailscale0"]
    lines += ["addr del 100.99.0.1/32 dev tailscale0", "addr add %s/32 dev tailscale0" % IP]
    check(len(lines) >= 2000, "storm size")
    t0 = time.monotonic()
    r = env.ip_batch(lines)
    dt = time.monotonic() - t0
    print("storm: %d ip commands in %.3f s (rc %d)" % (len(lines), dt, r.returncode))
    check(env.link()["ipv4"] == [IP], "storm did not end with only %s: %s" % (IP, env.link()))
    s = agent.wait_status(lambda s: s["interface"]["ipv4"] == [IP], 5)
    check(s, "status.json interface.ipv4 after the storm: %s" % (agent.status() or {}).get(
        "interface"))
    time.sleep(2 * SETTLE)
    n = len(env.k0s.starts())
    print("storm: k0s starts %d (1 = no restart)" % n)
    check(n <= 2, "k0s restarted %d times by an address storm" % (n - 1))
    check(agent.alive(), "agent died in the storm")
    s = wait_k0s_running(env, agent)
    check(s["address"] == IP and s["interface"]["ipv4"] == [IP], "final state: %s" % s)
    check(env.k0s.starts()[-1]["argv"][1:] == worker_argv(env, IP), "final argv")


# --- 12 ----------------------------------------------------------------------------------
def t_watchdog(env):
    # With the k0s status probe on (every 1 s) as well, so the loop has work to do.
    fake, agent, start = running(env, watchdog_usec=1000000, health={"interval": "1s"},
                                 agent_env={"FAKE_K0S_STATUS_SOCKET":
                                            env.path("k0s-status.sock")})
    n = env.notify
    t0 = time.time()
    time.sleep(3.2)
    pings = [m[0] for m in n.all("WATCHDOG") if m[2] == "1" and m[0] >= t0]
    check(len(pings) >= 4, "only %d WATCHDOG=1 in 3.2 s" % len(pings))
    edges = [t0] + pings + [time.time()]
    gap = max(b - a for a, b in zip(edges, edges[1:]))
    print("watchdog: %d pings in 3.2 s, max gap %.0f ms" % (len(pings), gap * 1000))
    # The agent wakes its loop every third of the period (sd-event then pings, having passed a
    # quarter), so every gap stays under half the period, as systemd.service(5) asks.
    check(gap <= 0.5, "max gap between WATCHDOG=1 %.0f ms > 500 ms (period 1000 ms)"
          % (gap * 1000))
    check(not [m for m in n.all("WATCHDOG") if m[2] != "1"], "WATCHDOG=trigger sent")
    s = agent.wait_status(lambda s: s["k0s"]["health"]["ok"] is True, 3)
    check(s, "k0s health never ok with the status socket served: %s"
          % (agent.status() or {}).get("k0s"))
    check("health" not in s["status"], "STATUS has a health remark while healthy: %r"
          % s["status"])

    # tailscaled's LocalAPI stops answering (as while its backend starts): the loop must not
    # block on it, so the watchdog keeps coming and k0s is left alone.
    fake.control.send({"cmd": "hang", "hang": True})
    fake.control.close_watchers()
    t1 = time.time()
    time.sleep(2.5)
    pings = [m[0] for m in n.all("WATCHDOG") if m[0] >= t1]
    edges = [t1] + pings + [time.time()]
    gap = max(b - a for a, b in zip(edges, edges[1:]))
    print("watchdog with a hung LocalAPI: %d pings, max gap %.0f ms" % (len(pings), gap * 1000))
    check(gap <= 0.9, "watchdog gap %.0f ms while the LocalAPI hangs" % (gap * 1000))
    check(agent.alive(), "agent died while the LocalAPI hangs")
    check(len(env.k0s.starts()) == 1, "k0s restarted while the LocalAPI hangs")
    assert_no_signals(env, "hung LocalAPI")


# --- 13 ----------------------------------------------------------------------------------
def t_status_cli(env):
    fake, agent, start = running(env)
    s = wait_k0s_running(env, agent, start["pid"])
    pid = start["pid"]
    r = agent.cli("status", "--json")
    check(r.returncode == 0, "status --json rc %d: %s" % (r.returncode, r.stderr))
    j = json.loads(r.stdout)
    check(j["k0s"]["pid"] == pid and j["k0s"]["state"] == "running",
          "status --json k0s: %s" % j["k0s"])
    check(j["address"] == IP and j["gate"] == "open" and j["waiting_for"] is None,
          "status --json address/gate: %s" % j)
    check(j["interface"]["name"] == "tailscale0" and j["interface"]["present"] and
          j["interface"]["up"] and j["interface"]["ifindex"] == env.link()["ifindex"],
          "interface %s" % j["interface"])
    check(j["interface"]["ipv4"] == [IP] and IP6 in j["interface"]["ipv6"],
          "interface addresses %s" % j["interface"])
    tn = j["tailnet"]
    check(tn["connected"] and tn["backend_state"] == "Running" and tn["online"] and
          tn["ipv4"] == IP and tn["dns_name"] in (DNS, DNS.rstrip(".")), "tailnet %s" % tn)
    check(j["status"] == env.notify.last_status(), "status %r != last STATUS %r" % (
        j["status"], env.notify.last_status()))
    paths = {f["path"]: f for f in j["files"]}
    for p in (hosts_toml(env), env.path("containerd.d", "registry.toml")):
        check(p in paths and paths[p]["written"] and paths[p]["error"] is None,
              "files entry for %s: %s" % (p, paths.get(p)))
    check(j["last_error"] is None, "last_error %s" % j["last_error"])
    # health.interval: 0s disables the k0s status probe, so there is no verdict and the
    # STATUS line carries no health remark.
    check(j["k0s"]["health"]["ok"] is None and j["k0s"]["health"]["error"] is None,
          "health probed although health.interval is 0s: %s" % j["k0s"]["health"])
    check("health" not in j["status"], "STATUS mentions health with the probe off: %r"
          % j["status"])
    on_disk = agent.status()
    for k in ("status", "gate", "address", "files"):
        check(on_disk[k] == j[k], "status.json %s differs from status --json" % k)

    r = agent.cli("status")
    check(r.returncode == 0, "status rc %d: %s" % (r.returncode, r.stderr))
    out = r.stdout
    check(re.search(r"^k0s:\s+running \(pid %d\)" % pid, out, re.M),
          "human status lacks 'k0s: running (pid %d)':\n%s" % (pid, out))
    check(IP in out and hosts_toml(env) in out, "human status lacks address/files:\n" + out)

    # After the agent stopped, status still reads (stale) state without crashing.
    check(agent.stop() == 0, "agent exit code")
    r = agent.cli("status", "--json")
    check(r.returncode in (0, 1), "status after stop rc %d" % r.returncode)


def t_write_retry(env):
    """A file that cannot be written is reported, does not hold k0s back, keeps whatever was
    there, and is retried with backoff until the write works (DESIGN §5 "Files"). The obstacle
    is a non-empty directory squatting on hosts.toml's name: the rename over it fails."""
    h = hosts_toml(env)
    os.makedirs(os.path.join(h, "squatter"))
    fake, agent, start = running(env)
    st = agent.wait_status(lambda s: any(f["path"] == h and f["error"] for f in s["files"]), 5)
    check(st, "status.json does not report the failed write: %s" % agent.status())
    check(st["last_error"] and h in st["last_error"], "last_error %r" % st["last_error"])
    check(re.search(r"Failed to write '%s'" % re.escape(h), agent.log_text()),
          "the failed write was not logged")
    check(os.path.isdir(os.path.join(h, "squatter")), "the obstacle was touched")
    check(os.path.isfile(env.path("containerd.d", "registry.toml")),
          "one failed file kept the others from being written")
    check(pid_alive(start["pid"]), "k0s is not running while a hosts.toml write fails")
    time.sleep(1.5)  # at least one retry fails too
    check(agent.log_text().count("Failed to write '%s'" % h) >= 2, "the write was not retried")
    t0 = time.time()
    shutil.rmtree(h)
    check(wait_until(lambda: os.path.isfile(h), 70), "hosts.toml never written after the "
          "obstacle went away")
    print("write retried and done %.1f s after the obstacle went away" % (time.time() - t0))
    st = agent.wait_status(lambda s: all(f["error"] is None for f in s["files"]), 5)
    check(st, "the file error was not cleared: %s" % agent.status())
    check('[host."http://100.64.0.99:5000"]' in open(h).read(), "hosts.toml content")
    check(len(env.k0s.starts()) == 1, "k0s restarted because of a hosts.toml write")
    assert_no_signals(env, "write retry")
    check(agent.stop() == 0, "agent exit code")


SCENARIOS = {
    "gate": t_gate,
    "require-running": t_require_running,
    "flap": t_flap,
    "ip-change": t_ip_change,
    "tailscaled-restart": t_tailscaled_restart,
    "crash-backoff": t_crash_backoff,
    "stop-timeout": t_stop_timeout,
    "reload": t_reload,
    "adopt": t_adopt,
    "roles": t_roles,
    "storm": t_storm,
    "watchdog": t_watchdog,
    "status-cli": t_status_cli,
    "write-retry": t_write_retry,
}


def main():
    return netns.run_scenarios(SCENARIOS)


if __name__ == "__main__":
    sys.exit(main())
