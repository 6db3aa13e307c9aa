#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the .deb (dpkg-buildpackage, debhelper + meson) and the .rpm (rpmbuild) from the
# working tree, then lint them: lintian and rpmlint must report no error.
# Usage: packaging/build-packages.sh OUTDIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: $0 OUTDIR}
VERSION=$(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" "$SRC/meson.build" | head -1)
rm -rf "$OUT"; mkdir -p "$OUT"
fail=0

stage() { # copy the tracked and new files of the tree (no build dirs) to $1
    mkdir -p "$1"
    (cd "$SRC" && git ls-files -co --exclude-standard -z | grep -zv '^build' | xargs -0 tar -c --) | tar -x -C "$1"
}

echo "== .deb"
D=$OUT/deb/k0s-tsagent-$VERSION
stage "$D"
cp -r "$D/packaging/debian" "$D/debian"
if (cd "$D" && dpkg-buildpackage -us -uc -b) >"$OUT/deb-build.log" 2>&1; then
    deb=$(ls "$OUT"/deb/k0s-tsagent_*.deb)
    cp "$deb" "$OUT/"
    echo "built $(basename "$deb")"
    dpkg-deb -c "$deb"
    lintian --fail-on error --display-info "$deb" "$OUT"/deb/*.changes | tee "$OUT/lintian.log" || { echo "FAIL: lintian reports errors"; fail=1; }
else
    tail -40 "$OUT/deb-build.log"; echo "FAIL: dpkg-buildpackage"; fail=1
fi

echo "== .rpm"
R=$OUT/rpmbuild
mkdir -p "$R/SOURCES"
stage "$OUT/rpm-src/k0s-tsagent-$VERSION"
tar -C "$OUT/rpm-src" -czf "$R/SOURCES/k0s-tsagent-$VERSION.tar.gz" "k0s-tsagent-$VERSION"
# --nodeps: BuildRequires are checked against rpm's own (empty) database on Debian.
if rpmbuild --nodeps --define "_topdir $R" -bb "$SRC/packaging/rpm/k0s-tsagent.spec" >"$OUT/rpm-build.log" 2>&1; then
    rpm=$(find "$R/RPMS" -name 'k0s-tsagent-*.rpm' ! -name '*debug*' | head -1)
    cp "$rpm" "$OUT/"
    echo "built $(basename "$rpm")"
    rpm -qlp "$rpm"
    rpmlint -r "$SRC/packaging/rpm/k0s-tsagent.rpmlintrc" "$rpm" | tee "$OUT/rpmlint.log"
    errors=$(sed -n 's/.* \([0-9]*\) errors.*/\1/p' "$OUT/rpmlint.log" | tail -1)
    [ "${errors:-1}" = 0 ] || { echo "FAIL: rpmlint reports ${errors:-?} errors"; fail=1; }
else
    tail -40 "$OUT/rpm-build.log"; echo "FAIL: rpmbuild"; fail=1
fi
exit $fail
