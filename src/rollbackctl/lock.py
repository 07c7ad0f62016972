"""One rollback at a time per environment: a lock file naming its holder.

Usage::

    lock = EnvironmentLock(lock_dir, environment=str(inventory.resolve()))
    with lock.hold("INC-42") as holder:      # acquire(), then release() on the way out
        ...

or ``holder = lock.acquire("INC-42")`` ... ``lock.release()``. The lock file is
``<lock_dir>/<safe-name>.lock``, where the safe name is a slug of `environment` plus a short sha256 of
it, so any string (an inventory path, a name) gives a valid, distinct file name. The file holds a JSON
record of the holder: incident_id, pid, hostname, user, started_at (UTC, ISO 8601), command (redacted)
and process_start (boot id and start time of the process, read from /proc, to detect pid reuse).

Acquiring is atomic: the record is written to a private temporary file (O_CREAT|O_EXCL, mode 0600)
that is then hard-linked to the lock path, which fails if the lock exists, so the lock file never
appears half-written. When the lock exists, its holder is judged:

- alive on this host (the pid exists, is not a zombie, and is the same process as recorded):
  `LockHeld` (exit code 5) naming the holder; a live holder's lock is never broken;
- on another host: it cannot be checked from here, so it is treated as held: `LockHeld`, which says
  so and mentions ``--break-lock`` (``break_stale=True`` takes it over);
- gone (stale), or the file is empty or corrupt: `LockStale` (a LockHeld, exit code 5) naming the dead
  holder or the content problem, unless ``take_over_from`` is the holder's incident (a resume) or
  ``break_stale`` is set: then the lock is replaced atomically (temporary file + os.replace) under an
  fcntl.flock on ``<safe-name>.guard`` after checking that the file still holds the record judged
  stale, so two processes racing to break the same stale lock cannot both win. The new holder's
  `broke` / `broke_reason` fields record what was replaced.

`release()` removes the lock file only if it still holds this process's own record (same pid,
hostname, incident and start time); it never removes somebody else's lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import hashlib
import json
import os
import re
import secrets
import shlex
import socket
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from .errors import LockHeld, LockStale, UsageError
from .redact import redact_text

BREAK_OPTION = "--break-lock"
_ATTEMPTS = 5
_COMMAND_LIMIT = 500
_REQUIRED = ("incident_id", "pid", "hostname", "user", "started_at")
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV}


@dataclass(frozen=True)
class LockHolder:
    """The record in a lock file: who holds the environment, for which incident, since when."""

    incident_id: str
    pid: int
    hostname: str
    user: str
    started_at: str
    command: str = ""
    process_start: str | None = None
    broke: LockHolder | None = None
    broke_reason: str | None = None

    def describe(self) -> str:
        """``user@host, pid N, incident ID, since TIME`` for messages."""
        return f"{self.user}@{self.hostname}, pid {self.pid}, incident {self.incident_id}, since {self.started_at}"

    def to_dict(self) -> dict:
        """The JSON record (``broke`` is the replaced holder's record, or None)."""
        data = asdict(self)
        data["broke"] = self.broke.to_dict() if self.broke else None
        return data

    @classmethod
    def from_dict(cls, data: object) -> LockHolder:
        """Parse a record; raise ValueError naming the problem when it is not a valid holder record."""
        if not isinstance(data, dict):
            raise ValueError(f"it holds JSON {type(data).__name__}, not a holder record")
        missing = [name for name in _REQUIRED if data.get(name) in (None, "")]
        if missing:
            raise ValueError(f"the holder record has no {', '.join(missing)}")
        pid = data["pid"]
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError(f"the holder record has an invalid pid {pid!r}")
        broke = data.get("broke")
        return cls(
            incident_id=str(data["incident_id"]), pid=pid, hostname=str(data["hostname"]), user=str(data["user"]),
            started_at=str(data["started_at"]), command=str(data.get("command") or ""),
            process_start=data.get("process_start"),
            broke=cls.from_dict(broke) if isinstance(broke, dict) else None,
            broke_reason=data.get("broke_reason"),
        )


@dataclass(frozen=True)
class _Verdict:
    """What an existing lock file means: state is held, foreign, stale or corrupt."""

    state: str
    holder: LockHolder | None
    problem: str


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of `pid` from /proc, or None when unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the command name in parentheses may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


def process_start(pid: int) -> str | None:
    """An identity for the process `pid` that a reused pid does not share (boot id + start time)."""
    stat = _proc_stat(pid)
    return f"{_boot_id()}:{stat[1]}" if stat else None


def _liveness(holder: LockHolder) -> str:
    """Why the holder (on this host) is gone, or "" when it is still running."""
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return f"pid {holder.pid} no longer exists"
    except PermissionError:
        pass  # exists, owned by another user
    stat = _proc_stat(holder.pid)
    if stat is None:
        return f"pid {holder.pid} no longer exists" if Path("/proc/self/stat").exists() else ""
    if stat[0] in ("Z", "X"):
        return f"pid {holder.pid} has exited (zombie)"
    current = process_start(holder.pid)
    if holder.process_start and current and current != holder.process_start:
        return f"pid {holder.pid} is now a different process (the holder's pid was reused)"
    return ""


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _command() -> str:
    command = redact_text(shlex.join(sys.argv))
    return command if len(command) <= _COMMAND_LIMIT else command[: _COMMAND_LIMIT - 3] + "..."


def safe_name(environment: str) -> str:
    """A file-name-safe, distinct name for `environment`: a slug of its tail plus a short sha256."""
    slug = re.sub(r"[^a-z0-9]+", "-", environment.lower()).strip("-")[-48:].strip("-") or "environment"
    return f"{slug}-{hashlib.sha256(environment.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}"


class EnvironmentLock:
    """The lock of one environment (see the module docstring for the protocol and the messages)."""

    def __init__(self, lock_dir: Path, environment: str):
        self.lock_dir = Path(lock_dir)
        self.environment = str(environment)
        name = safe_name(self.environment)
        self.path = self.lock_dir / f"{name}.lock"
        self._guard_path = self.lock_dir / f"{name}.guard"
        self._held: LockHolder | None = None

    # -- public API ---------------------------------------------------------------------------------

    def acquire(self, incident_id: str, *, take_over_from: str | None = None, break_stale: bool = False) -> LockHolder:
        """Take the lock for `incident_id` and return the holder record written.

        `take_over_from`: the incident being resumed; its stale lock is taken over. `break_stale`: take
        over a stale or corrupt lock, or one held on another host (the operator vouches it is gone).
        Raises LockHeld when the holder is alive (or on another host), LockStale when it is gone and
        neither option applies, UsageError for an empty incident id.
        """
        if not incident_id or not incident_id.strip():
            raise UsageError("an incident id is needed to take the environment lock")
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = self._new_record(incident_id.strip())
        for _ in range(_ATTEMPTS):
            if self._create(record):
                return self._took(record)
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                continue  # released in the meantime: try to create it again
            verdict = self._judge(raw)
            reason = self._takeover_reason(verdict, take_over_from, break_stale)  # raises when it may not
            previous = _flat(verdict.holder) if verdict.holder else None
            taken = self._replace_if_unchanged(raw, replace(record, broke=previous, broke_reason=reason))
            if taken:
                return self._took(taken)
        raise LockHeld(f"the lock on {self.environment} kept changing hands while taking it; try again",
                       lock_file=self.path)

    def release(self) -> bool:
        """Remove the lock file if it still holds this process's record; return whether it was removed."""
        held, self._held = self._held, None
        if held is None or held.pid != os.getpid():
            return False
        with self._guarded():
            current = self.holder()
            if current is None or not _same_owner(current, held):
                return False
            self.path.unlink(missing_ok=True)
        return True

    @contextlib.contextmanager
    def hold(self, incident_id: str, *, take_over_from: str | None = None,
             break_stale: bool = False) -> Iterator[LockHolder]:
        """Context manager: acquire() on entry (same arguments), release() on exit, even on error."""
        holder = self.acquire(incident_id, take_over_from=take_over_from, break_stale=break_stale)
        try:
            yield holder
        finally:
            self.release()

    def holder(self) -> LockHolder | None:
        """The current holder record, or None when the lock is free or its file is unreadable."""
        try:
            return LockHolder.from_dict(json.loads(self.path.read_bytes()))
        except (FileNotFoundError, ValueError):
            return None

    def status(self) -> dict:
        """For display: environment, lock_file, state (free|held|foreign|stale|corrupt), holder, problem, message."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"environment": self.environment, "lock_file": str(self.path), "state": "free", "holder": None,
                    "problem": "", "message": f"{self.environment} is not locked"}
        verdict = self._judge(raw)
        return {
            "environment": self.environment, "lock_file": str(self.path), "state": verdict.state,
            "holder": verdict.holder.to_dict() if verdict.holder else None, "problem": verdict.problem,
            "message": self._message(verdict),
        }

    # -- judging an existing lock -------------------------------------------------------------------

    def _judge(self, raw: bytes) -> _Verdict:
        try:
            holder = _parse(raw)
        except ValueError as exc:
            return _Verdict("corrupt", None, str(exc))
        if holder.hostname != socket.gethostname():
            return _Verdict("foreign", holder, f"it is held on another host ({holder.hostname})")
        gone = _liveness(holder)
        return _Verdict("stale", holder, gone) if gone else _Verdict("held", holder, "")

    def _takeover_reason(self, verdict: _Verdict, take_over_from: str | None, break_stale: bool) -> str:
        """Why this acquire may replace the existing lock; raise the matching refusal when it may not."""
        if verdict.state == "held":
            raise LockHeld(self._message(verdict), holder=verdict.holder, lock_file=self.path)
        if break_stale:
            return f"broken with {BREAK_OPTION}: {verdict.problem}"
        resuming = verdict.holder is not None and take_over_from == verdict.holder.incident_id
        if resuming and verdict.state == "stale":
            return f"resumed incident {take_over_from}: {verdict.problem}"
        message = self._message(verdict, take_over_from)
        if verdict.state == "foreign":
            raise LockHeld(message, holder=verdict.holder, lock_file=self.path)
        raise LockStale(message, holder=verdict.holder, lock_file=self.path)

    def _message(self, verdict: _Verdict, take_over_from: str | None = None) -> str:
        holder, where = verdict.holder, f"Lock file: {self.path}."
        if verdict.state == "corrupt" or holder is None:
            return (f"The lock on {self.environment} is stale: its lock file is unusable ({verdict.problem}), so "
                    f"nobody can be shown as holding it. Re-run with {BREAK_OPTION} to replace it. {where}")
        running = f" ({holder.command})" if holder.command else ""
        if verdict.state == "held":
            return (f"Another rollback holds the lock on {self.environment}: {holder.describe()}{running}. Only one "
                    f"rollback at a time may run against an environment: wait for it to finish, or stop it (pid "
                    f"{holder.pid} on {holder.hostname}); a running holder's lock is never broken. {where}")
        if verdict.state == "foreign":
            return (f"The lock on {self.environment} is held by {holder.describe()}{running}. That process runs on "
                    f"another host ({holder.hostname}), so this host ({socket.gethostname()}) cannot check whether "
                    f"it is still running: the lock is treated as held. Check on {holder.hostname}; if that "
                    f"rollback is gone, re-run with {BREAK_OPTION} to take the lock over. {where}")
        other = ""
        if take_over_from and take_over_from != holder.incident_id:
            other = f" (you asked to resume {take_over_from}, but the lock belongs to incident {holder.incident_id})"
        return (f"The lock on {self.environment} is stale: its holder {holder.describe()} is no longer running "
                f"({verdict.problem}){other}. Resume that incident with `rollbackctl resume {holder.incident_id}`, "
                f"or re-run with {BREAK_OPTION} to take the lock over. {where}")

    # -- files --------------------------------------------------------------------------------------

    def _new_record(self, incident_id: str) -> LockHolder:
        pid = os.getpid()
        return LockHolder(
            incident_id=incident_id, pid=pid, hostname=socket.gethostname(), user=_user(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"), command=_command(),
            process_start=process_start(pid),
        )

    def _took(self, record: LockHolder) -> LockHolder:
        self._held = record
        return record

    def _write_temp(self, record: LockHolder) -> Path:
        """Write `record` to a new private file (O_EXCL, 0600) next to the lock; return its path."""
        temp = self.lock_dir / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record.to_dict(), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        return temp

    def _create(self, record: LockHolder) -> bool:
        """Create the lock file holding `record` if there is none; return whether this call created it."""
        temp = self._write_temp(record)
        try:
            os.link(temp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            return self._create_exclusive(record)
        finally:
            temp.unlink(missing_ok=True)

    def _create_exclusive(self, record: LockHolder) -> bool:
        """Fallback for file systems without hard links: O_CREAT|O_EXCL on the lock path itself."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record.to_dict(), handle, indent=2)
            handle.write("\n")
        return True

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """Hold an exclusive flock on the guard file (kept, never deleted) while replacing or removing."""
        fd = os.open(self._guard_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _replace_if_unchanged(self, expected: bytes, record: LockHolder) -> LockHolder | None:
        """Replace the lock with `record` if it still holds `expected`; None when somebody got there first."""
        with self._guarded():
            try:
                if self.path.read_bytes() != expected:
                    return None
            except FileNotFoundError:
                return None
            os.replace(self._write_temp(record), self.path)
        return record


def _parse(raw: bytes) -> LockHolder:
    """Parse lock file content; ValueError names the problem (empty, not JSON, missing fields...)."""
    if not raw.strip():
        raise ValueError("the file is empty")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError("the file is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"the file is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    return LockHolder.from_dict(data)


def _flat(holder: LockHolder) -> LockHolder:
    """The holder without its own history, so records do not nest without end."""
    return replace(holder, broke=None, broke_reason=None)


def _same_owner(current: LockHolder, mine: LockHolder) -> bool:
    return (current.pid, current.hostname, current.incident_id, current.started_at, current.process_start) == (
        mine.pid, mine.hostname, mine.incident_id, mine.started_at, mine.process_start)
