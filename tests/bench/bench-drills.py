#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark of drill 1 on the lab (tests/lab): a site's power cut and return, repeated; numbers
only, nothing is asserted. For every worker of the cut site and every repetition:
  addr_to_k0s    tailscale0 has its address again -> the agent started k0s
  k0s_to_pull    k0s started -> a CRI pull from the other site's registry (through a `peer:`
                 endpoint by default) succeeded (includes containerd's start, which k0s
                 does in real life)
  power_to_k0s   power back -> k0s started (includes the random 0-3 s boot delay)
  power_to_pull  power back -> the pull succeeded
Prints "drill1.<figure>.median|max: N ms" and the repetition count. Needs what the lab needs
(root, wireguard-go, wg, containerd, docker-registry, curl). Env: AGENT, FAKE_K0S."""

import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab"))

import drills  # noqa: E402
import lab as labmod  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--sites", type=int, default=2)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dark", type=float, default=2.0, help="seconds without power")
    p.add_argument("--endpoints", choices=["url", "peer"], default="peer",
                   help="the registries' endpoints in the agents' config (default peer:)")
    o = p.parse_args()
    try:
        labmod.prerequisites()
    except labmod.Skip as e:
        print("SKIP: %s" % e)
        return 77
    lab = labmod.Lab(o.sites, o.nodes, seed=o.seed, log=lambda s: None,
                     peer_endpoints=o.endpoints == "peer")
    vals = {"addr_to_k0s": [], "k0s_to_pull": [], "k0s": [], "pull": []}
    failures = 0
    try:
        lab.up()
        for i in range(o.reps):
            pre = drills.steady(lab)
            if pre:
                print("rep %d: lab not steady: %s" % (i + 1, pre), flush=True)
                failures += 1
                continue
            fails, figs = drills.drill1(lab, lab.site_names[0], dark=o.dark, quiet=True)
            failures += bool(fails)
            for f in fails:
                print("rep %d: %s" % (i + 1, f), flush=True)
            for name, f in figs.items():
                if not lab.node(name).worker:
                    continue
                for k in vals:
                    if f.get(k) is not None:
                        vals[k].append(f[k])
            lab.timeline.clear()
    finally:
        lab.down()
    names = {"addr_to_k0s": "addr_to_k0s", "k0s_to_pull": "k0s_to_pull",
             "k0s": "power_to_k0s", "pull": "power_to_pull"}
    print("drill1.repetitions: %d (%d workers each, %d with a failure)" % (
        o.reps, len([n for n in lab.site_nodes(0) if n.worker]), failures))
    for k, v in vals.items():
        if v:
            print("drill1.%s.median: %.0f ms" % (names[k], statistics.median(v) * 1000))
            print("drill1.%s.max: %.0f ms" % (names[k], max(v) * 1000))
            print("drill1.%s.samples: %d" % (names[k], len(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
