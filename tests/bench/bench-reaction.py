#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark of the real agent in a network namespace (numbers only, nothing is asserted):
  reaction   tailnet address added -> k0s started, agent vs the shell loop a user would write
  idle       syscalls of a running agent with nothing happening (strace -c)
  memory     Private_Dirty / Rss of the running agent
  storm      CPU time the agent spends on a burst of address add/del events
Prints "metric: value unit" lines. Needs root, ip netns, /dev/net/tun, strace (for idle).
Environment: AGENT, FAKE_K0S, FAKE_TAILSCALED, PYTHONPATH=tests/fakes (as for the netns tests)."""

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import netns
from netns import Fail, Skip

IP = "100.64.0.10"


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def metric(name, value, unit=""):
    if isinstance(value, float):
        value = "%.3f" % value if abs(value) < 10 else "%.1f" % value
    print("%s: %s %s" % (name, value, unit) if unit else "%s: %s" % (name, value), flush=True)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    # fields[11], fields[12] are utime and stime (stat fields 14 and 15)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def smaps_rollup(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            m = re.match(r"^(\w+):\s+(\d+) kB", line)
            if m:
                out[m.group(1)] = int(m.group(2))
    return out


def addr(env, op):
    return env.ip("addr", op, IP + "/32", "dev", "tailscale0", check=(op == "add"))


# Runs inside the namespace and adds/deletes the address with one rtnetlink message, printing
# the wall-clock time taken right before the send: t0 is the moment the kernel is asked, not
# the start of an `ip` process (whose fork/exec/startup would be counted against the agent).
NL_HELPER = r"""
import socket, struct, sys, time
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.bind((0, 0))
idx = socket.if_nametoindex("tailscale0")
for seq, line in enumerate(sys.stdin, 1):
    op, ip = line.split()
    a = socket.inet_aton(ip)
    attrs = struct.pack("HH4s", 8, 2, a) + struct.pack("HH4s", 8, 1, a)   # IFA_LOCAL, IFA_ADDRESS
    body = struct.pack("BBBBI", socket.AF_INET, 32, 0, 0, idx) + attrs
    typ, flags = (20, 0x1 | 0x4 | 0x400 | 0x200) if op == "add" else (21, 0x1 | 0x4)
    msg = struct.pack("IHHII", 16 + len(body), typ, flags, seq, 0) + body
    t0 = time.time()
    s.send(msg)
    ack = s.recv(4096)
    err = struct.unpack("i", ack[16:20])[0]
    print("%.6f %d" % (t0, err), flush=True)
"""


class NlAddr:
    def __init__(self, env):
        self.p = env.popen([sys.executable, "-u", "-c", NL_HELPER], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)

    def __call__(self, op, ip=IP):
        self.p.stdin.write("%s %s\n" % (op, ip))
        self.p.stdin.flush()
        t0, err = self.p.stdout.readline().split()
        if op == "add" and int(err) != 0:
            raise Fail("netlink %s %s: error %s" % (op, ip, err))
        return float(t0)

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=5)


def reaction_agent(env, trials):
    """A fresh agent per trial (its own state_dir, so nothing is adopted): wait until it
    waits for the address, add the address, and time the fake k0s's first instruction."""
    lat = []
    nl = NlAddr(env)
    for i in range(trials):
        addr(env, "del")
        conf = env.config("bench-%d.yaml" % i, state_dir=env.path("state-%d" % i),
                          tailscale={"require_running": False})
        before = len(env.k0s.starts())
        a = env.start_agent(conf)
        ok = a.wait_status(lambda s: s["gate"] == "closed" and s["interface"]["present"], 5)
        if not ok:
            raise Fail("trial %d: the agent never waited for the address\n%s" % (i, a.log_tail()))
        time.sleep(random.uniform(0.05, 0.2))
        t0 = nl("add")
        if not env.k0s.wait_starts(before + 1, 10):
            raise Fail("trial %d: k0s not started\n%s" % (i, a.log_tail()))
        lat.append(env.k0s.starts()[-1]["time"] - t0)
        a.stop()
    nl.close()
    return lat


def reaction_shell(env, trials):
    """The loop users write in a unit's ExecStartPre/ExecStart, polling once a second."""
    lat = []
    k0s = os.environ["FAKE_K0S"]
    script = ("while ! ip -j addr show dev tailscale0 | grep -q '\"local\":\"100\\.'; "
              "do sleep 1; done; exec %s worker --token-file=%s "
              "--kubelet-extra-args=--node-ip=%s" % (k0s, env.path("k0stoken"), IP))
    e = dict(os.environ, FAKE_K0S_LOG=env.k0s.path)
    nl = NlAddr(env)
    for i in range(trials):
        addr(env, "del")
        before = len(env.k0s.starts())
        p = env.popen(["sh", "-c", script], env=e, stdout=subprocess.DEVNULL)
        time.sleep(random.uniform(0.2, 1.2))  # any phase of the poll loop
        t0 = nl("add")
        if not env.k0s.wait_starts(before + 1, 5):
            raise Fail("shell trial %d: k0s not started" % i)
        lat.append(env.k0s.starts()[-1]["time"] - t0)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=5)
    nl.close()
    return lat


def report_latency(name, lat):
    ms = [x * 1000 for x in lat]
    metric("%s_trials" % name, len(ms))
    metric("%s_p50" % name, pct(ms, 50), "ms")
    metric("%s_p99" % name, pct(ms, 99), "ms")
    metric("%s_max" % name, max(ms), "ms")


def running_agent(env):
    """The agent with a Running fake tailscaled and a running fake k0s that answers the
    status socket (health probe at its shipped 30 s interval)."""
    shutil.rmtree(env.path("ts"), ignore_errors=True)
    fake = env.start_fake(state="Running")
    conf = env.config("bench-run.yaml", state_dir=env.path("state-run"),
                      health={"interval": "30s"})
    before = len(env.k0s.starts())
    a = env.start_agent(conf, env={"FAKE_K0S_STATUS_SOCKET": env.path("k0s-status.sock")})
    if not env.k0s.wait_starts(before + 1, 10):
        raise Fail("k0s not started\n" + a.log_tail())
    a.wait_status(lambda s: s["k0s"]["state"] == "running", 5)
    time.sleep(1.0)
    return fake, a


def idle(env, agent, seconds):
    if not shutil.which("strace"):
        metric("idle", "skipped (no strace)")
        return
    cpu0 = cpu_seconds(agent.pid)
    r = subprocess.run(["timeout", "-s", "INT", str(seconds), "strace", "-c", "-f", "-q",
                        "-p", str(agent.pid)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    cpu1 = cpu_seconds(agent.pid)
    print("idle syscall table (%d s, strace -c -f):" % seconds)
    print(r.stderr.rstrip())
    total = 0
    for line in r.stderr.splitlines():
        m = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?total\s*$", line)
        if m:
            total = int(m.group(1))
    metric("idle_seconds", seconds, "s")
    metric("idle_syscalls", total, "calls")
    metric("idle_syscalls_per_minute", total * 60.0 / seconds, "calls/min")
    metric("idle_cpu", cpu1 - cpu0, "s")


def storm(env, agent, events):
    lines = []
    for i in range(events // 2):
        a = "100.%d.%d.%d/32" % (65 + i % 50, (i // 50) % 250, 1 + i % 250)
        lines += ["addr add %s dev tailscale0" % a, "addr del %s dev tailscale0" % a]
    time.sleep(0.5)
    cpu0 = cpu_seconds(agent.pid)
    t0 = time.monotonic()
    env.ip_batch(lines)
    t_batch = time.monotonic() - t0
    agent.wait_status(lambda s: s["interface"]["ipv4"] == [IP], 10)
    time.sleep(1.0)
    cpu1 = cpu_seconds(agent.pid)
    metric("storm_events", len(lines), "address changes")
    metric("storm_batch_time", t_batch * 1000, "ms")
    metric("storm_agent_cpu", (cpu1 - cpu0) * 1000, "ms")
    metric("storm_agent_cpu_per_event", (cpu1 - cpu0) * 1e6 / len(lines), "us")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=50, help="agent reaction trials")
    ap.add_argument("--baseline-trials", type=int, default=10, help="shell loop trials")
    ap.add_argument("--idle-seconds", type=int, default=30)
    ap.add_argument("--storm-events", type=int, default=2000)
    ap.add_argument("--quick", action="store_true",
                    help="fewer trials and a short idle window (for tests/run)")
    o = ap.parse_args()
    if o.quick:
        o.trials, o.baseline_trials, o.idle_seconds = 50, 6, 10
    try:
        netns.prerequisites()
    except Skip as e:
        print("SKIP: %s" % e)
        return netns.SKIP
    env = netns.Env("bench")
    try:
        with open(env.path("k0stoken"), "w") as f:
            f.write("fake-join-token\n")
        env.start_notify()
        # A TUN holder with no LocalAPI: require_running: false gates on the address only.
        holder = env.start_fake(state="NeedsLogin", localapi=False)
        lat_agent = reaction_agent(env, o.trials)
        report_latency("reaction_agent", lat_agent)
        lat_shell = reaction_shell(env, o.baseline_trials)
        report_latency("reaction_shell_loop", lat_shell)
        metric("reaction_speedup_p50", pct(lat_shell, 50) / max(pct(lat_agent, 50), 1e-6), "x")
        metric("reaction_speedup_p99", pct(lat_shell, 99) / max(pct(lat_agent, 99), 1e-6), "x")
        holder.stop()

        fake, agent = running_agent(env)
        mem = smaps_rollup(agent.pid)
        metric("memory_private_dirty", mem.get("Private_Dirty", -1), "kB")
        metric("memory_rss", mem.get("Rss", -1), "kB")
        metric("memory_pss", mem.get("Pss", -1), "kB")
        idle(env, agent, o.idle_seconds)
        storm(env, agent, o.storm_events)
        s = agent.status() or {}
        metric("storm_k0s_restarts", len(env.k0s.starts()) - o.trials - o.baseline_trials - 1)
        metric("storm_final_ipv4", ",".join((s.get("interface") or {}).get("ipv4") or []))
        agent.stop()
    except Fail as e:
        print("benchmark failed: %s" % e)
        print(env.report())
        return 1
    finally:
        env.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
