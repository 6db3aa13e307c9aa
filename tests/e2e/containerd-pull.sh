#!/bin/bash
# SPDX-License-Identifier: MIT
#
# e2e: the files `k0s-tsagent render` writes make a real containerd pull an image from a real
# registry under a made-up registry name (facts/containerd.md §4-§5).
#
#  - `render --k0s-version v1.36.1+k0s.0` gives a v3 drop-in (version = 3, cri.v1.images): it
#    must parse as TOML. containerd 2.x is not installable from Debian 12, so v3 is checked as
#    text and TOML only.
#  - `render --k0s-version v1.35.7+k0s.0` gives a v2 drop-in and one hosts.toml per registry;
#    Debian's containerd 1.6 imports that drop-in and pulls through CRI PullImage (a hand-encoded
#    gRPC request sent with curl, as crictl is not packaged) from docker-registry on 127.0.0.1.
#    `ctr images pull --hosts-dir` is a second check of the same hosts.toml files.
#  - a second registry lists a dead IPv6 endpoint first: its hosts.toml uses the IPv6 form that
#    containerd 1.x can parse, and the pull must fall through to the IPv4 endpoint.
#
# Needs root (containerd), containerd, ctr, docker-registry, curl with HTTP/2, python3 with
# tomllib. Env: AGENT (the built k0s-tsagent), SRCDIR (unused here but set by meson).
# Everything lives in one temp dir with its own containerd root/state/socket/opt dir; the host's
# /etc/containerd and any system containerd are not touched.

set -euo pipefail
# No `producer | grep -q` below: grep -q exits at the first match, the producer gets SIGPIPE, and
# pipefail turns a match into a failure. Output is captured first instead.

skip() {
        echo "SKIP: $*"
        exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root to run containerd"
for c in containerd ctr docker-registry curl sha256sum gzip tar; do
        command -v "$c" >/dev/null || skip "$c is not installed"
done
grep -qw HTTP2 <<<"$(curl --version)" || skip "curl has no HTTP/2 support (needed for CRI gRPC)"
# The distribution's interpreter when there is one: it starts in 20 ms, a pyenv shim in 1 s.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3 || true)}
[ -n "$PYTHON" ] || skip "python3 is not installed"
: "${AGENT:?AGENT must point to the built k0s-tsagent}"
[ -x "$AGENT" ] || { echo "FAIL: AGENT=$AGENT is not executable"; exit 1; }

START=$(date +%s%N)
W=$(mktemp -d "${TMPDIR:-/tmp}/k0s-tsagent-e2e.XXXXXX")
CTRD_PID=
REG_PID=
OPT_EXISTED=0
RUN_EXISTED=0
[ -e /opt/containerd ] && OPT_EXISTED=1
[ -e /run/containerd ] && RUN_EXISTED=1

cleanup() {
        local rc=$? pid
        for pid in "$CTRD_PID" "$REG_PID"; do
                [ -n "$pid" ] || continue
                kill "$pid" 2>/dev/null || true
                for _ in $(seq 50); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                kill -9 "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        done
        # snapshot mounts would make rm fail; none are expected (no container runs)
        awk -v w="$W" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
                while read -r m; do umount -l "$m" || true; done
        rm -rf -- "$W"
        # containerd creates these even with its own root/state; remove only what we created
        [ "$OPT_EXISTED" = 1 ] || rm -rf /opt/containerd
        [ "$RUN_EXISTED" = 1 ] || rm -rf /run/containerd
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
        echo "FAIL: $*"
        if [ -f "$W/containerd.log" ]; then
                echo "--- containerd log (tail)"
                tail -n 30 "$W/containerd.log"
        fi
        if [ -f "$W/registry.log" ]; then
                echo "--- registry log (tail)"
                tail -n 10 "$W/registry.log"
        fi
        exit 1
}
ok() {
        echo "ok: $*"
}

# Two free ports (the registry's, and one on ::1 where nothing listens), and tomllib present.
PORTS=$("$PYTHON" -c 'import socket, tomllib
def port(family, addr):
    try:
        with socket.socket(family) as s:
            s.bind((addr, 0))
            return s.getsockname()[1]
    except OSError:
        return 9  # no IPv6 here: connecting fails at once all the same
print(port(socket.AF_INET, "127.0.0.1"), port(socket.AF_INET6, "::1"))' 2>/dev/null) ||
        skip "$PYTHON has no tomllib (needs Python >= 3.11)"
read -r PORT DEAD6 <<<"$PORTS"
REG="registry.tailnet.test:$PORT"
REG6="registry6.tailnet.test:$PORT"
IMAGE="test/tiny:1"

# --- 1. render ---------------------------------------------------------------------------
DROPIN="$W/r/containerd.d/registry.toml"
CERTS="$W/r/certs.d"
cat >"$W/agent.conf" <<EOF
interface: tailscale0
role: worker
tailscale:
  socket: $W/tailscaled.sock
k0s:
  binary: $W/k0s
  version: auto
  token_file: $W/k0stoken
  status_socket: $W/k0s-status.sock
containerd:
  dropin: $DROPIN
  certs_dir: $CERTS
registries:
  - name: "$REG"
    endpoints:
      - url: "http://127.0.0.1:$PORT"
  - name: "$REG6"
    endpoints:
      - url: "http://[::1]:$DEAD6"
      - url: "http://127.0.0.1:$PORT"
state_dir: $W/state
EOF

# v3 first, into its own root: render writes every path below --root
"$AGENT" --config "$W/agent.conf" render --root "$W/v3" --address 100.64.0.10 \
        --k0s-version v1.36.1+k0s.0 || fail "render --k0s-version v1.36.1+k0s.0 exited $?"
V3="$W/v3$DROPIN"
[ -f "$V3" ] || fail "render (v1.36.1) did not write $V3"
grep -qx 'version = 3' "$V3" || fail "v1.36.1 drop-in has no 'version = 3': $(cat "$V3")"
grep -qF '[plugins."io.containerd.cri.v1.images".registry]' "$V3" ||
        fail "v1.36.1 drop-in has no cri.v1.images section"
! grep -qF 'io.containerd.grpc.v1.cri' "$V3" || fail "v1.36.1 drop-in mentions grpc.v1.cri"
ok "render v1.36.1+k0s.0 wrote a v3 drop-in"

# v2 at the real paths (all inside $W): these are the files containerd will use
"$AGENT" --config "$W/agent.conf" render --root / --address 100.64.0.10 \
        --k0s-version v1.35.7+k0s.0 || fail "render --k0s-version v1.35.7+k0s.0 exited $?"
HOSTS="$CERTS/$REG/hosts.toml"
HOSTS6="$CERTS/$REG6/hosts.toml"
for f in "$DROPIN" "$HOSTS" "$HOSTS6"; do
        [ -f "$f" ] || fail "render (v1.35.7) did not write $f"
        [[ "$(head -n1 "$f")" == "# Generated by k0s-tsagent"* ]] || fail "$f has no marker line"
done
grep -qx 'version = 2' "$DROPIN" || fail "v1.35.7 drop-in has no 'version = 2'"
grep -qF '[plugins."io.containerd.grpc.v1.cri".registry]' "$DROPIN" ||
        fail "v1.35.7 drop-in has no grpc.v1.cri section"
grep -qxF "config_path = \"$CERTS\"" "$DROPIN" || fail "drop-in config_path is not $CERTS"
grep -qxF "server = \"http://127.0.0.1:$PORT\"" "$HOSTS" || fail "hosts.toml server line"
! grep -q skip_verify "$HOSTS" "$HOSTS6" || fail "skip_verify written for an http:// endpoint"
ok "render v1.35.7+k0s.0 wrote a v2 drop-in and a hosts.toml per registry"

"$PYTHON" - "$V3" "$DROPIN" "$HOSTS" "$HOSTS6" "$CERTS" "$PORT" "$DEAD6" <<'EOF' ||
import sys, tomllib
v3, v2, hosts, hosts6, certs, port, dead6 = sys.argv[1:]
d = {f: tomllib.load(open(f, "rb")) for f in (v3, v2, hosts, hosts6)}
assert d[v3]["version"] == 3, d[v3]
assert d[v3]["plugins"]["io.containerd.cri.v1.images"]["registry"]["config_path"] == certs
assert d[v2]["version"] == 2, d[v2]
assert d[v2]["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"] == certs
good = "http://127.0.0.1:" + port
assert d[hosts]["server"] == good
assert d[hosts]["host"] == {good: {"capabilities": ["pull", "resolve"]}}, d[hosts]
dead = "http://[::1]:" + dead6
assert d[hosts6]["server"] == dead
assert list(d[hosts6]["host"]) == [dead, good], d[hosts6]
EOF
        fail "rendered files do not parse as the expected TOML"
ok "all 4 files parse with tomllib and hold the expected values"

# --- 2. registry and a tiny image ----------------------------------------------------------
mkdir -p "$W/registry" "$W/img"
cat >"$W/registry.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
        curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/v2/" 2>/dev/null && break
        kill -0 "$REG_PID" 2>/dev/null || fail "docker-registry exited"
        sleep 0.05
done
curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/v2/" || fail "registry not ready"
ok "docker-registry serves on 127.0.0.1:$PORT"

case "$(uname -m)" in
x86_64) ARCH=amd64 ;;
aarch64) ARCH=arm64 ;;
*) ARCH=$(uname -m) ;;
esac
echo "hello from k0s-tsagent e2e" >"$W/img/hello.txt"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$W/img" -cf "$W/layer.tar" \
        hello.txt
gzip -n -c "$W/layer.tar" >"$W/layer.tar.gz"
DIFF_ID=sha256:$(sha256sum <"$W/layer.tar" | cut -d' ' -f1)
LAYER=sha256:$(sha256sum <"$W/layer.tar.gz" | cut -d' ' -f1)
LAYER_SIZE=$(stat -c %s "$W/layer.tar.gz")
OCI=application/vnd.oci.image
printf '{"architecture":"%s","os":"linux","config":{},%s}' "$ARCH" \
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"$DIFF_ID\"]}" >"$W/config.json"
CONFIG=sha256:$(sha256sum <"$W/config.json" | cut -d' ' -f1)
CONFIG_SIZE=$(stat -c %s "$W/config.json")
{
        printf '{"schemaVersion":2,"mediaType":"%s.manifest.v1+json",' "$OCI"
        printf '"config":{"mediaType":"%s.config.v1+json","digest":"%s","size":%s},' \
                "$OCI" "$CONFIG" "$CONFIG_SIZE"
        printf '"layers":[{"mediaType":"%s.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
                "$OCI" "$LAYER" "$LAYER_SIZE"
} >"$W/manifest.json"

push_blob() { # $1 file, $2 digest
        local loc
        loc=$(curl -fsS --max-time 10 -X POST -o /dev/null -D - \
                "http://127.0.0.1:$PORT/v2/test/tiny/blobs/uploads/" |
                tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
        [ -n "$loc" ] || return 1
        case "$loc" in http*) ;; *) loc="http://127.0.0.1:$PORT$loc" ;; esac
        case "$loc" in *\?*) loc="$loc&digest=$2" ;; *) loc="$loc?digest=$2" ;; esac
        curl -fsS --max-time 10 -X PUT -H 'Content-Type: application/octet-stream' \
                --data-binary "@$1" -o /dev/null "$loc"
}
push_blob "$W/layer.tar.gz" "$LAYER" || fail "pushing the layer"
push_blob "$W/config.json" "$CONFIG" || fail "pushing the config"
curl -fsS --max-time 10 -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$W/manifest.json" -o /dev/null \
        "http://127.0.0.1:$PORT/v2/test/tiny/manifests/1" || fail "pushing the manifest"
ok "pushed a one-layer image as 127.0.0.1:$PORT/$IMAGE"

# --- 3. containerd with its own everything, importing the rendered drop-in -------------------
SOCK="$W/containerd.sock"
cat >"$W/containerd.toml" <<EOF
version = 2
root = "$W/ctrd/root"
state = "$W/ctrd/state"
imports = ["$W/r/containerd.d/*.toml"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$W/ctrd/opt"
EOF
containerd --config "$W/containerd.toml" >"$W/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 100); do
        [ -S "$SOCK" ] && ctr --address "$SOCK" version >/dev/null 2>&1 && break
        kill -0 "$CTRD_PID" 2>/dev/null || fail "containerd exited"
        sleep 0.05
done
ctr --address "$SOCK" version >/dev/null || fail "containerd not ready"
grep -q 'io.containerd.grpc.v1 *cri *.*ok' <<<"$(ctr --address "$SOCK" plugins ls)" ||
        fail "containerd's CRI plugin did not load with the drop-in"
ok "containerd $(containerd --version | awk '{print $3}') runs with the drop-in imported"

# CRI PullImage: PullImageRequest{image: ImageSpec{image: ref}} in a 5-byte gRPC frame. One-byte
# protobuf lengths, so the reference must stay below 120 bytes.
cri_pull() { # $1 image reference
        local ref=$1 n=${#1}
        [ "$n" -lt 120 ] || fail "image reference too long for the one-byte encoding"
        byte() { printf '%b' "\\x$(printf %02x "$1")"; }
        {
                printf '\x00\x00\x00\x00'   # not compressed; length, big-endian
                byte $((n + 4))
                byte 0x0a                  # field 1 (image), length-delimited
                byte $((n + 2))
                byte 0x0a                  # ImageSpec field 1 (image), length-delimited
                byte "$n"
                printf '%s' "$ref"
        } >"$W/req.bin"
        curl -sS --max-time 30 --http2-prior-knowledge --unix-socket "$SOCK" \
                -H 'content-type: application/grpc' -H 'te: trailers' \
                --data-binary "@$W/req.bin" -D "$W/cri-headers.txt" -o "$W/cri-resp.bin" \
                http://localhost/runtime.v1.ImageService/PullImage ||
                fail "CRI PullImage request for $ref failed (curl)"
        grep -qx 'grpc-status: 0' <<<"$(tr -d '\r' <"$W/cri-headers.txt")" ||
                fail "CRI PullImage $ref: $(tr -d '\r' <"$W/cri-headers.txt" | grep '^grpc-')"
}

cri_pull "$REG/$IMAGE"
grep -qxF "$REG/$IMAGE" <<<"$(ctr --address "$SOCK" -n k8s.io images ls -q)" ||
        fail "$REG/$IMAGE is not in containerd's k8s.io image store after the CRI pull"
grep -qF "ns=registry.tailnet.test%3A$PORT" "$W/registry.log" ||
        fail "the registry never saw a request for $REG (no ?ns= in its log)"
ok "CRI PullImage $REG/$IMAGE through the drop-in's config_path"

cri_pull "$REG6/$IMAGE"
grep -qF "ns=registry6.tailnet.test%3A$PORT" "$W/registry.log" ||
        fail "the registry never saw a request for $REG6"
# proves the IPv6 table parsed and file order holds: the dead endpoint was tried, and first
# (containerd's log line may land a moment after the CRI answer on a loaded machine)
for _ in $(seq 50); do
        grep -qF "http://[::1]:$DEAD6/v2/test/tiny/manifests/1" "$W/containerd.log" && break
        sleep 0.1
done
grep -qF "http://[::1]:$DEAD6/v2/test/tiny/manifests/1" "$W/containerd.log" ||
        fail "containerd never tried the first (IPv6) endpoint of $REG6"
ok "CRI PullImage $REG6/$IMAGE: dead IPv6 endpoint skipped, IPv4 endpoint used"

# the same hosts.toml read by ctr's resolver, into another namespace
ctr --address "$SOCK" -n tsagent-e2e images pull --hosts-dir "$CERTS" "$REG/$IMAGE" \
        >"$W/ctr-pull.log" 2>&1 || { cat "$W/ctr-pull.log"; fail "ctr pull --hosts-dir $REG"; }
ok "ctr images pull --hosts-dir $REG/$IMAGE"

if grep -q 'failed to decode' "$W/containerd.log"; then
        fail "containerd could not parse a hosts.toml:" \
                "$(grep 'failed to decode' "$W/containerd.log")"
fi
ok "containerd logged no hosts.toml parse error"

echo "PASS in $((($(date +%s%N) - START) / 1000000)) ms"
