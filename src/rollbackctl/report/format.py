"""Formatting values for people: durations, estimates, clock times, sizes, measured values; Markdown escaping.

These helpers take any value and never fail: what they cannot format is an em dash ("no value").
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from typing import Any

from ..times import maybe_time

DASH = "\u2014"  # em dash: "no value"
ARROW = "\u2192"


def number(value: Any) -> float | None:
    """A finite int or float as float; None for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def seconds_between(start: Any, end: Any) -> float | None:
    """Seconds from `start` to `end` (record timestamps), never negative; None when either is unknown."""
    first, last = maybe_time(start), maybe_time(end)
    if first is None or last is None:
        return None
    return max(0.0, (last - first).total_seconds())


def format_duration(seconds: Any) -> str:
    """Human-friendly duration: ``42 s``, ``3 min 05 s``, ``1 h 02 min``; an em dash when unknown."""
    value = number(seconds)
    if value is None or value < 0:
        return DASH
    total = round(value)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs:02d} s"
    hours, rest = divmod(total, 3600)
    return f"{hours} h {rest // 60:02d} min"


def estimate_range(estimate: Any) -> tuple[float, float] | None:
    """(min, max) minutes of an Appendix C estimate, a missing bound taken from the other; None when none."""
    est = estimate if isinstance(estimate, dict) else {}
    low, high = number(est.get("min_minutes")), number(est.get("max_minutes"))
    if low is not None and high is not None:
        return low, max(low, high)
    if low is not None:
        return low, low
    if high is not None:
        return high, high
    return None


def format_estimate(estimate: Any) -> str:
    """An Appendix C estimate as ``10-15 min`` or ``5 min`` (``1-2 h`` for whole hours); em dash when none."""
    bounds = estimate_range(estimate)
    if bounds is None:
        return DASH
    low, high = bounds
    if low >= 60 and low % 60 == 0 and high % 60 == 0:
        low_h, high_h = f"{low / 60:g}", f"{high / 60:g}"
        return f"{low_h} h" if low == high else f"{low_h}-{high_h} h"
    return f"{low:g} min" if low == high else f"{low:g}-{high:g} min"


def format_clock(value: Any, reference: Any = None) -> str:
    """Time of day of a timestamp, ``16:04:05Z``; the date is added when it differs from ``reference``'s."""
    moment = maybe_time(value)
    if moment is None:
        return DASH if value in (None, "") else str(value)
    clock = moment.strftime("%H:%M:%SZ")
    ref = maybe_time(reference)
    if ref is not None and ref.date() != moment.date():
        return f"{moment:%Y-%m-%d} {clock}"
    return clock


def format_bytes(size: Any) -> str:
    """``1.4 MiB (1468006 bytes)``; em dash when unknown."""
    value = number(size)
    if value is None:
        return DASH
    units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    scaled, unit = value, 0
    while scaled >= 1024 and unit < len(units) - 1:
        scaled /= 1024
        unit += 1
    if unit == 0:
        return f"{int(value)} bytes"
    return f"{scaled:.1f} {units[unit]} ({int(value)} bytes)"


def format_value(value: Any, unit: Any = None) -> str:
    """A measured value or threshold with its unit: ``412 ms``, ``0.02 ratio``; em dash when absent."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
    elif isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    else:
        text = str(value)
    return f"{text} {unit}" if unit else text


def describe(value: Any) -> str:
    """Any JSON value as one line for people: dicts as ``key: value; ...``, lists comma-separated."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{key.replace('_', ' ')}: {describe(item)}" for key, item in value.items()) or DASH
    if isinstance(value, list):
        return ", ".join(describe(item) for item in value) or DASH
    return str(value)


def yes_no(value: Any) -> str:
    """``yes`` / ``no`` / em dash for True / False / unknown."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return DASH


def safe_relative_link(target: Any) -> str | None:
    """A link target for a file inside the incident folder, URL-quoted; None when it is not such a path."""
    text = "" if target is None else str(target)
    if not text or text.startswith(("/", "\\")) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text):
        return None
    parts = text.replace("\\", "/").split("/")
    if ".." in parts:
        return None
    return urllib.parse.quote(text.replace("\\", "/"), safe="/._-~")


# ---- Markdown escaping (the filters of the Markdown template) -----------------------------------------

def _md_no_tags(text: str) -> str:
    """``<`` opening a tag becomes ``&lt;``, so record text cannot inject HTML where Markdown allows it."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: ``|`` escaped, newlines as ``<br>``, no HTML tags."""
    text = _md_no_tags("" if value is None else str(value)).replace("\\", "\\\\").replace("|", "\\|")
    text = re.sub(r"\r\n|\r|\n", "<br>", text)
    return text.strip() or DASH


def md_text(value: Any) -> str:
    """Text safe on one Markdown line (headings, list items): newlines folded into spaces, no HTML tags."""
    return _md_no_tags(re.sub(r"\s*(?:\r\n|\r|\n)\s*", " ", "" if value is None else str(value)).strip())


def md_link_text(value: Any) -> str:
    """`md_text` with square brackets escaped, for the text of a Markdown link."""
    return md_text(value).replace("[", "\\[").replace("]", "\\]")
