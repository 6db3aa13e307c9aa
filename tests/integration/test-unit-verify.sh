#!/bin/bash
# SPDX-License-Identifier: MIT
# systemd-analyze verify on a copy of the unit whose ExecStart points into the build tree.
# --recursive-errors=no makes v252 fail on parse warnings too (facts/testing-here.md §3).
set -euo pipefail
unit=$1
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed"; exit 77; }
out=$(systemd-analyze verify --man=no --recursive-errors=no "$unit" 2>&1) || {
    echo "$out"; echo "FAIL: systemd-analyze verify rejected $unit"; exit 1; }
# Warnings about our own unit are failures even when the exit code is 0.
if grep -F "$(basename "$unit")" <<<"$out"; then
    echo "FAIL: systemd-analyze printed warnings for the unit"; exit 1
fi
echo "PASS: systemd-analyze verify $(basename "$unit")"
