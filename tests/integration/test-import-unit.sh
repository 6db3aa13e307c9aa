#!/bin/bash
# SPDX-License-Identifier: MIT
# import-unit end to end: the units `k0s install` writes (tests/data/units/) found under --root
# by the default lookup or named, printed configs pass check-config and carry the flags and
# the environment; what is not carried is a comment and a stderr line; both units present is
# an error. AGENT, SRCDIR from meson.
set -u
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
U="$SRCDIR/tests/data/units"
mkdir -p "$T/root/etc/systemd/system"

# k0s install worker --data-dir=/var/lib/k0s-custom --labels=site=manila -e HTTP_PROXY=...
cp "$U/k0sworker.service" "$T/root/etc/systemd/system/k0sworker.service"
"$AGENT" import-unit --root "$T/root" >"$T/worker.conf" 2>"$T/worker.err"; rc=$?
check '[ $rc -eq 0 ]' "import-unit (default lookup under --root) exits 0: $(cat "$T/worker.err")"
check '"$AGENT" --config "$T/worker.conf" check-config >/dev/null' "worker config passes check-config"
check 'grep -q "^role: worker$" "$T/worker.conf"' "role worker"
check 'grep -q -- "- \"--data-dir=/var/lib/k0s-custom\"" "$T/worker.conf"' "data dir carried"
check 'grep -q -- "- \"--labels=site=manila\"" "$T/worker.conf"' "labels carried"
check 'grep -q "HTTP_PROXY: \"http://proxy:3128\"" "$T/worker.conf"' "proxy variable carried"
check '[ ! -s "$T/worker.err" ]' "nothing on stderr for a clean unit"

# Both units: the operator must name one.
cp "$U/k0scontroller-worker.service" "$T/root/etc/systemd/system/k0scontroller.service"
"$AGENT" import-unit --root "$T/root" >/dev/null 2>"$T/both.err"; rc=$?
check '[ $rc -ne 0 ] && grep -q "both" "$T/both.err"' "both units present is an error"

for v in controller-worker:controller+worker controller-single:single; do
    f=${v%%:*} role=${v#*:}
    "$AGENT" import-unit "$U/k0s$f.service" >"$T/$f.conf" 2>"$T/$f.err"; rc=$?
    check '[ $rc -eq 0 ]' "import-unit $f: $(cat "$T/$f.err")"
    check '"$AGENT" --config "$T/$f.conf" check-config >/dev/null' "$f config passes check-config"
    check "grep -qx \"role: $role\" \"$T/$f.conf\"" "role $role"
done
check 'grep -q -- "--kubelet-extra-args=--max-pods=200 --v=2" "$T/controller-worker.conf"' \
    "kubelet extra args kept (\\x20 decoded)"

# What cannot be carried: a comment in the output, a line on stderr; still a valid config.
sed -e 's|^Environment=.*|Environment="HTTP_PROXY=http://proxy:3128" "K0S_TOKEN=abc"|' \
    "$U/k0sworker.service" >"$T/token.service"
"$AGENT" import-unit "$T/token.service" >"$T/token.conf" 2>"$T/token.err"; rc=$?
check '[ $rc -eq 0 ]' "import-unit with K0S_TOKEN exits 0"
check 'grep -q "^#.*K0S_TOKEN" "$T/token.conf"' "K0S_TOKEN noted as a comment"
check 'grep -q "K0S_TOKEN" "$T/token.err"' "K0S_TOKEN noted on stderr"
check '! grep -q "abc" "$T/token.conf"' "the token itself is not printed"
check '"$AGENT" --config "$T/token.conf" check-config >/dev/null' "still passes check-config"

# Unparseable quoting is refused with the reason.
printf '[Service]\nExecStart=/usr/local/bin/k0s worker "--labels=a\n' >"$T/bad.service"
"$AGENT" import-unit "$T/bad.service" >"$T/bad.out" 2>"$T/bad.err"; rc=$?
check '[ $rc -eq 1 ] && grep -q "unterminated" "$T/bad.err" && [ ! -s "$T/bad.out" ]' \
    "unterminated quote refused, nothing printed"

[ $fail -eq 0 ] && echo "all checks passed"
exit $fail
