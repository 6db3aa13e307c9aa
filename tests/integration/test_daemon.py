#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Wave-2 daemon scenarios (the harness is netns.py; the wave-1 ones are in test_agent.py):
an unreadable base k0s.yaml, text from the LocalAPI that tries to forge sd_notify assignments,
a symlinked registry directory, a tailnet whose control server is unreachable, the argv of
joining controllers, a controller whose address drifts (accept-address), a replaced k0s binary.
One scenario per run: `test_daemon.py NAME`; exit 0 pass, 1 fail, 77 skip."""

import json
import os
import signal
import sys
import time
import traceback

import netns
from netns import Fail, Skip, check, wait_until

IP = "100.64.0.10"
IP_NEW = "100.64.0.20"
REGISTRY = "registry.tailnet.test:5000"
FORGED = "boom\nMAINPID=1\nWATCHDOG=trigger"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def prepare(env):
    write(env.path("k0stoken"), "H4sIAAAAAAAC/fake-join-token\n")


def start(env, role="worker", fake_state="Running", wait_k0s=True, **cfg):
    prepare(env)
    env.start_notify()
    fake = env.start_fake(state=fake_state)
    agent = env.start_agent(env.config(role=role, **cfg))
    if wait_k0s and not env.k0s.wait_starts(1, 10):
        raise Fail("k0s not started within 10 s; last STATUS %r" % env.notify.last_status())
    return fake, agent


def status_json(agent):
    r = agent.cli("status", "--json")
    check(r.returncode == 0, "status --json rc %d: %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout)


def forged_assignments(env):
    return [m for m in env.notify.all() if m[1] == "MAINPID" or
            (m[1] == "WATCHDOG" and m[2] != "1")]


# --- issue 8 item 2 -------------------------------------------------------------------------
def t_base_config_dir(env):
    os.makedirs(env.path("k0s.yaml"))  # the base config is a directory
    fake, agent = start(env, role="controller", wait_k0s=False)
    # start_agent() already waited for READY=1: a controller that cannot read its base config
    # must still tell systemd it is up (else TimeoutStartSec kills it, Restart= loops).
    check(env.notify.wait("READY", "1", timeout=0, mark=agent.notify_mark), "no READY=1")
    st = env.notify.wait("STATUS", timeout=5, mark=agent.notify_mark,
                         pred=lambda v: env.path("k0s.yaml") in v)
    check(st, "no STATUS= naming %s: %s" % (env.path("k0s.yaml"), env.notify.statuses()))
    j = status_json(agent)
    err = j["k0s"].get("base_config_error") or ""
    check(env.path("k0s.yaml") in err and "directory" in err.lower(),
          "status --json k0s.base_config_error %r does not name the file" % err)
    check(agent.alive(), "agent exited")


# --- issue 8 item 7 -------------------------------------------------------------------------
def t_errmessage(env):
    """A LocalAPI ErrMessage with newlines must not add assignments to sd_notify. The fake's
    "lag" command sends tsfake.LAG_MESSAGE: a wrapper sets it to the forged text."""
    wrapper = env.path("fake-forging.py")
    write(wrapper, "import sys\nsys.path.insert(0, %r)\nimport tsfake\n"
          "tsfake.LAG_MESSAGE = %r\ntsfake.main()\n"
          % (os.path.dirname(os.environ["FAKE_TAILSCALED"]), FORGED))
    saved = os.environ["FAKE_TAILSCALED"]
    os.environ["FAKE_TAILSCALED"] = wrapper
    try:
        fake, agent = start(env)
    finally:
        os.environ["FAKE_TAILSCALED"] = saved
    mark = env.notify.mark()
    seen = None
    for _ in range(10):  # the error lives until the reconnect: send until it shows
        fake.control.send({"cmd": "lag"})
        seen = wait_until(lambda: [m for m in env.notify.since(mark, "STATUS")
                                   if "boom" in m[2]], 1.0)
        if seen:
            break
    check(seen, "the ErrMessage never reached STATUS=: %s" % env.notify.statuses())
    time.sleep(0.5)
    check(not forged_assignments(env), "forged notify assignments: %s" % forged_assignments(env))
    for line in agent.log_text().splitlines():
        check(not line.startswith("MAINPID=") and not line.startswith("WATCHDOG="),
              "a forged line in the agent's log: %r" % line)
    s = agent.status() or {}
    err = (s.get("tailnet") or {}).get("error") or ""
    check("\n" not in err and "\n" not in (s.get("status") or ""),
          "a newline in status.json: %r / %r" % (err, s.get("status")))
    check(agent.alive(), "agent exited")


# --- issue 8 items 12, 13 -------------------------------------------------------------------
def t_registry_symlink(env):
    prepare(env)
    elsewhere = env.path("elsewhere")
    write(os.path.join(elsewhere, "hosts.toml"), "precious\n")
    write(os.path.join(elsewhere, ".k0s-tsagent-managed"), "x\n")
    os.makedirs(env.path("certs.d"))
    os.symlink(elsewhere, env.path("certs.d", REGISTRY))
    env.start_notify()
    env.start_fake()
    agent = env.start_agent(env.config())
    check(env.k0s.wait_starts(1, 10), "k0s not started (a registry problem must not hold it)")
    s = agent.wait_status(lambda s: any(f["error"] and "symlink" in f["error"]
                                        for f in s["files"]), 5)
    check(s, "status.json files[] does not report the symlink: %s" % (agent.status() or {})
          .get("files"))
    check("symlink" in agent.log_text(), "the log does not report the symlink")
    check(open(os.path.join(elsewhere, "hosts.toml")).read() == "precious\n",
          "hosts.toml written through the symlink")
    # the registry leaves the config: nothing is removed through the symlink
    conf = env.config(registries=[])
    agent.signal(signal.SIGHUP)
    check(env.notify.wait("READY", "1", timeout=5, mark=env.notify.mark() - 1), "no reload")
    time.sleep(1.0)
    check(os.path.islink(env.path("certs.d", REGISTRY)), "the symlink was removed")
    check(os.path.exists(os.path.join(elsewhere, "hosts.toml")) and
          os.path.exists(os.path.join(elsewhere, ".k0s-tsagent-managed")),
          "files removed through the symlink")
    check(agent.alive(), "agent exited")
    del conf


# --- issue 7 item 1 -------------------------------------------------------------------------
def t_online_false(env):
    prepare(env)
    env.start_notify()
    fake = env.start_fake()
    fake.control.send({"cmd": "online", "online": False})
    fake.control.send({"cmd": "state", "state": "Running", "force": True})
    write(env.path("k0s-control"), "once-exit 1 500\n")
    agent = env.start_agent(env.config())
    check(env.k0s.wait_starts(1, 10), "k0s not started while Running with Self.Online false")
    s = agent.wait_status(lambda s: s["tailnet"]["backend_state"] == "Running"
                          and s["tailnet"]["online"] is False, 5)
    check(s, "status.json does not show Running with online false: %s"
          % (agent.status() or {}).get("tailnet"))
    check(env.k0s.wait_starts(2, 10), "a crashed k0s was not restarted while not online")
    st = env.notify.wait("STATUS", timeout=5, pred=lambda v: "control server" in v)
    check(st, "STATUS= does not mention the unreachable control server: %s"
          % env.notify.statuses())
    r = agent.cli("status")
    check("online=no" in r.stdout, "status does not show online=no:\n" + r.stdout)


# --- issue 8 item 9 -------------------------------------------------------------------------
def t_localapi_silent(env):
    """A LocalAPI that accepts and never answers: the agent gives the stream up after its header
    timeout (status says so), connects again by itself, and starts k0s within 30 s of the
    LocalAPI answering again, with no SIGHUP or restart."""
    prepare(env)
    env.start_notify()
    fake = env.start_fake()
    fake.control.send({"cmd": "hang", "hang": True})
    agent = env.start_agent(env.config())
    s = agent.wait_status(lambda s: "no response from tailscaled" in
                          json.dumps(s.get("tailnet", {})), 20)
    check(s, "status.json never said the LocalAPI gave no response: %s"
          % (agent.status() or {}).get("tailnet"))
    check(not env.k0s.starts(), "k0s started without an answer from the LocalAPI")
    t_healthy = time.time()
    fake.control.send({"cmd": "hang", "hang": False})
    check(env.k0s.wait_starts(1, 30), "k0s not started within 30 s of the LocalAPI answering")
    print("LocalAPI answering again -> k0s started: %.2f s"
          % (env.k0s.starts()[0]["time"] - t_healthy))
    check(agent.alive(), "agent exited")


# --- issue 7 item 2 -------------------------------------------------------------------------
def t_controller_token(env):
    fake, agent = start(env, role="controller")
    argv = env.k0s.starts()[-1]["argv"][1:]
    want = ["controller", "--config=" + env.path("k0s-tsagent.yaml"),
            "--token-file=" + env.path("k0stoken")]
    check(argv[:3] == want, "controller argv %s does not start with %s" % (argv, want))


def t_controller_worker(env):
    fake, agent = start(env, role="controller+worker")
    argv = env.k0s.starts()[-1]["argv"][1:]
    check(argv[0] == "controller" and "--enable-worker=true" in argv and
          "--kubelet-extra-args=--node-ip=" + IP in argv and
          "--token-file=" + env.path("k0stoken") in argv,
          "controller+worker argv %s" % argv)


# --- issue 7 item 8 -------------------------------------------------------------------------
ETCD_BASE = ("apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\nmetadata:\n"
             "  name: c\nspec:\n  storage:\n    type: etcd\n")


def t_address_hold(env):
    write(env.path("k0s.yaml"), ETCD_BASE)
    fake, agent = start(env, role="controller")
    first = env.k0s.starts()[0]
    check(wait_until(lambda: os.path.exists(env.path("persist", "last-address")), 5),
          "persist_dir/last-address not written")
    check(open(env.path("persist", "last-address")).read().strip() == IP, "last-address")
    fake.control.send({"cmd": "ips", "ipv4": IP_NEW})
    s = agent.wait_status(lambda s: s["address"] == IP_NEW or IP_NEW in json.dumps(s), 5)
    time.sleep(3.5)  # settle (2 s) and more: nothing may happen to k0s
    check(not env.k0s.signals(), "k0s got signals on an etcd controller's address change")
    check(len(env.k0s.starts()) == 1, "k0s restarted with the new address")
    j = status_json(agent)
    text = json.dumps(j)
    check(IP_NEW in text and IP in text and "accept-address" in text,
          "status --json does not say why k0s is held: %s" % text[:2000])

    r = agent.cli("accept-address")
    check(r.returncode == 0, "accept-address rc %d: %s" % (r.returncode, r.stderr))
    check(open(env.path("persist", "last-address")).read().strip() == IP_NEW,
          "accept-address did not record %s" % IP_NEW)
    check(wait_until(lambda: len(env.k0s.starts()) >= 2, 10),
          "k0s not restarted after accept-address")
    check([s["signal"] for s in env.k0s.signals(first["pid"])] == ["SIGTERM"],
          "old k0s signals: %s" % env.k0s.signals(first["pid"]))
    y = open(env.path("k0s-tsagent.yaml")).read()
    check(IP_NEW in y, "generated k0s.yaml lacks %s" % IP_NEW)
    del s


def t_worker_address_change(env):
    fake, agent = start(env, role="worker")
    fake.control.send({"cmd": "ips", "ipv4": IP_NEW})
    check(wait_until(lambda: len(env.k0s.starts()) >= 2, 10),
          "a worker was not restarted with its new address")
    check("--kubelet-extra-args=--node-ip=" + IP_NEW in env.k0s.starts()[-1]["argv"],
          "new worker argv %s" % env.k0s.starts()[-1]["argv"])


# --- issue 7 item 3 -------------------------------------------------------------------------
def install_k0s(path, version):
    """A k0s binary reporting version: a script that execs the stand-in with that version,
    renamed over path (a new inode, as autopilot and `cp` + `mv` make)."""
    tmp = path + ".new"
    write(tmp, "#!/bin/sh\nFAKE_K0S_VERSION=%s exec %s \"$@\"\n"
          % (version, os.environ["FAKE_K0S"]))
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)


def t_binary_replaced(env):
    """The binary is replaced by one reporting v1.36.1+k0s.0, then k0s stops: the next k0s
    runs with a v3 drop-in written before it started."""
    binary = env.path("bin", "k0s")
    install_k0s(binary, "v1.35.7+k0s.0")
    prepare(env)
    env.start_notify()
    env.start_fake()
    agent = env.start_agent(env.config(k0s={"binary": binary}))
    check(env.k0s.wait_starts(1, 10), "k0s not started")
    dropin = env.path("containerd.d", "registry.toml")
    check("version = 2" in open(dropin).read(), "first drop-in is not v2")
    install_k0s(binary, "v1.36.1+k0s.0")  # autopilot: new binary, then k0s stops
    time.sleep(0.3)
    os.kill(env.k0s.starts()[0]["pid"], signal.SIGTERM)
    check(env.k0s.wait_starts(2, 15), "k0s not restarted after the binary was replaced")
    second = env.k0s.starts()[1]
    text = open(dropin).read()
    check("version = 3" in text, "drop-in after the upgrade is not v3:\n" + text)
    check(os.stat(dropin).st_mtime <= second["time"], "v3 drop-in written after k0s started")
    s = agent.wait_status(lambda s: s["k0s"]["version"] == "v1.36.1+k0s.0", 5)
    check(s, "status.json k0s.version %s" % (agent.status() or {}).get("k0s", {}).get("version"))
    check(agent.alive(), "agent exited")


SCENARIOS = {
    "base-config-dir": t_base_config_dir,
    "errmessage": t_errmessage,
    "registry-symlink": t_registry_symlink,
    "online-false": t_online_false,
    "controller-token": t_controller_token,
    "controller-worker": t_controller_worker,
    "address-hold": t_address_hold,
    "worker-address-change": t_worker_address_change,
    "binary-replaced": t_binary_replaced,
    "localapi-silent": t_localapi_silent,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print("usage: test_daemon.py {%s}" % "|".join(SCENARIOS), file=sys.stderr)
        return 2
    name = sys.argv[1]
    try:
        netns.prerequisites()
    except Skip as e:
        print("SKIP: %s" % e)
        return netns.SKIP
    env = netns.Env(name)
    t0 = time.monotonic()
    rc = 0
    try:
        SCENARIOS[name](env)
        print("PASS: %s (%.1f s)" % (name, time.monotonic() - t0))
    except Fail as e:
        rc = 1
        print("FAIL: %s: %s (after %.1f s)" % (name, e, time.monotonic() - t0))
        print(env.report())
    except Skip as e:
        rc = netns.SKIP
        print("SKIP: %s" % e)
    except Exception:  # noqa: BLE001 -- a harness error is a failure with a trace
        rc = 1
        traceback.print_exc()
        print(env.report())
    finally:
        env.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
