"""Evaluating the plan's triggers on observations: instant and windowed conditions, missing data."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import matrix
from ..errors import ExitCode, MetricsUnavailable, MissingDataFails, UsageError
from ..times import iso
from .metrics import Condition, Thresholds, TriggerDefinition, definitions, format_number
from .observations import Observations, Sample

BREACHING = "breaching"
NOT_BREACHING = "not_breaching"
FAIL = "fail"
MISSING_POLICIES = (BREACHING, NOT_BREACHING, FAIL)


@dataclass(frozen=True)
class TriggerResult:
    """One trigger's outcome with its evidence (values, threshold, window, slots, policy applied)."""

    name: str
    category: str
    description: str
    issue_type: str
    severity: str
    fired: bool
    missing_decided: bool
    evidence: Mapping[str, Any]

    @property
    def reason(self) -> str:
        """One sentence: why it fired or not."""
        return str(self.evidence["reason"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "issue_type": self.issue_type,
            "severity": self.severity,
            "fired": self.fired,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class TriggerReport:
    """All triggers evaluated on one set of observations, and the decision the most urgent implies."""

    source: str
    collected_at: datetime.datetime
    interval: datetime.timedelta
    missing_policy: str
    fired: tuple[TriggerResult, ...]
    not_fired: tuple[TriggerResult, ...]
    implied: matrix.Decision | None
    implied_by: str | None
    unknown_metrics: tuple[str, ...] = ()
    queries: Mapping[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        """TRIGGER_FIRED (6) when at least one trigger fired, else OK (0)."""
        return ExitCode.TRIGGER_FIRED if self.fired else ExitCode.OK

    @property
    def warnings(self) -> list[str]:
        """What an operator should look at before trusting the result."""
        results = (*self.fired, *self.not_fired)
        found = []
        if results and all(r.missing_decided for r in results):
            hint = " (the default PromQL may not match this Prometheus: see --help, --query)" if self.queries else ""
            found.append(f"no metric had data: every trigger was decided by the missing-data policy{hint}")
        quiet = [r.name for r in self.not_fired if r.missing_decided]
        if quiet:
            found.append(f"not fired only because missing data counts as not breaching: {', '.join(quiet)}")
        if self.unknown_metrics:
            found.append(f"metrics no trigger reads (misspelt?): {', '.join(self.unknown_metrics)}")
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "collected_at": iso(self.collected_at),
            "interval": matrix.format_duration(self.interval),
            "missing_policy": self.missing_policy,
            "result": "fired" if self.fired else "not_fired",
            "fired": [r.to_dict() for r in self.fired],
            "not_fired": [r.to_dict() for r in self.not_fired],
            "implied_by": self.implied_by,
            "implied": self.implied.to_dict() if self.implied else None,
            "unknown_metrics": list(self.unknown_metrics),
            "warnings": self.warnings,
            "queries": dict(self.queries),
        }


def _sample_dict(metric: str, sample: Sample, condition: Condition) -> dict[str, Any]:
    return {"metric": metric, "t": iso(sample.t), "v": sample.v, "breaching": condition.breaches(sample.v)}


def _apply_policy(policy: str, what_missing: str) -> bool:
    """Whether missing data makes the trigger fire; raises MissingDataFails for the `fail` policy."""
    if policy == FAIL:
        raise MissingDataFails(what_missing)
    return policy == BREACHING


def _policy_words(policy: str) -> str:
    return "missing data counts as breaching" if policy == BREACHING else "missing data counts as not breaching"


def _latest(obs: Observations, metric: str, max_age: datetime.timedelta) -> tuple[Sample | None, str]:
    """The latest sample at or before collection time, or None and why it is missing."""
    samples = [s for s in obs.metrics.get(metric, ()) if s.t <= obs.collected_at]
    if not samples:
        return None, f"{metric}: no sample"
    latest = samples[-1]
    if obs.collected_at - latest.t > max_age:
        return None, (f"{metric}: latest sample at {iso(latest.t)} is older than "
                      f"{matrix.format_duration(max_age)} (stale)")
    return latest, ""


def _evaluate_instant(defn: TriggerDefinition, obs: Observations, th: Thresholds, policy: str) -> TriggerResult:
    """Fires when any condition's latest sample breaches; missing only when no metric has a value."""
    values, missing = [], []
    for condition in defn.conditions:
        sample, why = _latest(obs, condition.metric, th.max_sample_age)
        if sample is None:
            missing.append(why)
        else:
            values.append(_sample_dict(condition.metric, sample, condition))
    evidence: dict[str, Any] = {
        "condition": defn.condition_text,
        "thresholds": {c.metric: c.threshold for c in defn.conditions},
        "window": None, "values": values, "missing": missing, "policy_applied": None,
    }
    breaching = [v for v in values if v["breaching"]]
    observed = "; ".join(f"{v['metric']} = {format_number(v['v'])} at {v['t']}" for v in values)
    missing_decided = False
    if breaching:
        fired, reason = True, f"{observed} meets the trigger condition {defn.condition_text}"
    elif values:
        fired, reason = False, f"{observed} does not meet the trigger condition {defn.condition_text}"
    else:
        fired = _apply_policy(policy, "; ".join(missing))
        missing_decided = True
        evidence["policy_applied"] = policy
        reason = f"{'; '.join(missing)}; {_policy_words(policy)}"
    if missing and values:
        reason += f" ({'; '.join(missing)})"
    evidence["reason"] = reason
    return _result(defn, fired, missing_decided, evidence)


def _result(defn: TriggerDefinition, fired: bool, missing_decided: bool, evidence: dict[str, Any]) -> TriggerResult:
    return TriggerResult(defn.name, defn.category, defn.description, defn.issue_type, defn.severity, fired,
                         missing_decided, evidence)


def slot_count(window: datetime.timedelta, interval: datetime.timedelta) -> int:
    """Number of interval-long slots in a window (the last one may be partial)."""
    return max(1, math.ceil(window / interval))


def _evaluate_window(defn: TriggerDefinition, obs: Observations, policy: str) -> TriggerResult:
    """Fires when every slot of (collected_at - window, collected_at] breaches; one good sample stops it."""
    assert defn.window is not None
    (condition,) = defn.conditions
    slots = slot_count(defn.window, obs.interval)
    start = obs.collected_at - defn.window
    in_window = [s for s in obs.metrics.get(condition.metric, ()) if start < s.t <= obs.collected_at]
    observed_slots = {(obs.collected_at - s.t) // obs.interval for s in in_window}
    good = [s for s in in_window if not condition.breaches(s.v)]
    missing_slots = slots - len(observed_slots)
    evidence: dict[str, Any] = {
        "condition": defn.condition_text,
        "thresholds": {condition.metric: condition.threshold},
        "window": matrix.format_duration(defn.window),
        "window_start": iso(start), "window_end": iso(obs.collected_at),
        "interval": matrix.format_duration(obs.interval),
        "slots": slots, "slots_observed": len(observed_slots), "slots_missing": missing_slots,
        "values": [_sample_dict(condition.metric, s, condition) for s in in_window],
        "missing": [f"{condition.metric}: {missing_slots} of {slots} slots without a sample"] if missing_slots else [],
        "policy_applied": None,
    }
    window_words = f"the {evidence['window']} window ending {evidence['window_end']}"
    missing_decided = False
    if good:
        fired = False
        reason = (f"{condition.metric} = {format_number(good[0].v)} at {iso(good[0].t)} does not meet the trigger "
                  f"condition {condition.describe()} ({len(good)} non-breaching sample(s) in {window_words})")
    elif missing_slots == 0:
        fired = True
        reason = f"{condition.metric} breaches {condition.describe()} in all {slots} slots of {window_words}"
    else:
        what = f"{condition.metric}: {missing_slots} of {slots} slots of {window_words} have no sample"
        fired = _apply_policy(policy, what)
        missing_decided = True
        evidence["policy_applied"] = policy
        observed = (f"the {len(observed_slots)} observed slot(s) breach {condition.describe()}"
                    if observed_slots else "nothing observed")
        reason = f"{what}; {observed}; {_policy_words(policy)}"
    evidence["reason"] = reason
    return _result(defn, fired, missing_decided, evidence)


def _urgency(decision: matrix.Decision) -> tuple[int, int, float]:
    """Sort key, most urgent first: recovery, immediate, rollback/conditional, fix forward, authority.

    Between equals: a required database restore first, then the shorter "fix > N" threshold.
    """
    rank = {
        matrix.IMMEDIATE_ROLLBACK_AND_RECOVERY: 0, matrix.IMMEDIATE_ROLLBACK: 1, matrix.ROLLBACK: 2,
        matrix.FIX_FORWARD: 3, matrix.FIX_FORWARD_IF_POSSIBLE: 4,
    }
    if decision.status == matrix.CONDITIONAL:
        level = 2
    elif decision.status == matrix.AUTHORITY_DECIDES or decision.decision is None:
        level = 5
    else:
        level = rank[decision.decision]
    restore = 0 if decision.database_restore == matrix.RESTORE_REQUIRED else 1
    threshold = decision.threshold.total_seconds() if decision.threshold is not None else math.inf
    return level, restore, threshold


def _implied(fired: Sequence[TriggerResult]) -> tuple[matrix.Decision | None, str | None]:
    if not fired:
        return None, None
    decisions = [(matrix.decide(r.issue_type, r.severity), index, r.name) for index, r in enumerate(fired)]
    decision, _, name = min(decisions, key=lambda item: (*_urgency(item[0]), item[1]))
    return decision, name


def evaluate(observations: Observations, thresholds: Thresholds | None = None,
             missing: str = BREACHING) -> TriggerReport:
    """Evaluate every plan trigger; raises MetricsUnavailable when `missing` is `fail` and missing data
    would decide a trigger (all such triggers are named), UsageError for an unknown policy."""
    if missing not in MISSING_POLICIES:
        raise UsageError(f"unknown missing-data policy {missing!r}: use one of {', '.join(MISSING_POLICIES)}")
    thresholds = thresholds or Thresholds()
    results, failures = [], []
    for defn in definitions(thresholds):
        try:
            if defn.window is None:
                results.append(_evaluate_instant(defn, observations, thresholds, missing))
            else:
                results.append(_evaluate_window(defn, observations, missing))
        except MissingDataFails as exc:
            failures.append(f"{defn.name} ({exc})")
    if failures:
        raise MetricsUnavailable(
            f"missing data from {observations.source} with --missing fail, no decision taken: "
            f"{'; '.join(failures)}. Fix the metrics source, or choose --missing breaching / not_breaching."
        )
    fired = tuple(r for r in results if r.fired)
    implied, implied_by = _implied(fired)
    return TriggerReport(observations.source, observations.collected_at, observations.interval, missing, fired,
                         tuple(r for r in results if not r.fired), implied, implied_by,
                         observations.unknown_metrics, observations.queries)
