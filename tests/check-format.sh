#!/bin/bash
# SPDX-License-Identifier: MIT
# Formatting check: clang-format (the checked-in .clang-format) on every C file, plus the
# .editorconfig rules it does not cover: SPDX line, no tabs in C, no trailing blanks, <= 100
# columns, final newline.
set -uo pipefail
src=${1:-$(dirname "$0")/..}
cd "$src"
fail=0
mapfile -t cfiles < <(git ls-files '*.c' '*.h' 2>/dev/null || find agent common tests -name '*.[ch]')
mapfile -t allfiles < <(git ls-files '*.c' '*.h' '*.sh' '*.py' 'meson.build' '*/meson.build' 'tests/run' '.ci/run' 2>/dev/null)
for f in "${allfiles[@]}"; do
    [ -f "$f" ] || continue
    head -3 "$f" | grep -q 'SPDX-License-Identifier' || { echo "$f: no SPDX-License-Identifier in the first lines"; fail=1; }
    if grep -n $'[ \t]$' "$f" | head -3 | grep -q .; then echo "$f: trailing whitespace:"; grep -n $'[ \t]$' "$f" | head -3; fail=1; fi
    [ -z "$(tail -c1 "$f")" ] || { echo "$f: no newline at end of file"; fail=1; }
done
for f in "${cfiles[@]}"; do
    [ -f "$f" ] || continue
    if grep -n $'\t' "$f" | head -1 | grep -q .; then echo "$f: tab characters (indent with 8 spaces)"; fail=1; fi
    awk -v f="$f" 'length($0) > 100 { print f ":" NR ": line longer than 100 columns"; bad=1 } END { exit bad }' "$f" || fail=1
done
if command -v clang-format >/dev/null; then
    if ! clang-format --dry-run -Werror "${cfiles[@]}" 2>/tmp/clang-format.$$; then
        n=$(grep -c 'error:' /tmp/clang-format.$$ || true)
        echo "clang-format: $n places differ from .clang-format; first ones:"
        head -20 /tmp/clang-format.$$
        fail=1
    fi
    rm -f /tmp/clang-format.$$
else
    echo "SKIP: clang-format not installed"; exit 77
fi
[ $fail = 0 ] && echo "PASS: formatting of ${#cfiles[@]} C files"
exit $fail
