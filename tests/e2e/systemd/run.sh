#!/bin/bash
# SPDX-License-Identifier: MIT
# End-to-end under a real systemd: a debootstrapped Debian bookworm (cached below the source
# tree in build-cache/) booted with systemd-nspawn --boot and a private network, the built .deb
# installed in it, the stand-in k0s as /usr/local/bin/k0s and the fake tailscaled as
# tailscaled.service (it creates the TUN tailscale0 inside the container, like tailscaled).
# Steps: enable --now, tailnet up, journal fields, reload with a broken config, restart (k0s
# adopted), watchdog kill (k0s adopted), stop (one SIGTERM to k0s).
# Usage: tests/e2e/systemd/run.sh PKGDIR WORKDIR   (PKGDIR holds k0s-tsagent_*.deb; env
# FAKE_K0S = stand-in k0s binary, FAKE_TAILSCALED = fake-tailscaled.py)
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../../.." && pwd)
PKGDIR=${1:?usage: $0 PKGDIR WORKDIR}
W=${2:?usage: $0 PKGDIR WORKDIR}
FAKE_K0S=${FAKE_K0S:-}
FAKE_TAILSCALED=${FAKE_TAILSCALED:-$SRC/tests/fakes/fake-tailscaled.py}
CACHE=${E2E_ROOTFS_CACHE:-$SRC/build-cache/rootfs-bookworm}
INCLUDE=systemd,systemd-sysv,dbus,iproute2,procps,python3,libyaml-0-2,libcurl4,libcjson1,libnl-3-200,libnl-route-3-200

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn (systemd-container) not installed"
command -v debootstrap >/dev/null || skip "debootstrap not installed"
deb=$(ls "$PKGDIR"/k0s-tsagent_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "FAIL: no .deb in $PKGDIR"; exit 1; }
[ -x "$FAKE_K0S" ] || { echo "FAIL: FAKE_K0S ($FAKE_K0S) is not executable"; exit 1; }

pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass+1)); }
bad() { echo "FAIL $*"; fail=$((fail+1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
T0=$(date +%s.%N)
elapsed() { python3 -c "import time; print(f'{time.time()-$T0:.1f}s')"; }

# --- rootfs, cached ----------------------------------------------------------------------
mirror() { # the Debian mirror of this machine's apt sources, never a name in the repo
    local m
    m=$(awk '/^URIs:/ {u=$2} /^Suites:/ && /bookworm( |$)/ && u {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
    [ -n "$m" ] || m=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
    echo "$m"
}
if [ ! -f "$CACHE/.complete" ] || [ "$(cat "$CACHE/.complete")" != "$INCLUDE" ]; then
    m=$(mirror); [ -n "$m" ] || skip "no bookworm mirror in the apt sources"
    echo "debootstrap bookworm from the apt mirror (first run only)..."
    rm -rf "$CACHE"; mkdir -p "$(dirname "$CACHE")"
    if ! debootstrap --variant=minbase --include="$INCLUDE" bookworm "$CACHE" "$m" >"$W.debootstrap.log" 2>&1; then
        tail -20 "$W.debootstrap.log"; echo "FAIL: debootstrap"; rm -rf "$CACHE"; exit 1
    fi
    echo "$INCLUDE" > "$CACHE/.complete"
    echo "rootfs ready ($(elapsed))"
fi

# --- boot ----------------------------------------------------------------------------------
rm -rf "$W"; mkdir -p "$W/share"
cp "$deb" "$W/share/k0s-tsagent.deb"
cp "$FAKE_K0S" "$W/share/k0s"
cp "$FAKE_TAILSCALED" "$W/share/fake-tailscaled.py"
cp "$SRC"/tests/fakes/*.py "$W/share/" 2>/dev/null || true

CG=nspawn-ci-$$
NSPAWN_PID=
cleanup() {
    if [ -n "$NSPAWN_PID" ]; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null; wait "$NSPAWN_PID" 2>/dev/null
    fi
    # nspawn --keep-unit leaves payload/ and supervisor/ cgroups behind (testing-here.md §2).
    for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
        [ -d "$h/$CG" ] && find "$h/$CG" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    true
}
trap cleanup EXIT

(
    # A cgroup of its own per run, so concurrent runs never collide and cleanup is exact.
    for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
        if [ -d "$h" ] && mkdir -p "$h/$CG" 2>/dev/null; then echo $BASHPID > "$h/$CG/cgroup.procs"; fi
    done
    exec systemd-nspawn -q -D "$CACHE" --register=no --keep-unit --boot --private-network \
        --volatile=overlay --console=read-only --bind-ro="$W/share:/srv/e2e" \
        --machine="k0s-tsagent-e2e-$$" >"$W/console.log" 2>&1
) &
NSPAWN_PID=$!
LEADER=
for _ in $(seq 200); do
    LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd 2>/dev/null | head -1)
    [ -z "$LEADER" ] && LEADER=$(pgrep -P "$(pgrep -P "$NSPAWN_PID" | head -1)" -x systemd 2>/dev/null | head -1)
    [ -n "$LEADER" ] && break
    sleep 0.05
done
[ -n "$LEADER" ] || { cat "$W/console.log"; echo "FAIL: container did not boot"; exit 1; }
IN() { nsenter -t "$LEADER" -a "$@"; }
for _ in $(seq 200); do IN test -S /run/systemd/private 2>/dev/null && break; sleep 0.05; done
state=$(IN systemctl is-system-running --wait 2>&1)
echo "container booted: $state ($(elapsed))"
show() { IN systemctl show -P "$2" "$1"; }
wait_for() { # seconds command...
    local t=$1; shift
    local end=$(( $(date +%s) + t ))
    while [ "$(date +%s)" -le "$end" ]; do "$@" && return 0; sleep 0.1; done
    return 1
}
k0s_starts() { IN sh -c 'grep -c "\"event\":\"start\"" /var/log/fake-k0s.log 2>/dev/null || echo 0'; }
k0s_pid() { IN sh -c 'grep "\"event\":\"start\"" /var/log/fake-k0s.log | tail -1 | sed "s/.*\"pid\":\([0-9]*\).*/\1/"'; }
sigterms() { IN sh -c "grep -c '\"event\":\"signal\",\"pid\":$1,\"signal\":\"SIGTERM\"' /var/log/fake-k0s.log || true"; }

# --- install -----------------------------------------------------------------------------
IN dpkg -i /srv/e2e/k0s-tsagent.deb >"$W/dpkg.log" 2>&1
check "dpkg -i of $(basename "$deb")" test $? = 0
check "installed, not enabled" test "$(IN systemctl is-enabled k0s-tsagent 2>&1)" = disabled
check "installed, not started" test "$(show k0s-tsagent ActiveState)" = inactive
pkgver=$(IN dpkg-query -W -f='${Version}' k0s-tsagent)
check "k0s-tsagent --version matches the package version $pkgver" \
    test "$(IN k0s-tsagent --version)" = "k0s-tsagent $pkgver"
check "shipped config passes check-config" IN k0s-tsagent check-config
IN install -m 0755 /srv/e2e/k0s /usr/local/bin/k0s
IN sh -c 'mkdir -p /etc/k0s && echo fake-token > /etc/k0s/k0stoken'
IN sh -c 'cat > /etc/k0s-tsagent.conf' <<'EOC'
interface: tailscale0
role: worker
tailscale:
  socket: /run/tailscale/tailscaled.sock
  require_running: true
k0s:
  binary: /usr/local/bin/k0s
  version: auto
  token_file: /etc/k0s/k0stoken
  status_socket: /run/k0s/status.sock
registries:
  - name: registry.e2e.ts.net:5000
    endpoints:
      - url: http://100.64.0.99:5000
health:
  interval: 2s
timing:
  settle: 2s
  restart_backoff: [1s, 10s]
  stop_timeout: 5s
EOC
IN mkdir -p /etc/systemd/system/k0s-tsagent.service.d
IN sh -c 'cat > /etc/systemd/system/k0s-tsagent.service.d/e2e.conf' <<'EOC'
[Service]
# The stand-in k0s records argv, env and signals here and serves the status socket.
Environment=FAKE_K0S_LOG=/var/log/fake-k0s.log FAKE_K0S_STATUS_SOCKET=/run/k0s/status.sock
Environment=K0S_TSAGENT_LOG_LEVEL=debug
EOC
IN mkdir -p /run/k0s
IN systemctl daemon-reload

# --- 1. enable --now: active, waiting for the tailnet ---------------------------------------
IN systemctl enable --now k0s-tsagent >/dev/null 2>&1
check "1. enable --now: ActiveState=active" test "$(show k0s-tsagent ActiveState)" = active
check "1. SubState=running" test "$(show k0s-tsagent SubState)" = running
st=$(show k0s-tsagent StatusText)
check "1. StatusText waits for the tailnet ('$st')" bash -c 'grep -q "Waiting for" <<<"$0" && grep -qi "tailscale" <<<"$0"' "$st"
check "1. k0s not started while waiting" test "$(k0s_starts)" = 0

# --- 2. tailnet up -> k0s in the agent's cgroup with --node-ip -----------------------------
IN sh -c 'cat > /etc/systemd/system/tailscaled.service' <<'EOC'
[Unit]
Description=fake tailscaled (test)
[Service]
ExecStart=/usr/bin/python3 /srv/e2e/fake-tailscaled.py --socket /run/tailscale/tailscaled.sock --control /run/fake-tailscaled.ctl --tun tailscale0 --state Running --ipv4 100.64.0.10 --ipv6 fd7a:115c:a1e0::a --dns-name e2e.tail1234.ts.net.
RuntimeDirectory=tailscale
RuntimeDirectoryMode=0755
EOC
IN systemctl daemon-reload
IN systemctl start tailscaled
check "2. k0s started after the tailnet came up" wait_for 15 bash -c '[ "$(k0s_starts)" -ge 1 ]'
pid=$(k0s_pid)
check "2. k0s argv has --node-ip=100.64.0.10" IN grep -q -- '--kubelet-extra-args=--node-ip=100.64.0.10' /var/log/fake-k0s.log
check "2. k0s (pid $pid) runs in the agent's cgroup" IN grep -q 'k0s-tsagent.service' "/proc/$pid/cgroup"
check "2. hosts.toml written" IN test -f /etc/containerd/certs.d/registry.e2e.ts.net:5000/hosts.toml
check "2. StatusText says running" wait_for 5 bash -c 'show k0s-tsagent StatusText | grep -q "running (pid $0)"' "$pid"
IN k0s-tsagent status > "$W/status.txt" 2>&1
check "2. k0s-tsagent status shows the pid" grep -q "pid $pid" "$W/status.txt"

# --- 3. journal ----------------------------------------------------------------------------
IN journalctl -b -u k0s-tsagent -o json --no-pager > "$W/journal.json" 2>/dev/null
check "3. journal has INTERFACE= and ADDRESS= fields" python3 - "$W/journal.json" <<'EOP'
import json, sys
es = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert any(e.get("INTERFACE") == "tailscale0" and e.get("ADDRESS") == "100.64.0.10" for e in es), "no INTERFACE/ADDRESS entry"
assert any(e.get("MESSAGE_ID") for e in es if e.get("SYSLOG_IDENTIFIER") == "k0s-tsagent"), "no MESSAGE_ID"
EOP
check "3. k0s output in the journal under its own identifier" bash -c \
    'IN() { nsenter -t "$0" -a "$@"; }; IN journalctl -b -u k0s-tsagent -o json --no-pager | grep -q "\"SYSLOG_IDENTIFIER\":\"k0s\""' "$LEADER"

# --- 4. reload with a broken config --------------------------------------------------------
IN cp /etc/k0s-tsagent.conf /etc/k0s-tsagent.conf.good
IN sh -c 'printf "role: bogus\n" >> /etc/k0s-tsagent.conf'
IN systemctl reload k0s-tsagent >/dev/null 2>&1
check "4. broken config: still active" test "$(show k0s-tsagent ActiveState)" = active
check "4. error with FILE:LINE:COLUMN in the journal" bash -c \
    'nsenter -t "$0" -a journalctl -b -u k0s-tsagent --no-pager | grep -q "/etc/k0s-tsagent.conf:[0-9]*:[0-9]*:"' "$LEADER"
check "4. old config in force: k0s untouched" test "$(k0s_pid)" = "$pid" -a "$(sigterms "$pid")" = 0
IN mv /etc/k0s-tsagent.conf.good /etc/k0s-tsagent.conf

# --- 5. restart of the agent: k0s keeps its pid --------------------------------------------
main1=$(show k0s-tsagent MainPID)
IN systemctl restart k0s-tsagent
sleep 1
check "5. agent restarted (new MainPID)" test "$(show k0s-tsagent MainPID)" != "$main1"
check "5. k0s keeps pid $pid, no SIGTERM" test "$(k0s_pid)" = "$pid" -a "$(sigterms "$pid")" = 0 -a "$(k0s_starts)" = 1
check "5. k0s still alive" IN kill -0 "$pid"
check "5. the new agent adopted it" wait_for 5 bash -c 'nsenter -t "$0" -a k0s-tsagent status --json | grep -q "\"adopted\": *true"' "$LEADER"

# --- 6. watchdog: a frozen agent is killed and restarted, k0s keeps its pid -----------------
IN sh -c 'printf "[Service]\nWatchdogSec=2s\n" > /etc/systemd/system/k0s-tsagent.service.d/watchdog.conf'
IN systemctl daemon-reload
IN systemctl restart k0s-tsagent
sleep 0.5
main2=$(show k0s-tsagent MainPID)
n0=$(show k0s-tsagent NRestarts)
IN kill -STOP "$main2"
check "6. watchdog restarts the frozen agent" wait_for 15 bash -c \
    '[ "$(nsenter -t "$0" -a systemctl show -P NRestarts k0s-tsagent)" -gt "$1" ] && [ "$(nsenter -t "$0" -a systemctl show -P ActiveState k0s-tsagent)" = active ]' "$LEADER" "$n0"
IN journalctl -b -u k0s-tsagent --no-pager | grep -q "Watchdog timeout"
check "6. systemd logged the watchdog timeout" test $? = 0
check "6. k0s still pid $pid, no SIGTERM" test "$(k0s_pid)" = "$pid" -a "$(sigterms "$pid")" = 0
IN rm /etc/systemd/system/k0s-tsagent.service.d/watchdog.conf
IN systemctl daemon-reload

# --- 7. stop: one SIGTERM to k0s, clean exit -----------------------------------------------
IN systemctl stop k0s-tsagent
check "7. stop: exactly one SIGTERM to k0s" test "$(sigterms "$pid")" = 1
check "7. k0s is gone" bash -c '! nsenter -t "$0" -a kill -0 "$1" 2>/dev/null' "$LEADER" "$pid"
check "7. agent exited cleanly (Result=success)" test "$(show k0s-tsagent Result)" = success
check "7. ActiveState=inactive" test "$(show k0s-tsagent ActiveState)" = inactive

IN journalctl -b --no-pager > "$W/journal-all.txt" 2>/dev/null
echo "e2e systemd: $(elapsed)"
echo "$pass passed, $fail failed"
[ $fail = 0 ] || { echo "--- journal tail:"; tail -60 "$W/journal-all.txt"; }
[ $fail = 0 ]
