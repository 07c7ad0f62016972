#!/usr/bin/env bash
# Build the container image used for the molecule rehearsals, without pulling anything.
#
# No container registry is reachable from the rehearsal machines, so the image is assembled
# from Debian packages and imported into podman:
#   1. debootstrap a minimal Debian 12 (bookworm) root file system;
#   2. apt-get install nodejs, npm, nginx and git inside it (chroot);
#   3. npm install -g pm2 into its /usr/local, using the host's npm;
#   4. copy the host's FerretDB binary into its /usr/local/bin;
#   5. `podman import` the tree as localhost/chatbot-rehearsal:bookworm.
#
# The image is labelled with a recipe hash (this script + pm2 version + FerretDB binary); a run
# whose hash matches the existing image does nothing. Steps 1 and 2 are cached as tarballs in the
# work directory, keyed on the code of those steps, so a rebuild after an unrelated change to
# this script restores them in seconds. Run scripts/podman-setup.sh once beforehand.
set -Eeuo pipefail

PROG=build-image
SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")

# ---- recipe ------------------------------------------------------------------------------
SUITE=bookworm
DEBOOTSTRAP_INCLUDE=python3,ca-certificates,curl,procps,iproute2
APT_PACKAGES="nodejs npm nginx git"
PM2_VERSION=6.0.8
# pymongo for the toolkit's MongoDB modules on the hosts (Debian's python3 is 3.11, as the host's pip).
PYMONGO_VERSION=4.20.1
LABEL_NS=org.chatbot-rollback.rehearsal
FALLBACK_MIRROR=http://deb.debian.org/debian
FALLBACK_SECURITY_MIRROR=http://deb.debian.org/debian-security
IMAGE_PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---- options -----------------------------------------------------------------------------
TAG=localhost/chatbot-rehearsal:bookworm
WORKDIR=/var/tmp/chatbot-image-build
FORCE=0
NO_CACHE=0
KEEP_ROOTFS=0
VERBOSE=0
FERRETDB_OPT=""

usage() {
  cat <<USAGE
Usage: $0 [options]

Builds the podman image for molecule rehearsals from Debian packages (no registry needed):
Debian 12 minbase + python3, curl, procps, iproute2, nodejs, npm, nginx, git,
pm2 $PM2_VERSION (npm, in /usr/local) and the host's FerretDB binary (/usr/local/bin/ferretdb).
The image runs \`sleep infinity\` by default.

Does nothing when the image already exists with the current recipe hash
(label $LABEL_NS.recipe = sha256 of this script, the pm2 version and the
FerretDB binary's sha256).

Options:
  --tag NAME:TAG     image name (default: $TAG)
  --force            rebuild even if the image is up to date (stage caches are still used)
  --no-cache         also ignore and refresh the cached debootstrap/apt stages (implies --force)
  --workdir DIR      work and cache directory (default: $WORKDIR)
  --ferretdb PATH    FerretDB binary to copy (default: the first working one of
                     \`command -v ferretdb\`, /usr/local/bin/ferretdb, /root/go/bin/ferretdb)
  --keep-rootfs      keep DIR/rootfs after the build (for debugging)
  --verbose          stream the output of debootstrap/apt/npm instead of only logging it
  -h, --help         show this help

Logs of each step go to DIR/logs/. Needs root, podman, debootstrap and npm:
  apt-get install -y podman runc debootstrap npm && scripts/podman-setup.sh
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) [ $# -ge 2 ] || { echo "$PROG: --tag needs a value" >&2; exit 2; }; TAG="$2"; shift 2 ;;
    --tag=*) TAG="${1#*=}"; shift ;;
    --workdir) [ $# -ge 2 ] || { echo "$PROG: --workdir needs a value" >&2; exit 2; }; WORKDIR="$2"; shift 2 ;;
    --workdir=*) WORKDIR="${1#*=}"; shift ;;
    --ferretdb) [ $# -ge 2 ] || { echo "$PROG: --ferretdb needs a value" >&2; exit 2; }; FERRETDB_OPT="$2"; shift 2 ;;
    --ferretdb=*) FERRETDB_OPT="${1#*=}"; shift ;;
    --force) FORCE=1; shift ;;
    --no-cache) NO_CACHE=1; FORCE=1; shift ;;
    --keep-rootfs) KEEP_ROOTFS=1; shift ;;
    --verbose) VERBOSE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$PROG: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

case "$TAG" in
  *:*) ;;
  *) echo "$PROG: --tag must look like NAME:TAG (got '$TAG')" >&2; exit 2 ;;
esac
case "$WORKDIR" in
  /*) ;;
  *) WORKDIR="$(pwd)/$WORKDIR" ;;
esac
WORKDIR="${WORKDIR%/}"
[ -n "$WORKDIR" ] && [ "$WORKDIR" != "/" ] || { echo "$PROG: refusing to use / as work directory" >&2; exit 2; }

ROOTFS="$WORKDIR/rootfs"
CACHE_DIR="$WORKDIR/cache"
LOG_DIR="$WORKDIR/logs"

# ---- output, timing, failure handling ----------------------------------------------------
log() { echo "$PROG: $*"; }
warn() { echo "$PROG: WARNING: $*" >&2; }
die() { echo "$PROG: ERROR: $*" >&2; exit 1; }

now_ms() { date +%s%3N; }
fmt_ms() { printf '%d.%01ds' "$(($1 / 1000))" "$((($1 % 1000) / 100))"; }

CURRENT_STEP="preflight"
CURRENT_LOG=""
LOGGED_CMD=""
FAILED_CMD=""
STEP_SUMMARY=()
T_START=$(now_ms)

run_step() {  # run_step "description" function [args...]
  local name="$1"; shift
  CURRENT_STEP="$name"
  CURRENT_LOG=""
  local t0; t0=$(now_ms)
  log "==> $name"
  "$@"
  local dt=$(($(now_ms) - t0))
  log "    done: $name ($(fmt_ms "$dt"))"
  STEP_SUMMARY+=("$(printf '%8s  %s' "$(fmt_ms "$dt")" "$name")")
}

run_logged() {  # run_logged LOGNAME command... : output to DIR/logs/LOGNAME.log (and screen if --verbose)
  CURRENT_LOG="$LOG_DIR/$1.log"; shift
  LOGGED_CMD="$*"
  echo "+ $*" >>"$CURRENT_LOG"
  if [ "$VERBOSE" = 1 ]; then
    "$@" 2>&1 | tee -a "$CURRENT_LOG"
  else
    "$@" >>"$CURRENT_LOG" 2>&1
  fi
}

# Unmount anything still mounted below the rootfs (deepest first). Returns non-zero if some
# mount could not be removed, in which case the rootfs must not be deleted.
unmount_below() {
  local dir="$1" m
  [ -d "$dir" ] || return 0
  local mounts
  mounts=$(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  for m in $mounts; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  ! awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

remove_rootfs() {
  [ -e "$ROOTFS" ] || return 0
  if ! unmount_below "$ROOTFS"; then
    echo "$PROG: ERROR: file systems are still mounted below $ROOTFS; not deleting it." >&2
    echo "$PROG:        unmount them (see: findmnt -R $ROOTFS), then rm -rf $ROOTFS" >&2
    return 1
  fi
  rm -rf --one-file-system "$ROOTFS"
}

on_err() {
  if [ "${FUNCNAME[1]:-}" = run_logged ]; then
    FAILED_CMD="$LOGGED_CMD"
  else
    FAILED_CMD="$BASH_COMMAND (line ${BASH_LINENO[0]})"
  fi
}

on_exit() {
  local rc=$?
  trap - EXIT ERR INT TERM
  set +e
  exec 1>&7 2>&8  # an interrupt may arrive while output is redirected into a step log
  rm -f "$CACHE_DIR"/*.tar.partial 2>/dev/null
  if [ "$rc" -ne 0 ] && [ "${LOCKED:-0}" = 1 ]; then
    echo "" >&2
    echo "$PROG: FAILED in step '$CURRENT_STEP' (exit code $rc)" >&2
    [ -n "$FAILED_CMD" ] && echo "$PROG:   failing command: $FAILED_CMD" >&2
    if [ -n "$CURRENT_LOG" ] && [ -s "$CURRENT_LOG" ]; then
      echo "$PROG:   last lines of $CURRENT_LOG:" >&2
      tail -n 25 "$CURRENT_LOG" | sed 's/^/    | /' >&2
    fi
  fi
  if [ "${LOCKED:-0}" = 1 ]; then
    if [ "$KEEP_ROOTFS" = 1 ] && [ -d "$ROOTFS" ]; then
      unmount_below "$ROOTFS" || true
      log "kept $ROOTFS (--keep-rootfs)"
    else
      remove_rootfs || rc=1
    fi
  fi
  exit "$rc"
}
exec 7>&1 8>&2  # the original stdout/stderr, for on_exit
trap on_err ERR
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- preflight ---------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot and rootful podman need it)"

missing_pkgs=()
command -v podman >/dev/null 2>&1 || missing_pkgs+=(podman runc)
command -v debootstrap >/dev/null 2>&1 || missing_pkgs+=(debootstrap)
command -v npm >/dev/null 2>&1 || missing_pkgs+=(npm)
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  die "missing tools; install with: apt-get install -y ${missing_pkgs[*]}  (then run scripts/podman-setup.sh)"
fi
for cmd in tar sha256sum chroot flock file mount umount; do
  command -v "$cmd" >/dev/null 2>&1 || die "the '$cmd' command is missing"
done
if ! podman info >/dev/null 2>&1; then
  die "\`podman info\` fails; run scripts/podman-setup.sh first"
fi

mkdir -p "$WORKDIR" "$CACHE_DIR" "$LOG_DIR"
exec 9>"$WORKDIR/.lock"
flock -n 9 || die "another build is using $WORKDIR (lock $WORKDIR/.lock)"
LOCKED=1

# ---- FerretDB binary -----------------------------------------------------------------------
# Captured, then matched: `cmd | grep -q` under pipefail fails when grep's early exit SIGPIPEs cmd
# (a Go binary that writes its version in several writes dies of it, intermittently).
ferretdb_works() {
  local out
  out=$("$1" --version 2>/dev/null) || return 1
  grep -q '^version: v' <<<"$out"
}

find_ferretdb() {
  if [ -n "$FERRETDB_OPT" ]; then
    [ -f "$FERRETDB_OPT" ] && [ -x "$FERRETDB_OPT" ] || die "--ferretdb $FERRETDB_OPT is not an executable file"
    ferretdb_works "$FERRETDB_OPT" || die "--ferretdb $FERRETDB_OPT does not run (\`$FERRETDB_OPT --version\` fails)"
    readlink -f "$FERRETDB_OPT"
    return
  fi
  local c seen=" " tried=()
  for c in "$(command -v ferretdb 2>/dev/null || true)" /usr/local/bin/ferretdb /root/go/bin/ferretdb; do
    [ -n "$c" ] && [ -f "$c" ] && [ -x "$c" ] || continue
    c=$(readlink -f "$c")
    case "$seen" in *" $c "*) continue ;; esac
    seen="$seen$c "
    if ferretdb_works "$c"; then
      echo "$c"
      return
    fi
    tried+=("$c")
    warn "skipping $c: \`$c --version\` fails (a \`go install\` build without build/version/version.txt panics at start)"
  done
  if [ ${#tried[@]} -gt 0 ]; then
    die "no working FerretDB binary (tried: ${tried[*]}); build one with scripts/build-ferretdb.sh or pass --ferretdb PATH"
  fi
  die "no FerretDB binary found (PATH, /usr/local/bin, /root/go/bin); build one with scripts/build-ferretdb.sh or pass --ferretdb PATH"
}

FERRETDB_BIN=$(find_ferretdb)
FERRETDB_SHA=$(sha256sum "$FERRETDB_BIN" | cut -d' ' -f1)
FERRETDB_VERSION=$("$FERRETDB_BIN" --version | sed -n 's/^version: //p' | sed -n 1p)

RECIPE_HASH=$(
  {
    echo "script $(sha256sum "$SCRIPT_PATH" | cut -d' ' -f1)"
    echo "pm2 $PM2_VERSION"
    echo "ferretdb $FERRETDB_SHA"
  } | sha256sum | cut -d' ' -f1
)

log "image:    $TAG"
log "recipe:   $RECIPE_HASH (script $(basename "$SCRIPT_PATH"), pm2 $PM2_VERSION, ferretdb $FERRETDB_VERSION sha256 ${FERRETDB_SHA:0:12}…)"
log "ferretdb: $FERRETDB_BIN"
log "workdir:  $WORKDIR"

image_label() {  # image_label KEY -> value or empty
  podman image inspect --format "{{ index .Labels \"$LABEL_NS.$1\" }}" "$TAG" 2>/dev/null | sed 's/^<no value>$//' || true
}

if podman image exists "$TAG"; then
  existing=$(image_label recipe)
  if [ "$FORCE" = 0 ] && [ "$existing" = "$RECIPE_HASH" ]; then
    log "$TAG is up to date (recipe $RECIPE_HASH); nothing to do ($(fmt_ms $(($(now_ms) - T_START)))). Use --force to rebuild."
    exit 0
  fi
  if [ "$FORCE" = 1 ]; then
    log "$TAG exists; rebuilding because of --force${existing:+ (its recipe: $existing)}"
  else
    log "$TAG exists with recipe '${existing:-none}'; rebuilding"
  fi
else
  log "$TAG does not exist yet; building"
fi

# ---- helpers for the build -----------------------------------------------------------------
# Print "URI SUITE" for every deb source configured on the host (deb822 *.sources and one-line
# *.list files; other file names, e.g. *.disabled, are ignored).
host_apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() {
        if (uri != "" && types ~ /(^| )deb( |$)/ && enabled !~ /^no$/) {
          n = split(suites, s, " "); for (i = 1; i <= n; i++) print uri, s[i]
        }
        uri = ""; suites = ""; types = ""; enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "uris:"    { uri = $2; next }
      tolower($1) == "suites:"  { $1 = ""; suites = $0; next }
      tolower($1) == "types:"   { $1 = ""; types = $0; next }
      tolower($1) == "enabled:" { enabled = tolower($2); next }
      END { flush() }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '
      $1 != "deb" { next }
      {
        i = 2
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if (i + 1 <= NF) print $i, $(i + 1)
      }
    ' "$f"
  done
}

pick_mirror() {  # pick_mirror SUITE FALLBACK
  local uri
  uri=$(host_apt_sources | awk -v s="$1" '$2 == s { print $1; exit }')
  echo "${uri:-$2}" | sed 's:/*$::'
}

stage_key() {  # stable key for a cached stage: the code of the given functions + extra words
  local fn
  {
    for fn in "$@"; do
      if declare -F "$fn" >/dev/null; then declare -f "$fn"; else echo "$fn"; fi
    done
  } | sha256sum | cut -c1-16
}

TAR_OPTS=(--numeric-owner --xattrs --xattrs-include='*')

save_stage() {  # save_stage NAME KEY : tar the rootfs into the cache, drop older versions
  local file="$CACHE_DIR/$1-$2.tar"
  run_logged "$1" tar "${TAR_OPTS[@]}" -C "$ROOTFS" -cf "$file.partial" .
  mv -f "$file.partial" "$file"
  local old
  for old in "$CACHE_DIR/$1"-*.tar; do
    [ "$old" = "$file" ] || rm -f "$old"
  done
  log "    cached as $file ($(du -h "$file" | cut -f1))"
}

restore_stage() {  # restore_stage NAME KEY : unpack a cached stage into an empty rootfs
  local file="$CACHE_DIR/$1-$2.tar"
  remove_rootfs
  mkdir -p "$ROOTFS"
  run_logged "$1" tar "${TAR_OPTS[@]}" -C "$ROOTFS" -xpf "$file"
}

have_stage() { [ "$NO_CACHE" = 0 ] && [ -s "$CACHE_DIR/$1-$2.tar" ]; }

in_chroot() {  # run a command in the rootfs with a clean environment and /proc mounted
  local rc=0
  mkdir -p "$ROOTFS/proc"
  mount -t proc proc "$ROOTFS/proc"
  chroot "$ROOTFS" /usr/bin/env -i \
    PATH="$IMAGE_PATH_ENV" HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    "$@" || rc=$?
  umount "$ROOTFS/proc" || umount -l "$ROOTFS/proc"
  return "$rc"
}

# ---- build steps ---------------------------------------------------------------------------
step_debootstrap() {
  local mirror="$1"
  remove_rootfs
  mkdir -p "$ROOTFS"
  run_logged debootstrap debootstrap --variant=minbase --include="$DEBOOTSTRAP_INCLUDE" \
    --arch="$(dpkg --print-architecture)" "$SUITE" "$ROOTFS" "$mirror"
  # debootstrap copies the host's resolv.conf and hostname; they do not belong in the image
  rm -f "$ROOTFS/etc/resolv.conf" "$ROOTFS/etc/hostname"
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
}

step_apt() {
  local mirror="$1" security="$2"
  cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
SOURCES
  # keep services from starting inside the chroot while packages are installed
  printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
  chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
  # name resolution for apt inside the chroot, removed again below
  rm -f "$ROOTFS/etc/hosts" "$ROOTFS/etc/resolv.conf"
  cp -L /etc/hosts "$ROOTFS/etc/hosts"
  cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"

  run_logged apt in_chroot sh -c "apt-get update && apt-get install -y --no-install-recommends $APT_PACKAGES"

  # no default nginx site: the playbooks install their own configuration
  rm -f "$ROOTFS/etc/nginx/sites-enabled/default"
  run_logged apt in_chroot apt-get clean
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin
  rm -f "$ROOTFS/usr/sbin/policy-rc.d" "$ROOTFS/etc/hosts" "$ROOTFS/etc/resolv.conf"
  rm -f "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/lib/dpkg/*-old
  find "$ROOTFS/var/log" -type f -exec truncate -s 0 {} +
}

step_pm2() {
  run_logged pm2 npm install -g "pm2@$PM2_VERSION" --prefix "$ROOTFS/usr/local" \
    --no-audit --no-fund --no-update-notifier
  local installed
  installed=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$ROOTFS/usr/local/lib/node_modules/pm2/package.json" | sed -n 1p)
  [ "$installed" = "$PM2_VERSION" ] || die "pm2 in the rootfs reports version '$installed', expected $PM2_VERSION"
  [ -L "$ROOTFS/usr/local/bin/pm2" ] || [ -x "$ROOTFS/usr/local/bin/pm2" ] || die "pm2 executable missing in $ROOTFS/usr/local/bin"
  if [ -n "$(find "$ROOTFS/usr/local/lib/node_modules/pm2" -name '*.node' -print -quit)" ]; then
    warn "pm2 ships native addons built against the host's node"
  fi
  log "    pm2 $installed in /usr/local (bins: $(cd "$ROOTFS/usr/local/bin" && ls | tr '\n' ' '))"
}

step_pymongo() {
  local target="$ROOTFS/usr/local/lib/python3.11/dist-packages"
  mkdir -p "$target"
  run_logged pymongo python3 -m pip install --quiet --disable-pip-version-check --no-compile \
    --target "$target" "pymongo==$PYMONGO_VERSION"
  [ "$(chroot "$ROOTFS" python3 -c 'import pymongo; print(pymongo.version)')" = "$PYMONGO_VERSION" ] \
    || die "pymongo $PYMONGO_VERSION does not import with the image's python3"
  log "    pymongo $PYMONGO_VERSION in /usr/local/lib/python3.11/dist-packages"
}

step_ferretdb() {
  local desc
  desc=$(file -b "$FERRETDB_BIN")
  case "$desc" in
    *statically\ linked*) log "    $FERRETDB_BIN is statically linked" ;;
    *dynamically\ linked*)
      log "    $FERRETDB_BIN is dynamically linked (glibc); the Debian 12 rootfs provides it"
      ;;
    *) warn "unexpected binary type: $desc" ;;
  esac
  install -D -m 0755 "$FERRETDB_BIN" "$ROOTFS/usr/local/bin/ferretdb"
}

step_stamp_and_check() {
  local out
  out=$(in_chroot sh -c 'node --version; npm --version; /usr/local/bin/ferretdb --version | sed -n 1p; nginx -v 2>&1; git --version; python3 --version') \
    || die "smoke test inside the rootfs failed"
  rm -rf "$ROOTFS/root/.npm" "$ROOTFS/root/.config"
  NODE_VERSION=$(echo "$out" | sed -n 1p)
  echo "$out" | sed 's/^/    | /'
  case "$NODE_VERSION" in v*) ;; *) die "node does not run in the rootfs" ;; esac
  cat >"$ROOTFS/etc/chatbot-rehearsal-image" <<STAMP
# Written by scripts/build-image.sh
recipe=$RECIPE_HASH
suite=$SUITE
node=$NODE_VERSION
pm2=$PM2_VERSION
ferretdb=$FERRETDB_VERSION
ferretdb_sha256=$FERRETDB_SHA
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
STAMP
}

step_import() {
  local old_id new_id
  old_id=$(podman image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
  new_id=$(
    tar "${TAR_OPTS[@]}" -C "$ROOTFS" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
      podman import -q \
        --change 'CMD ["sleep","infinity"]' \
        --change "ENV PATH=$IMAGE_PATH_ENV" \
        --change "ENV LANG=C.UTF-8" \
        --change "LABEL $LABEL_NS.recipe=$RECIPE_HASH" \
        --change "LABEL $LABEL_NS.suite=$SUITE" \
        --change "LABEL $LABEL_NS.node=$NODE_VERSION" \
        --change "LABEL $LABEL_NS.pm2=$PM2_VERSION" \
        --change "LABEL $LABEL_NS.ferretdb=$FERRETDB_VERSION" \
        --change "LABEL $LABEL_NS.ferretdb-sha256=$FERRETDB_SHA" \
        - "$TAG"
  )
  new_id=$(echo "$new_id" | tail -n 1)
  [ "$(image_label recipe)" = "$RECIPE_HASH" ] || die "imported image does not carry the recipe label"
  log "    imported $TAG (${new_id#sha256:}; $(podman image inspect --format '{{.Size}}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
  if [ -n "$old_id" ] && [ "${old_id#sha256:}" != "${new_id#sha256:}" ]; then
    if podman rmi "$old_id" >/dev/null 2>&1; then
      log "    removed the previous image ${old_id:0:12}"
    else
      log "    previous image ${old_id:0:12} is still in use (containers); left in place, untagged"
    fi
  fi
}

# ---- build -------------------------------------------------------------------------------
MIRROR=$(pick_mirror "$SUITE" "$FALLBACK_MIRROR")
SECURITY_MIRROR=$(pick_mirror "$SUITE-security" "$FALLBACK_SECURITY_MIRROR")
log "mirrors:  $MIRROR, $SECURITY_MIRROR"
ARCH=$(dpkg --print-architecture)
NODE_VERSION=""

KEY_BASE=$(stage_key step_debootstrap "$SUITE" "$DEBOOTSTRAP_INCLUDE" "$MIRROR" "$ARCH")
KEY_APT=$(stage_key "$KEY_BASE" step_apt in_chroot "$APT_PACKAGES" "$SECURITY_MIRROR")

remove_rootfs  # leftovers of an interrupted run
rm -f "$LOG_DIR"/*.log  # logs describe the latest build only

if have_stage apt "$KEY_APT"; then
  run_step "restore cached Debian + apt packages (apt-$KEY_APT.tar)" restore_stage apt "$KEY_APT"
else
  if have_stage minbase "$KEY_BASE"; then
    run_step "restore cached debootstrap (minbase-$KEY_BASE.tar)" restore_stage minbase "$KEY_BASE"
  else
    run_step "debootstrap $SUITE minbase (+$DEBOOTSTRAP_INCLUDE)" step_debootstrap "$MIRROR"
    run_step "cache the debootstrap result" save_stage minbase "$KEY_BASE"
  fi
  run_step "apt-get install $APT_PACKAGES (chroot)" step_apt "$MIRROR" "$SECURITY_MIRROR"
  run_step "cache the apt stage" save_stage apt "$KEY_APT"
fi
run_step "npm install -g pm2@$PM2_VERSION into /usr/local" step_pm2
run_step "pip install pymongo==$PYMONGO_VERSION into the rootfs" step_pymongo
run_step "copy FerretDB $FERRETDB_VERSION" step_ferretdb
run_step "smoke test in chroot + stamp /etc/chatbot-rehearsal-image" step_stamp_and_check
run_step "podman import as $TAG" step_import
run_step "remove the rootfs" remove_rootfs

CURRENT_STEP="done"
log "summary:"
printf '    %s\n' "${STEP_SUMMARY[@]}"
log "built $TAG (recipe $RECIPE_HASH) in $(fmt_ms $(($(now_ms) - T_START)))"
