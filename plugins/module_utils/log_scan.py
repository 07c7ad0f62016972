"""Scanning application logs for errors written since a point in time (plan step 4: "check application
logs for startup errors").

pm2 with `time: true` prefixes what a process writes with `YYYY-MM-DDTHH:MM:SS: ` (in the local time of
the host), once per write: the following lines of a multi-line write (a stack trace) carry no timestamp
and belong to the last timestamped line before them. Lines at the start of a tail, before its first
timestamp, belong to an entry whose timestamp was cut off: they are older than that timestamp and are
not counted. A file without any timestamp cannot be filtered by time: when it was modified since the
given time, all of its tail is scanned (and the detail says so).

Only the tail of each file is read (max_bytes). Sample lines are shortened and redacted: URI passwords
(`scheme://user:pass@`), bearer tokens and `token=`/`password=`-like values never leave this file.
"""

from __future__ import annotations

import datetime
import os
import re

from ansible_collections.chatbot.rollback.plugins.module_utils.api_check import FAIL, PASS, SKIP, check

DEFAULT_PATTERNS = (
    "Error:",
    "TypeError",
    "ReferenceError",
    "ECONNREFUSED",
    "Unhandled",
    '"level":"error"',
    "FATAL",
)
DEFAULT_MAX_BYTES = 1024 * 1024
MAX_SAMPLES = 5
SAMPLE_CHARS = 300

UTC = datetime.timezone.utc  # noqa: UP017 - also runs on managed hosts with older Pythons

# pm2's `time: true` prefix (log_date_format YYYY-MM-DDTHH:mm:ss), tolerating fractions, a zone and a space.
_PREFIX = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?:\.\d+)?(?P<zone>Z|[+-]\d{2}:?\d{2})?:\s?"
)

_REDACTIONS = (
    # scheme://user:password@host
    (re.compile(r"(?P<keep>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@\"']*:)[^@\s/\"']*(?=@)"), r"\g<keep>***"),
    # Authorization: Bearer xxx
    (re.compile(r"(?i)(?P<keep>\bbearer\s+)[A-Za-z0-9._~+/=-]+"), r"\g<keep>***"),
    # token=xxx, "access_token":"xxx", password: xxx, secret=xxx, api_key=xxx
    (re.compile(r"(?i)(?P<keep>[\"']?[\w-]*(?:token|password|passwd|secret|bypass|api[_-]?key)[\w-]*[\"']?\s*[:=]\s*"
                r"[\"']?)(?!\*\*\*)[^\"'\s,;&}]+"), r"\g<keep>***"),
)


def redact(line: str) -> str:
    for pattern, replacement in _REDACTIONS:
        line = pattern.sub(replacement, line)
    return line


def parse_since(text: str) -> datetime.datetime:
    """An ISO 8601 time; without a zone it is UTC. Returns an aware datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"since {text!r} is not an ISO 8601 time such as 2026-01-31T12:00:00Z") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def line_time(line: str, zone: datetime.tzinfo | None = None) -> datetime.datetime | None:
    """The time of a pm2 prefix (aware, UTC), or None when the line has none.

    A prefix without a zone is in `zone` (default: the local time zone of this host, as pm2 writes it).
    """
    match = _PREFIX.match(line)
    if not match:
        return None
    try:
        naive = datetime.datetime.fromisoformat(f"{match['date']}T{match['time']}")
    except ValueError:
        return None
    if match["zone"]:
        offset = match["zone"].replace("Z", "+00:00")
        if ":" not in offset:
            offset = offset[:3] + ":" + offset[3:]
        return datetime.datetime.fromisoformat(f"{match['date']}T{match['time']}{offset}").astimezone(UTC)
    if zone is None:
        return naive.astimezone().astimezone(UTC)  # the host's local time, as pm2 wrote it
    return naive.replace(tzinfo=zone).astimezone(UTC)


def read_tail(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[list[str], bool]:
    """The last lines of a file within max_bytes, and whether the file was cut (its first line dropped)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        start = max(0, size - max_bytes)
        handle.seek(start)
        data = handle.read()
    cut = start > 0
    if cut:
        newline = data.find(b"\n")
        data = data[newline + 1:] if newline >= 0 else b""
    return data.decode("utf-8", errors="replace").splitlines(), cut


def scan_lines(lines: list[str], since: datetime.datetime, patterns, zone: datetime.tzinfo | None = None,
               all_new: bool = False, attributed_before: datetime.datetime | None = None) -> dict:
    """The lines written since `since` that contain one of the patterns.

    Returns {matches: [lines], attributed: [lines], scanned: n, timestamped: bool}. The time of a line is its pm2
    prefix or that of the last prefixed line before it; lines before the first prefix count as older (see the
    module docstring) unless `all_new` (a file without any prefix that was modified since `since`). A matching
    line written before `attributed_before` (the end of the switch or the restore: the old release's draining
    workers, the restore window) goes to `attributed`, not to `matches`; a line without a time is never attributed.
    """
    since_s = since.astimezone(UTC).replace(microsecond=0)  # prefixes have whole seconds
    until = attributed_before.astimezone(UTC).replace(microsecond=0) if attributed_before else None
    current: datetime.datetime | None = None
    timestamped = False
    matches, attributed, scanned = [], [], 0
    for line in lines:
        stamp = line_time(line, zone)
        if stamp is not None:
            current = stamp
            timestamped = True
        new = current >= since_s if current is not None else all_new
        if not new:
            continue
        scanned += 1
        if any(p in line for p in patterns):
            (attributed if until and current is not None and current < until else matches).append(line)
    return {"matches": matches, "attributed": attributed, "scanned": scanned, "timestamped": timestamped}


def scan_file(path: str, since: datetime.datetime, patterns, max_bytes: int = DEFAULT_MAX_BYTES,
              zone: datetime.tzinfo | None = None, attributed_before: datetime.datetime | None = None) -> dict:
    """scan_lines over the tail of a file; raises OSError when it cannot be read."""
    lines, cut = read_tail(path, max_bytes)
    mtime = datetime.datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    result = scan_lines(lines, since, patterns, zone, attributed_before=attributed_before)
    if not result["timestamped"]:
        modified = mtime >= since.astimezone(UTC).replace(microsecond=0)
        result = scan_lines(lines, since, patterns, zone, all_new=modified, attributed_before=attributed_before)
    result.update(path=path, cut=cut, modified_at=mtime.isoformat(timespec="seconds"))
    return result


def scan(paths, since: datetime.datetime, patterns=DEFAULT_PATTERNS, max_bytes: int = DEFAULT_MAX_BYTES,
         missing_ok: bool = False, zone: datetime.tzinfo | None = None, name: str = "app_log_errors",
         scope: str = "app", attributed_before: datetime.datetime | None = None) -> dict:
    """One check over all files (value: matching lines, threshold 0) and up to 5 redacted sample lines.

    Error lines written before `attributed_before` are reported (count, first sample) but not counted."""
    patterns = [p for p in patterns if p]
    total, attributed, problems, notes, samples, files = 0, 0, [], [], [], []
    attributed_sample = ""
    for path in paths:
        try:
            result = scan_file(path, since, patterns, max_bytes, zone, attributed_before)
        except FileNotFoundError:
            (notes if missing_ok else problems).append(f"{path} is missing")
            files.append({"path": path, "exists": False})
            continue
        except OSError as exc:
            problems.append(f"{path} cannot be read: {exc.strerror or exc}")
            files.append({"path": path, "exists": True, "error": exc.strerror or str(exc)})
            continue
        count = len(result["matches"])
        total += count
        attributed += len(result["attributed"])
        if result["attributed"] and not attributed_sample:
            attributed_sample = redact(result["attributed"][0])[:SAMPLE_CHARS]
        files.append({"path": path, "exists": True, "matches": count, "attributed": len(result["attributed"]),
                      "scanned": result["scanned"],
                      "timestamped": result["timestamped"], "cut": result["cut"],
                      "modified_at": result["modified_at"]})
        if not result["timestamped"] and result["scanned"]:
            notes.append(f"{path} has no pm2 timestamps (time: true?): its whole tail was scanned")
        for line in result["matches"]:
            if len(samples) < MAX_SAMPLES:
                text = redact(line)
                samples.append(text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + "...")
    since_text = since.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    present = [f for f in files if f.get("exists") and "error" not in f]
    parts = list(problems)
    if present:
        parts.append(f"{total} error lines since {since_text} in "
                     + ", ".join(f"{os.path.basename(f['path'])}: {f['matches']}" for f in present))
    if attributed:
        until = attributed_before.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        parts.append(f"{attributed} error lines before {until} attributed to the switch or the restore (the old "
                     f"release's draining workers, the restore window), not counted: {attributed_sample}")
    parts += notes
    if not paths:
        verdict, parts = SKIP, ["no log file given"]
    elif problems or total:
        verdict = FAIL
    elif not present:
        verdict = SKIP
    else:
        verdict = PASS
    if samples:
        parts.append("first: " + samples[0])
    detail = "; ".join(parts)
    value = total if present else None
    return {"check": check(name, scope, value, 0, "lines", verdict, detail), "samples": samples, "files": files,
            "since": since_text, "attributed": attributed}
