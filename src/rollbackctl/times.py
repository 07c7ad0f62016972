"""Time stamps: one parser and one formatter for the whole wrapper.

Records, events and reports write UTC as ``2026-11-28T16:00:00Z`` (`utcnow`, `iso`). `parse_time` reads
that form and any ISO-8601 time with an offset (``+02:00``) or none (taken as UTC), fractions included,
and returns an aware UTC datetime. Times outside the years 1970-8999 are refused (ValueError): arithmetic on
them (a window before year 1, a duration after year 9999) would overflow, so records and inputs never
carry them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

#: The times the wrapper computes with; outside them parse_time refuses (no OverflowError later).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_time(value: Any) -> datetime:
    """An ISO-8601 time (``...Z``, an offset, or none meaning UTC), or a datetime, as an aware UTC datetime.

    Raises ValueError for anything else, and for a time outside the years 1970-8999 (callers add where the
    value came from).
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        if len(value) > 64:
            raise ValueError(f"not a time: a {len(value)}-character text")
        moment = datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"not a time: {value!r}"[:100])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range"[:100]) from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"{iso(moment)} is out of range: times from 1970 to 8999 are accepted")
    return moment


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
