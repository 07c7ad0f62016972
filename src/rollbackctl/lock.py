"""One rollback at a time per environment: a lock file, held with the kernel's flock, naming its holder.

Usage::

    lock = EnvironmentLock(lock_dir, "platform app:web1 at https://chat.example", key="platform-1f2e...")
    with lock.hold("INC-42") as holder:      # acquire(), then release() on the way out
        ...

or ``holder = lock.acquire("INC-42")`` ... ``lock.release()``. The lock file is
``<lock_dir>/<safe-name>.lock``, where the safe name is a slug of the key (default: `environment`) plus a
short sha256 of it, so any string gives a valid, distinct file name. The wrapper keys it by the platform
itself (`rollbackctl.target`), so every spelling of one inventory takes the same lock.

Exclusion is the kernel's: the holder keeps an exclusive `fcntl.flock` on the lock file for as long as
it holds the lock, and the kernel drops it when the holder's process ends, however it ends (SIGKILL
included). The file itself holds a JSON record of the holder for people: incident_id, pid, hostname,
user, started_at (UTC, ISO 8601), command (redacted) and process_start (boot id and start time of the
process, read from /proc, to tell a reused pid apart).

Taking the lock: the record is written to a private temporary file (O_CREAT|O_EXCL, mode 0600) that is
flocked, then hard-linked to the lock path (which fails if the lock exists), so the lock file never
appears half-written or unlocked. When it exists, it is opened and flocked without waiting:

- the flock is taken by somebody else: a live holder. `LockHeld` (exit code 5) names it from the file;
  a live holder's lock is never broken;
- the flock is free but the file still names a holder: that holder ended without releasing (a crashed
  or killed rollback). Its record is judged:
  - its process still runs on this host (an older rollbackctl that did not flock): `LockHeld`;
  - it ran on another host: that cannot be checked from here, so the lock is treated as held:
    `LockHeld`, which says so and mentions ``--break-lock`` (``break_stale=True`` takes it over);
  - it is gone (stale): `LockStale` (a LockHeld, exit code 5) naming the dead holder, unless
    ``take_over_from`` is the holder's incident (a resume) or ``break_stale`` is set;
- the file cannot be parsed (empty, not JSON, not a holder record): `LockStale` naming the file and
  the problem; it is never replaced silently, only with ``break_stale``;
- the file cannot be opened at all (permissions, not a file): `LockHeld` naming the file and why.

A takeover rewrites the file in place under the flock, so two processes racing to break the same stale
lock cannot both win: the loser finds the flock taken. The new holder's `broke` / `broke_reason`
fields record what was replaced.

`release()` removes the lock file, then drops the flock, only if the file still holds this process's
own record (same pid, hostname, incident and start time); it never removes somebody else's lock.
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
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from .errors import LockHeld, LockStale, UsageError
from .redact import redact_text

BREAK_OPTION = "--break-lock"
_PATIENCE = 2.0  # seconds to wait for a lock changing hands (a holder writing its record) before refusing
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

    def __init__(self, lock_dir: Path, environment: str, key: str | None = None):
        """`environment` names it in messages; `key` (default: `environment`) names the lock file."""
        self.lock_dir = Path(lock_dir)
        self.environment = str(environment)
        self.path = self.lock_dir / f"{safe_name(key or self.environment)}.lock"
        self._held: LockHolder | None = None
        self._fd: int | None = None  # the flocked lock file while held (a bare fd: never closed by the GC)

    # -- public API ---------------------------------------------------------------------------------

    def acquire(self, incident_id: str, *, take_over_from: str | None = None, break_stale: bool = False) -> LockHolder:
        """Take the lock for `incident_id` and return the holder record written.

        `take_over_from`: the incident being resumed; its stale lock is taken over. `break_stale`: take
        over a stale or unusable lock file, or one held on another host (the operator vouches it is gone).
        Raises LockHeld when the holder is alive (or on another host) or the file cannot be opened,
        LockStale when the holder is gone or the file unusable and neither option applies, UsageError
        for an empty incident id.
        """
        if not incident_id or not incident_id.strip():
            raise UsageError("an incident id is needed to take the environment lock")
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = self._new_record(incident_id.strip())
        deadline = time.monotonic() + _PATIENCE
        while (now := time.monotonic()) < deadline + _PATIENCE:
            fd = self._create(record)
            if fd is not None:
                return self._took(record, fd)
            taken = self._take_existing(record, take_over_from, break_stale, patient=now < deadline)
            if taken is not None:
                return taken
            time.sleep(0.02)
        raise LockHeld(f"the lock on {self.environment} kept changing hands while taking it; try again",
                       lock_file=self.path)

    def release(self) -> bool:
        """Remove the lock file if it still holds this process's record; return whether it was removed."""
        held, fd = self._held, self._fd
        self._held, self._fd = None, None
        if held is None or fd is None:
            return False
        try:
            if held.pid != os.getpid():
                return False  # a forked child: the lock is its parent's
            current = self.holder()
            if current is None or not _same_owner(current, held) or not self._is_current(fd):
                return False
            self.path.unlink(missing_ok=True)  # while still flocked: nobody takes the lock in between
            return True
        finally:
            os.close(fd)  # drops the flock

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
            return _parse(self.path.read_bytes())
        except (OSError, ValueError):
            return None

    def status(self) -> dict:
        """For display: environment, lock_file, state (free|held|foreign|stale|corrupt), holder, problem, message."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"environment": self.environment, "lock_file": str(self.path), "state": "free", "holder": None,
                    "problem": "", "message": f"{self.environment} is not locked"}
        except OSError as exc:
            return {"environment": self.environment, "lock_file": str(self.path), "state": "corrupt",
                    "holder": None, "problem": _os_problem(exc), "message": self._unopenable(exc)}
        verdict = self._judge(raw)
        if self._flocked():
            verdict = _held(verdict)
        return {
            "environment": self.environment, "lock_file": str(self.path), "state": verdict.state,
            "holder": verdict.holder.to_dict() if verdict.holder else None, "problem": verdict.problem,
            "message": self._message(verdict),
        }

    # -- taking an existing lock --------------------------------------------------------------------

    def _take_existing(self, record: LockHolder, take_over_from: str | None, break_stale: bool,
                       patient: bool) -> LockHolder | None:
        """Take over the existing lock file, or raise why not; None to try again (it changed hands)."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return None  # released in the meantime: create it again
        except OSError as exc:
            raise LockHeld(self._unopenable(exc), lock_file=self.path) from None
        keep = False
        try:
            locked = _try_flock(fd)
            if not self._is_current(fd):
                return None  # released (unlinked) or replaced between open and flock
            raw = _read_all(fd)
            verdict = self._judge(raw)
            if not locked:  # a live process holds the flock
                if patient and verdict.state in ("stale", "corrupt"):
                    return None  # its new holder is still writing its record: look again
                verdict = _held(verdict)
                raise LockHeld(self._message(verdict), holder=verdict.holder, lock_file=self.path)
            reason = self._takeover_reason(verdict, take_over_from, break_stale)  # raises when it may not
            taken = replace(record, broke=_flat(verdict.holder) if verdict.holder else None, broke_reason=reason)
            _overwrite(fd, taken)
            keep = True
            return self._took(taken, fd)
        finally:
            if not keep:
                os.close(fd)

    def _judge(self, raw: bytes) -> _Verdict:
        """What the file's content says, when nobody holds its flock."""
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
            what = "an unusable lock file" if verdict.state == "corrupt" else "the lock"
            return f"broken with {BREAK_OPTION}: {what}: {verdict.problem}"
        resuming = verdict.holder is not None and take_over_from == verdict.holder.incident_id
        if resuming and verdict.state == "stale":
            return f"resumed incident {take_over_from}: {verdict.problem}"
        message = self._message(verdict, take_over_from)
        if verdict.state == "foreign":
            raise LockHeld(message, holder=verdict.holder, lock_file=self.path)
        raise LockStale(message, holder=verdict.holder, lock_file=self.path)

    # -- messages -----------------------------------------------------------------------------------

    def _message(self, verdict: _Verdict, take_over_from: str | None = None) -> str:
        holder, where = verdict.holder, f"Lock file: {self.path}."
        if verdict.state == "corrupt":
            return (f"The lock on {self.environment} is stale or damaged: its lock file {self.path} is unusable "
                    f"({verdict.problem}), so nobody can be shown as holding it, and it is not replaced on its own. "
                    f"If no rollback is running against {self.environment}, re-run with {BREAK_OPTION} to replace "
                    "it.")
        if holder is None:
            return (f"Another process holds the lock on {self.environment} ({verdict.problem}): only one rollback at "
                    f"a time may run against an environment; a running holder's lock is never broken. {where}")
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

    def _unopenable(self, exc: OSError) -> str:
        return (f"The lock file {self.path} of {self.environment} cannot be opened ({_os_problem(exc)}), so whether "
                f"a rollback holds the environment cannot be checked. Fix or remove that file by hand; "
                f"{BREAK_OPTION} does not replace a file this user cannot open.")

    # -- files --------------------------------------------------------------------------------------

    def _new_record(self, incident_id: str) -> LockHolder:
        pid = os.getpid()
        return LockHolder(
            incident_id=incident_id, pid=pid, hostname=socket.gethostname(), user=_user(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"), command=_command(),
            process_start=process_start(pid),
        )

    def _took(self, record: LockHolder, fd: int) -> LockHolder:
        self._held, self._fd = record, fd
        return record

    def _is_current(self, fd: int) -> bool:
        """Whether `fd` is still the file at the lock path (not unlinked or replaced since it was opened)."""
        try:
            here, there = os.fstat(fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def _flocked(self) -> bool:
        """Whether a process holds the lock file's flock now (a shared probe, dropped at once)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            return not _try_flock(fd, fcntl.LOCK_SH)
        finally:
            os.close(fd)

    def _create(self, record: LockHolder) -> int | None:
        """Create the lock file holding `record`, flocked, if there is none: its fd, or None when one exists."""
        temp = self.lock_dir / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            _try_flock(fd)  # nobody else knows this file yet: always granted
            _overwrite(fd, record)
            os.link(temp, self.path)
        except FileExistsError:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            if exc.errno not in _NO_HARD_LINKS:
                raise
            return self._create_exclusive(record)
        finally:
            temp.unlink(missing_ok=True)
        return fd

    def _create_exclusive(self, record: LockHolder) -> int | None:
        """Fallback for file systems without hard links: O_CREAT|O_EXCL on the lock path, then flock and write.

        The file exists unlocked and empty for an instant; a process that looks at it then finds it unusable
        and refuses, which is safe.
        """
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        except FileExistsError:
            return None
        if not _try_flock(fd):
            os.close(fd)
            return None
        _overwrite(fd, record)
        return fd


def _held(verdict: _Verdict) -> _Verdict:
    """The verdict when a live process holds the flock: held, whatever the record says."""
    problem = "" if verdict.holder else f"its record cannot be read yet: {verdict.problem}"
    return _Verdict("held", verdict.holder, problem)


def _try_flock(fd: int, kind: int = fcntl.LOCK_EX) -> bool:
    """Take `kind` (exclusive by default) on `fd` without waiting; False when another holder has it."""
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _overwrite(fd: int, record: LockHolder) -> None:
    """Write `record` as the whole content of the flocked file `fd`, durably."""
    data = (json.dumps(record.to_dict(), indent=2) + "\n").encode("utf-8")
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def _os_problem(exc: OSError) -> str:
    return exc.strerror or str(exc)


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
