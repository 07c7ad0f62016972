#!/usr/bin/env bash
# Install everything the toolkit, its sandbox and its tests need on a Debian 12 machine (as root).
# Idempotent: a second run only checks. Used by the README's commands and by .ci/run.
set -euo pipefail

usage() {
  cat <<USAGE
Usage: $0 [--no-image]

Installs: Debian packages (nginx, git, podman, runc, debootstrap, prometheus, chromium, shellcheck), pm2 from npm,
FerretDB built from the Go module proxy, this Python package with its test extra, and the podman settings.
Builds the molecule rehearsal image unless --no-image (it is cached between runs).
USAGE
}

build_image=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-image) build_image=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-deps: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "install-deps: run as root (it installs packages)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
PM2_VERSION=6.0.8

step "Debian packages"
need=()
# golang-github-containernetworking-plugin-dnsname: container names resolve on podman networks (CNI
# backend of podman 4.3); busybox-static: the tiny image podman-setup.sh checks that with;
# shellcheck: lints the on-host roles/app_release/files/emergency-rollback.sh (2.6 MB); chromium: the
# headless browser the report's chart test takes its screenshot with.
for pkg in nginx-light git podman runc debootstrap uidmap rsync file prometheus chromium \
    golang-github-containernetworking-plugin-dnsname busybox-static shellcheck; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = "install ok installed" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian packages start the system nginx (port 80) and prometheus (9090) unless policy-rc.d
  # forbids it; the toolkit and its tests run their own instances.
  if command -v service >/dev/null; then
    for daemon in nginx prometheus; do service "$daemon" stop >/dev/null 2>&1 || true; done
  fi
fi
for cmd in node npm go python3; do
  command -v "$cmd" >/dev/null || { echo "install-deps: $cmd is missing (Node.js >= 18, Go >= 1.21, Python >= 3.11 expected)" >&2; exit 1; }
done

step "pm2 $PM2_VERSION"
# Read the installed version from its package.json: `pm2 --version` would start a pm2 daemon.
installed_pm2=$(node -p "require('$(npm root -g)/pm2/package.json').version" 2>/dev/null || true)
if [ "$installed_pm2" != "$PM2_VERSION" ]; then
  npm install -g --no-audit --no-fund --loglevel=error "pm2@$PM2_VERSION" >/dev/null
fi
command -v pm2 >/dev/null || { echo "install-deps: pm2 is not on PATH after npm install -g" >&2; exit 1; }
echo "pm2 $PM2_VERSION"

step "FerretDB"
"$here/scripts/build-ferretdb.sh" --output /usr/local/bin/ferretdb

step "Python package and test tools"
python3 -m pip install --quiet --disable-pip-version-check -e "$here[test]"

step "podman"
"$here/scripts/podman-setup.sh"

if [ "$build_image" = 1 ]; then
  step "Rehearsal image"
  "$here/scripts/build-image.sh"
fi
step "done"
