#!/usr/bin/env bash
# Build FerretDB (a MongoDB-wire-compatible server) from the Go module proxy.
#
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@VERSION` compiles, but the binary panics at
# start: the module zip lacks build/version/version.txt, which FerretDB embeds at build time and
# requires for official builds. So: download the module, copy it, write version.txt, build.
set -euo pipefail

usage() {
  cat <<USAGE
Usage: $0 [--version vX.Y.Z] [--output PATH] [--force]

Builds FerretDB from the Go module proxy and installs it at PATH
(default /usr/local/bin/ferretdb). Does nothing when PATH already reports
the requested version, unless --force.
USAGE
}

version="v1.24.2"
output="/usr/local/bin/ferretdb"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-ferretdb: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# The output is captured before it is matched: `grep -q` exits at the first match, and under
# pipefail the SIGPIPE that kills the still-writing binary would read as "not installed".
current=""
[ -x "$output" ] && current=$("$output" --version 2>/dev/null || true)
if [ "$force" = 0 ] && grep -q "version: ${version}\$" <<<"$current"; then
  echo "build-ferretdb: $output is already FerretDB $version"
  exit 0
fi

command -v go >/dev/null || { echo "build-ferretdb: the go command is missing (Go >= 1.21 needed)" >&2; exit 1; }

module="github.com/FerretDB/FerretDB@${version}"
src_dir=$(go mod download -json "$module" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$src_dir/." "$work/"
chmod -R u+w "$work"
echo "$version" > "$work/build/version/version.txt"
echo "go-module-proxy" > "$work/build/version/package.txt"
(cd "$work" && CGO_ENABLED=0 go build -trimpath -o "$work/ferretdb.bin" ./cmd/ferretdb)
install -m 0755 "$work/ferretdb.bin" "$output"
"$output" --version | sed -n 1p
