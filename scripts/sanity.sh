#!/usr/bin/env bash
# ansible-test sanity on the collection chatbot.rollback as users get it: built with
# `ansible-galaxy collection build`, installed from that artifact into a temporary
# ansible_collections/ tree, tested there (never in the checkout, whose .collections link would loop).
set -euo pipefail

usage() {
  cat <<USAGE
Usage: $0 [--python X.Y] [TEST ...]

Runs \`ansible-test sanity\` on the installed collection artifact. With no TEST, every sanity test that runs
offline on this kind of machine (see OFFLINE_TESTS below); name tests to run only those.

ansible-test installs each test's requirements into its own virtual environment, bootstrapping pip with a
script it downloads from ci-files.testing.ansible.com, which is unreachable here. When that script is not in
ansible-test's cache, this script puts a stand-in there that runs this machine's pip (same version)
inside the new environment; the requirements themselves come from PyPI.
USAGE
}

# Not here: shellcheck and pslint (no shell or PowerShell in the collection's plugins), changelog (the
# collection keeps CHANGELOG.md, not changelogs/ fragments).
OFFLINE_TESTS=(action-plugin-docs ansible-doc compile empty-init ignores import line-endings no-assert
  no-get-exception no-illegal-filenames no-smart-quotes pep8 pylint replace-urlopen runtime-metadata shebang
  symlinks use-argspec-type-path use-compat-six validate-modules yamllint)

python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
tests=()
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "sanity: unknown option: $1" >&2; usage >&2; exit 2 ;;
    *) tests+=("$1"); shift ;;
  esac
done
[ ${#tests[@]} -gt 0 ] || tests=("${OFFLINE_TESTS[@]}")

here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH

cd "$work"  # away from the checkout's ansible.cfg, whose collections_path already holds the collection
ansible-galaxy collection build --output-path "$work" "$here" >/dev/null
ansible-galaxy collection install --force --no-deps -p "$work/collections" "$work"/chatbot-rollback-*.tar.gz \
  >/dev/null 2>"$work/install.err" || { cat "$work/install.err" >&2; exit 1; }

pip_version=$(python3 - <<'PY'
import re
from pathlib import Path
import ansible_test
source = (Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", source).group(1))
PY
)
cache=$HOME/.ansible/test/cache
bootstrap=$cache/get_pip_${pip_version//./_}.py
if [ ! -f "$bootstrap" ]; then
  host_pip=$(python3 -c 'import os, pip; print(os.path.dirname(pip.__file__))')
  mkdir -p "$cache/pip-bootstrap"
  rm -rf "$cache/pip-bootstrap/pip"
  cp -r "$host_pip" "$cache/pip-bootstrap/pip"
  cat > "$bootstrap.tmp" <<'PY'
# Stand-in for get-pip.py (written by the toolkit's scripts/sanity.sh): install pip and the packages named
# on the command line into the running interpreter's environment with a copy of the host's pip.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pip-bootstrap"))
from pip._internal.cli.main import main  # noqa: E402

sys.exit(main(["install", *[arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]]))
PY
  mv "$bootstrap.tmp" "$bootstrap"
fi

cd "$work/collections/ansible_collections/chatbot/rollback"
args=()
for test in "${tests[@]}"; do args+=(--test "$test"); done
ansible-test sanity --python "$python" --color no "${args[@]}"
