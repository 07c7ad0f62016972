#!/usr/bin/env bash
# build-package.sh REPO VERSION OUTDIR NAME
# Exports tag VERSION of REPO, installs production dependencies, builds, and writes
# OUTDIR/NAME-VERSION.tar.gz with NAME-VERSION.json beside it. The manifest is written last,
# atomically: its presence means the package is complete.
set -euo pipefail
repo=$1 version=$2 outdir=$3 name=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git clone --quiet --depth 1 --branch "$version" "$repo" "$work/src" 2>/dev/null \
  || git clone --quiet --branch "$version" "$repo" "$work/src"
git_sha=$(git -C "$work/src" rev-parse HEAD)
rm -rf "$work/src/.git"
cd "$work/src"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
GIT_SHA=$git_sha npm run build --silent >/dev/null
npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null
schema=$(node -p 'require("./package.json").chatbot.schemaVersion')
built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '{"version":"%s","git_sha":"%s","schema_version":%s,"built_at":"%s"}\n' \
  "$version" "$git_sha" "$schema" "$built_at" > release.json

tarball="$name-$version.tar.gz"
tar -C "$work/src" --owner=0 --group=0 -czf "$work/$tarball" .
sha=$(sha256sum "$work/$tarball" | cut -d' ' -f1)
size=$(stat -c %s "$work/$tarball")
install -m 0640 "$work/$tarball" "$outdir/$tarball"
printf '{"name":"%s","version":"%s","git_sha":"%s","schema_version":%s,"file":"%s","sha256":"%s","size":%s,"built_at":"%s"}\n' \
  "$name" "$version" "$git_sha" "$schema" "$tarball" "$sha" "$size" "$built_at" > "$work/manifest.json"
install -m 0640 "$work/manifest.json" "$outdir/$name-$version.json"
echo "built $outdir/$tarball sha256=$sha"
