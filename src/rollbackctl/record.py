"""The incident record: one folder per rollback with incident.json, incident.md, events.jsonl and logs.

One implementation for both writers: the wrapper (`rollbackctl run|resume|rehearse`) and the callback
plugin (`plugins/callback/rollback_record.py`, when rollback.yml runs under ansible-playbook or AWX).
Everything written passes through `redact` first; incident.json is validated against the JSON Schema
shipped in the package before it replaces the previous version.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from . import inputs
from . import phases as phase_table
from .errors import IncidentExists, RecordInvalid, RollbackctlError, UsageError
from .files import write_atomic
from .redact import redact, redact_text
from .times import maybe_time, parse_time, utcnow

__all__ = ["IncidentRecord", "RecordInvalid", "load_schema", "make_incident_id", "read_record", "schema_problems",
           "utcnow", "validate"]

SCHEMA_VERSION = 1
#: A release version as the schema has it.
_VERSION = re.compile(r"^v[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}$")
PHASE_DONE = ("ok", "skipped")
# The phases that communicate, and the event their checklist item needs delivered to count as done.
NOTIFY_EVENTS = {"announce": "rollback_started", "notify_done": "rollback_completed"}


def make_incident_id(to_version: str | None, kind: str = "rollback", now: datetime | None = None) -> str:
    """`<UTC timestamp>-<slug>`, e.g. 20261128T161600Z-rollback-v0.9.0."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{kind}-{to_version or 'unknown'}").strip("-")
    return f"{stamp}-{slug}"[:128]


def load_schema() -> dict:
    return json.loads(resources.files("rollbackctl").joinpath("schemas/incident.schema.json").read_text())


#: The schema's own format: a UTC time the wrapper can compute with (`times.parse_time`: a real date, 1970-8999).
TIME_FORMAT = "utc-time"


@functools.cache
def _validator():
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    checker.checks(TIME_FORMAT, raises=ValueError)(lambda value: not isinstance(value, str) or bool(parse_time(value)))
    return jsonschema.Draft202012Validator(load_schema(), format_checker=checker)


def _problems(data: Any) -> list[tuple[str, str]]:
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    return [("/".join(str(p) for p in e.absolute_path) or "(root)", e.message) for e in errors]


def schema_problems(data: Any) -> list[str]:
    """Where `data` does not match the incident schema, as ``path: message``, in path order; [] when valid."""
    return [f"{where}: {message}" for where, message in _problems(data)]


def validate(data: Mapping[str, Any]) -> None:
    """Raise RecordInvalid naming the first problem (jsonschema, Draft 2020-12)."""
    problems = _problems(data)
    if problems:
        where, message = problems[0]
        raise RecordInvalid(f"incident record invalid at {where}: {message}")


def read_record(folder: str | os.PathLike) -> dict[str, Any]:
    """The data of `folder`/incident.json; RollbackctlError naming the file when it cannot be read."""
    source = Path(folder) / "incident.json"
    try:
        text = source.read_bytes()
    except OSError as exc:
        raise RollbackctlError(f"cannot read the incident record {source}: {exc.strerror or exc}") from exc
    try:  # truncated, not JSON, nested too deeply, numbers Python refuses: all one message
        data = inputs.parse_json(text, f"cannot read the incident record {source}", top=None)
    except UsageError as exc:
        raise RollbackctlError(str(exc)) from None
    if not isinstance(data, dict):
        raise RollbackctlError(f"{source} is not an incident record (not a JSON object)")
    return data


def _new_phase(phase: phase_table.Phase) -> dict[str, Any]:
    return {
        "name": phase.name, "title": phase.title, "status": "pending", "started_at": None, "ended_at": None,
        "duration_seconds": None, "estimate": phase.estimate.to_dict() if phase.estimate else None,
        "within_estimate": None, "hosts_changed": [], "changed": 0, "playbooks": [], "attempts": [],
        "error": None, "note": None,
    }


def _as_bool(value: Any) -> bool:
    """set_stats values may arrive as strings ("True") depending on templating."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class IncidentRecord:
    """A record on disk; mutate through the methods, then `save()`."""

    def __init__(self, path: Path, data: dict[str, Any], secrets: Iterable[str] = ()):
        self.path = Path(path)
        self.data = data
        self.secrets = [s for s in secrets if s]

    # --- creation and loading ------------------------------------------------------------------

    @classmethod
    def create(cls, base: str | os.PathLike, incident_id: str, *, kind: str = "rollback", writer: str = "rollbackctl",
               mode: str = "run", procedure: str = "standard", inventory: str, environment: str | None = None,
               hosts: Mapping[str, list[str]] | None = None, reason: str = "", to_version: str | None,
               authority: Mapping[str, Any], database: str = "auto", triggers: Mapping | None = None,
               decision: Mapping | None = None, phase_names: Iterable[str] = phase_table.NAMES,
               secrets: Iterable[str] = (), departures: Iterable[Mapping[str, Any]] = ()) -> IncidentRecord:
        inputs.identifier(incident_id, "incident id")  # before any folder is made from it (wrapper and callback)
        path = Path(base) / incident_id
        if (path / "incident.json").exists():
            raise IncidentExists(f"incident {incident_id} already has a record in {path}")
        now = utcnow()
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "incident_id": incident_id, "kind": kind, "writer": writer,
            "mode": mode, "procedure": procedure, "created_at": now, "updated_at": now,
            "environment": {"inventory": str(inventory), "name": environment, "hosts": dict(hosts or {})},
            "reason": reason, "from_version": None, "to_version": to_version,
            "triggers": dict(triggers) if triggers else None, "decision": dict(decision) if decision else None,
            "authority": dict(authority),
            "database": {"requested": database, "restore": None, "reason": None, "target_schema": None,
                         "database_schema": None, "backup_name": None},
            "phases": [_new_phase(phase_table.get(name)) for name in phase_names],
            "checklist": [{"item": item, "done": False, "at": None, "note": None} for item in phase_table.CHECKLIST],
            "backup": None, "pre_restore_snapshot": None, "verifications": [], "notifications": [], "logs": [],
            "outcome": {"status": "in_progress", "summary": "rollback in progress", "next_step": None,
                        "ended_at": None, "duration_seconds": None},
            "rehearsal": None,
            "follow_up": {"root_cause": None, "tickets": [], "retry_plan": None, "notes": None},
        }
        if departures:
            data["departures"] = [dict(d) for d in departures]
        record = cls(path, data, secrets)
        record.tick(phase_table.CHECK_INCIDENT_REPORT, note=f"{path.name}/incident.json", at=now)
        validate(record.rendered())  # a record that could not be saved creates no folder
        path.mkdir(parents=True, exist_ok=True, mode=0o750)
        record.save()
        return record

    @classmethod
    def load(cls, path: str | os.PathLike, secrets: Iterable[str] = ()) -> IncidentRecord:
        return cls(Path(path), read_record(path), secrets)

    @property
    def incident_id(self) -> str:
        return self.data["incident_id"]

    # --- phases ----------------------------------------------------------------------------------

    def phase(self, name: str) -> dict[str, Any]:
        for phase in self.data["phases"]:
            if phase["name"] == name:
                return phase
        phase = _new_phase(phase_table.get(name))
        self.data["phases"].append(phase)
        return phase

    def next_phase(self) -> str | None:
        """The first phase not done yet (pending, failed, interrupted or still marked running)."""
        for phase in self.data["phases"]:
            if phase["status"] not in PHASE_DONE:
                return phase["name"]
        return None

    def start_phase(self, name: str, playbooks: Iterable[str] = (), at: str | None = None) -> None:
        phase = self.phase(name)
        now = at or utcnow()
        phase["status"] = "running"
        phase["error"] = None
        phase["started_at"] = phase["started_at"] or now
        phase["ended_at"] = None
        for playbook in playbooks:
            if playbook not in phase["playbooks"]:
                phase["playbooks"].append(playbook)
        phase["attempts"].append({"started_at": now, "ended_at": None, "status": "running", "error": None,
                                  "artifacts": []})

    def finish_phase(self, name: str, status: str, *, hosts_changed: Iterable[str] = (), changed: int = 0,
                     error: str | None = None, note: str | None = None, artifacts: Iterable[str] = (),
                     at: str | None = None) -> None:
        phase = self.phase(name)
        now = at or utcnow()
        if not phase["attempts"] or phase["attempts"][-1]["status"] != "running":
            self.start_phase(name, at=now)
        attempt = phase["attempts"][-1]
        attempt.update({"ended_at": now, "status": status, "error": error})
        attempt["artifacts"].extend(artifacts)
        phase["status"] = status
        phase["ended_at"] = now
        phase["error"] = error
        if note:
            phase["note"] = note
        phase["hosts_changed"] = sorted(set(phase["hosts_changed"]) | set(hosts_changed))
        phase["changed"] += int(changed)
        self._measure(phase)
        item = phase_table.get(name).checklist if name in phase_table.BY_NAME else None
        if item and status in PHASE_DONE and not self.mode_check:
            event = NOTIFY_EVENTS.get(name)
            if status == "ok" and event and not self.notified(event):
                self.annotate(item, f"nobody was notified of {event}: no notification channel is configured "
                                    "(chatbot_notify_webhook_url, chatbot_statuspage_page_id)")
            else:
                self.tick(item, note=note if status == "skipped" else None, at=now)

    def skip_phase(self, name: str, note: str) -> None:
        """One attempt, started and ended now, skipped for the reason given."""
        self.finish_phase(name, "skipped", note=note, at=utcnow())

    def interrupt_running(self, note: str) -> list[str]:
        """Mark every phase still `running` as interrupted (a run that died); returns their names."""
        names = []
        for phase in self.data["phases"]:
            if phase["status"] == "running":
                self.finish_phase(phase["name"], "interrupted", error=note)
                names.append(phase["name"])
        return names

    @staticmethod
    def _measure(phase: dict[str, Any]) -> None:
        total = 0.0
        for attempt in phase["attempts"]:
            start, end = maybe_time(attempt["started_at"]), maybe_time(attempt["ended_at"])
            if start and end:
                total += max(0.0, (end - start).total_seconds())
        phase["duration_seconds"] = round(total, 1)
        estimate = phase.get("estimate")
        phase["within_estimate"] = (total <= estimate["max_minutes"] * 60) if estimate and phase["status"] == "ok" \
            else None

    @property
    def mode_check(self) -> bool:
        return self.data["mode"] == "check"

    # --- checklist, results --------------------------------------------------------------------

    def tick(self, item: str, *, note: str | None = None, at: str | None = None) -> None:
        for entry in self.data["checklist"]:
            if entry["item"] == item:
                if not entry["done"]:
                    entry.update({"done": True, "at": at or utcnow()})
                if note:
                    entry["note"] = note
                return
        raise KeyError(item)

    def notified(self, event: str) -> bool:
        """Whether a notification of `event` reached at least one channel in this incident."""
        return any(n.get("event") == event and n.get("status") in ("sent", "already_sent")
                   for n in self.data["notifications"])

    def annotate(self, item: str, note: str) -> None:
        for entry in self.data["checklist"]:
            if entry["item"] == item:
                entry["note"] = note

    def apply_stats(self, stats: Mapping[str, Any], phase: str | None = None) -> None:
        """Fold what the phase playbooks publish with set_stats into the record."""
        if not stats:
            return
        preflight = stats.get("preflight")
        if isinstance(preflight, Mapping):
            self.set_preflight(preflight)
        rollback = stats.get("rollback")
        if isinstance(rollback, Mapping):  # preflight's verdict: is there anything to roll back?
            self.data["environment"]["from_versions"] = dict(rollback.get("from_versions") or {})
            self.data["environment"]["rollback_needed"] = (_as_bool(rollback.get("needed", True))
                                                           or bool(self.data["database"]["restore"]))
        backup = stats.get("backup")
        if isinstance(backup, Mapping) and backup.get("manifest"):
            self.data["backup"] = {"manifest": backup["manifest"], "sha256": backup.get("sha256"),
                                   "size": _as_int(backup.get("size")), "created_at": backup.get("created_at"),
                                   "host": backup.get("host")}
        restore = stats.get("database_restore")
        if isinstance(restore, Mapping) and restore.get("pre_restore_snapshot"):
            earlier = self.data["pre_restore_snapshot"] or {}
            same = earlier.get("manifest") == restore["pre_restore_snapshot"]  # an attempt that restored reported it
            self.data["pre_restore_snapshot"] = {
                "manifest": restore["pre_restore_snapshot"], "sha256": restore.get("pre_restore_snapshot_sha256"),
                "host": restore.get("host"),
                "restored": list(restore.get("restored") or (earlier.get("restored", []) if same else [])),
                "dropped": list(restore.get("dropped") or (earlier.get("dropped", []) if same else []))}
            if restore.get("backup_manifest"):
                backup_entry = self.data["backup"] or {"manifest": restore["backup_manifest"]}
                backup_entry.setdefault("sha256", restore.get("backup_sha256"))
                self.data["backup"] = backup_entry
        for scope, hosts in (stats.get("verification") or {}).items():
            for host, checks in (hosts or {}).items():
                for check in checks or []:
                    entry = {"phase": phase, "scope": str(scope), "host": str(host), **dict(check)}
                    entry["scope"] = str(check.get("scope") or scope)
                    entry["unit"] = entry.get("unit") if entry.get("unit") is not None else ""
                    self.data["verifications"].append(entry)
        for note in stats.get("notifications") or []:
            if isinstance(note, Mapping) and note not in self.data["notifications"]:
                self.data["notifications"].append(dict(note))
        drain = stats.get("maintenance_drain")
        if isinstance(drain, Mapping):
            self.data.setdefault("environment", {}).setdefault("maintenance_drain", {}).update(drain)

    def set_preflight(self, preflight: Mapping[str, Any]) -> None:
        """What preflight found: the release the hosts run, schemas, and whether the database is restored."""
        if preflight.get("from_version"):
            self.data["from_version"] = str(preflight["from_version"])
        target = preflight.get("to_version")
        if not self.data.get("to_version") and isinstance(target, str) and _VERSION.match(target):
            # Under plain ansible-playbook the target may be a play variable (a rehearsal's import), not an
            # extra var the callback could read when it created the record: preflight says which it was.
            self.data["to_version"] = target
        database = self.data["database"]
        database["target_schema"] = _as_int(preflight.get("target_schema"))
        database["database_schema"] = _as_int(preflight.get("database_schema"))
        database["restore"] = _as_bool(preflight.get("database_restore"))
        requested = database["requested"]
        if requested == "yes":
            database["reason"] = "asked for (--database yes)"
        elif requested == "no":
            database["reason"] = "refused (--database no)"
        elif database["restore"]:
            database["reason"] = (f"the target needs schema {database['target_schema']}, "
                                  f"the database has {database['database_schema']}")
        else:
            database["reason"] = (f"the database schema ({database['database_schema']}) suits the target "
                                  f"(schema {database['target_schema']})")
        if preflight.get("backup_sha256") and preflight.get("backup_manifest"):
            self.data["backup"] = {"manifest": str(preflight["backup_manifest"]), "sha256": preflight["backup_sha256"],
                                   "size": None, "created_at": preflight.get("backup_created_at"),
                                   "host": preflight.get("host")}

    def conclude(self) -> None:
        """The outcome of a run whose every phase is done: rolled back, or nothing to roll back."""
        data = self.data
        if not data["environment"].get("rollback_needed", True):
            self.set_outcome("nothing_to_do", f"the platform already ran {data['to_version']}; verified it")
            return
        restored = " and the database restored" if data["database"]["restore"] else ""
        self.set_outcome("succeeded", f"rolled back from {data.get('from_version') or '?'} to "
                                      f"{data['to_version']}{restored}; verified; maintenance mode off")

    def add_log(self, host: str, source: str, file: str, lines: int | None = None) -> None:
        entry = {"host": host, "source": source, "file": file, "lines": lines}
        if entry not in self.data["logs"]:
            self.data["logs"].append(entry)

    def set_outcome(self, status: str, summary: str, next_step: str | None = None) -> None:
        now = utcnow()
        start = maybe_time(self.data["created_at"])
        self.data["outcome"] = {
            "status": status, "summary": summary, "next_step": next_step,
            "ended_at": None if status == "in_progress" else now,
            "duration_seconds": None if status == "in_progress" or start is None
            else round((maybe_time(now) - start).total_seconds(), 1),
        }

    # --- files ---------------------------------------------------------------------------------

    def add_event(self, event: Mapping[str, Any]) -> None:
        """Append one runner/callback event, redacted, to events.jsonl."""
        line = json.dumps(redact(dict(event), self.secrets), default=str, sort_keys=True)
        events = self.path / "events.jsonl"
        fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        with os.fdopen(fd, "a") as handle:
            handle.write(line + "\n")

    def write_text(self, relative: str, text: str) -> Path:
        """A redacted text file inside the record (collected logs)."""
        target = (self.path / relative).resolve()
        if self.path.resolve() not in target.parents:
            raise ValueError(f"{relative!r} is outside the incident folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, redact_text(text, self.secrets), mode=0o640)
        return target

    def adopt_logs(self) -> None:
        """List the logs collect_logs.yml wrote into logs/<host>/, re-writing them through this record's
        redaction (it knows the incident's secret values)."""
        for path in sorted((self.path / "logs").glob("*/*.log")):
            text = path.read_text(errors="replace")
            relative = str(path.relative_to(self.path))
            self.write_text(relative, text)
            self.add_log(path.parent.name, path.stem, relative, text.count("\n"))

    def rendered(self) -> dict[str, Any]:
        """The data as written: redacted, with updated_at refreshed."""
        self.data["updated_at"] = utcnow()
        return redact(self.data, self.secrets)  # a redacted copy; self.data is left as it is

    def save(self) -> Path:
        from .people import merge_acknowledgements, record_lock

        with record_lock(self.path):  # `rollbackctl ack` writes the same file: neither loses the other's writes
            merge_acknowledgements(self)
            data = self.rendered()
            validate(data)
            write_atomic(self.path / "incident.json", json.dumps(data, indent=2, sort_keys=False) + "\n",
                         mode=0o640)
            write_atomic(self.path / "incident.md", self._markdown(data), mode=0o640)
        return self.path / "incident.json"

    def _markdown(self, data: dict[str, Any]) -> str:
        """incident.md; a rollback never stops because its human-readable copy cannot be made."""
        try:
            from .report import render_markdown

            return render_markdown(data)
        except Exception as exc:  # incident.json is written: say what failed instead of failing the run
            return (f"# Incident {self.incident_id}\n\nThe report could not be rendered ({type(exc).__name__}: "
                    f"{exc}). The record is incident.json in this folder; `rollbackctl report {self.incident_id}` "
                    "renders it again.\n")
