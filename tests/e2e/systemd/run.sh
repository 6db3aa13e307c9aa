#!/bin/bash
# SPDX-License-Identifier: MIT
# End-to-end under a real systemd: a debootstrapped Debian bookworm (cached below the source
# tree in build-cache/, from the mirror of this machine's apt sources) booted with
# systemd-nspawn --boot and a private network, the built .deb installed in it, the stand-in k0s
# as /usr/local/bin/k0s and the fake tailscaled as tailscaled.service (it creates the TUN
# tailscale0 inside the container, like tailscaled).
# Steps: 1 enable --now (waits for the tailnet), 2 tailnet up (k0s in our cgroup with
# --node-ip), 3 journal fields, 4 reload with a broken config, 5 restart and package upgrade
# (k0s adopted), 6 watchdog kill (k0s adopted), 7 stop (one SIGTERM to k0s), 8 package removal.
# Usage: tests/e2e/systemd/run.sh PKGDIR WORKDIR   (PKGDIR holds k0s-tsagent_*.deb; env
# FAKE_K0S = stand-in k0s binary, FAKE_TAILSCALED = fake-tailscaled.py, E2E_ROOTFS_CACHE)
#        tests/e2e/systemd/run.sh --prepare-rootfs   (only debootstrap the cached rootfs: tests/run
#        starts this in the background at the beginning, so the download overlaps the builds)
# Needs root, systemd-container and debootstrap; exits 77 without them.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../../.." && pwd)
PREPARE_ONLY=
if [ "${1:-}" = --prepare-rootfs ]; then PREPARE_ONLY=1; set -- none none; fi
PKGDIR=${1:?usage: $0 PKGDIR WORKDIR}
W=${2:?usage: $0 PKGDIR WORKDIR}
FAKE_K0S=${FAKE_K0S:-}
FAKE_TAILSCALED=${FAKE_TAILSCALED:-$SRC/tests/fakes/fake-tailscaled.py}
CACHE=${E2E_ROOTFS_CACHE:-$SRC/build-cache/rootfs-bookworm}
# procps for kill(1), python3 for the fake tailscaled, the libraries the .deb depends on (the
# container has no network, so apt cannot fetch them later).
INCLUDE=systemd,systemd-sysv,dbus,iproute2,procps,python3
INCLUDE+=,libyaml-0-2,libcurl4,libcjson1,libnl-3-200,libnl-route-3-200

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn (systemd-container) not installed"
command -v debootstrap >/dev/null || skip "debootstrap not installed"
if [ -z "$PREPARE_ONLY" ]; then
    deb=$(ls "$PKGDIR"/k0s-tsagent_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { echo "FAIL: no .deb in $PKGDIR"; exit 1; }
    [ -x "$FAKE_K0S" ] || { echo "FAIL: FAKE_K0S ($FAKE_K0S) is not executable"; exit 1; }
    [ -f "$FAKE_TAILSCALED" ] || { echo "FAIL: no fake tailscaled at $FAKE_TAILSCALED"; exit 1; }
fi

pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass+1)); }
bad() { echo "FAIL $*"; fail=$((fail+1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
T0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - T0) / 1000000 )); }
elapsed() { local t; t=$(ms); printf '%d.%ds' $((t / 1000)) $((t % 1000 / 100)); }
TS=$(ms)
step() { local t; t=$(ms); echo "--- $* (previous step $(( (t - TS) ))ms, total $(elapsed))"; TS=$t; }
wait_for() { # seconds command... (a function of this shell is fine)
    local end=$(( $(date +%s%N) + $1 * 1000000000 )); shift
    while [ "$(date +%s%N)" -le "$end" ]; do "$@" && return 0; sleep 0.05; done
    return 1
}

# --- rootfs, cached ----------------------------------------------------------------------
mirror() { # the Debian mirror of this machine's apt sources; the repo never names one
    local m
    m=$(awk '/^URIs:/ {u=$2} /^Suites:/ && /[ \t]bookworm([ \t]|$)/ && u {print u; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null)
    [ -n "$m" ] || m=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
    echo "$m"
}
mkdir -p "$(dirname "$CACHE")"
exec 9>"$CACHE.lock"
flock 9   # concurrent runs: one debootstraps, the others wait and reuse it
if [ ! -f "$CACHE/.complete" ] || [ "$(cat "$CACHE/.complete")" != "$INCLUDE" ]; then
    m=$(mirror); [ -n "$m" ] || skip "no bookworm mirror in the apt sources"
    echo "debootstrap bookworm (first run only)..."
    rm -rf "$CACHE" "$CACHE.new"
    if ! debootstrap --variant=minbase --include="$INCLUDE" bookworm "$CACHE.new" "$m" \
            >"$CACHE.debootstrap.log" 2>&1; then
        tail -20 "$CACHE.debootstrap.log"; echo "FAIL: debootstrap"; rm -rf "$CACHE.new"; exit 1
    fi
    echo "$INCLUDE" > "$CACHE.new/.complete"
    mv "$CACHE.new" "$CACHE"
    echo "rootfs ready ($(elapsed))"
fi
flock -u 9
[ -z "$PREPARE_ONLY" ] || exit 0

# --- boot ----------------------------------------------------------------------------------
rm -rf "$W"; mkdir -p "$W/share"
cp "$deb" "$W/share/k0s-tsagent.deb"
cp "$FAKE_K0S" "$W/share/k0s"
cp "$FAKE_TAILSCALED" "$W/share/fake-tailscaled.py"
cp "$(dirname "$FAKE_TAILSCALED")"/*.py "$W/share/" 2>/dev/null || true   # its modules

CG=nspawn-e2e-$$
NSPAWN_PID=
cleanup() {
    if [ -n "$NSPAWN_PID" ]; then
        # SIGTERM to nspawn is a clean poweroff of the container.
        kill -TERM "$NSPAWN_PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null; wait "$NSPAWN_PID" 2>/dev/null
    fi
    # nspawn --keep-unit leaves its payload/ and supervisor/ cgroups behind; remove them.
    for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
        [ -d "$h/$CG" ] || continue
        for _ in $(seq 50); do
            find "$h/$CG" -depth -type d -exec rmdir {} + 2>/dev/null
            [ -d "$h/$CG" ] || break; sleep 0.1
        done
    done
    true
}
trap cleanup EXIT

(
    # A cgroup of its own per run, so concurrent runs never collide and cleanup is exact.
    for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
        if [ -d "$h" ] && mkdir -p "$h/$CG" 2>/dev/null; then echo $BASHPID > "$h/$CG/cgroup.procs"; fi
    done
    # --register=no --keep-unit: the host's PID 1 is not systemd (no machined, no scope).
    # --volatile=overlay: all writes go to a tmpfs, the cached rootfs stays clean.
    exec systemd-nspawn -q -D "$CACHE" --register=no --keep-unit --boot --private-network \
        --volatile=overlay --console=read-only --bind-ro="$W/share:/srv/e2e" \
        --machine="k0s-tsagent-e2e-$$" >"$W/console.log" 2>&1
) &
NSPAWN_PID=$!
LEADER=
for _ in $(seq 400); do
    LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd 2>/dev/null | head -1)
    [ -n "$LEADER" ] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$LEADER" ] || { cat "$W/console.log"; echo "FAIL: container did not boot"; exit 1; }
IN() { nsenter -t "$LEADER" -a "$@"; }
ROOT=/proc/$LEADER/root   # the container's file system, seen from here
for _ in $(seq 200); do IN test -S /run/systemd/private 2>/dev/null && break; sleep 0.05; done
state=$(IN systemctl is-system-running --wait 2>&1)
step "container booted: $state"

show() { IN systemctl show -P "$1" k0s-tsagent; }
main_pid() { show MainPID; }
# The stand-in k0s's event log (tests/fakes/README.md), parsed here.
K0S_LOG=/var/log/fake-k0s.log
k0s() { # starts | pid | sigterms PID | argv PID | ppid PID | exit PID
    python3 - "$ROOT$K0S_LOG" "$@" <<'EOP'
import json, sys
path, q, arg = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
ev = []
try:
    for line in open(path):
        if line.endswith("\n"):
            ev.append(json.loads(line))
except FileNotFoundError:
    pass
starts = [e for e in ev if e["event"] == "start"]
mine = [e for e in ev if arg is not None and str(e["pid"]) == arg]
if q == "starts":
    print(len(starts))
elif q == "pid":
    print(starts[-1]["pid"] if starts else "")
elif q == "sigterms":
    print(sum(1 for e in mine if e["event"] == "signal" and e["signal"] == "SIGTERM"))
elif q == "argv":
    print(" ".join(next((e["argv"] for e in mine if e["event"] == "start"), [])))
elif q == "ppid":
    print(next((e["ppid"] for e in mine if e["event"] == "start"), ""))
elif q == "exit":
    print(next((e["code"] for e in mine if e["event"] == "exit"), ""))
EOP
}
alive() { IN kill -0 "$1" 2>/dev/null; }
status_json() { IN k0s-tsagent status --json; }
adopted() {
    status_json | python3 -c 'import json, sys
sys.exit(0 if json.load(sys.stdin)["k0s"]["adopted"] is True else 1)'
}
is_active() { [ "$(show ActiveState)" = active ]; }
status_has() { show StatusText | grep -qF -- "$1"; }
k0s_started() { [ "$(k0s starts)" -ge "$1" ]; }
journal() { IN journalctl -b --no-pager "$@" 2>/dev/null; }

# --- install -------------------------------------------------------------------------------
IN dpkg -i /srv/e2e/k0s-tsagent.deb >"$W/dpkg.log" 2>&1
check "dpkg -i of $(basename "$deb")" test $? = 0
check "installed, not enabled" test "$(IN systemctl is-enabled k0s-tsagent 2>&1)" = disabled
check "installed, not started" test "$(show ActiveState)" = inactive
check "config is a conffile" IN grep -qx /etc/k0s-tsagent.conf /var/lib/dpkg/info/k0s-tsagent.conffiles
pkgver=$(IN dpkg-query -W -f='${Version}' k0s-tsagent)
check "k0s-tsagent --version matches the package version $pkgver" \
    test "$(IN k0s-tsagent --version)" = "k0s-tsagent $pkgver"
check "the shipped config passes check-config" IN k0s-tsagent check-config
check "man pages and bash completion installed" IN test -f /usr/share/man/man8/k0s-tsagent.8.gz \
    -a -f /usr/share/man/man5/k0s-tsagent.conf.5.gz -a -f /usr/share/bash-completion/completions/k0s-tsagent
# The stand-in k0s where the shipped config expects k0s; it logs its events to K0S_LOG.
IN install -m 0755 /srv/e2e/k0s /usr/local/bin/k0s
IN sh -c 'mkdir -p /etc/k0s && echo fake-token > /etc/k0s/k0stoken'
IN mkdir -p /etc/systemd/system/k0s-tsagent.service.d
IN sh -c 'cat > /etc/systemd/system/k0s-tsagent.service.d/e2e.conf' <<EOC
[Service]
Environment=FAKE_K0S_LOG=$K0S_LOG FAKE_K0S_STATUS_SOCKET=/run/k0s/status.sock
Environment=K0S_TSAGENT_LOG_LEVEL=debug
EOC
IN mkdir -p /run/k0s
IN systemctl daemon-reload
step "installed"

# --- 1. enable --now with the shipped config: active, waiting for the tailnet -------------
IN systemctl enable --now k0s-tsagent >"$W/enable.log" 2>&1
check "1. systemctl enable --now succeeds" test $? = 0
check "1. ActiveState=active" is_active
check "1. SubState=running" test "$(show SubState)" = running
st=$(show StatusText)
check "1. StatusText waits for the tailnet ('$st')" \
    bash -c '[[ $0 == *"Waiting for"* && $0 == *tailscale0* ]]' "$st"
check "1. k0s not started while waiting" test "$(k0s starts)" = 0
check "1. enabled" test "$(IN systemctl is-enabled k0s-tsagent)" = enabled
step "1. enable --now"

# --- 2. tailnet up -> k0s in the agent's cgroup with --node-ip -----------------------------
# Short timings for the test, put in force by a (good) reload.
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
# The container shares the host's kernel clock, and the test machines have no RTC: auto would
# hold k0s for clock.timeout (the clock wait has its own tests).
clock:
  wait_sync: false
EOC
IN systemctl reload k0s-tsagent
check "2. reload with a good config succeeds" test $? = 0
check "2. still active after the reload" is_active
IN sh -c 'cat > /etc/systemd/system/tailscaled.service' <<'EOC'
[Unit]
Description=fake tailscaled (test)
[Service]
ExecStart=/usr/bin/python3 /srv/e2e/fake-tailscaled.py --tun tailscale0 \
    --socket /run/tailscale/tailscaled.sock --control /run/fake-tailscaled.ctl \
    --state Running --ipv4 100.64.0.10 --ipv6 fd7a:115c:a1e0::a --dns-name e2e.tail1234.ts.net.
EOC
IN systemctl daemon-reload
t_up=$(ms)
IN systemctl start tailscaled
check "2. k0s started after the tailnet came up" wait_for 15 k0s_started 1
echo "     tailscaled start -> k0s start: $(( $(ms) - t_up ))ms"
pid=$(k0s pid)
main=$(main_pid)
check "2. k0s argv has --node-ip ($(k0s argv "$pid"))" \
    bash -c '[[ " $0 " == *" --kubelet-extra-args=--node-ip=100.64.0.10 "* ]]' "$(k0s argv "$pid")"
check "2. k0s (pid $pid) is the agent's child" test "$(k0s ppid "$pid")" = "$main"
check "2. k0s runs in the agent's cgroup" grep -q '/system.slice/k0s-tsagent.service$' "$ROOT/proc/$pid/cgroup"
check "2. hosts.toml written" test -f "$ROOT/etc/containerd/certs.d/registry.e2e.ts.net:5000/hosts.toml"
check "2. the shipped config (no registry) left no other registry directory" \
    test "$(ls "$ROOT/etc/containerd/certs.d")" = "registry.e2e.ts.net:5000"
check "2. StatusText says running" wait_for 5 status_has "running (pid $pid)"
IN k0s-tsagent status > "$W/status.txt" 2>&1
check "2. k0s-tsagent status shows the pid" grep -q "(pid $pid)" "$W/status.txt"
step "2. tailnet up"

# --- 3. journal ----------------------------------------------------------------------------
journal -u k0s-tsagent -o json > "$W/journal.json"
check "3. agent entries with INTERFACE=tailscale0 ADDRESS=100.64.0.10 and a MESSAGE_ID" \
    python3 - "$W/journal.json" <<'EOP'
import json, sys
es = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if any(e.get("SYSLOG_IDENTIFIER") == "k0s-tsagent" and e.get("INTERFACE") == "tailscale0"
                  and e.get("ADDRESS") == "100.64.0.10" and e.get("MESSAGE_ID")
                  and e.get("_SYSTEMD_UNIT") == "k0s-tsagent.service" for e in es) else 1)
EOP
check "3. k0s's output in the unit's journal as SYSLOG_IDENTIFIER=k0s" \
    python3 - "$W/journal.json" <<'EOP'
import json, sys
es = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if any(e.get("SYSLOG_IDENTIFIER") == "k0s" and e.get("_SYSTEMD_UNIT") == "k0s-tsagent.service"
                  for e in es) else 1)
EOP
step "3. journal"

# --- 4. reload with a broken config --------------------------------------------------------
IN cp /etc/k0s-tsagent.conf /etc/k0s-tsagent.conf.good
IN sed -i 's/^  settle: 2s$/  settle: soon/' /etc/k0s-tsagent.conf
IN systemctl reload k0s-tsagent >/dev/null 2>&1
check "4. systemctl reload fails on the broken config" test $? != 0
check "4. still active" is_active
check "4. the FILE:LINE:COLUMN error is in the journal" \
    bash -c 'grep -q "/etc/k0s-tsagent.conf:[0-9]*:[0-9]*:" <<<"$0"' "$(journal -u k0s-tsagent)"
# The same file straight to the agent, without the check in ExecReload.
main=$(main_pid)
IN systemctl kill -s HUP --kill-who=main k0s-tsagent
agent_logged_error() { journal _PID="$main" | grep -q "/etc/k0s-tsagent.conf:[0-9]*:[0-9]*:"; }
check "4. SIGHUP: the agent logs the error itself" wait_for 5 agent_logged_error
check "4. SIGHUP: still active, same MainPID" test "$(show ActiveState)/$(main_pid)" = "active/$main"
check "4. old config in force: k0s untouched" \
    test "$(k0s pid)/$(k0s sigterms "$pid")/$(k0s starts)" = "$pid/0/1"
check "4. StatusText still says running" status_has "running (pid $pid)"
IN mv /etc/k0s-tsagent.conf.good /etc/k0s-tsagent.conf
IN systemctl reload k0s-tsagent
check "4. reload of the fixed config succeeds" test $? = 0
step "4. broken reload"

# --- 5. restart and upgrade of the agent: k0s keeps its pid -------------------------------
IN systemctl restart k0s-tsagent
main2=$(main_pid)
check "5. restart: new MainPID ($main -> $main2), active" \
    test "$main2" != "$main" -a "$(show ActiveState)" = active
check "5. k0s keeps pid $pid, got no signal, was not started again" \
    test "$(k0s pid)/$(k0s sigterms "$pid")/$(k0s starts)" = "$pid/0/1"
check "5. k0s still alive" alive "$pid"
check "5. the new agent adopted it" wait_for 5 adopted
check "5. StatusText says running (pid $pid)" wait_for 5 status_has "running (pid $pid)"
# An upgrade (here: the same .deb again) try-restarts a running agent.
IN dpkg -i /srv/e2e/k0s-tsagent.deb >>"$W/dpkg.log" 2>&1
check "5. package upgrade succeeds" test $? = 0
main3=$(main_pid)
check "5. upgrade: agent restarted ($main2 -> $main3), active" \
    test "$main3" != "$main2" -a "$(show ActiveState)" = active
check "5. upgrade: k0s keeps pid $pid, got no signal" \
    test "$(k0s pid)/$(k0s sigterms "$pid")/$(k0s starts)" = "$pid/0/1"
step "5. restart + upgrade"

# --- 6. watchdog: a frozen agent is killed and restarted, k0s keeps its pid -----------------
IN sh -c 'printf "[Service]\nWatchdogSec=2s\n" > /etc/systemd/system/k0s-tsagent.service.d/watchdog.conf'
IN systemctl daemon-reload
IN systemctl restart k0s-tsagent
check "6. WatchdogUSec=2s" test "$(show WatchdogUSec)" = 2s
main4=$(main_pid)
n0=$(show NRestarts)
t_stop=$(ms)
IN kill -STOP "$main4"
restarted() { [ "$(show NRestarts)" -gt "$n0" ] && is_active && [ "$(main_pid)" != "$main4" ]; }
check "6. watchdog kills the frozen agent and systemd restarts it" wait_for 15 restarted
echo "     SIGSTOP -> active again: $(( $(ms) - t_stop ))ms"
check "6. Result of the killed run was 'watchdog'" \
    bash -c 'grep -q "Failed with result .watchdog." <<<"$0"' "$(journal -u k0s-tsagent)"
check "6. k0s still pid $pid, no signal" \
    test "$(k0s pid)/$(k0s sigterms "$pid")/$(k0s starts)" = "$pid/0/1"
check "6. the new agent adopted it" wait_for 5 adopted
IN rm /etc/systemd/system/k0s-tsagent.service.d/watchdog.conf
IN systemctl daemon-reload
step "6. watchdog"

# --- 7. stop: one SIGTERM to k0s, clean exit -----------------------------------------------
IN systemctl stop k0s-tsagent
check "7. stop: exactly one SIGTERM to k0s" test "$(k0s sigterms "$pid")" = 1
check "7. k0s exited 0" test "$(k0s exit "$pid")" = 0
check "7. k0s is gone" bash -c '! nsenter -t "$0" -a kill -0 "$1" 2>/dev/null' "$LEADER" "$pid"
check "7. agent exited cleanly (Result=success, status 0)" \
    test "$(show Result)/$(show ExecMainStatus)" = success/0
check "7. ActiveState=inactive" test "$(show ActiveState)" = inactive
step "7. stop"

# --- 8. package removal stops a running agent, and it stops k0s ----------------------------
IN systemctl start k0s-tsagent
check "8. started again: k0s started again" wait_for 15 k0s_started 2
pid2=$(k0s pid)
IN dpkg -r k0s-tsagent >>"$W/dpkg.log" 2>&1
check "8. dpkg -r succeeds" test $? = 0
check "8. removal stopped the agent" test "$(show ActiveState)" = inactive
check "8. removal: one SIGTERM to k0s (pid $pid2), exit 0" \
    test "$(k0s sigterms "$pid2")/$(k0s exit "$pid2")" = 1/0
step "8. removal"

journal > "$W/journal-all.txt"
cp "$ROOT$K0S_LOG" "$W/fake-k0s.log" 2>/dev/null
echo "e2e systemd: $(elapsed)"
echo "$pass passed, $fail failed"
[ $fail = 0 ] || { echo "--- journal tail ($W/journal-all.txt):"; tail -60 "$W/journal-all.txt"; }
[ $fail = 0 ]
