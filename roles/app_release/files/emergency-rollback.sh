#!/usr/bin/env bash
# emergency-rollback.sh: roll this app host back to its previous good release, on the host alone.
# Installed by the chatbot.rollback.app_release role as <root>/scripts/emergency-rollback.sh (the
# plan's "cd /opt/chatbot-platform && ./scripts/emergency-rollback.sh"). Needs no controller, no
# Ansible and no network: the releases on disk, the release manifest, pm2 and node. See --help.
set -euo pipefail

PROG=emergency-rollback.sh
VERSION_RE='^v[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}$'
START_NS=$(date +%s%N)

usage() {
  cat <<'EOF'
Usage: emergency-rollback.sh [--to VERSION] [--root DIR] [--dry-run] [options]

Roll this host back to its previous good release without the controller: switch the `current`
link atomically to a release already on disk (never one marked bad, nothing is rebuilt), reload
the app's pm2 cluster (start it when it does not run), wait until every worker serves the target,
then mark the release it left bad (BAD_RELEASE marker and manifest entry; it stays on disk) and
record the rollback in the release manifest (releases/manifest.jsonl).

Without --to, the target is the release that was live before the one the workers serve, skipping
releases marked bad or not on disk. A host already rolled back (its release went live by a
rollback, or every release after it is marked bad) is left alone: a second run changes nothing.

Options:
  --to VERSION        roll back to this release (vMAJOR.MINOR.PATCH; must be on disk, not bad)
  --root DIR          deployment root (default: the directory above this script's scripts/)
  --dry-run           say what would be done; change nothing (no switch, no pm2 action, no write)
  --pm2-home DIR      PM2_HOME of the app's daemon (default: from the config file, else $PM2_HOME,
                      else ROOT/.pm2)
  --timeout SECONDS   how long to wait for every worker to serve the target (default: config, 60)
  --reason TEXT       why the release left is bad (recorded with the marker)
  --incident-id ID    incident id recorded with the marker and the rollback
  -h, --help          show this help

Configuration: ROOT/shared/emergency-rollback.conf (KEY=VALUE, written by the role; no secrets):
  PM2_HOME, PM2_BINARY, NODE_BINARY, APP_NAME, INSTANCES, APP_HOST, APP_PORT, TIMEOUT.

Output: progress on stderr; one JSON line on stdout, always last:
  {"host", "from", "to", "changed", "workers", "duration", "status", "error", "dry_run", "marked_bad"}
  workers: how many workers serve "to" (when ready), duration: seconds.

Exit codes:
  0  rolled back (status "rolled_back"), or already on the target (status "unchanged",
     changed false), or --dry-run (status "dry_run")
  1  unexpected error (status "error"): broken layout, unreadable manifest, node missing
  2  bad usage (status "usage")
  3  no previous good release, or the --to target is unusable (unknown, not on disk, marked bad)
     (status "no_target"); nothing was changed
  4  pm2 failed (status "pm2_failed"); when it failed reloading, current points at the target and
     the release left is not marked bad: a rerun continues
  5  the workers did not all serve the target within the timeout (status "timeout"); current
     points at the target, the release left is not marked bad, a rerun continues
  6  another emergency-rollback.sh holds the host's lock (status "locked"); nothing was changed
EOF
}

# ---- the result line -----------------------------------------------------------------------------

json_str() { # a JSON string of $1, or null when empty
  local s=$1
  if [ -z "$s" ]; then printf 'null'; return; fi
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  s=$(printf '%s' "$s" | tr -d '\000-\037')
  printf '"%s"' "$s"
}

R_FROM="" R_TO="" R_CHANGED=false R_WORKERS=0 R_MARKED="" DRY_RUN=0

finish() { # EXIT_CODE STATUS [ERROR]
  local code=$1 status=$2 error=${3:-} now duration host
  now=$(date +%s%N)
  duration=$(( (now - START_NS) / 1000000 ))
  duration=$(printf '%d.%03d' $((duration / 1000)) $((duration % 1000)))
  host=$(uname -n 2>/dev/null || echo unknown)
  [ -z "$error" ] || echo "$PROG: $error" >&2
  printf '{"host":%s,"from":%s,"to":%s,"changed":%s,"workers":%s,"duration":%s,"status":%s,"error":%s,"dry_run":%s,"marked_bad":%s}\n' \
    "$(json_str "$host")" "$(json_str "$R_FROM")" "$(json_str "$R_TO")" "$R_CHANGED" "$R_WORKERS" "$duration" \
    "$(json_str "$status")" "$(json_str "$error")" "$([ "$DRY_RUN" -eq 1 ] && echo true || echo false)" \
    "$(json_str "$R_MARKED")"
  exit "$code"
}

say() { echo "$PROG: $*" >&2; }

# ---- arguments -----------------------------------------------------------------------------------

TO="" ROOT="" OPT_PM2_HOME="" OPT_TIMEOUT="" REASON="" INCIDENT=""
need_arg() { if [ $# -lt 2 ] || [ -z "$2" ]; then finish 2 usage "option $1 needs a value (see --help)"; fi; }
while [ $# -gt 0 ]; do
  case "$1" in
    --to) need_arg "$@"; TO=$2; shift ;;
    --to=*) TO=${1#*=} ;;
    --root) need_arg "$@"; ROOT=$2; shift ;;
    --root=*) ROOT=${1#*=} ;;
    --pm2-home) need_arg "$@"; OPT_PM2_HOME=$2; shift ;;
    --timeout) need_arg "$@"; OPT_TIMEOUT=$2; shift ;;
    --reason) need_arg "$@"; REASON=$2; shift ;;
    --incident-id) need_arg "$@"; INCIDENT=$2; shift ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage; exit 0 ;;
    *) finish 2 usage "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
if [ -n "$TO" ] && [ "$TO" != previous ] && ! [[ $TO =~ $VERSION_RE ]]; then
  finish 2 usage "--to $TO is malformed: expected vMAJOR.MINOR.PATCH, e.g. v0.9.0, or previous"
fi
[ "$TO" != previous ] || TO=""
if [ -n "$OPT_TIMEOUT" ] && ! [[ $OPT_TIMEOUT =~ ^[0-9]{1,5}$ && $OPT_TIMEOUT -gt 0 ]]; then
  finish 2 usage "--timeout $OPT_TIMEOUT is not a positive number of seconds"
fi
if [ -z "$ROOT" ]; then
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi
[ -d "$ROOT/releases" ] || finish 2 usage "$ROOT is not a deployment root (no releases/ directory); use --root"
ROOT=$(cd "$ROOT" && pwd)
RELEASES="$ROOT/releases"
MANIFEST="$RELEASES/manifest.jsonl"

# ---- configuration (KEY=VALUE, known keys only; never sourced) -------------------------------------

C_PM2_HOME="" C_PM2_BINARY="" C_NODE_BINARY="" C_APP_NAME="" C_INSTANCES="" C_APP_HOST="" C_APP_PORT="" C_TIMEOUT=""
CONF="$ROOT/shared/emergency-rollback.conf"
if [ -f "$CONF" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%%=*} value=${line#*=}
    case "$key" in
      PM2_HOME) C_PM2_HOME=$value ;;
      PM2_BINARY) C_PM2_BINARY=$value ;;
      NODE_BINARY) C_NODE_BINARY=$value ;;
      APP_NAME) C_APP_NAME=$value ;;
      INSTANCES) C_INSTANCES=$value ;;
      APP_HOST) C_APP_HOST=$value ;;
      APP_PORT) C_APP_PORT=$value ;;
      TIMEOUT) C_TIMEOUT=$value ;;
      *) say "ignoring unknown key $key in $CONF" ;;
    esac
  done < "$CONF"
fi
PM2_HOME_DIR=${OPT_PM2_HOME:-${C_PM2_HOME:-${PM2_HOME:-$ROOT/.pm2}}}
PM2_BIN=${C_PM2_BINARY:-pm2}
NODE_BIN=${C_NODE_BINARY:-node}
APP=${C_APP_NAME:-app}
INSTANCES=${C_INSTANCES:-}
APP_HOST=${C_APP_HOST:-127.0.0.1}
APP_PORT=${C_APP_PORT:-3000}
TIMEOUT=${OPT_TIMEOUT:-${C_TIMEOUT:-60}}
ECOSYSTEM="$ROOT/shared/ecosystem.config.js"
[[ $INSTANCES =~ ^[0-9]*$ ]] || finish 1 error "INSTANCES=$INSTANCES in $CONF is not a number"
[[ $APP_PORT =~ ^[0-9]+$ ]] || finish 1 error "APP_PORT=$APP_PORT in $CONF is not a number"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || finish 1 error "TIMEOUT=$TIMEOUT in $CONF is not a number"
command -v "$NODE_BIN" >/dev/null || finish 1 error "node ($NODE_BIN) not found: the app host runs its app with it"

export PM2_HOME="$PM2_HOME_DIR" PM2_DISCRETE_MODE=true NO_COLOR=1 PM2_PROGRAMMATIC=true

# ---- the node helper: JSON in and out (the manifest, pm2 jlist, /health) ----------------------------

# shellcheck disable=SC2016  # JavaScript, not shell
NODE_HELPER='
"use strict";
const fs = require("fs"), path = require("path"), http = require("http");
const VERSION_RE = /^v\d{1,4}\.\d{1,4}\.\d{1,4}$/;
const [cmd, ...args] = process.argv.slice(1);
const out = (k, v) => process.stdout.write(`${k}=${String(v == null ? "" : v).replace(/[\r\n]/g, " ")}\n`);
const utcnow = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

function manifest(file) {
  let text = "";
  try { text = fs.readFileSync(file, "utf8"); } catch (e) { if (e.code !== "ENOENT") throw e; }
  const entries = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let e;
    try { e = JSON.parse(line); } catch (err) { throw new Error(`${file}:${i + 1}: not JSON`); }
    if (!e || typeof e !== "object" || !VERSION_RE.test(e.version || "")) throw new Error(`${file}:${i + 1}: not a release event`);
    entries.push(e);
  });
  return entries;
}
const onDisk = (rel) => fs.readdirSync(rel).filter((n) => VERSION_RE.test(n) && fs.existsSync(path.join(rel, n, "release.json")));
function badSet(entries, rel) {
  const bad = new Set();
  for (const e of entries) {
    if (e.event === "marked_bad") bad.add(e.version);
    if (e.event === "marked_good") bad.delete(e.version);
  }
  for (const v of onDisk(rel)) if (fs.existsSync(path.join(rel, v, "BAD_RELEASE"))) bad.add(v);
  return bad;
}
const sortedJson = (o) => JSON.stringify(Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]])));

const commands = {
  // workers APP [< pm2 jlist]: the app`s instances and the directory each online one runs in
  workers([app]) {
    const text = fs.readFileSync(0, "utf8");
    const start = text.indexOf("[");
    const list = start < 0 ? [] : JSON.parse(text.slice(start));
    const mine = list.filter((p) => p.name === app);
    const dirs = new Set();
    let online = 0;
    for (const p of mine) {
      if (((p.pm2_env || {}).status) !== "online" || !p.pid) continue;
      online += 1;
      try { dirs.add(fs.realpathSync(`/proc/${p.pid}/cwd`)); } catch (e) { dirs.add("(unreadable)"); }
    }
    out("total", mine.length);
    out("online", online);
    out("pids", mine.map((p) => p.pid).filter(Boolean).join(","));
    out("dirs", [...dirs].sort().join("|"));
  },
  // plan ROOT FROM CURRENT TO: the target, and whether the host is already rolled back
  plan([root, from, current, to]) {
    const rel = path.join(root, "releases");
    const entries = manifest(path.join(rel, "manifest.jsonl"));
    const disk = new Set(onDisk(rel));
    const bad = badSet(entries, rel);
    const live = entries.filter((e) => e.event === "deployed" || e.event === "rolled_back");
    const last = live[live.length - 1];
    out("last_live", last ? last.version : "");
    if (to) {
      if (!disk.has(to)) out("problem", `release ${to} is not on disk (${rel}/${to}/release.json); this script never builds`);
      else if (bad.has(to)) out("problem", `release ${to} is marked bad: never a rollback target`);
      out("target", to);
      return;
    }
    // Already rolled back: the release served is good and went live by a rollback, or every release
    // that went live after it has been marked bad (a run that stopped before recording the rollback).
    const idx = live.map((e) => e.version).lastIndexOf(from);
    const after = idx >= 0 ? live.slice(idx + 1) : [];
    if (from && from === current && !bad.has(from) && idx >= 0 &&
        ((last.version === from && last.event === "rolled_back") || (after.length > 0 && after.every((e) => bad.has(e.version))))) {
      out("target", from);
      out("already", 1);
      return;
    }
    for (let i = live.length - 1; i >= 0; i -= 1) {
      const v = live[i].version;
      if (v !== from && !bad.has(v) && disk.has(v)) { out("target", v); return; }
    }
    const history = live.map((e) => e.version).join(" ") || "empty";
    out("problem", `no previous good release on disk: leaving ${from || "(none)"}, history ${history}, bad ${[...bad].join(" ") || "none"}, on disk ${[...disk].sort().join(" ") || "none"}`);
  },
  // record ROOT FROM TO ACTOR REASON INCIDENT: mark FROM bad (when it is not already), record TO`s rollback
  record([root, from, to, actor, reason, incident]) {
    const rel = path.join(root, "releases");
    const file = path.join(rel, "manifest.jsonl");
    const entries = manifest(file);
    const bad = badSet(entries, rel);
    const lines = [];
    const extra = (e) => { if (incident) e.incident_id = incident; if (actor) e.actor = actor; return e; };
    let marked = "";
    if (from && from !== to && !bad.has(from)) {
      const e = extra({ event: "marked_bad", version: from, at: utcnow() });
      if (reason) e.reason = reason;
      lines.push(sortedJson(e));
      marked = from;
      if (fs.existsSync(path.join(rel, from))) {
        const marker = { incident_id: e.incident_id || null, actor: e.actor || null, reason: e.reason || null, at: e.at };
        fs.writeFileSync(path.join(rel, from, "BAD_RELEASE"), `${JSON.stringify(marker, null, 2)}\n`);
      }
    }
    const live = entries.filter((e) => e.event === "deployed" || e.event === "rolled_back");
    if (!live.length || live[live.length - 1].version !== to || lines.length) {
      let info = {};
      try { info = JSON.parse(fs.readFileSync(path.join(rel, to, "release.json"), "utf8")); } catch (e) { info = {}; }
      const e = extra({ event: "rolled_back", version: to, at: utcnow() });
      for (const k of ["git_sha", "schema_version", "built_at"]) if (info[k] != null) e[k] = info[k];
      lines.push(sortedJson(e));
    }
    if (lines.length) {
      const fd = fs.openSync(file, "a", 0o644);
      try { fs.writeSync(fd, lines.map((l) => `${l}\n`).join("")); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    }
    out("marked", marked);
    out("written", lines.length);
  },
  // health HOST PORT: the version /health reports (200 or 503: the code answers), empty when none
  health([host, port]) {
    const req = http.get({ host, port: Number(port), path: "/health", timeout: 2000, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { body += c; });
      res.on("end", () => {
        let v = "";
        try { if (res.statusCode === 200 || res.statusCode === 503) v = JSON.parse(body).version || ""; } catch (e) { v = ""; }
        out("version", v);
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => out("version", ""));
  },
};
try {
  commands[cmd](args);
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
}
'
helper() { "$NODE_BIN" -e "$NODE_HELPER" -- "$@"; }

# read_kv PREFIX: read the helper`s key=value lines from stdin into variables PREFIX_key
read_kv() {
  local prefix=$1 k v
  while IFS='=' read -r k v; do
    [[ $k =~ ^[a-z_]+$ ]] || continue
    printf -v "${prefix}_${k}" '%s' "$v"
  done
}

pm2_running() { # whether the daemon of PM2_HOME runs (asking pm2 would start one)
  local pid
  pid=$(cat "$PM2_HOME/pm2.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ]
}

W_total=0 W_online=0 W_pids="" W_dirs=""
read_workers() { # sets W_total W_online W_pids W_dirs
  local jlist
  W_total=0 W_online=0 W_pids="" W_dirs=""
  if pm2_running; then
    command -v "$PM2_BIN" >/dev/null || finish 4 pm2_failed "pm2 ($PM2_BIN) not found"
    jlist=$("$PM2_BIN" jlist 2>/dev/null) || finish 4 pm2_failed "pm2 jlist failed (PM2_HOME=$PM2_HOME)"
    workers_out=$(printf '%s' "$jlist" | helper workers "$APP") \
      || finish 4 pm2_failed "pm2 jlist printed no process list"
    read_kv W <<< "$workers_out"
  fi
}

version_of_dir() { # the release version of a directory under releases/, empty otherwise
  local dir=$1
  [ "$(dirname "$dir")" = "$(cd "$RELEASES" && pwd -P)" ] || return 0
  local name
  name=$(basename "$dir")
  [[ $name =~ $VERSION_RE ]] && printf '%s' "$name"
  return 0
}

# ---- one run at a time (a dry run writes nothing, not even the lock file) ------------------------------

if [ "$DRY_RUN" -eq 0 ] && command -v flock >/dev/null; then
  exec 9>>"$RELEASES/.emergency-rollback.lock"
  flock -n 9 || finish 6 locked "another emergency-rollback.sh runs on this host ($RELEASES/.emergency-rollback.lock); nothing was changed"
fi

# ---- what the host has ---------------------------------------------------------------------------

current=""
if [ -L "$ROOT/current" ]; then
  current=$(version_of_dir "$(readlink -f "$ROOT/current")")
fi
read_workers
# The release being left is the one the workers serve: a run stopped after switching `current`
# leaves the workers on the release before.
from=$current
if [ -n "$W_dirs" ]; then
  IFS='|' read -r -a served <<< "$W_dirs"
  others=()
  for dir in "${served[@]}"; do
    v=$(version_of_dir "$dir")
    if [ -n "$v" ] && [ "$v" != "$current" ]; then others+=("$v"); fi
  done
  if [ ${#others[@]} -eq 1 ]; then
    from=${others[0]}
  elif [ ${#others[@]} -gt 1 ]; then
    finish 1 error "the workers serve several releases (${others[*]}) beside current ($current); roll back with --to"
  fi
fi
R_FROM=$from

P_target="" P_problem="" P_last_live=""
plan_out=$(helper plan "$ROOT" "$from" "$current" "$TO") || finish 1 error "cannot read the release manifest $MANIFEST"
read_kv P <<< "$plan_out"
R_TO=$P_target
[ -z "$P_problem" ] || finish 3 no_target "$P_problem; nothing was changed"
target=$P_target
target_dir="$RELEASES/$target"
target_real=$(cd "$target_dir" && pwd -P)

serving_target() { # every expected worker online and running in the target's directory
  [ "$W_online" -gt 0 ] && [ "$W_online" -eq "$W_total" ] && [ "$W_dirs" = "$target_real" ] \
    && { [ -z "$INSTANCES" ] || [ "$W_online" -eq "$INSTANCES" ]; }
}

# Nothing to do: on the target already, every worker serves it, nothing left to record.
need_switch=0 need_reload=0 need_record=0
[ "$current" = "$target" ] || need_switch=1
serving_target || need_reload=1
# the release left is marked bad, the target's rollback recorded (also after a run that stopped before)
if [ "$from" != "$target" ] || [ "$P_last_live" != "$target" ]; then need_record=1; fi

if [ "$DRY_RUN" -eq 1 ]; then
  if [ $need_switch -eq 1 ] || [ $need_reload -eq 1 ] || [ $need_record -eq 1 ]; then R_CHANGED=true; fi
  say "dry run: from ${from:-(none)} to $target: switch current $([ $need_switch -eq 1 ] && echo yes || echo no)," \
      "pm2 $([ $need_reload -eq 1 ] && { [ "$W_total" -eq 0 ] && echo start || echo reload; } || echo nothing)," \
      "mark bad $([ "$from" != "$target" ] && [ -n "$from" ] && echo "$from" || echo none)"
  [ "$from" = "$target" ] || R_MARKED=$from
  serving_target && R_WORKERS=$W_online
  finish 0 dry_run
fi

# ---- switch, reload, wait ----------------------------------------------------------------------------

if [ $need_switch -eq 1 ]; then
  say "switching current from ${current:-(none)} to $target"
  tmp_link="$ROOT/.current.emergency.$$"
  ln -sfn "releases/$target" "$tmp_link"
  mv -T "$tmp_link" "$ROOT/current"  # rename(2): atomic
  R_CHANGED=true
fi

if [ $need_reload -eq 1 ]; then
  command -v "$PM2_BIN" >/dev/null || finish 4 pm2_failed "pm2 ($PM2_BIN) not found"
  [ -f "$ECOSYSTEM" ] || finish 4 pm2_failed "no pm2 ecosystem file $ECOSYSTEM"
  if [ "$W_total" -eq 0 ]; then action=start; elif [ "$W_online" -eq 0 ]; then action=restart; else action=reload; fi
  args=("$action" "$ECOSYSTEM" --only "$APP")
  [ "$action" = start ] || args+=(--update-env)
  say "pm2 ${args[*]} (PM2_HOME=$PM2_HOME)"
  R_CHANGED=true
  if ! pm2_log=$(timeout "$((TIMEOUT + 60))" "$PM2_BIN" "${args[@]}" 2>&1); then
    printf '%s\n' "$pm2_log" | tail -n 5 >&2
    finish 4 pm2_failed "pm2 $action $APP failed; current points at $target, ${from:-nothing} is not marked bad, a rerun continues"
  fi
fi

say "waiting up to ${TIMEOUT}s until every worker serves $target"
deadline=$(( $(date +%s) + TIMEOUT ))
ready=0
while :; do
  read_workers
  if serving_target; then
    ready=1
    for _ in $(seq 1 $(( W_online * 2 ))); do  # each answer comes from one worker
      H_version=""
      read_kv H <<< "$(helper health "$APP_HOST" "$APP_PORT" || true)"
      if [ "$H_version" != "${target#v}" ]; then ready=0; break; fi
    done
    [ $ready -eq 0 ] || break
  fi
  [ "$(date +%s)" -lt "$deadline" ] || break
  sleep 0.5
done
if [ $ready -ne 1 ]; then
  finish 5 timeout "not every worker served $target within ${TIMEOUT}s (online $W_online of $W_total, pids ${W_pids:-none}, serving: ${W_dirs:-none}); current points at $target, ${from:-nothing} is not marked bad"
fi
R_WORKERS=$W_online

# ---- record ------------------------------------------------------------------------------------------

if [ $need_record -eq 1 ]; then
  actor="${USER:-$(id -un 2>/dev/null || echo unknown)}@$(uname -n) (emergency-rollback.sh)"
  R_marked="" R_written=0
  rec_out=$(helper record "$ROOT" "$from" "$target" "$actor" "${REASON:-emergency rollback (scripts/emergency-rollback.sh)}" "$INCIDENT") \
    || finish 1 error "could not write the release manifest $MANIFEST (the host serves $target)"
  read_kv R <<< "$rec_out"
  R_MARKED=$R_marked
  [ "$R_written" -eq 0 ] || R_CHANGED=true
fi

if [ "$R_CHANGED" = true ]; then
  say "rolled back from ${from:-(none)} to $target (${R_WORKERS} workers)${R_MARKED:+, $R_MARKED marked bad}"
  finish 0 rolled_back
fi
say "already on $target (${R_WORKERS} workers): nothing to do"
finish 0 unchanged
