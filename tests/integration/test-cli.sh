#!/bin/bash
# SPDX-License-Identifier: MIT
# The one-shot CLI on real files: --version/--help, check-config (good, bad, hostile registry
# names), render for k0s 1.35 (v2 drop-in) and 1.36 (v3), controller k0s.yaml. Checks TOML with
# Python's tomllib and YAML with python3-yaml.
set -uo pipefail
AGENT=${AGENT:?AGENT must point to the k0s-tsagent binary}
SRCDIR=${SRCDIR:?SRCDIR must point to the source tree}
PY=$(command -v /usr/bin/python3 || command -v python3)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass+1)); }
bad() { echo "FAIL $*"; fail=$((fail+1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# --- version, help, usage ---------------------------------------------------------------
check "--version prints the version" bash -c '"$0" --version | grep -Eq "^k0s-tsagent [0-9]+\.[0-9]+\.[0-9]+"' "$AGENT"
check "--help exits 0" bash -c '"$0" --help | grep -q check-config' "$AGENT"
"$AGENT" frobnicate >/dev/null 2>&1; check "unknown command exits 2" test $? = 2
"$AGENT" render --address 100.64.0.1 >/dev/null 2>&1; check "render without --root exits 2" test $? = 2

# --- check-config ----------------------------------------------------------------------
out=$("$AGENT" --config "$SRCDIR/contrib/k0s-tsagent.conf.example" check-config 2>&1)
check "check-config accepts contrib/k0s-tsagent.conf.example ($out)" test $? = 0
"$AGENT" check-config --config "$SRCDIR/contrib/k0s-tsagent.conf.example" >/dev/null 2>&1
check "--config after the command works too" test $? = 0

printf 'interface: tailscale0\nrole: worker\nk0s:\n  binary: /usr/local/bin/k0s\n  frobnicate: 1\n' > "$W/bad.conf"
err=$("$AGENT" --config "$W/bad.conf" check-config 2>&1 >/dev/null); rc=$?
check "check-config exits 1 on an unknown key" test $rc = 1
check "error names FILE:LINE:COLUMN of the key ($err)" grep -q "^$W/bad.conf:5:3: " <<<"$err"

printf 'role: kubelet\n' > "$W/role.conf"
err=$("$AGENT" --config "$W/role.conf" check-config 2>&1 >/dev/null); rc=$?
check "bad role: exit 1 and $W/role.conf:1:7 ($err)" bash -c '[ "$0" = 1 ] && grep -q "role.conf:1:7: " <<<"$1"' "$rc" "$err"

for name in '../../etc' 'a/b' '..' '.' 'x:0' 'x:65536' 'a b' '[::1' 'reg.example:5000/../x' "$(printf 'a%.0s' {1..260})"; do
    printf 'registries:\n  - name: "%s"\n    endpoints:\n      - url: http://127.0.0.1:5000\n' "$name" > "$W/reg.conf"
    err=$("$AGENT" --config "$W/reg.conf" check-config 2>&1 >/dev/null); rc=$?
    check "registry name '${name:0:40}' refused with line:column" bash -c '[ "$0" = 1 ] && grep -q "reg.conf:2:" <<<"$1"' "$rc" "$err"
done

# --- render: worker, v2 and v3 drop-ins ------------------------------------------------
cat > "$W/worker.conf" <<EOC
interface: tailscale0
role: worker
k0s:
  binary: /nonexistent/k0s
  version: auto
  token_file: /etc/k0s/k0stoken
containerd:
  dropin: /etc/k0s/containerd.d/registry.toml
  certs_dir: /etc/containerd/certs.d
registries:
  - name: registry.example.ts.net:5000
    endpoints:
      - url: http://registry.example.ts.net:5000
      - url: https://100.100.1.2:5443
        skip_verify: true
  - name: "[fd7a:115c:a1e0::5]:5000"
    endpoints:
      - url: "http://[fd7a:115c:a1e0::5]:5000"
state_dir: /run/k0s-tsagent
EOC
for v in v1.35.7+k0s.0:2:io.containerd.grpc.v1.cri v1.36.1+k0s.0:3:io.containerd.cri.v1.images; do
    ver=${v%%:*}; rest=${v#*:}; fmt=${rest%%:*}; section=${rest#*:}
    R="$W/root-$fmt"
    out=$("$AGENT" --config "$W/worker.conf" render --root "$R" --address 100.64.0.10 --dns-name node1.tail1234.ts.net. --k0s-version "$ver" 2>&1)
    check "render $ver exits 0" test $? = 0
    d="$R/etc/k0s/containerd.d/registry.toml"
    check "$ver: drop-in has version = $fmt" grep -qx "version = $fmt" "$d"
    check "$ver: drop-in has section $section" grep -qF "[plugins.\"$section\".registry]" "$d"
    check "$ver: drop-in config_path" grep -qx 'config_path = "/etc/containerd/certs.d"' "$d"
    h1="$R/etc/containerd/certs.d/registry.example.ts.net:5000/hosts.toml"
    h2="$R/etc/containerd/certs.d/[fd7a:115c:a1e0::5]:5000/hosts.toml"
    check "$ver: a hosts.toml per registry" test -f "$h1" -a -f "$h2"
    check "$ver: marker in created registry dirs" test -f "$R/etc/containerd/certs.d/registry.example.ts.net:5000/.k0s-tsagent-managed"
    check "$ver: all files parse as TOML" "$PY" -c 'import sys, tomllib; [tomllib.load(open(f, "rb")) for f in sys.argv[1:]]' "$d" "$h1" "$h2"
    check "$ver: hosts.toml semantics" "$PY" - "$h1" <<'EOP'
import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))
assert t["server"] == "http://registry.example.ts.net:5000", t
hosts = t["host"]
assert list(hosts) == ["http://registry.example.ts.net:5000", "https://100.100.1.2:5443"], hosts
assert hosts["http://registry.example.ts.net:5000"]["capabilities"] == ["pull", "resolve"]
assert "skip_verify" not in hosts["http://registry.example.ts.net:5000"], "skip_verify on http://"
assert hosts["https://100.100.1.2:5443"]["skip_verify"] is True
EOP
    check "$ver: render says the worker argv" grep -qF -- "worker --token-file=/etc/k0s/k0stoken --kubelet-extra-args=--node-ip=100.64.0.10" <<<"$out"
done
out=$("$AGENT" --config "$W/worker.conf" render --root "$W/root-2" --address 100.64.0.10 --k0s-version v1.35.7+k0s.0 2>&1)
check "render again: files unchanged" bash -c '! grep -q "^wrote" <<<"$0"' "$out"
"$AGENT" --config "$W/worker.conf" render --root "$W/x" --address 10.0.0.1 --k0s-version v1.35.7+k0s.0 >/dev/null 2>&1
check "render refuses a non-tailnet --address (exit 2)" test $? = 2

# --- render: controller k0s.yaml ---------------------------------------------------------
cat > "$W/base.yaml" <<'EOY'
# generated-by-k0sctl 2026-11-01T00:00:00Z
apiVersion: k0s.k0sproject.io/v1beta1
kind: ClusterConfig
metadata:
  name: edge
spec:
  api:
    sans: [192.0.2.10]
  network:
    provider: calico
    podCIDR: 10.244.0.0/16
  telemetry:
    enabled: false
EOY
cat > "$W/ctrl.conf" <<EOC
role: controller+worker
k0s:
  binary: /nonexistent/k0s
  version: v1.35.7+k0s.0
  base_config: $W/base.yaml
  config: /etc/k0s/k0s-tsagent.yaml
calico:
  mtu: 1230
  iptables_mark_mask: "0xff00ff00"
EOC
out=$("$AGENT" --config "$W/ctrl.conf" render --root "$W/rc" --address 100.64.0.11 --dns-name ctrl1.tail1234.ts.net. 2>&1)
check "controller render exits 0" test $? = 0
check "controller argv" grep -qF -- "controller --config=/etc/k0s/k0s-tsagent.yaml --enable-worker=true --token-file=/etc/k0s/k0stoken --kubelet-extra-args=--node-ip=100.64.0.11" <<<"$out"
if "$PY" -c 'import yaml' 2>/dev/null; then
    check "k0s.yaml: valid YAML with the pinned values" "$PY" - "$W/rc/etc/k0s/k0s-tsagent.yaml" <<'EOP'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
s = d["spec"]
assert d["kind"] == "ClusterConfig" and d["metadata"]["name"] == "edge", d
assert s["api"]["address"] == "100.64.0.11", s["api"]
assert s["api"]["sans"] == ["192.0.2.10", "100.64.0.11", "ctrl1.tail1234.ts.net"], s["api"]["sans"]
assert s["storage"]["etcd"]["peerAddress"] == "100.64.0.11", s.get("storage")
c = s["network"]["calico"]
assert s["network"]["provider"] == "calico"
assert c["ipAutodetectionMethod"] == "interface=tailscale0", c
assert c["envVars"]["FELIX_IPTABLESMARKMASK"] == "0xff00ff00", c
assert c["mtu"] == 1230, c
assert s["network"]["podCIDR"] == "10.244.0.0/16" and s["telemetry"]["enabled"] is False, s
EOP
else
    echo "SKIP k0s.yaml YAML check: python3-yaml is not installed"
fi
check "k0s.yaml is mode 0600" test "$(stat -c %a "$W/rc/etc/k0s/k0s-tsagent.yaml")" = 600

# --- render: no CNI provider in the base, failover.target (reconcile helper) -------------
printf 'spec:\n  api:\n    sans: [192.0.2.10]\n' > "$W/base-noprov.yaml"
cat > "$W/fo.conf" <<EOC
role: controller
k0s:
  binary: /nonexistent/k0s
  version: v1.36.1+k0s.0
  base_config: $W/base-noprov.yaml
  config: /etc/k0s/k0s-tsagent.yaml
failover:
  target: 60s
EOC
err=$("$AGENT" --config "$W/fo.conf" render --root "$W/fo" --address 100.64.0.12 2>&1 >/dev/null)
check "failover render exits 0" test $? = 0
check "no provider: kube-router warning on stderr" grep -q "kuberouter.*cannot be pinned to an interface.*provider: calico" <<<"$err"
check "no provider written" bash -c '! grep -q "provider\|calico" "$1"' _ "$W/fo/etc/k0s/k0s-tsagent.yaml"
if "$PY" -c 'import yaml' 2>/dev/null; then
    check "failover: the three flags, sum within 60s" "$PY" - "$W/fo/etc/k0s/k0s-tsagent.yaml" <<'EOP'
import sys, yaml
s = yaml.safe_load(open(sys.argv[1]))["spec"]
api, cm = s["api"]["extraArgs"], s["controllerManager"]["extraArgs"]
g = int(cm["node-monitor-grace-period"].rstrip("s"))
nr, un = int(api["default-not-ready-toleration-seconds"]), int(api["default-unreachable-toleration-seconds"])
assert g >= 40 and nr >= 5 and un >= 5, (g, nr, un)
assert g + 5 + un <= 60 and g + nr + un <= 60, (g, nr, un)
assert "provider" not in (s.get("network") or {}), s.get("network")
EOP
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
