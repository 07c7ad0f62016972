"""The incident record under AWX: where it is written, and the summary a job hands back.

Under AWX a job runs in a private data dir that is deleted when the job ends (project copy, inventory,
artifacts). A record written into the project - the default on a workstation - would be deleted with it. So
under AWX (``JOB_ID`` or ``AWX_ISOLATED_DATA_DIR`` in the environment) the rollback_record callback writes where
the job is told to:

1. the extra var ``rollback_incidents_dir`` (set in the job template's extra_vars by the AWX administrator), else
2. ``$ROLLBACKCTL_INCIDENTS_DIR`` (injected by the custom credential "Rollback incident store"),

each meant to be a persistent volume mounted into the execution environment. A configured folder is used when it
exists or its parent does (the mount point); otherwise the volume is not mounted, and the record would vanish
as surely as in the private data dir. With no usable folder the callback falls back to
``$AWX_ISOLATED_DATA_DIR/incidents`` (the job's artifacts dir) and warns loudly: that copy is deleted with the
private data dir, so what survives is the job's artifacts (``set_stats`` ``rollback_summary``, see
``summary``) and the markdown summary at the end of the job's output. It does not refuse to run: a rollback
that is needed is not stopped because its record has no home, but the job says so. Plain ansible-runner sets
``AWX_ISOLATED_DATA_DIR`` too: without ``JOB_ID`` the same rule applies, but its artifacts dir is kept, so the
record there counts as persistent and the warning says where it went.

Outside AWX: the extra var, then ``$ROLLBACKCTL_INCIDENTS_DIR``, then ``incidents/`` in the project, as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .redact import redact, redact_text

INCIDENTS_VAR = "rollback_incidents_dir"
INCIDENTS_ENV = "ROLLBACKCTL_INCIDENTS_DIR"
AWX_ENV = ("JOB_ID", "AWX_ISOLATED_DATA_DIR")
SUMMARY_KEY = "rollback_summary"


@dataclass(frozen=True)
class Where:
    """Where the record goes and whether it outlives the job."""

    path: Path
    source: str  # extra_var, env, project, artifacts
    persistent: bool
    warning: str | None = None


def under_awx(env: Mapping[str, str]) -> bool:
    return any(env.get(name) for name in AWX_ENV)


def _usable(folder: Path) -> bool:
    return folder.is_dir() or folder.parent.is_dir()


def incidents_dir(
    extra_vars: Mapping[str, Any], env: Mapping[str, str], project: str | os.PathLike | None, option: str | None = None
) -> Where:
    """Where the incident folders are written (see the module docstring). `option` is the callback's
    incidents_dir option (itself read from $ROLLBACKCTL_INCIDENTS_DIR), when the caller has it."""
    candidates = []
    if extra_vars.get(INCIDENTS_VAR):
        candidates.append((str(extra_vars[INCIDENTS_VAR]), "extra_var", f"the extra var {INCIDENTS_VAR}"))
    configured = option or env.get(INCIDENTS_ENV)
    if configured:
        candidates.append((str(configured), "env", f"${INCIDENTS_ENV}"))
    if not under_awx(env):
        if candidates:
            return Where(Path(candidates[0][0]), candidates[0][1], True)
        return Where(Path(project or ".") / "incidents", "project", True)
    problems = []
    for folder, source, named in candidates:
        path = Path(folder)
        if not path.is_absolute():
            problems.append(f"{named} ({folder}) is not an absolute path")
        elif not _usable(path):
            problems.append(f"{named} ({folder}) does not exist, nor does its parent: is the volume mounted?")
        else:
            return Where(path, source, True)
    artifacts = env.get("AWX_ISOLATED_DATA_DIR")
    base = Path(artifacts) / "incidents" if artifacts else Path(project or ".") / "incidents"
    why = "; ".join(problems) if problems else f"neither the extra var {INCIDENTS_VAR} nor ${INCIDENTS_ENV} is set"
    if not env.get("JOB_ID"):  # ansible-runner itself (it sets AWX_ISOLATED_DATA_DIR): its artifacts dir is kept
        return Where(
            base,
            "artifacts",
            True,
            f"rollback_record: under ansible-runner, {why}. The incident record "
            f"goes to the runner's artifacts dir, {base}; under AWX that is deleted with the job.",
        )
    return Where(
        base,
        "artifacts" if artifacts else "project",
        False,
        f"rollback_record: under AWX, {why}. The incident record goes to {base}, which is deleted with the "
        f"job's private data dir: only the job's artifacts ({SUMMARY_KEY}) and the summary at the end of its "
        f"output remain. Mount a persistent volume and set {INCIDENTS_VAR} in the job template's extra vars "
        '(or attach the "Rollback incident store" credential).',
    )


def summary(data: Mapping[str, Any], where: Where | None = None, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The aggregate a job publishes with set_stats (its AWX artifacts): a record's essentials, redacted."""
    outcome = data.get("outcome") or {}
    environment = data.get("environment") or {}
    result = {
        "incident_id": data.get("incident_id"),
        "outcome": outcome.get("status"),
        "outcome_summary": outcome.get("summary"),
        "next_step": outcome.get("next_step"),
        "procedure": data.get("procedure"),
        "mode": data.get("mode"),
        "from_version": data.get("from_version"),
        "to_version": data.get("to_version"),
        "from_versions": dict(environment.get("from_versions") or {}),
        "database_restore": (data.get("database") or {}).get("restore"),
        "duration_seconds": outcome.get("duration_seconds"),
        "phases": [
            {
                "name": p.get("name"),
                "status": p.get("status"),
                "duration_seconds": p.get("duration_seconds"),
                "within_estimate": p.get("within_estimate"),
                "error": p.get("error"),
            }
            for p in data.get("phases") or []
        ],
        "checklist": [
            {"item": c.get("item"), "done": bool(c.get("done")), "at": c.get("at")} for c in data.get("checklist") or []
        ],
        "record": None,
        "record_persistent": None,
    }
    if where is not None:
        result["record"] = str(where.path / str(data.get("incident_id")))
        result["record_persistent"] = where.persistent
    return redact(result, secrets)


def no_record(incident_id: str | None, why: str) -> dict[str, Any]:
    """The summary when no record was written (the callback is off, or no rollback phase ran)."""
    return {"incident_id": incident_id, "outcome": "no_record", "outcome_summary": why, "phases": [], "checklist": []}


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def summary_markdown(data: Mapping[str, Any], secrets: Iterable[str] = ()) -> str:
    """A short markdown rendering of `summary()` for the end of a job's output."""
    lines = [f"## Rollback incident {data.get('incident_id')}: {data.get('outcome')}", ""]
    if data.get("outcome_summary"):
        lines.append(_cell(data["outcome_summary"]))
    if data.get("next_step"):
        lines.append(f"Next step: {_cell(data['next_step'])}")
    lines.append(
        f"Versions: {_cell(data.get('from_version') or '?')} -> {_cell(data.get('to_version') or '?')}; "
        f"database restored: {_cell(data.get('database_restore'))}; procedure: {_cell(data.get('procedure'))}"
    )
    lines += ["", "| phase | status | seconds | within estimate |", "|---|---|---|---|"]
    for phase in data.get("phases") or []:
        lines.append(
            f"| {_cell(phase['name'])} | {_cell(phase['status'])} | {_cell(phase['duration_seconds'])} | "
            f"{_cell(phase['within_estimate'])} |"
        )
    done = [c for c in data.get("checklist") or [] if c.get("done")]
    lines += ["", f"Checklist: {len(done)} of {len(data.get('checklist') or [])} items done"]
    lines += [f"- [{'x' if c.get('done') else ' '}] {_cell(c.get('item'))}" for c in data.get("checklist") or []]
    if data.get("record"):
        kept = "persistent" if data.get("record_persistent") else "NOT persistent: deleted with the job"
        lines += ["", f"Record: {data['record']} ({kept})"]
    return redact_text("\n".join(lines) + "\n", secrets)
