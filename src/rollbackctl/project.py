"""Locating the toolkit's Ansible project (playbooks/, roles/, inventories/, ansible.cfg)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ProjectNotFound

MARKERS = ("ansible.cfg", "playbooks", "roles", "inventories")


def _is_project(path: Path) -> bool:
    return all((path / marker).exists() for marker in MARKERS)


def find_project(start: str | os.PathLike | None = None) -> Path:
    """The project root: $ROLLBACKCTL_PROJECT, else the first parent of `start` (cwd) or of this
    package that holds ansible.cfg, playbooks/, roles/ and inventories/."""
    explicit = os.environ.get("ROLLBACKCTL_PROJECT")
    if explicit:
        path = Path(explicit).resolve()
        if not _is_project(path):
            raise ProjectNotFound(f"ROLLBACKCTL_PROJECT={explicit} is not a rollback toolkit project "
                                  f"(needs {', '.join(MARKERS)})")
        return path
    candidates = [Path(start or os.getcwd()).resolve(), Path(__file__).resolve()]
    for candidate in candidates:
        for path in (candidate, *candidate.parents):
            if _is_project(path):
                return path
    raise ProjectNotFound("cannot find the toolkit's playbooks: run from the project directory or set "
                          "ROLLBACKCTL_PROJECT")
