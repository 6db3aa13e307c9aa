#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""contrib/grafana/k0s-tsagent.json: valid JSON in Grafana's dashboard shape (panels with
gridPos and targets, an instance template variable), every k0s_tsagent_* metric it names is in
the agent's output (tests/data/metrics/full.prom, the golden text unit-metrics checks the
renderer against), and every query is valid PromQL (promtool check rules, when installed).
Also runs `promtool check metrics` on the golden files."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("SRCDIR") or os.path.join(os.path.dirname(__file__), "..", "..")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)


dash = json.load(open(os.path.join(SRC, "contrib", "grafana", "k0s-tsagent.json")))
check(isinstance(dash.get("panels"), list) and dash["panels"], "panels")
check(dash.get("uid") and dash.get("title") and isinstance(dash.get("schemaVersion"), int),
      "uid, title, schemaVersion")
variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
check("instance" in variables, "an instance template variable")
ids = [p.get("id") for p in dash["panels"]]
check(len(ids) == len(set(ids)), "panel ids are unique")

exprs = []
for p in dash["panels"]:
    g = p.get("gridPos", {})
    check(all(isinstance(g.get(k), int) for k in "xywh"), "panel %s: gridPos" % p.get("id"))
    check(p.get("type") in ("stat", "timeseries", "gauge", "table"), "panel %s: type" % p.get("id"))
    check(p.get("targets"), "panel %s: targets" % p.get("id"))
    for t in p.get("targets", []):
        check(t.get("refId") and t.get("expr"), "panel %s: refId and expr" % p.get("id"))
        exprs.append(t.get("expr", ""))
q = variables.get("instance", {}).get("query", {})
exprs.append(q.get("query", "") if isinstance(q, dict) else q)

golden = open(os.path.join(SRC, "tests", "data", "metrics", "full.prom")).read()
have = {l.split("{")[0].split(" ")[0] for l in golden.splitlines() if l and l[0] != "#"}
named = set()
for e in exprs:
    named |= set(re.findall(r"k0s_tsagent_[a-z0-9_]+", e))
for m in sorted(named):
    check(m in have, "dashboard names %s, which the agent does not write" % m)
for want in ("k0s_tsagent_gate_open", "k0s_tsagent_k0s_running", "k0s_tsagent_k0s_restarts_total",
             "k0s_tsagent_tailnet_to_k0s_start_seconds"):
    check(want in named, "dashboard shows %s" % want)
print("dashboard: %d panels, %d queries, %d metric names" % (len(dash["panels"]), len(exprs),
                                                             len(named)))

promtool = shutil.which("promtool")
if promtool:
    for f in ("full.prom", "initial.prom"):
        path = os.path.join(SRC, "tests", "data", "metrics", f)
        r = subprocess.run([promtool, "check", "metrics"], stdin=open(path), capture_output=True,
                           text=True)
        check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
              "promtool check metrics %s: %s" % (f, (r.stdout + r.stderr).strip()))
    # Every query as a recording rule: promtool parses the PromQL.
    with tempfile.TemporaryDirectory() as d:
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": "dashboard:q%d" % i,
             "expr": e.replace("$instance", ".*").replace("$__rate_interval", "5m")}
            for i, e in enumerate(exprs[:-1])]}]}
        path = os.path.join(d, "rules.json")  # JSON is YAML
        json.dump(rules, open(path, "w"))
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        check(r.returncode == 0, "promtool check rules (the dashboard's PromQL): %s"
              % (r.stdout + r.stderr).strip())
else:
    print("promtool not installed (package prometheus): PromQL and golden-file checks skipped")

print("%d failed" % len(failures) if failures else "all checks passed")
sys.exit(1 if failures else 0)
