#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How long `k0s-tsagent doctor --json` takes on a healthy node: the netns setup of
tests/integration/test_doctor.py (fake tailscaled, a controller peer with its k0s ports and a
registry, files below --root), then N runs; prints min/median/max in ms. The target is under
3 s. Environment as for test_doctor.py; BENCH_RUNS (default 20)."""

import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

import netns  # noqa: E402
import test_doctor  # noqa: E402


def main():
    try:
        netns.prerequisites()
    except netns.Skip as e:
        print("SKIP: %s" % e)
        return 77
    runs = int(os.environ.get("BENCH_RUNS", "20"))
    env = netns.Env("bench-doctor")
    try:
        s = test_doctor.Setup(env)
        times = []
        for _ in range(runs):
            rc, out = s.doctor()
            if rc != 0:
                print("healthy run exited %d: %s" % (rc, test_doctor.bad(out)))
                return 1
            times.append(s.elapsed * 1000)
        print("doctor --json, healthy node, %d runs, %d checks: min %.0f ms, median %.0f ms, "
              "max %.0f ms (target < 3000 ms)" % (runs, len(out["checks"]), min(times),
                                                  statistics.median(times), max(times)))
        return 0
    finally:
        env.cleanup()


if __name__ == "__main__":
    sys.exit(main())
