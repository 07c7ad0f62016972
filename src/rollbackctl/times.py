"""Time stamps: one parser and one formatter for the whole wrapper.

Records, events and reports write UTC as ``2026-11-28T16:00:00Z`` (`utcnow`, `iso`). `parse_time` reads
that form and any ISO-8601 time with an offset (``+02:00``) or none (taken as UTC), fractions included,
and returns an aware UTC datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime:
    """An ISO-8601 time (``...Z``, an offset, or none meaning UTC), or a datetime, as an aware UTC datetime.

    Raises ValueError for anything else (callers add where the value came from).
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"not a time: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def maybe_time(value: Any) -> datetime | None:
    """`parse_time`, or None when `value` is None, empty or not a time (optional record fields)."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with a Z, whole seconds unless there are fractions: ``2026-11-28T16:00:00Z``."""
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def utcnow() -> str:
    """Now, as records write it: ``2026-11-28T16:00:00Z`` (whole seconds)."""
    return iso(datetime.now(UTC).replace(microsecond=0))
