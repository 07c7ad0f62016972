#!/usr/bin/env bash
# Configure podman for this kind of machine (Debian 12, root, no Docker engine).
#
# Two settings are needed before `podman run` works here:
#   - runtime = "runc": crun fails on hosts whose cgroups are in hybrid (v1 + v2) mode;
#   - default_ulimits: podman's defaults (nofile 1048576) exceed what the sandbox may raise.
# The script writes /etc/containers/containers.conf with exactly these settings, keeps a
# timestamped backup of an existing, different file, and checks that `podman info` works.
# Running it again changes nothing.
set -euo pipefail

CONF=/etc/containers/containers.conf

usage() {
  cat <<USAGE
Usage: $0 [--check] [-h|--help]

Writes $CONF for rootful podman on this host:

  [containers]
  default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
  [engine]
  runtime = "runc"

An existing file with other content is kept as $CONF.bak-<timestamp>.
An identical file is left alone. Afterwards \`podman info\` must succeed.

Options:
  --check      only report whether the file is in place and podman works; change nothing
  -h, --help   show this help

Needs root and the packages podman and runc:
  apt-get install -y podman runc debootstrap
USAGE
}

log() { echo "podman-setup: $*"; }
die() { echo "podman-setup: ERROR: $*" >&2; exit 1; }

check_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "podman-setup: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (rootful podman is used for the rehearsals)"

missing=()
for cmd in podman runc; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ ${#missing[@]} -gt 0 ]; then
  die "missing command(s): ${missing[*]}; install with: apt-get install -y podman runc debootstrap"
fi

desired=$(cat <<'CONF'
# Written by scripts/podman-setup.sh (chatbot rollback toolkit).
# crun fails on cgroups hybrid mode, so use runc; podman's default ulimits
# are higher than this sandbox lets a container raise them.
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
)

if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$desired" ]; then
  log "$CONF is already up to date"
elif [ "$check_only" = 1 ]; then
  if [ -f "$CONF" ]; then
    log "$CONF exists but differs from the wanted content (run without --check to replace it)"
  else
    log "$CONF is missing (run without --check to write it)"
  fi
  exit 1
else
  mkdir -p "$(dirname "$CONF")"
  if [ -e "$CONF" ]; then
    backup="$CONF.bak-$(date +%Y%m%d%H%M%S)"
    cp -p "$CONF" "$backup"
    log "kept the previous $CONF as $backup"
  fi
  tmp=$(mktemp "$CONF.tmp.XXXXXX")
  printf '%s\n' "$desired" > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$CONF"
  log "wrote $CONF"
fi

if ! out=$(podman info 2>&1); then
  echo "$out" >&2
  die "\`podman info\` failed (output above)"
fi
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null || echo '?')
netbackend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo '?')
log "podman $(podman version --format '{{.Client.Version}}' 2>/dev/null || echo '?') works (runtime: $runtime, network backend: $netbackend)"

# Containers of a scenario find each other by name (the app container connects to chatbot-db1).
# With the CNI backend that needs the dnsname plugin; check it, then check it works.
if [ "$netbackend" = cni ] && ! [ -x /usr/lib/cni/dnsname ]; then
  die "podman uses the CNI network backend but its dnsname plugin is missing, so containers cannot resolve each other by name; install it with: apt-get install -y golang-github-containernetworking-plugin-dnsname"
fi
[ "$check_only" = 1 ] && exit 0
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && [[ "$(file -L "$busybox" 2>/dev/null || true)" == *"statically linked"* ]] \
  || die "a static busybox is needed for the name-resolution check; install it with: apt-get install -y busybox-static"
image=localhost/rollback-netcheck:busybox
if ! podman image exists "$image"; then
  root=$(mktemp -d)
  mkdir -p "$root/bin"
  cp "$busybox" "$root/bin/busybox"
  for applet in sh sleep nslookup; do ln -s busybox "$root/bin/$applet"; done
  tar -C "$root" -c . | podman import --quiet - "$image" >/dev/null
  rm -rf "$root"
fi
suffix=$$
net=rollback-netcheck-$suffix
server=rollback-netcheck-a-$suffix
cleanup_netcheck() {
  podman rm -f -t 0 "$server" >/dev/null 2>&1 || true
  podman network rm -f "$net" >/dev/null 2>&1 || true
}
trap cleanup_netcheck EXIT
podman network create "$net" >/dev/null
podman run -d --name "$server" --network "$net" "$image" sleep 60 >/dev/null
resolved=""
for _ in 1 2 3 4 5; do
  if resolved=$(podman run --rm --network "$net" "$image" nslookup "$server" 2>&1); then
    break
  fi
  resolved="FAILED: $resolved"
  sleep 1
done
case "$resolved" in
  FAILED:*|"")
    echo "$resolved" >&2
    die "two containers on the podman network $net cannot resolve each other by name (output above); with the CNI backend install golang-github-containernetworking-plugin-dnsname" ;;
esac
log "containers on a project network resolve each other by name"
