#!/bin/bash
# SPDX-License-Identifier: MIT
# Every man page renders without a groff warning (groff -ww), as `man -l` shows it.
set -u
src=$1
rc=0
for page in "$src"/doc/*.[0-9]; do
    out=$(LC_ALL=C.UTF-8 groff -ww -man -z "$page" 2>&1)
    if [ -n "$out" ]; then
        echo "FAIL $page:"; echo "$out"; rc=1
    else
        echo "ok   $page"
    fi
done
exit $rc
