#!/usr/bin/env bash
# Build the AWX execution environment (execution-environment.yml) with ansible-builder, without pulling anything:
#   1. the base image localhost/chatbot-ee-base:bookworm: scripts/build-image.sh's localhost/chatbot-rehearsal:bookworm
#      plus python3-pip, bash and libc-bin (getent) from Debian's packages (built once; --force rebuilds it);
#   2. the rollbackctl wheel and the chatbot.rollback collection artifact of this checkout, into .ee-build/;
#   3. ansible-builder build (podman), with --pull=never and the machine's CA bundle mounted so that pip inside the
#      build reaches the package index through this network's TLS interception.
# Then push localhost/chatbot-rollback-ee:latest to your registry and set awx_rollback_ee_image (awx/vars/main.yml).
#   scripts/build-ee.sh [--tag NAME:TAG] [--force]     (needs podman and ansible-builder 3.x: pip install ansible-builder)
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=localhost/chatbot-rollback-ee:latest
BASE=localhost/chatbot-ee-base:bookworm
FROM=localhost/chatbot-rehearsal:bookworm
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
FORCE=0

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG=${2:?--tag needs NAME:TAG}; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-ee: unknown option $1" >&2; exit 2 ;;
  esac
done

say() { printf 'build-ee: %s\n' "$*"; }
need() { command -v "$1" >/dev/null || { echo "build-ee: $1 is not installed ($2)" >&2; exit 1; }; }
need podman "scripts/podman-setup.sh"
need ansible-builder "pip install 'ansible-builder>=3.2,<4'"
need ansible-galaxy "pip install ansible-core"

# 1. the base image
if [ "$FORCE" = 1 ] || ! podman image exists "$BASE"; then
  podman image exists "$FROM" || { echo "build-ee: $FROM is missing: run scripts/build-image.sh first" >&2; exit 1; }
  say "base image $BASE from $FROM (+ python3-pip, bash, libc-bin)"
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  cat > "$context/Containerfile" <<CONTAINERFILE
FROM $FROM
USER root
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip bash libc-bin ca-certificates \
 && rm -rf /var/lib/apt/lists/*
CONTAINERFILE
  podman build --pull=never -t "$BASE" "$context"
fi

# 2. this checkout's package and collection
out="$here/.ee-build"
rm -rf "$out"
mkdir -p "$out"
say "rollbackctl wheel and chatbot.rollback collection into $out"
python3 -m pip wheel --quiet --no-deps --wheel-dir "$out" "$here"
(cd "$here" && ansible-galaxy collection build --force --output-path "$out" >/dev/null)

# 3. the execution environment
ca_mount=()
[ -r "$CA_BUNDLE" ] && ca_mount=(--volume "$CA_BUNDLE:$CA_BUNDLE:ro")
say "ansible-builder build -> $TAG"
cd "$here"
ansible-builder build --file execution-environment.yml --context "$out/context" --container-runtime podman \
  --tag "$TAG" --extra-build-cli-args "--pull=never ${ca_mount[*]}" --verbosity 2
say "built $TAG: podman run --rm $TAG ansible-doc -t callback chatbot.rollback.rollback_record"
