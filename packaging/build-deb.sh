#!/usr/bin/env bash
# build-deb.sh — build the Debian package into OUTDIR (default ./out) and run lintian.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/out}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$src" ls-files -z | (cd "$src" && xargs -0 cp --parents -t "$work") 2>/dev/null ||
	cp -r "$src"/. "$work"/
mkdir -p "$work/s3grantd"
(cd "$work" && find . -mindepth 1 -maxdepth 1 ! -name s3grantd -exec mv {} s3grantd/ \;)
cp -r "$src/packaging/debian" "$work/s3grantd/debian"
(cd "$work/s3grantd" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) ||
	{ tail -60 "$work/build.log"; exit 1; }
cp "$work"/*.deb "$out"/
if command -v lintian >/dev/null; then
	lintian --fail-on error "$out"/s3grantd_*.deb
fi
ls "$out"/*.deb
