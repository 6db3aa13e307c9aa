#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The supervisor's hardening against the real agent in a network namespace (tests/fakes/netns.py):
k0s and `k0s version` inherit only fds 0-2 although the agent holds curl sockets to the LocalAPI;
a pidfile naming an unrelated process never gets it signalled; a crash loop stays slow with a
zero restart_backoff. One scenario per run: `test_supervisor_netns.py NAME`. Exit 0 pass, 1 fail,
77 skip. Environment: AGENT, FAKE_K0S, FAKE_TAILSCALED, PYTHONPATH=tests/fakes."""

import os
import subprocess
import sys
import time
import traceback

import netns
from netns import Fail, Skip, check, pid_alive, wait_until


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def start_agent(env, **cfg):
    write(env.path("k0stoken"), "H4sIAAAAAAAC/fake-join-token\n")
    env.start_notify()
    env.start_fake()
    return env.start_agent(env.config(**cfg))


def proc_fds(pid):
    try:
        return sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def starttime(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def t_fds(env):
    """Debian 12's libcurl leaves its sockets without O_CLOEXEC: nothing of the agent's reaches
    k0s or the version probe, at the first start and at a restart after the LocalAPI stream has
    been up for a while."""
    write(env.path("k0s-control"), "once-exit 1 1000\n")
    agent = start_agent(env)
    check(env.k0s.wait_starts(1, 10), "k0s not started")
    agent_fds = proc_fds(agent.pid)
    print("agent fds: %s" % agent_fds)
    check(agent_fds and len(agent_fds) > 3, "the agent holds no descriptors: nothing to leak")
    check(env.k0s.wait_starts(2, 10), "k0s not restarted after exit 1")
    for e in env.k0s.starts():
        check(e.get("fds") == [0, 1, 2], "k0s (pid %d) inherited fds %s" % (e["pid"], e.get("fds")))
    live = env.k0s.starts()[-1]["pid"]
    check(proc_fds(live) is not None and set(proc_fds(live)) >= {0, 1, 2}, "k0s stdio")
    probes = env.k0s.of("version")
    check(probes, "the agent ran no `k0s version`")
    for e in probes:
        check(e["fds"] == [0, 1, 2], "`k0s version` (pid %d) inherited fds %s"
              % (e["pid"], e["fds"]))
    print("k0s starts: %d, version probes: %d, all with fds [0, 1, 2]"
          % (len(env.k0s.starts()), len(probes)))
    check(agent.stop() == 0, "agent exit code")


def t_unrelated_pidfile(env):
    """A pidfile naming a live process that is not our k0s (sleep, with and without the marker
    in its environment) is stale: k0s is started, and the process is never signalled, neither
    while the agent runs nor when it stops k0s."""
    others = []
    for marker in (False, True):
        e = dict(os.environ)
        if marker:
            e["K0S_TSAGENT_MANAGED"] = "1"
        p = env.popen(["sleep", "300"], ns=False, env=e)
        check(wait_until(lambda: os.readlink("/proc/%d/exe" % p.pid).endswith("/sleep"), 5),
              "sleep did not start")
        others.append(p)
    # The marked one is what the pidfile names; the other one stands by as a control.
    victim = others[1]
    write(env.path("state", "k0s.pid"), "%d\n%d\nh1\n" % (victim.pid, starttime(victim.pid)))
    agent = start_agent(env)
    check(env.k0s.wait_starts(1, 10), "k0s not started next to an unrelated pidfile process")
    check(len(env.k0s.starts()) == 1, "k0s started twice")
    check(victim.poll() is None, "the pidfile's process died while the agent ran")
    check("stale" in agent.log_text(), "the stale pidfile was not reported")
    check(agent.stop() == 0, "agent exit code")
    for p in others:
        check(p.poll() is None and pid_alive(p.pid), "the unrelated process %d was signalled"
              % p.pid)
    print("unrelated processes alive after the agent stopped: %s" % [p.pid for p in others])


def t_crash_floor(env):
    """restart_backoff [0s, 60s] and a k0s that exits at once: at most 5 starts in 5 s."""
    write(env.path("k0s-control"), "exit 1 0\n")
    conf = env.config(timing={"settle": "2s", "restart_backoff": ["0s", "60s"],
                              "stop_timeout": "3s", "stable": "60s"})
    r = subprocess.run([os.environ["AGENT"], "--config", conf, "check-config"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print("check-config refuses [0s, 60s] (also a pass): %s" % r.stdout.strip())
        return
    write(env.path("k0stoken"), "H4sIAAAAAAAC/fake-join-token\n")
    env.start_notify()
    env.start_fake()
    agent = env.start_agent(conf)
    check(env.k0s.wait_starts(1, 10), "k0s not started")
    t0 = env.k0s.starts()[0]["time"]
    time.sleep(5.5)
    n = len([s for s in env.k0s.starts() if s["time"] < t0 + 5.0])
    print("crash loop with [0s, 60s]: %d k0s starts in 5 s" % n)
    check(2 <= n <= 5, "%d starts in 5 s" % n)
    check(agent.stop() == 0, "agent exit code")


SCENARIOS = {
    "fds": t_fds,
    "unrelated-pidfile": t_unrelated_pidfile,
    "crash-floor": t_crash_floor,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print("usage: test_supervisor_netns.py {%s}" % "|".join(SCENARIOS), file=sys.stderr)
        return 2
    name = sys.argv[1]
    try:
        netns.prerequisites()
    except Skip as e:
        print("SKIP: %s" % e)
        return netns.SKIP
    except Fail as e:
        print("FAIL: %s" % e)
        return 1
    env = netns.Env("sup-" + name)
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
