#!/bin/bash
# SPDX-License-Identifier: MIT
# The metrics textfile read by Debian's real node_exporter: node_exporter on a free loopback port
# with only the textfile collector on a test directory; the agent in a network namespace
# (tests/e2e/metrics_driver.py, on tests/fakes/netns.py) writes there; scrapes with curl.
# Needs: prometheus-node-exporter, promtool (package prometheus), curl, root for the netns.
# Environment: AGENT, FAKE_K0S, FAKE_TAILSCALED, PYTHONPATH (as the netns tests).
set -eu
for p in prometheus-node-exporter promtool curl; do
    command -v "$p" >/dev/null || { echo "SKIP: $p not installed"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: not root (network namespace)"; exit 77; }

T=$(mktemp -d)
NE_PID=
cleanup() {
    if [ -n "$NE_PID" ]; then kill "$NE_PID" 2>/dev/null; wait "$NE_PID" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/textfile"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prometheus-node-exporter --web.listen-address="127.0.0.1:$PORT" \
    --collector.disable-defaults --collector.textfile \
    --collector.textfile.directory="$T/textfile" >"$T/node-exporter.log" 2>&1 &
NE_PID=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$PORT/metrics" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/metrics" >/dev/null || {
    echo "FAIL: node_exporter did not answer"; cat "$T/node-exporter.log"; exit 1; }

rc=0
python3 "$(dirname "$0")/metrics_driver.py" "$T/textfile" "http://127.0.0.1:$PORT/metrics" || rc=$?
[ $rc -ne 0 ] && tail -20 "$T/node-exporter.log"
exit $rc
