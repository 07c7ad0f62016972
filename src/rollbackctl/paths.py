"""Where rollbackctl keeps incident records and its own state."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import IncidentNotFound
from .project import find_project

INCIDENTS_ENV = "ROLLBACKCTL_INCIDENTS_DIR"
STATE_ENV = "ROLLBACKCTL_STATE_DIR"
INCIDENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def incidents_dir(explicit: str | os.PathLike | None = None) -> Path:
    """`--incidents-dir`, else $ROLLBACKCTL_INCIDENTS_DIR, else `incidents/` in the project."""
    chosen = explicit or os.environ.get(INCIDENTS_ENV)
    return Path(chosen).resolve() if chosen else find_project() / "incidents"


def state_dir() -> Path:
    """Locks and other state: $ROLLBACKCTL_STATE_DIR, else $XDG_STATE_HOME/rollbackctl (~/.local/state)."""
    chosen = os.environ.get(STATE_ENV)
    if chosen:
        return Path(chosen).resolve()
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "rollbackctl"


def valid_incident_id(incident_id: str) -> bool:
    return bool(INCIDENT_ID_RE.fullmatch(incident_id or "")) and ".." not in incident_id


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
