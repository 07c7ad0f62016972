"""What an incident record says: phase timings against the estimates, where a run stopped, maintenance mode,
verifications by phase, bottlenecks. Functions of the schema-valid record, read as the schema guarantees it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .format import estimate_range, format_estimate, number, seconds_between

Record = Mapping[str, Any]


def phase_label(phase: Record) -> str:
    """The phase's title, else its name."""
    return phase["title"] or phase["name"]


def phase_duration(phase: Record) -> float | None:
    """Seconds the phase took: ``duration_seconds``, else its start to its end; None while unknown."""
    value = number(phase["duration_seconds"])
    if value is not None:
        return max(0.0, value)
    return seconds_between(phase["started_at"], phase["ended_at"])


def phase_within_estimate(phase: Record) -> bool | None:
    """The recorded ``within_estimate``; when null, duration <= the estimate's maximum for a finished phase."""
    if phase["within_estimate"] is not None:
        return phase["within_estimate"]
    duration = phase_duration(phase)
    if phase["estimate"] is None or duration is None or phase["status"] not in ("ok", "failed"):
        return None
    return duration <= phase["estimate"]["max_minutes"] * 60


def total_duration(record: Record) -> float | None:
    """The whole run: the outcome's duration, else creation to the outcome's end, else the phases' sum."""
    outcome = record["outcome"]
    if outcome["duration_seconds"] is not None:
        return max(0.0, outcome["duration_seconds"])
    between = seconds_between(record["created_at"], outcome["ended_at"])
    if between is not None:
        return between
    durations = [d for d in map(phase_duration, record["phases"]) if d is not None]
    return sum(durations) if durations else None


def estimate_sum(phase_list: Iterable[Record]) -> dict[str, Any] | None:
    """The summed Appendix C estimates of the phases that ran (not pending, not skipped)."""
    low = high = 0.0
    found = False
    for phase in phase_list:
        bounds = estimate_range(phase["estimate"])
        if phase["status"] in ("pending", "skipped") or bounds is None:
            continue
        found = True
        low += bounds[0]
        high += bounds[1]
    return {"label": "phases run", "min_minutes": low, "max_minutes": high} if found else None


def stopped_at(record: Record) -> Record | None:
    """The first failed, interrupted or running phase: where the run stopped (or is)."""
    for status in ("failed", "interrupted", "running"):
        for phase in record["phases"]:
            if phase["status"] == status:
                return phase
    return None


def checklist_item(record: Record, *needles: str) -> Record | None:
    for item in record["checklist"]:
        if all(needle in item["item"].lower() for needle in needles):
            return item
    return None


def _phase_named(record: Record, *names: str) -> Record | None:
    return next((phase for phase in record["phases"] if phase["name"] in names), None)


def maintenance_state(record: Record) -> str | None:
    """``on`` when maintenance mode was enabled and not disabled again, ``off`` when disabled, else None.

    Read from the Appendix A checklist ("Maintenance mode enabled" / "... disabled"), else from the phases
    ``maintenance_on`` / ``maintenance_off``. A check-mode run changes nothing: None.
    """
    if record["mode"] == "check":
        return None
    enabled = checklist_item(record, "maintenance", "enabled")
    disabled = checklist_item(record, "maintenance", "disabled")
    on = bool(enabled and enabled["done"])
    off = bool(disabled and disabled["done"])
    if enabled is None and disabled is None:
        on_phase = _phase_named(record, "maintenance_on", "maintenance_enable", "enable_maintenance")
        off_phase = _phase_named(record, "maintenance_off", "maintenance_disable", "disable_maintenance")
        on = bool(on_phase and on_phase["status"] == "ok")
        off = bool(off_phase and off_phase["status"] == "ok")
    if off:
        return "off"
    if on:
        return "on"
    return None


def verification_groups(record: Record) -> list[tuple[str, list[dict[str, Any]]]]:
    """Checks grouped by phase (else scope), groups in phase order, failed checks first in each group."""
    phase_list = record["phases"]
    titles = {p["name"]: phase_label(p) for p in phase_list}
    order = {p["name"]: index for index, p in enumerate(phase_list)}
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    labels: dict[tuple[int, str], str] = {}
    for position, check in enumerate(record["verifications"]):
        phase, scope = check.get("phase"), check["scope"] or "unscoped"
        if phase:
            key = (order.get(phase, len(phase_list) + position), f"phase:{phase}")
            label = f"{titles.get(phase, phase)} (scope {scope})"
        else:
            key = (len(phase_list) + 10_000, f"scope:{scope}")
            label = f"scope {scope}"
        same = next((k for k in groups if k[1] == key[1]), key)
        groups.setdefault(same, []).append(check)
        labels.setdefault(same, label)
    return [(labels[key], sorted(groups[key], key=lambda c: 0 if c["verdict"] == "fail" else 1))
            for key in sorted(groups, key=lambda k: k[0])]


def verification_counts(record: Record) -> dict[str, int]:
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for check in record["verifications"]:
        counts[check["verdict"]] += 1
    return counts


def bottlenecks(record: Record, top: int = 3) -> list[dict[str, Any]]:
    """Process refinement: the phases with the largest share of the phase time, and every phase over its estimate.

    Each entry: ``phase`` (title), ``name``, ``duration``, ``share`` (0..1 of the summed phase durations),
    ``estimate`` (text), ``over_by`` (seconds beyond the estimate's maximum, or None), ``largest`` (among the
    ``top`` longest). Longest first.
    """
    timed = [(phase, duration) for phase in record["phases"]
             if (duration := phase_duration(phase)) is not None and phase["status"] not in ("pending", "skipped")]
    total = sum(d for _, d in timed)
    ranked = sorted(timed, key=lambda item: item[1], reverse=True)
    largest = {id(p) for p, d in ranked[:top] if d > 0}
    result = []
    for phase, duration in ranked:
        high = phase["estimate"]["max_minutes"] if phase["estimate"] else None
        over = None
        if high is not None and (duration > high * 60 or phase_within_estimate(phase) is False):
            over = max(0.0, duration - high * 60)
        if id(phase) not in largest and over is None:
            continue
        result.append({"phase": phase_label(phase), "name": phase["name"], "duration": duration,
                       "share": duration / total if total else 0.0, "estimate": format_estimate(phase["estimate"]),
                       "over_by": over, "largest": id(phase) in largest})
    return result
