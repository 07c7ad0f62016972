"""Where rollbackctl keeps incident records and its own state."""

from __future__ import annotations

import os
from pathlib import Path

from . import inputs
from .errors import IncidentNotFound, UsageError
from .project import find_project

INCIDENTS_ENV = "ROLLBACKCTL_INCIDENTS_DIR"
STATE_ENV = "ROLLBACKCTL_STATE_DIR"
INCIDENT_ID_RE = inputs.IDENTIFIER_RE


def incidents_dir(explicit: str | os.PathLike | None = None) -> Path:
    """`--incidents-dir`, else $ROLLBACKCTL_INCIDENTS_DIR, else `incidents/` in the project.

    UsageError naming the option (or the variable) when it is empty (given explicitly) or is not a folder.
    """
    if explicit is not None:
        return inputs.directory(os.fspath(explicit), "--incidents-dir")
    chosen = os.environ.get(INCIDENTS_ENV)
    if chosen:
        return inputs.directory(chosen, f"${INCIDENTS_ENV}")
    return inputs.directory(str(find_project() / "incidents"), "incidents/ (the default incidents folder)")


def state_dir() -> Path:
    """Locks and other state: $ROLLBACKCTL_STATE_DIR, else $XDG_STATE_HOME/rollbackctl (~/.local/state).

    UsageError naming the variable when the folder (or a parent) is a file.
    """
    chosen = os.environ.get(STATE_ENV)
    if chosen:
        return inputs.directory(chosen, f"${STATE_ENV}")
    base = os.environ.get("XDG_STATE_HOME")
    if base:
        return inputs.directory(str(Path(base) / "rollbackctl"), "$XDG_STATE_HOME")
    return inputs.directory(str(Path.home() / ".local" / "state" / "rollbackctl"), "the state folder")


def valid_incident_id(incident_id: str) -> bool:
    return inputs.is_identifier(incident_id)


def check_new_incident(incident_id: str, base: Path, option: str = "--incident-id") -> str:
    """A well-formed id with no record yet in `base`; UsageError naming `option` otherwise (nothing is created)."""
    inputs.identifier(incident_id, option)
    existing = base / incident_id / "incident.json"
    if existing.exists():
        raise UsageError(f"{option}: incident {incident_id} already has a record ({existing}); choose another id, or "
                         f"continue it with `rollbackctl resume {incident_id}`")
    return incident_id


def incident_path(incident_id: str, base: str | os.PathLike | None = None) -> Path:
    """The folder of an existing incident; a clear error when the id is malformed or unknown."""
    if not valid_incident_id(incident_id):
        raise IncidentNotFound(f"incident id {incident_id!r} is malformed: letters, digits, '.', '_' and '-' only")
    root = incidents_dir(base)
    path = root / incident_id
    if not (path / "incident.json").is_file():
        known = sorted(p.parent.name for p in root.glob("*/incident.json")) if root.is_dir() else []
        hint = f"; latest known: {', '.join(known[-5:])}" if known else ""
        raise IncidentNotFound(f"no incident record {incident_id!r} in {root}{hint}")
    return path
