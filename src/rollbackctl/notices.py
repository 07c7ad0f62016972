"""What the wrapper adds to the notices the notify role sends: the people and the retry estimate.

The announcement (``rollback_started``) names who holds each of the plan's roles (from the incident's
roster); the completion notice (``rollback_completed``) carries the estimated retry timeline. Both are
passed as free text (``roles_text``, ``retry_eta`` in playbooks/vars/inputs.yml): the runner tags them
``!unsafe`` and the notify role reads them from ``rollback_free_text``, so a name is never templated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .retry import retry_eta
from .roster import roles_line

if TYPE_CHECKING:
    from .record import IncidentRecord


def notice_vars(record: IncidentRecord, phase: str) -> dict[str, Any]:
    """Extra vars of the notify step of `phase` (announce, notify_done); {} when there is nothing to add."""
    data = record.data
    if phase == "announce":
        roles = (data.get("people") or {}).get("roles") or []
        return {"roles_text": roles_line(roles)} if roles else {}
    if phase == "notify_done" and data.get("retry"):
        return {"retry_eta": retry_eta(data)}
    return {}
