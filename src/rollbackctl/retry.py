"""Deployment Retry Planning: when the failed release may be retried, and what the retry must address.

The plan's Post-Rollback Actions ask to "provide an estimated timeline for retry" (Communication) and to
"review and revise the deployment plan, add additional verification steps, consider a phased deployment
approach, schedule a new deployment window" (Deployment Retry Planning). The record's ``retry`` section
holds:

- the estimate: the operator's ``--retry-estimate`` (source ``operator``), else the fix estimate the decision
  matrix saw (``--fix-estimate``, source ``fix_estimate``: the fix must be implemented and tested before the
  release is retried), else none; `not_before` is the incident's start plus the estimate;
- the follow-up: the failed release, what the triggers and the verifications showed, and a phased
  deployment suggestion when the failure was partial (a feature, a slowdown, an inconsistency: the matrix
  severity is not critical and the issue is not a security one).

`retry_eta()` is the text the completion notice carries. Pure functions of the record, no I/O but `save`.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from . import inputs, matrix
from .times import iso, maybe_time

if TYPE_CHECKING:
    from .record import IncidentRecord

SOURCES = {"operator": "the operator's (--retry-estimate)", "fix_estimate": "the fix estimate the decision matrix saw"}
#: How the generated retry plan starts (a plan an operator wrote instead is never replaced).
GENERATED = "Retry of "
DEFAULT_TEXT = "to be scheduled after the root-cause analysis"
PHASED = (
    "deploy the fixed release in phases: one host (or a small share of the traffic) first, watch the rollback "
    "triggers for the plan's trigger windows, then widen step by step"
)


def check_estimate(value: str | None, option: str = "--retry-estimate") -> datetime.timedelta | None:
    """An operator's retry estimate (2h, 1h30m, 90m...; at most 366 days), or None when not given."""
    if value is None:
        return None
    return inputs.duration(value, option, positive=True)


def _fix_estimate(data: dict[str, Any]) -> datetime.timedelta | None:
    text = (data.get("decision") or {}).get("fix_estimate")
    if not text:
        return None
    try:
        estimate = matrix.parse_duration(str(text))
    except Exception:  # a record from elsewhere: no estimate rather than no record
        return None
    return estimate if estimate > datetime.timedelta(0) else None


def _severity(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(issue type, severity) of the rollback: the matrix row, else the most urgent fired trigger."""
    decision = data.get("decision") or {}
    if decision.get("severity"):
        return decision.get("issue_type"), decision["severity"]
    triggers = data.get("triggers") or {}
    implied = triggers.get("implied") or {}
    if implied.get("severity"):
        return implied.get("issue_type"), implied["severity"]
    fired = [t for t in triggers.get("fired") or [] if isinstance(t, dict)]
    order = {s: i for i, s in enumerate(matrix.SEVERITIES)}
    fired.sort(key=lambda t: order.get(t.get("severity"), 99))
    return (fired[0].get("issue_type"), fired[0].get("severity")) if fired else (None, None)


def _verification(data: dict[str, Any]) -> dict[str, Any]:
    checks = [c for c in data.get("verifications") or [] if isinstance(c, dict)]
    verdict = {"pass": 0, "fail": 0, "skip": 0}
    for check in checks:
        key = str(check.get("verdict") or check.get("status") or "")
        if key in verdict:
            verdict[key] += 1
    failed = sorted(
        {
            f"{c.get('name', '?')} on {c.get('host', '?')}"
            for c in checks
            if (c.get("verdict") or c.get("status")) == "fail"
        }
    )
    fired = [str(t.get("name")) for t in (data.get("triggers") or {}).get("fired") or [] if isinstance(t, dict)]
    return {
        "passed": verdict["pass"],
        "failed": verdict["fail"],
        "skipped": verdict["skip"],
        "failed_checks": failed[:20],
        "triggers_fired": fired,
    }


def plan(data: dict[str, Any], given: datetime.timedelta | None = None) -> dict[str, Any]:
    """The ``retry`` section for the record `data`: `given` (the operator's), else the matrix's fix estimate."""
    previous = data.get("retry") or {}
    if given is None and previous.get("source") == "operator" and previous.get("seconds"):
        given = datetime.timedelta(seconds=previous["seconds"])
    estimate, origin = (given, "operator") if given is not None else (_fix_estimate(data), "fix_estimate")
    if estimate is None:
        origin = "none"
    start = maybe_time(data.get("created_at"))
    not_before = iso((start + estimate).replace(microsecond=0)) if estimate is not None and start else None
    if estimate is None:
        text = DEFAULT_TEXT
    else:
        text = (
            f"not before {not_before} (in about {matrix.format_duration(estimate)}), once the fix is tested in staging"
        )
    issue_type, severity = _severity(data)
    partial = None if severity is None else (severity != "critical" and issue_type != "security")
    return {
        "estimate": matrix.format_duration(estimate) if estimate is not None else None,
        "seconds": estimate.total_seconds() if estimate is not None else None,
        "source": origin,
        "not_before": not_before,
        "text": text,
        "failed_release": data.get("from_version"),
        "verification": _verification(data),
        "partial": partial,
        "phased_deployment": PHASED if partial else None,
    }


def plan_text(retry: dict[str, Any]) -> str:
    """The follow-up as one paragraph (the record's ``follow_up.retry_plan``)."""
    parts = [f"{GENERATED}{retry.get('failed_release') or 'the failed release'}: {retry['text']}."]
    if retry.get("source") in SOURCES:
        parts.append(f"The estimate is {SOURCES[retry['source']]}.")
    verification = retry.get("verification") or {}
    if verification.get("triggers_fired"):
        parts.append(f"Triggers that fired: {', '.join(verification['triggers_fired'])}.")
    if verification:
        parts.append(
            f"Verification after the rollback: {verification.get('passed', 0)} passed, "
            f"{verification.get('failed', 0)} failed"
            + (f" ({', '.join(verification['failed_checks'])})" if verification.get("failed_checks") else "")
            + "."
        )
    parts.append("Revise the deployment plan and add verification steps for what failed.")
    if retry.get("phased_deployment"):
        parts.append(f"The failure was partial: {retry['phased_deployment']}.")
    return " ".join(parts)


def start(record: IncidentRecord, given: datetime.timedelta | None) -> None:
    """The retry section as the rollback starts (the estimate; the follow-up is completed by `conclude`)."""
    record.data["retry"] = plan(record.data, given)
    record.save()


def conclude(record: IncidentRecord) -> None:
    """The retry section and the follow-up's retry plan after the run (an operator-written plan is kept)."""
    data = record.data
    data["retry"] = plan(data)
    follow = data["follow_up"]
    if not follow.get("retry_plan") or str(follow["retry_plan"]).startswith(GENERATED):
        follow["retry_plan"] = plan_text(data["retry"])


def retry_eta(data: dict[str, Any]) -> str:
    """What the completion notice says about the retry."""
    retry = data.get("retry") or plan(data)
    return retry["text"]
