#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""contrib/k0sctl: the example parses as YAML, every host gets the agent package, its site
settings and both hooks; every local src exists (the package is the one build-packages.sh
names); the site files are valid agent config fragments once import-unit's part is added; the
script the hook runs is installed by the build (meson install into a DESTDIR)."""
import os, subprocess, sys, tempfile

import yaml

SRC = os.environ["SRCDIR"]
AGENT = os.environ["AGENT"]
BUILD = os.environ.get("BUILDDIR")
K = os.path.join(SRC, "contrib", "k0sctl")
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


doc = yaml.safe_load(open(os.path.join(K, "k0sctl.yaml")))
check(doc.get("apiVersion") == "k0sctl.k0sproject.io/v1beta1", "apiVersion is k0sctl's")
check(doc.get("kind") == "Cluster", "kind Cluster")
hosts = doc["spec"]["hosts"]
check(len(hosts) >= 4, "several hosts (%d)" % len(hosts))
roles = {h["role"] for h in hosts}
check({"controller", "worker"} <= roles, "controllers and workers: %s" % sorted(roles))
addresses = [h["ssh"]["address"] for h in hosts]
check(len(set(addresses)) == len(addresses), "every host has its own ssh address")
for h in hosts:
    name = "%s %s" % (h["role"], h["ssh"]["address"])
    check(h.get("privateInterface") == "tailscale0", name + ": privateInterface tailscale0")
    files = h.get("files", [])
    srcs = [f.get("src", "") for f in files]
    check(any(s.endswith(".deb") and "k0s-tsagent" in s for s in srcs),
          name + ": uploads the agent package")
    check(any(f.get("dst") == "/etc/k0s-tsagent.site.yaml" for f in files),
          name + ": uploads the agent's site settings")
    for f in files:
        s = f.get("src", "")
        check(s and "://" not in s, name + ": %s is a local src, not a URL" % (s or f.get("name")))
        if s and not s.endswith(".deb"):
            check(os.path.isfile(os.path.join(K, s)), name + ": %s exists" % s)
    after = h.get("hooks", {}).get("apply", {}).get("after", [])
    check(any("k0s-tsagent.deb" in c and "install" in c for c in after),
          name + ": apply/after installs the package")
    check(any("/usr/libexec/k0s-tsagent/k0sctl-takeover" in c for c in after),
          name + ": apply/after runs k0sctl-takeover")
    before = h.get("hooks", {}).get("reset", {}).get("before", [])
    check(any("k0s-tsagent" in c and "disable --now" in c for c in before),
          name + ": reset/before stops the agent")

spec = doc["spec"]["k0s"]["config"]["spec"]
check(spec["network"]["provider"] == "calico", "Calico chosen before install")
env = spec["network"]["calico"]["envVars"]
check("FELIX_IPTABLESMARKMASK" in env and "FELIX_NFTABLESMARKMASK" in env, "both Felix masks")
check(spec["network"]["nodeLocalLoadBalancing"]["enabled"] is True, "NLLB on")

# build-packages.sh writes k0s-tsagent_VERSION_ARCH.deb: the README says to copy it to the name
# the example uploads.
bp = open(os.path.join(SRC, "packaging", "build-packages.sh")).read()
check("k0s-tsagent_" in bp or "${PKG}_" in bp or ".deb" in bp, "build-packages.sh builds a .deb")
readme = open(os.path.join(K, "README.md")).read()
check("k0s-tsagent.deb" in readme, "README says how the .deb gets its name here")

# Site fragments + the role/k0s part import-unit would print = a valid config.
with tempfile.TemporaryDirectory() as d:
    for role, frag in (("controller", "site-controller.yaml"), ("worker", "site-worker.yaml")):
        text = yaml.safe_load(open(os.path.join(K, frag))) or {}
        check("role" not in text and "k0s" not in text, frag + ": no role:/k0s: (import-unit's)")
        cfg = os.path.join(d, role + ".yaml")
        with open(cfg, "w") as out:
            out.write("role: %s\nk0s:\n  binary: /usr/local/bin/k0s\n" % role)
            out.write(open(os.path.join(K, frag)).read())
        os.chmod(cfg, 0o644)
        r = subprocess.run([AGENT, "--config", cfg, "check-config"], capture_output=True,
                           text=True)
        check(r.returncode == 0, frag + " + role/k0s passes check-config: %s" %
              (r.stdout + r.stderr).strip())

    # The package installs the script the hook runs (meson install = what dh/rpm package).
    if BUILD:
        dest = os.path.join(d, "dest")
        r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", dest,
                            "--quiet"], capture_output=True, text=True)
        check(r.returncode == 0, "meson install: " + r.stderr.strip()[-300:])
        found = [os.path.join(root, f) for root, _, fs in os.walk(dest) for f in fs
                 if f == "k0sctl-takeover"]
        check(any(p.endswith("/libexec/k0s-tsagent/k0sctl-takeover") and os.access(p, os.X_OK)
                  for p in found), "installed executable: %s" % found)
        check(any(p.endswith("man7/k0s-tsagent-outages.7") for root, _, fs in os.walk(dest)
                  for p in [os.path.join(root, f) for f in fs]), "outages man page installed")

print("%d passed, %d failed" % (0, len(failures)) if failures else "all checks passed")
sys.exit(1 if failures else 0)
