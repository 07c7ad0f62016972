#!/usr/bin/env bash
# The whole test suite: static checks (ruff, ansible-lint, ansible-test sanity), then pytest (unit, the real local sandbox, molecule in podman).
# Needs what scripts/install-deps.sh installs. Extra arguments go to pytest (e.g. -k sandbox).
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
exec python3 -m pytest "$@"
