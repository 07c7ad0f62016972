#!/usr/bin/env bash
# Build FerretDB (a MongoDB-wire-compatible server) from the Go module proxy.
#
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@VERSION` compiles, but the binary panics at
# start: the module zip lacks build/version/version.txt, which FerretDB embeds at build time and
# requires for official builds. So: download the module, copy it, write version.txt, build.
#
# One patch (v1.x, SQLite backend): a filter on _id alone is pushed down as
# `WHERE _ferretdb_sjson->'$._id' = ?`, but the _id index is built on `_ferretdb_sjson->"_id"`;
# SQLite matches index expressions by their text, so every find, update and delete by _id read the
# whole table (EXPLAIN QUERY PLAN: SCAN). The patch spells the pushed-down expression like the index
# (same value: `->` takes a bare label as `$.label`), and the lookup becomes an index SEARCH.
# The build says so in its package line (`package: go-module-proxy+sqlite-id-index`), which is what
# tells a patched binary from an unpatched one of the same version.
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
package="go-module-proxy+sqlite-id-index"
current=""
[ -x "$output" ] && current=$("$output" --version 2>/dev/null || true)
if [ "$force" = 0 ] && grep -q "version: ${version}\$" <<<"$current" && grep -q "package: ${package}\$" <<<"$current"; then
  echo "build-ferretdb: $output is already FerretDB $version ($package)"
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
echo "$package" > "$work/build/version/package.txt"
# The _id pushdown patch (see the top): refuse to build when the line is not there to patch.
id_column="$work/internal/backends/sqlite/metadata/metadata.go"
old_expr="IDColumn = DefaultColumn + \"->'\$._id'\""
new_expr='IDColumn = DefaultColumn + `->"_id"`'
grep -qF "$old_expr" "$id_column" || { echo "build-ferretdb: $id_column has no \`$old_expr\` to patch ($version)" >&2; exit 1; }
python3 - "$id_column" "$old_expr" "$new_expr" <<'PY'
import sys
path, old, new = sys.argv[1:]
text = open(path, encoding="utf-8").read()
open(path, "w", encoding="utf-8").write(text.replace(old, new, 1))
PY
grep -qF "$new_expr" "$id_column" || { echo "build-ferretdb: patching $id_column failed" >&2; exit 1; }
(cd "$work" && CGO_ENABLED=0 go build -trimpath -o "$work/ferretdb.bin" ./cmd/ferretdb)
install -m 0755 "$work/ferretdb.bin" "$output"
"$output" --version | sed -n 1p
