#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The clock wait with the whole agent in a network namespace: with the synchronization source
"unsynchronized" (K0S_TSAGENT_TEST_CLOCK_SOURCE, no RTC at K0S_TSAGENT_TEST_CLOCK_RTC) k0s is
not started until timesyncd's `synchronized` file appears in K0S_TSAGENT_TEST_CLOCK_TIMESYNC_DIR
(clock-hold) or clock.timeout passes (clock-timeout); status.json and `status` say which.
One scenario per run: `test_clock_netns.py NAME`. Exit 0 pass, 1 fail, 77 skip."""

import os
import signal
import sys
import time

import netns
from netns import Fail, Skip, check


def start(env, timeout):
    with open(env.path("k0stoken"), "w") as f:
        f.write("H4sIAAAAAAAC/fake-join-token\n")
    os.makedirs(env.path("timesync"))
    env.start_notify()
    env.start_fake(state="Running")
    conf = env.config(clock={"wait_sync": "auto", "timeout": timeout})
    agent_env = {"K0S_TSAGENT_TEST_CLOCK_SOURCE": "unsynchronized",
                 "K0S_TSAGENT_TEST_CLOCK_RTC": env.path("no-rtc0"),
                 "K0S_TSAGENT_TEST_CLOCK_TIMESYNC_DIR": env.path("timesync")}
    agent = env.start_agent(conf, env=agent_env)
    st = agent.wait_status(lambda s: s.get("clock") == "waiting", 5)
    check(st, "status.json never said clock waiting: %s" % agent.status())
    return agent


def held(env, agent, seconds):
    time.sleep(seconds)
    check(not env.k0s.starts(), "k0s started while the clock was unsynchronized")
    st = agent.status()
    check(st and st.get("clock") == "waiting", "clock %s" % (st or {}).get("clock"))
    check(st and st.get("gate") == "closed", "gate %s while waiting for the clock"
          % (st or {}).get("gate"))
    out = agent.cli("status").stdout
    check("Clock:" in out and "waiting" in out, "`status` does not say waiting:\n" + out)


def t_hold(env):
    agent = start(env, "60s")
    held(env, agent, 3.0)
    t = time.time()
    open(env.path("timesync", "synchronized"), "w").close()
    check(env.k0s.wait_starts(1, 5), "k0s not started within 5 s of `synchronized`")
    print("synchronized -> k0s start: %.3f s" % (env.k0s.starts()[0]["time"] - t))
    st = agent.wait_status(lambda s: s.get("clock") == "synchronized", 5)
    check(st, "status.json clock: %s" % (agent.status() or {}).get("clock"))
    check("synchronized" in agent.cli("status").stdout, "`status` does not say synchronized")


def t_timeout(env):
    t0 = time.time()
    agent = start(env, "4s")
    held(env, agent, 2.0)
    check(env.k0s.wait_starts(1, 10), "k0s not started after clock.timeout")
    waited = env.k0s.starts()[0]["time"] - t0
    print("agent start -> k0s start: %.3f s (clock.timeout 4 s)" % waited)
    check(waited >= 3.9, "k0s started %.3f s after the agent, before the timeout" % waited)
    st = agent.wait_status(lambda s: s.get("clock") == "timed-out", 5)
    check(st, "status.json clock: %s" % (agent.status() or {}).get("clock"))
    check("timed-out" in agent.cli("status").stdout, "`status` does not say timed-out")
    check("not synchronized" in agent.log_text(), "no warning in the log")


def t_reload(env):
    """`clock.wait_sync: false` put in force by a reload releases a held first start."""
    agent = start(env, "60s")
    held(env, agent, 1.0)
    env.config(clock={"wait_sync": False})
    t = time.time()
    agent.signal(signal.SIGHUP)
    check(env.k0s.wait_starts(1, 5), "k0s not started within 5 s of the reload")
    print("reload (wait_sync false) -> k0s start: %.3f s" % (env.k0s.starts()[0]["time"] - t))
    st = agent.wait_status(lambda s: s.get("clock") == "not-needed", 5)
    check(st, "status.json clock: %s" % (agent.status() or {}).get("clock"))


SCENARIOS = {"clock-hold": t_hold, "clock-timeout": t_timeout, "clock-reload": t_reload}


def main():
    return netns.run_scenarios(SCENARIOS)


if __name__ == "__main__":
    sys.exit(main())
