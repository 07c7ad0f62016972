#!/usr/bin/env bash
# The whole test suite: static checks (ruff, ansible-lint, ansible-test sanity), then pytest (unit, the real local sandbox, molecule in podman).
# Needs what scripts/install-deps.sh installs. Extra arguments go to pytest (e.g. -k sandbox) and run just that;
# without, the fault-injection suite runs beside the rest of pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
echo "== ruff"
ruff check .
echo "== ansible-lint --profile production"
ansible-lint --profile production --offline -q
echo "== ansible-test sanity (the collection as installed from its artifact)"
./scripts/sanity.sh
echo "== pytest"
# With arguments: exactly that pytest run.
[ $# -eq 0 ] || exec python3 -m pytest "$@"
# Without: the fault-injection suite (tests/faults, its own sandbox on ports 32080-32082 and its own temporary
# directories) shares nothing with the rest, so it runs beside it; its output follows the rest's.
faults_log=$(mktemp)
faults_tmp=$(mktemp -d)
trap 'rm -rf "$faults_log" "$faults_tmp"' EXIT
ROLLBACK_TEST_PORT_BASE=32080 python3 -m pytest -m faults -p no:cacheprovider --basetemp="$faults_tmp/t" \
  >"$faults_log" 2>&1 &
faults_pid=$!
rest=0
python3 -m pytest -m "not faults" || rest=$?
faults=0
wait "$faults_pid" || faults=$?
echo "== pytest -m faults (ran beside the rest, ports 32080-32082)"
cat "$faults_log"
[ "$rest" -eq 0 ] || { echo "test.sh: pytest -m 'not faults' failed (exit $rest)" >&2; exit "$rest"; }
[ "$faults" -eq 0 ] || { echo "test.sh: pytest -m faults failed (exit $faults)" >&2; exit "$faults"; }
