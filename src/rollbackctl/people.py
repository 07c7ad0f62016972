"""The people of an incident: who held which role, who acknowledged the rollback decision, and when.

The plan's "Initiate Rollback": the deployment lead announces the decision, "all team members acknowledge
receipt", and the lead assigns the roles. `start()` records the roster (`roster.Roster`) in the incident's
``people`` section; `acknowledge()` (``rollbackctl ack INCIDENT --as NAME``) adds one acknowledgement with its
time; `summary()` says who acknowledged, who of the roster did not, and the time from the announcement to
the last acknowledgement; `waiter()` is the optional wait after the announcement (``--ack-timeout``).

Acknowledgements arrive from other processes while a rollback runs and saves its record: every write of an
incident.json holds the incident's lock file (`record_lock`, an flock on ``.record.lock`` in its folder) and
first folds in the acknowledgements already on disk (`merge_acknowledgements`), so that neither a concurrent
``ack`` nor the running rollback loses one. incident.json itself is replaced atomically (`files.write_atomic`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import inputs
from .errors import RecordInvalid, UsageError
from .times import maybe_time, utcnow

if TYPE_CHECKING:
    from .record import IncidentRecord
    from .roster import Roster

LOCK_NAME = ".record.lock"
#: The longest wait for acknowledgements a run accepts (a wait is never open-ended).
ACK_TIMEOUT_MAX = 3600
_local = threading.local()  # the record locks this thread holds (re-entrant: ack saves under its own lock)


@contextlib.contextmanager
def record_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold the incident folder's lock (exclusive flock on ``.record.lock``); re-entrant within a thread. Other
    threads and processes wait (each takes the lock through its own open file, and flock locks those apart)."""
    key = os.path.realpath(folder)
    _held = _local.__dict__.setdefault("held", {})
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = os.open(Path(folder) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _on_disk(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "incident.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    people = data.get("people") if isinstance(data, dict) else None
    return people if isinstance(people, dict) else None


def _empty() -> dict[str, Any]:
    return {"source": None, "roles": [], "decision_authority": [], "acknowledgements": []}


def _add(acks: list[dict[str, Any]], ack: dict[str, Any]) -> bool:
    """Add `ack` unless its person already acknowledged (the first time is kept); whether it was added."""
    key = inputs.person_key(ack.get("name", ""))
    if any(inputs.person_key(a.get("name", "")) == key for a in acks):
        return False
    acks.append(ack)
    return True


def merge_acknowledgements(record: IncidentRecord) -> None:
    """Fold the acknowledgements of the incident.json on disk into `record` (call it holding `record_lock`)."""
    disk = _on_disk(record.path)
    if not disk or not isinstance(disk.get("acknowledgements"), list):
        return
    people = record.data.setdefault("people", _empty())
    for ack in disk["acknowledgements"]:
        if isinstance(ack, dict) and isinstance(ack.get("name"), str) and ack.get("at"):
            _add(people["acknowledgements"], dict(ack))
    people["acknowledgements"].sort(key=lambda a: a["at"])


def start(record: IncidentRecord, roster: Roster | None) -> None:
    """Record the roster (who holds which role, the decision authority) in the incident."""
    if roster is None:
        return
    record.data["people"] = {**roster.to_dict(), "acknowledgements": [], "ack_wait": None}
    record.save()


def _roles_of(people: dict[str, Any], name: str) -> list[str]:
    key = inputs.person_key(name)
    return [r["role"] for r in people.get("roles", []) if inputs.person_key(r["name"]) == key]


def acknowledge(folder: str | os.PathLike, name: str, *, at: str | None = None, secrets=()) -> tuple[dict, bool]:
    """Record that `name` acknowledged the rollback of the incident in `folder`: (the acknowledgement, whether it
    is new). One acknowledgement per person (names compared as `inputs.person_key`); the first time is kept."""
    from .record import IncidentRecord, schema_problems

    name = inputs.person_name(name, "--as")
    problems = schema_problems(IncidentRecord.load(folder, secrets).data)  # before the lock file is made
    if problems:
        raise RecordInvalid(
            f"cannot record an acknowledgement: {Path(folder) / 'incident.json'} does not match the "
            f"incident schema ({'; '.join(problems[:3])})"
        )
    with record_lock(folder):
        record = IncidentRecord.load(folder, secrets)
        people = record.data.setdefault("people", _empty())
        ack = {"name": name, "at": at or utcnow(), "roles": _roles_of(people, name)}
        added = _add(people["acknowledgements"], ack)
        if not added:
            key = inputs.person_key(name)
            return next(a for a in people["acknowledgements"] if inputs.person_key(a["name"]) == key), False
        record.save()
    return ack, True


def _reference(data: dict[str, Any]) -> tuple[str | None, str]:
    """When the decision was announced (the announce phase's end), else when the record was made."""
    for phase in data.get("phases", []):
        if phase.get("name") == "announce" and phase.get("status") == "ok" and phase.get("ended_at"):
            return phase["ended_at"], "the announcement"
    return data.get("created_at"), "the start of the incident"


def summary(data: dict[str, Any]) -> dict[str, Any] | None:
    """Who acknowledged (name, at, roles), who in the roster did not, the last time and the time to it from the
    announcement (seconds); None when the record has no people section."""
    people = data.get("people")
    if not isinstance(people, dict):
        return None
    acks = sorted(people.get("acknowledgements", []), key=lambda a: a["at"])
    acked = {inputs.person_key(a["name"]) for a in acks}
    missing: list[str] = []
    for role in people.get("roles", []):
        if inputs.person_key(role["name"]) not in acked and role["name"] not in missing:
            missing.append(role["name"])
    reference, label = _reference(data)
    last = acks[-1]["at"] if acks else None
    start, end = maybe_time(reference), maybe_time(last)
    seconds = round(max(0.0, (end - start).total_seconds()), 1) if start and end else None
    return {
        "acknowledged": acks,
        "missing": missing,
        "last_at": last,
        "seconds_to_last": seconds,
        "reference": label,
        "ack_wait": people.get("ack_wait"),
    }


def check_ack_timeout(value: Any, option: str = "--ack-timeout") -> float:
    """Seconds to wait for acknowledgements: a finite number from 0 (do not wait) to `ACK_TIMEOUT_MAX`."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{option}: {str(value)[:60]!r} is not a number of seconds (0: do not wait)") from None
    if not math.isfinite(seconds) or seconds < 0 or seconds > ACK_TIMEOUT_MAX:
        raise UsageError(f"{option}: {str(value)[:60]!r} is out of range: 0 (do not wait) to {ACK_TIMEOUT_MAX} seconds")
    return seconds


def _cancelled() -> bool:
    """Whether the run's signal handler (orchestrator.Cancelled) has seen SIGINT/SIGTERM."""
    handler = signal.getsignal(signal.SIGINT)
    owner = getattr(handler, "__self__", None)
    return bool(owner is not None and callable(owner) and getattr(owner, "event", None) is not None and owner())


def wait_for_acknowledgements(
    record: IncidentRecord,
    timeout: float,
    console=None,
    *,
    poll: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Wait at most `timeout` seconds for everyone in the roster to acknowledge; the result (also recorded in
    ``people.ack_wait``): all_acknowledged, timed_out or interrupted. The rollback goes on in every case."""
    people = record.data["people"]
    deadline = clock() + timeout
    wait = {"timeout_seconds": timeout, "started_at": utcnow(), "ended_at": None, "result": "waiting", "missing": []}
    people["ack_wait"] = wait
    first, saved = True, None
    while True:
        with record_lock(record.path):
            merge_acknowledgements(record)
            missing = summary(record.data)["missing"]
            wait["missing"] = missing
            result = (
                "all_acknowledged"
                if not missing
                else "interrupted"
                if _cancelled()
                else "timed_out"
                if clock() >= deadline
                else None
            )
            if result:
                wait.update(result=result, ended_at=utcnow())
            if result or missing != saved:  # written when something changed, not at every poll
                record.save()
                saved = missing
        if result:
            break
        if first and console is not None:
            console.info(
                f"waiting up to {timeout:g}s for acknowledgements from {', '.join(missing)} "
                f"(rollbackctl ack {record.incident_id} --as NAME)"
            )
            first = False
        time.sleep(max(0.0, min(poll, deadline - clock())))
    if console is not None and result != "all_acknowledged":
        console.warn(
            f"acknowledgements: {result.replace('_', ' ')}; not acknowledged: {', '.join(missing)}; the "
            "rollback goes on"
        )
    return result


def waiter(timeout: float, console=None) -> Callable[[str, IncidentRecord], None] | None:
    """The orchestrator's `on_phase_done` hook that waits after the announcement; None when `timeout` is 0.
    Never in check mode, never for the emergency procedure, never without a roster."""
    if not timeout:
        return None

    def after(phase: str, record: IncidentRecord) -> None:
        data = record.data
        if (
            phase != "announce"
            or data.get("procedure") == "emergency"
            or data.get("mode") == "check"
            or not (data.get("people") or {}).get("roles")
        ):
            return
        wait_for_acknowledgements(record, timeout, console)

    return after
