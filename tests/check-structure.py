#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shape issue 9 asks for, checked on every run:
- no function in agent/ or common/ longer than 100 lines (from its opening line to its
  closing brace);
- no file in agent/ longer than 1,000 lines;
- no include circle among the project's own headers;
- every .c of agent/ and common/ opens (after the SPDX line) with a comment saying what it owns;
- the pure core stays pure: reconcile.{c,h} and common/ include no effect module of agent/."""
import os, re, sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
errors = []
FUNC_START = re.compile(r"^[A-Za-z_][A-Za-z0-9_ \*\(\),]*\([^;]*$")
agent = os.path.join(src, "agent")
common = os.path.join(src, "common")
files = [os.path.join(d, f) for d in (agent, common) for f in sorted(os.listdir(d))
         if f.endswith((".c", ".h"))]

longest = (0, "")
for path in files:
    lines = open(path, encoding="utf-8").read().split("\n")
    rel = os.path.relpath(path, src)
    if rel.startswith("agent/") and len(lines) - 1 > 1000:
        errors.append("%s: %d lines (over 1,000)" % (rel, len(lines) - 1))
    if path.endswith(".c"):
        head = "\n".join(lines[:4])
        if not re.search(r"^/\*\n \* \S", "\n".join(lines[1:3]), re.M) and "/*" not in lines[1]:
            errors.append("%s: does not open with a comment saying what it owns" % rel)
    start = None
    for i, line in enumerate(lines):
        if start is None and FUNC_START.match(line) and not line.startswith(("typedef", "static const", "struct")):
            # the function body opens on this line or a continuation line
            j = i
            while j < len(lines) and not lines[j].rstrip().endswith("{") and not lines[j].rstrip().endswith(";"):
                j += 1
            if j < len(lines) and lines[j].rstrip().endswith("{") and not lines[j].startswith(" " * 8 + "}"):
                start = i
        elif start is not None and line == "}":
            n = i - start + 1
            if n > longest[0]:
                longest = (n, "%s:%d" % (rel, start + 1))
            if n > 100:
                errors.append("%s:%d: function of %d lines (over 100)" % (rel, start + 1, n))
            start = None

# include graph of the project's headers
inc = re.compile(r'^#include "([^"]+)"', re.M)
graph = {}
for path in files:
    graph[os.path.basename(path)] = set(inc.findall(open(path, encoding="utf-8").read()))
def cycle_from(node, stack, seen):
    if node in stack:
        return stack[stack.index(node):] + [node]
    if node in seen or not node.endswith(".h"):
        return None
    seen.add(node)
    for n in sorted(graph.get(node, ())):
        c = cycle_from(n, stack + [node], seen)
        if c:
            return c
    return None
seen = set()
for h in sorted(k for k in graph if k.endswith(".h")):
    c = cycle_from(h, [], seen)
    if c:
        errors.append("include circle: " + " -> ".join(c))
        break

effect = {"manager.h", "netwatch.h", "supervisor.h", "tailnet.h", "health.h", "curl-glue.h",
          "files.h", "status.h", "unit-job.h", "metrics.h", "clock.h", "binary-watch.h",
          "version-probe.h", "spawn-child.h", "log.h", "event-util.h", "persist.h"}
for name in ("reconcile.c", "reconcile.h"):
    bad = graph.get(name, set()) & effect
    if bad:
        errors.append("agent/%s includes effect modules: %s" % (name, ", ".join(sorted(bad))))
for path in files:
    if path.startswith(common):
        bad = graph[os.path.basename(path)] & effect
        if bad:
            errors.append("%s includes agent modules: %s" % (os.path.relpath(path, src),
                                                             ", ".join(sorted(bad))))
render_cli = graph.get("render-cli.c", set())
if "manager.h" in render_cli:
    errors.append("agent/render-cli.c includes manager.h")

for e in errors:
    print("FAIL " + e)
print("%d files checked; longest function %d lines (%s)" % (len(files), longest[0], longest[1]))
sys.exit(1 if errors else 0)
