#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark (numbers only, nothing asserted): the agent on a big tailnet (issue 11 part 4).
A fake LocalAPI with N peers (default 5,000) where one peer flips (Online, CurAddr,
LastHandshake) every 200 ms, as a current daemon (v1.100+: PeersChanged deltas only to watchers
that ask with NotifyPeerChanges), as v1.98 (PeerChanges deltas with the bit, full NetMaps
without) and as v1.96 (a full NetMap to every watcher on every change), each with and without an
endpoint that needs peers. Prints the agent's CPU (% of one core) and peak RSS (VmHWM) per case.
Targets: current without peers < 0.5 %, with peers < 3 %, old daemons < 5 %, RSS < 64 MiB.
The "peers yes" cases configure a `peer:` endpoint (the only thing that makes the agent ask).
Needs root, ip netns, /dev/net/tun. Environment as for the netns tests: AGENT, FAKE_K0S,
FAKE_TAILSCALED, PYTHONPATH=tests/fakes."""

import argparse
import os
import shutil
import sys
import time

import netns
from netns import Fail, Skip

CASES = [
    ("current v1.102", "1.102.3-tbench", False),
    ("current v1.102", "1.102.3-tbench", True),
    ("old v1.98", "1.98.2-tbench", False),
    ("old v1.98", "1.98.2-tbench", True),
    ("old v1.96", "1.96.4-tbench", False),
    ("old v1.96", "1.96.4-tbench", True),
]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def run_case(env, n, label, version, need_peers, seconds, interval):
    shutil.rmtree(env.path("ts"), ignore_errors=True)
    fake = env.start_fake(state="Running", extra=["--daemon-version", version,
                                                  "--peers", str(n)])
    # A peer: endpoint makes the agent ask for peers (peer deltas on the bus, /status with
    # peers); url endpoints alone never do.
    first = ({"peer": "peer8", "port": 5000, "scheme": "http"} if need_peers
             else {"url": "http://192.0.2.10:5000"})
    conf = env.config("bench-big.yaml", state_dir=env.path("state-big"),
                      registries=[{"name": "registry.tailnet.test:5000",
                                   "endpoints": [first, {"url": "http://192.0.2.11"}]}])
    agent = env.start_agent(conf)
    netns.wait_until(lambda: (agent.status() or {}).get("tailnet", {}).get("connected"), 10)
    time.sleep(2.0)  # the initial /status (with 5,000 peers) is not what is measured
    c0, t0 = cpu_seconds(agent.pid), time.monotonic()
    flips, i = 0, 0
    while time.monotonic() - t0 < seconds:
        p = "peer%d" % (i % 50)
        on = (i // 50) % 2 == 1
        fake.control.peer(p, online=on, cur_addr="203.0.113.10:41641" if on else "",
                          last_handshake=-5 if on else -600)
        flips += 1
        i += 1
        time.sleep(max(0.0, t0 + flips * interval - time.monotonic()))
    elapsed = time.monotonic() - t0
    cpu = (cpu_seconds(agent.pid) - c0) / elapsed * 100.0
    hwm = vm_hwm_kib(agent.pid)
    reqs = fake.control.get()["requests"]
    agent.stop()
    fake.stop()
    print("%-16s peers %-3s  flips %3d  cpu %6.2f %% of a core  VmHWM %6.1f MiB  LocalAPI "
          "requests %d" % (label, "yes" if need_peers else "no", flips, cpu, hwm / 1024.0,
                           reqs), flush=True)
    return cpu, hwm


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=20.0,
                    help="per case (20 s: six cases stay under ~2.5 minutes)")
    ap.add_argument("--interval", type=float, default=0.2, help="between flips")
    ap.add_argument("--quick", action="store_true", help="15 s per case (for tests/run)")
    o = ap.parse_args()
    if o.quick:
        o.seconds = 15.0
    try:
        netns.prerequisites()
    except Skip as e:
        print("SKIP: %s" % e)
        return netns.SKIP
    env = netns.Env("bigtailnet")
    try:
        with open(env.path("k0stoken"), "w") as f:
            f.write("fake-join-token\n")
        env.start_notify()
        print("bench-bigtailnet: %d peers, one flip every %.0f ms, %.0f s per case"
              % (o.peers, o.interval * 1000, o.seconds), flush=True)
        for label, version, need in CASES:
            run_case(env, o.peers, label, version, need, o.seconds, o.interval)
    except Fail as e:
        print("benchmark failed: %s" % e)
        print(env.report())
        return 1
    finally:
        env.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
