#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Driver of tests/e2e/metrics-node-exporter.sh: runs the agent in a network namespace
(tests/fakes/netns.py) with metrics.textfile in node_exporter's textfile directory (argv[1])
and checks what node_exporter serves (argv[2]): the agent's metrics with the node's values
(gate open = 1 and k0s running = 1 once the tailnet is up; the restart counter grows by one
after an IP change), `promtool check metrics` clean on the file, the file not rewritten over
10 idle seconds, and never seen half-written (node_exporter's textfile scrape error stays 0 and
a reader that polls the file never sees a partial one). Exit 0 pass, 1 fail, 77 skip."""

import os
import re
import subprocess
import sys
import threading
import time
import traceback

import netns
from netns import Fail, Skip, check, wait_until

DIR, URL = sys.argv[1], sys.argv[2]
PROM = os.path.join(DIR, "k0s-tsagent.prom")
LAST = "k0s_tsagent_clock_steps_total"


def scrape():
    r = subprocess.run(["curl", "-fsS", URL], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise Fail("curl %s: %s" % (URL, r.stderr.strip()))
    vals = {}
    for line in r.stdout.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            vals[k] = float(v)
    return vals


def value(name, timeout=10.0, want=None):
    got = wait_until(lambda: (lambda v: v if v is not None and (want is None or v == want)
                              else None)(scrape().get(name)), timeout, interval=0.2)
    check(got is not None, "%s = %s in the scrape, want %s" % (name, scrape().get(name), want))
    return got


class Reader(threading.Thread):
    """Reads the file as fast as it can: every read must be a whole file."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = False
        self.reads = self.partial = 0

    def run(self):
        while not self.stop:
            try:
                with open(PROM) as f:
                    text = f.read()
            except OSError:
                time.sleep(0.001)
                continue
            self.reads += 1
            if not text.startswith("# HELP") or not re.search(r"\n%s \d+\n$" % LAST, text):
                self.partial += 1


def run(env):
    with open(env.path("k0stoken"), "w") as f:
        f.write("H4sIAAAAAAAC/fake-join-token\n")
    env.start_notify()
    fake = env.start_fake(state="Running")
    conf = env.config(metrics={"textfile": PROM}, timing={"settle": "1s"})
    reader = Reader()
    reader.start()
    agent = env.start_agent(conf)
    check(env.k0s.wait_starts(1, 10), "k0s not started")
    value("k0s_tsagent_gate_open", want=1)
    value("k0s_tsagent_k0s_running", want=1)
    value("k0s_tsagent_interface_up", want=1)
    value('k0s_tsagent_backend_state{state="Running"}', want=1)
    restarts = value("k0s_tsagent_k0s_restarts_total")
    check(value("k0s_tsagent_k0s_starts_total") == 1, "one start")
    lat = value("k0s_tsagent_tailnet_to_k0s_start_seconds")
    print("reaction time reported: %.6f s" % lat)
    s = scrape()
    check(s.get("node_textfile_scrape_error") == 0, "node_exporter: textfile scrape error")
    for name in ("k0s_tsagent_build_info", "k0s_tsagent_clock_synchronized",
                 'k0s_tsagent_file_writes_total{kind="metrics"}',
                 'k0s_tsagent_registry_endpoints{reachability="url"}',
                 "k0s_tsagent_localapi_reconnects_total", "k0s_tsagent_k0s_start_time_seconds"):
        check(any(k.startswith(name) for k in s), "%s not in the scrape" % name)
    text = open(PROM).read()
    families = set(re.findall(r"^# TYPE (k0s_tsagent_\w+)", text, re.M))
    served = {k.split("{")[0] for k in s}
    check(families <= served, "written but not served: %s" % (families - served))

    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
          "promtool check metrics: %s" % (r.stdout + r.stderr).strip())

    # Idle: not rewritten for 10 s.
    time.sleep(1.5)
    st1 = os.stat(PROM)
    time.sleep(10)
    st2 = os.stat(PROM)
    check((st1.st_ino, st1.st_mtime_ns) == (st2.st_ino, st2.st_mtime_ns),
          "metrics file rewritten while idle")
    print("idle: 0 writes in 10 s")

    # IP change: k0s restarted, the counter grows by one.
    fake.control.ips(ipv4="100.64.0.20")
    check(env.k0s.wait_starts(2, 15), "k0s not restarted after the IP change")
    value("k0s_tsagent_k0s_restarts_total", want=restarts + 1)
    value('k0s_tsagent_k0s_exits_total{reason="stopped_by_agent"}', want=1)
    value("k0s_tsagent_k0s_running", want=1)
    check(scrape().get("node_textfile_scrape_error") == 0, "node_exporter: textfile scrape error")
    reader.stop = True
    reader.join(2)
    print("reader: %d whole reads, %d partial" % (reader.reads, reader.partial))
    check(reader.reads > 0 and reader.partial == 0, "the file was seen half-written")
    agent.stop()


def main():
    try:
        netns.prerequisites()
    except Skip as e:
        print("SKIP: %s" % e)
        return netns.SKIP
    env = netns.Env("metrics")
    rc = 0
    try:
        run(env)
        print("PASS: metrics-node-exporter")
    except Fail as e:
        rc = 1
        print("FAIL: %s" % e)
        print(env.report())
    except Exception:  # noqa: BLE001
        rc = 1
        traceback.print_exc()
        print(env.report())
    finally:
        env.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
