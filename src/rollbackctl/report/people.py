"""The report's People section: who held which role (Appendix B), who acknowledged, the tickets opened.

Built from the record's optional ``people``, ``retry`` and ``tickets`` sections (absent in older records and
in runs without a roster: the section is then None and the templates leave it out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import inputs
from ..people import summary
from .format import DASH, format_duration

_WAIT = {
    "all_acknowledged": "everyone acknowledged",
    "timed_out": "timed out",
    "interrupted": "interrupted",
    "waiting": "still waiting",
}


@dataclass(frozen=True)
class PeopleView:
    """Rows (role, name, primary, secondary, acknowledged at), the acknowledgement lines, the authority list."""

    roles: list[tuple[str, str, str, str, str]]
    acknowledgements: list[str]
    authority: list[str]
    tickets: list[tuple[str, str, str, str]]


def _acknowledgement_lines(record: dict[str, Any]) -> list[str]:
    state = summary(record)
    if state is None:
        return []
    acks, missing = state["acknowledged"], state["missing"]
    lines = [f"Acknowledged by {len(acks)}: " + (", ".join(f"{a['name']} at {a['at']}" for a in acks) or "nobody yet")]
    if record["people"].get("roles"):
        lines.append("Not acknowledged: " + (", ".join(missing) or "nobody (everyone in the roster acknowledged)"))
    if state["last_at"]:
        lines.append(
            f"Time to the last acknowledgement: {format_duration(state['seconds_to_last'])} after "
            f"{state['reference']} (last at {state['last_at']})"
        )
    wait = state.get("ack_wait")
    if wait:
        lines.append(
            f"Wait for acknowledgements (--ack-timeout {wait['timeout_seconds']:g}s): "
            f"{_WAIT.get(wait['result'], wait['result'])}"
        )
    return lines


def _tickets(record: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    section = record.get("tickets") or {}
    return [
        (item["title"], item.get("severity") or DASH, item["status"], item.get("url") or item.get("error") or DASH)
        for item in section.get("items", [])
    ]


def people_section(record: dict[str, Any]) -> PeopleView | None:
    """The People section of `record`, or None when it has no roster, acknowledgement or ticket."""
    people = record.get("people")
    tickets = _tickets(record)
    if not isinstance(people, dict) and not tickets:
        return None
    people = people if isinstance(people, dict) else {}
    acked = {inputs.person_key(a["name"]): a["at"] for a in people.get("acknowledgements", [])}
    roles = [
        (r["title"], r["name"], r["primary"], r["secondary"], acked.get(inputs.person_key(r["name"]), "not yet"))
        for r in people.get("roles", [])
    ]
    authority = [f"{a['name']} ({a['role']})" for a in people.get("decision_authority", [])]
    return PeopleView(roles, _acknowledgement_lines(record) if people else [], authority, tickets)
