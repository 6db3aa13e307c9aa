#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the .deb (dpkg-buildpackage, debhelper + meson) and the .rpm (rpmbuild) from the
# working tree, then lint them: lintian and rpmlint must report no error. Both builds run the
# unit suite (dh_auto_test, %check).
# Usage: packaging/build-packages.sh OUTDIR   (as root or not; needs dpkg-dev, debhelper,
# lintian, rpm, rpmlint and the Build-Depends)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: $0 OUTDIR}
VERSION=$(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" "$SRC/meson.build" | head -1)
rm -rf "$OUT"; mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
fail=0
t0=$SECONDS

# The three places that carry the version must agree, or `k0s-tsagent --version` and the
# package version drift apart.
debver=$(sed -n '1s/^k0s-tsagent (\([^)]*\)).*/\1/p' "$SRC/packaging/debian/changelog")
rpmver=$(sed -n 's/^Version: *//p' "$SRC/packaging/rpm/k0s-tsagent.spec")
if [ "$debver" != "$VERSION" ] || [ "$rpmver" != "$VERSION" ]; then
    echo "FAIL: versions differ: meson.build $VERSION, debian/changelog $debver, spec $rpmver"
    exit 1
fi

stage() { # copy the source tree (tracked and new files, no build dirs or caches) to $1
    mkdir -p "$1"
    if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$SRC" && git ls-files -co --exclude-standard -z | grep -zv '^build' |
            xargs -0 tar -c --) | tar -x -C "$1"
    else
        tar -C "$SRC" --exclude='./build*' --exclude='./obj-*' --exclude=./debian -c . |
            tar -x -C "$1"
    fi
}


echo "== .deb"
D=$OUT/deb/k0s-tsagent-$VERSION
stage "$D"
cp -r "$D/packaging/debian" "$D/debian"
# PACKAGES_NOCHECK=1 (tests/run, which runs the unit suite itself) skips the packages' own run.
if [ -n "${PACKAGES_NOCHECK:-}" ]; then export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }nocheck"; fi
if (cd "$D" && dpkg-buildpackage -us -uc -b) >"$OUT/deb-build.log" 2>&1; then
    deb=$(ls "$OUT"/deb/k0s-tsagent_"$VERSION"_*.deb)
    cp "$deb" "$OUT/"
    echo "built $(basename "$deb") ($((SECONDS - t0))s)"
    dpkg-deb -I "$deb" | sed -n 's/^ \(Depends\|Recommends\):/  \1:/p'
    dpkg-deb -c "$deb" | awk '{print "  " $6}' | grep -v '/$'
    echo "  conffiles: $(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)"
    t=$SECONDS
    if lintian --fail-on error --display-info "$deb" "$OUT"/deb/*.changes >"$OUT/lintian.log" 2>&1; then
        echo "lintian: no error ($((SECONDS - t))s)"
    else
        echo "FAIL: lintian reports errors"; fail=1
    fi
    grep -v '^running with root privileges' "$OUT/lintian.log" | sed 's/^/  /' || true
else
    tail -40 "$OUT/deb-build.log"; echo "FAIL: dpkg-buildpackage"; fail=1
fi

echo "== .rpm"
t=$SECONDS
R=$OUT/rpmbuild
mkdir -p "$R/SOURCES"
stage "$OUT/rpm-src/k0s-tsagent-$VERSION"
tar -C "$OUT/rpm-src" -czf "$R/SOURCES/k0s-tsagent-$VERSION.tar.gz" "k0s-tsagent-$VERSION"
# --nodeps: BuildRequires are checked against rpm's own (empty) database on Debian.
if rpmbuild --nodeps ${PACKAGES_NOCHECK:+--nocheck} --define "_topdir $R" -bb "$SRC/packaging/rpm/k0s-tsagent.spec" \
        >"$OUT/rpm-build.log" 2>&1; then
    rpm=$(find "$R/RPMS" -name "k0s-tsagent-$VERSION-*.rpm" ! -name '*debug*' | head -1)
    cp "$rpm" "$OUT/"
    echo "built $(basename "$rpm") ($((SECONDS - t))s)"
    rpm -qlp "$rpm" | sed 's/^/  /'
    rpm -qp --scripts "$rpm" | sed 's/^/  /'
    # rpmlint exits non-zero on errors and on an rpmlintrc filter that matched nothing.
    if rpmlint -r "$SRC/packaging/rpm/k0s-tsagent.rpmlintrc" "$rpm" >"$OUT/rpmlint.log" 2>&1; then
        echo "rpmlint: no error"
    else
        echo "FAIL: rpmlint reports errors"; fail=1
    fi
    grep -E ': [EW]: |checked;' "$OUT/rpmlint.log" | sed 's/^/  /' || true
else
    tail -40 "$OUT/rpm-build.log"; echo "FAIL: rpmbuild"; fail=1
fi
echo "packages: $((SECONDS - t0))s"
exit $fail
