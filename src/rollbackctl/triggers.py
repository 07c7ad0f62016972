"""The rollback plan's Rollback Triggers, evaluated on observed metrics, and the `triggers` command.

Each trigger reads one or two metrics (from an observations file or from Prometheus), fires on the
plan's condition and implies a row of the decision matrix:

=========================  ==========================================  =======================
trigger                    condition (defaults from the plan)          implied matrix row
=========================  ==========================================  =======================
api_5xx                    api_5xx_ratio > 0.01                        functional / critical
auth_failing               auth_ok is false                            functional / critical
messaging_failing          messaging_ok is false                       functional / critical
db_connection_failures     db_connection_failures > 0                  functional / critical
slow_critical_operations   critical_response_seconds > 3               performance / high
cpu_saturated              cpu_percent > 90 for 5m (every slot)        performance / high
memory_saturated           memory_percent > 90 for 5m (every slot)     performance / high
db_pool_exhausted          db_pool_utilization >= 1.0 or               performance / high
                           db_pool_wait_queue > 0
failed_migrations          failed_migrations > 0                       data / high
inconsistent_data          data_inconsistencies > 0                    data / high
=========================  ==========================================  =======================

Why these rows: the plan files the first four under "Critical Functionality Failure" (matrix:
"Core functionality broken" -> immediate rollback). The performance triggers measure a slowdown,
not an unusable system, so they map to "Significant slowdown" (rollback if fix > 2 hours); an
operator who sees the system unusable asks `decide --issue-type performance --severity critical`.
A failed migration leaves a partially migrated data set, and a consistency check finds
inconsistencies: both are "Data inconsistency" (rollback if fix > 1 hour, database restore
required); corruption proper is for an operator to call (data / critical).

Missing data (PITFALLS, "Decision and triggers"): by default missing data counts as breaching; the
policy is selectable (breaching, not_breaching, fail) and is applied only where missing data decides
the outcome. An unreadable metrics source is an error, never a silent "no trigger fired".
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import matrix
from .errors import RollbackctlError, UsageError

UTC = datetime.UTC

BREACHING = "breaching"
NOT_BREACHING = "not_breaching"
FAIL = "fail"
MISSING_POLICIES = (BREACHING, NOT_BREACHING, FAIL)

EXIT_NOT_FIRED = 0
EXIT_USAGE = 2
EXIT_FIRED = 6
EXIT_UNREADABLE = 7


class MetricsUnavailable(RollbackctlError):
    """The metrics source could not be read, or data is missing under the `fail` policy."""

    exit_code = EXIT_UNREADABLE


# ---- metrics --------------------------------------------------------------------------------------

OK_KIND = "ok"  # a boolean probe: true/1 is healthy, false/0 breaches
VALUE_KIND = "value"  # a number compared with a threshold


@dataclass(frozen=True)
class Metric:
    """An observation name, its kind and the default PromQL that yields it (one series expected)."""

    name: str
    kind: str
    description: str
    default_query: str


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("api_5xx_ratio", VALUE_KIND, "share of API responses with a 5xx status (0..1)",
           'sum(rate(http_request_duration_seconds_count{status_code=~"5.."}[5m])) '
           "/ sum(rate(http_request_duration_seconds_count[5m]))"),
    Metric("auth_ok", OK_KIND, "authentication probe succeeds (true/1) or fails (false/0)",
           'min(probe_success{job="auth"})'),
    Metric("messaging_ok", OK_KIND, "chatbot messaging probe succeeds (true/1) or fails (false/0)",
           'min(probe_success{job="messaging"})'),
    Metric("db_connection_failures", VALUE_KIND, "database connection failures (count, recent)",
           "sum(increase(db_connection_failures_total[5m]))"),
    Metric("critical_response_seconds", VALUE_KIND, "response time of critical operations in seconds (p95)",
           "histogram_quantile(0.95, sum by (le) "
           '(rate(http_request_duration_seconds_bucket{critical="true"}[5m])))'),
    Metric("cpu_percent", VALUE_KIND, "CPU utilisation in percent (busiest host)",
           'max(100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m]))))'),
    Metric("memory_percent", VALUE_KIND, "memory utilisation in percent (fullest host)",
           "max(100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes))"),
    Metric("db_pool_utilization", VALUE_KIND, "database connection pool in use / pool size (0..1)",
           "max(db_pool_connections_in_use / db_pool_connections_max)"),
    Metric("db_pool_wait_queue", VALUE_KIND, "requests waiting for a pooled database connection",
           "max(db_pool_wait_queue_size)"),
    Metric("failed_migrations", VALUE_KIND, "database migrations that failed",
           "sum(db_migrations_failed_total)"),
    Metric("data_inconsistencies", VALUE_KIND, "inconsistencies found by the data consistency checks",
           "sum(data_inconsistencies)"),
)}


# ---- thresholds and trigger definitions ----------------------------------------------------------

_MINUTES_5 = datetime.timedelta(minutes=5)
_DURATION_FIELDS = ("cpu_window", "memory_window", "max_sample_age")


@dataclass(frozen=True)
class Thresholds:
    """The numbers of the plan's triggers (defaults), overridable one by one.

    max_sample_age: an instant metric whose latest sample is older than this (relative to the
    collection time) counts as missing; 5 minutes, like Prometheus's lookback.
    """

    api_5xx_ratio: float = 0.01
    critical_response_seconds: float = 3.0
    cpu_percent: float = 90.0
    cpu_window: datetime.timedelta = _MINUTES_5
    memory_percent: float = 90.0
    memory_window: datetime.timedelta = _MINUTES_5
    db_connection_failures: float = 0.0
    db_pool_utilization: float = 1.0
    db_pool_wait_queue: float = 0.0
    failed_migrations: float = 0.0
    data_inconsistencies: float = 0.0
    max_sample_age: datetime.timedelta = _MINUTES_5

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The names accepted by with_overrides."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def with_overrides(self, pairs: Iterable[str]) -> Thresholds:
        """A copy with NAME=VALUE overrides applied (durations as 5m, numbers as 0.05)."""
        changes: dict[str, Any] = {}
        for pair in pairs:
            name, sep, text = pair.partition("=")
            name = name.strip()
            if not sep or name not in self.names():
                raise UsageError(f"invalid threshold {pair!r}: use NAME=VALUE with NAME one of "
                                 f"{', '.join(self.names())}")
            changes[name] = _threshold_value(name, text.strip())
        return dataclasses.replace(self, **changes)


def _threshold_value(name: str, text: str) -> float | datetime.timedelta:
    if name in _DURATION_FIELDS:
        try:
            value = matrix.parse_duration(text)
        except UsageError as exc:
            raise UsageError(f"invalid threshold {name}={text}: {exc}") from None
        if value <= datetime.timedelta(0):
            raise UsageError(f"invalid threshold {name}={text}: the duration must be more than 0s")
        return value
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise UsageError(f"invalid threshold {name}={text!r}: a number is expected, e.g. {name}=0.05")
    return number


@dataclass(frozen=True)
class Condition:
    """One metric's breach test: `op` is '>', '>=' or 'not_ok' (boolean probe failing)."""

    metric: str
    op: str
    threshold: float | None = None

    def breaches(self, value: float | bool) -> bool:
        """True when the value breaches (a failing probe, or beyond the threshold)."""
        if self.op == "not_ok":
            return value is False or (not isinstance(value, bool) and value < 1)
        assert self.threshold is not None
        if self.op == ">":
            return value > self.threshold
        return value >= self.threshold

    def describe(self) -> str:
        """e.g. 'cpu_percent > 90' or 'auth_ok is false'."""
        if self.op == "not_ok":
            return f"{self.metric} is false"
        return f"{self.metric} {self.op} {_num(self.threshold)}"


@dataclass(frozen=True)
class TriggerDefinition:
    """A plan trigger: its conditions (any one breaching fires), window (None: instant), matrix row."""

    name: str
    category: str
    description: str
    issue_type: str
    severity: str
    conditions: tuple[Condition, ...]
    window: datetime.timedelta | None = None

    @property
    def condition_text(self) -> str:
        """The conditions in words, with the window if any."""
        text = " or ".join(c.describe() for c in self.conditions)
        return f"{text} for {matrix.format_duration(self.window)} (every slot)" if self.window else text


_CRITICAL_FUNCTIONALITY = "Critical Functionality Failure"
_PERFORMANCE = "Severe Performance Degradation"
_DATA_INTEGRITY = "Data Integrity Issues"


def definitions(thresholds: Thresholds | None = None) -> tuple[TriggerDefinition, ...]:
    """The plan's triggers with the given (or default) thresholds, in the plan's order."""
    t = thresholds or Thresholds()
    fn, crit = "functional", "critical"
    perf, high = "performance", "high"
    return (
        TriggerDefinition("api_5xx", _CRITICAL_FUNCTIONALITY, "API endpoints returning 5xx errors", fn, crit,
                          (Condition("api_5xx_ratio", ">", t.api_5xx_ratio),)),
        TriggerDefinition("auth_failing", _CRITICAL_FUNCTIONALITY, "Authentication system not working", fn, crit,
                          (Condition("auth_ok", "not_ok"),)),
        TriggerDefinition("messaging_failing", _CRITICAL_FUNCTIONALITY, "Chatbot messaging system not functioning",
                          fn, crit, (Condition("messaging_ok", "not_ok"),)),
        TriggerDefinition("db_connection_failures", _CRITICAL_FUNCTIONALITY, "Database connection failures", fn, crit,
                          (Condition("db_connection_failures", ">", t.db_connection_failures),)),
        TriggerDefinition("slow_critical_operations", _PERFORMANCE,
                          "Response times > 3 seconds for critical operations", perf, high,
                          (Condition("critical_response_seconds", ">", t.critical_response_seconds),)),
        TriggerDefinition("cpu_saturated", _PERFORMANCE, "CPU utilization > 90% for > 5 minutes", perf, high,
                          (Condition("cpu_percent", ">", t.cpu_percent),), t.cpu_window),
        TriggerDefinition("memory_saturated", _PERFORMANCE, "Memory utilization > 90% for > 5 minutes", perf, high,
                          (Condition("memory_percent", ">", t.memory_percent),), t.memory_window),
        TriggerDefinition("db_pool_exhausted", _PERFORMANCE, "Database connection pool exhaustion", perf, high,
                          (Condition("db_pool_utilization", ">=", t.db_pool_utilization),
                           Condition("db_pool_wait_queue", ">", t.db_pool_wait_queue))),
        TriggerDefinition("failed_migrations", _DATA_INTEGRITY, "Failed migrations", "data", high,
                          (Condition("failed_migrations", ">", t.failed_migrations),)),
        TriggerDefinition("inconsistent_data", _DATA_INTEGRITY, "Inconsistent data state", "data", high,
                          (Condition("data_inconsistencies", ">", t.data_inconsistencies),)),
    )


# ---- observations ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    """One observed value at a time (UTC)."""

    t: datetime.datetime
    v: float | bool


@dataclass(frozen=True)
class Observations:
    """Metric samples collected at one time; a metric absent from `metrics` is missing data.

    `series` counts the series merged per metric (Prometheus; worst value per timestamp), `queries`
    the PromQL used, `unknown_metrics` names in the input that no trigger reads.
    """

    source: str
    collected_at: datetime.datetime
    interval: datetime.timedelta
    metrics: Mapping[str, tuple[Sample, ...]]
    series: Mapping[str, int] = field(default_factory=dict)
    queries: Mapping[str, str] = field(default_factory=dict)
    unknown_metrics: tuple[str, ...] = ()


def _num(value: float | bool | None) -> str:
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}"


def iso(moment: datetime.datetime) -> str:
    """UTC ISO-8601 with a Z, whole seconds unless there are fractions."""
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def parse_time(text: Any, what: str) -> datetime.datetime:
    """An ISO-8601 time (a zone, or none meaning UTC), or a YAML datetime, as an aware UTC datetime."""
    if isinstance(text, datetime.datetime):
        moment = text
    elif isinstance(text, str):
        try:
            moment = datetime.datetime.fromisoformat(text.strip())
        except ValueError:
            raise UsageError(f"{what}: invalid time {text!r}: use ISO-8601, e.g. 2026-11-28T16:00:00Z") from None
    else:
        raise UsageError(f"{what}: invalid time {text!r}: use ISO-8601, e.g. 2026-11-28T16:00:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _value(raw: Any, metric: Metric, where: str) -> float | bool | None:
    """A metric value from the file: None (missing), a bool for probes, or a finite/inf number."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        if metric.kind != OK_KIND:
            raise UsageError(f"{where}: {metric.name} must be a number, not {raw!r}")
        return raw
    if isinstance(raw, int | float):
        value = float(raw)
        return None if math.isnan(value) else value
    accepted = "true/false (or 1/0)" if metric.kind == OK_KIND else "a number"
    raise UsageError(f"{where}: {metric.name} must be {accepted}, a list of {{t, v}} samples, or null; got {raw!r}")


def _samples(raw: Any, metric: Metric, collected_at: datetime.datetime, where: str) -> tuple[Sample, ...]:
    """A scalar (value at collected_at) or a list of {t, v}; null values and NaN are dropped (missing)."""
    if not isinstance(raw, list):
        value = _value(raw, metric, where)
        return () if value is None else (Sample(collected_at, value),)
    samples = []
    for index, item in enumerate(raw):
        spot = f"{where}: {metric.name}[{index}]"
        if not isinstance(item, dict) or "t" not in item or "v" not in item:
            raise UsageError(f"{spot}: a sample must be an object with 't' (ISO-8601 time) and 'v' (value); "
                             f"got {item!r}")
        value = _value(item["v"], metric, spot)
        if value is not None:
            samples.append(Sample(parse_time(item["t"], spot), value))
    return tuple(sorted(samples, key=lambda s: s.t))


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"observations file {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"observations file {path}: cannot be read: {exc}") from None
    if path.suffix.lower() in (".yml", ".yaml"):
        import yaml  # PyYAML comes with ansible-core

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"observations file {path}: not valid YAML: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"observations file {path}: not valid JSON: {exc}") from None


def _interval(raw: Any, where: str) -> datetime.timedelta:
    if raw is None:
        return datetime.timedelta(seconds=60)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise UsageError(f"{where}: interval_seconds must be a whole number of seconds above 0; got {raw!r}")
    return datetime.timedelta(seconds=raw)


def observations_from_dict(document: Any, where: str = "observations", default_source: str = "observations"
                           ) -> Observations:
    """Validate a parsed observations document (see load_observations) into Observations.

    `where` prefixes error messages; `default_source` names the source when the document has none.
    """
    if not isinstance(document, dict):
        raise UsageError(f"{where}: the top level must be an object with collected_at and metrics")
    if "collected_at" not in document:
        raise UsageError(f"{where}: collected_at is missing (ISO-8601 UTC time the metrics were collected)")
    collected_at = parse_time(document["collected_at"], f"{where}: collected_at")
    interval = _interval(document.get("interval_seconds"), where)
    raw_metrics = document.get("metrics")
    if not isinstance(raw_metrics, dict):
        raise UsageError(f"{where}: metrics must be an object mapping metric names to values or samples")
    metrics = {
        name: _samples(raw, METRICS[name], collected_at, where)
        for name, raw in raw_metrics.items() if name in METRICS
    }
    unknown = tuple(sorted(str(name) for name in raw_metrics if name not in METRICS))
    source = document.get("source")
    return Observations(str(source) if source is not None else default_source, collected_at, interval,
                        {name: samples for name, samples in metrics.items() if samples}, unknown_metrics=unknown)


def load_observations(path: str | Path) -> Observations:
    """Read an observations file: JSON, or YAML when the name ends in .yml/.yaml.

    Format: {"source": text, "collected_at": ISO-8601, "interval_seconds": 60 (default),
    "metrics": {name: scalar | [{"t": ISO-8601, "v": value}, ...]}}. Raises UsageError naming the
    file and the problem.
    """
    path = Path(path)
    return observations_from_dict(_read_document(path), f"observations file {path}", str(path))


# ---- evaluation -----------------------------------------------------------------------------------

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
    def exit_code(self) -> int:
        """6 when at least one trigger fired, else 0."""
        return EXIT_FIRED if self.fired else EXIT_NOT_FIRED

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


class _MissingFail(Exception):
    """Missing data decided a trigger under the `fail` policy."""


def _sample_dict(metric: str, sample: Sample, condition: Condition) -> dict[str, Any]:
    return {"metric": metric, "t": iso(sample.t), "v": sample.v, "breaching": condition.breaches(sample.v)}


def _apply_policy(policy: str, what_missing: str) -> bool:
    """Whether missing data makes the trigger fire; raises _MissingFail for the `fail` policy."""
    if policy == FAIL:
        raise _MissingFail(what_missing)
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
    observed = "; ".join(f"{v['metric']} = {_num(v['v'])} at {v['t']}" for v in values)
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
        reason = (f"{condition.metric} = {_num(good[0].v)} at {iso(good[0].t)} does not meet the trigger condition "
                  f"{condition.describe()} ({len(good)} non-breaching sample(s) in {window_words})")
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
        except _MissingFail as exc:
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


# ---- Prometheus -----------------------------------------------------------------------------------

class _QueryRejected(Exception):
    """Prometheus refused the query itself (HTTP 400 bad_data): retrying cannot help."""


class _QueryError(Exception):
    """A transient failure of one query (connection, timeout, HTTP 5xx, bad answer)."""


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class PrometheusSource:
    """Reads the trigger metrics from the Prometheus HTTP API at one evaluation time.

    Instant metrics use /api/v1/query at `at`; windowed ones /api/v1/query_range over the window with
    step = interval. Each query tolerates `max_consecutive_errors` errors in a row (default 4, like
    Argo's consecutiveErrorLimit) and is retried with a growing delay; one more error makes the source
    unreadable (MetricsUnavailable). An empty result is missing data, left to the policy. When a query
    returns several series, the worst value per timestamp is kept (max, or min for probes).
    """

    def __init__(self, url: str, *, at: datetime.datetime | None = None,
                 interval: datetime.timedelta = datetime.timedelta(seconds=60),
                 queries: Mapping[str, str] | None = None, timeout: float = 10.0,
                 max_consecutive_errors: int = 4, retry_delay: float = 0.25,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"invalid Prometheus URL {url!r}: use http(s)://HOST:PORT, e.g. http://127.0.0.1:9090")
        if interval <= datetime.timedelta(0):
            raise UsageError("invalid interval: it must be more than 0s")
        unknown = sorted(set(queries or {}) - set(METRICS))
        if unknown:
            raise UsageError(f"unknown metric(s) in --query: {', '.join(unknown)}; use one of {', '.join(METRICS)}")
        self.url = url.rstrip("/")
        moment = at or datetime.datetime.now(UTC)
        self.at = moment.astimezone(UTC).replace(microsecond=0)  # whole seconds: steps line up exactly
        self.interval = interval
        self.queries = {name: (queries or {}).get(name, metric.default_query) for name, metric in METRICS.items()}
        self.timeout = timeout
        self.max_consecutive_errors = max_consecutive_errors
        self.retry_delay = retry_delay
        self._sleep = sleep

    @property
    def name(self) -> str:
        """The source as shown in reports (credentials removed)."""
        return f"prometheus {_redact(self.url)}"

    def collect(self, thresholds: Thresholds | None = None) -> Observations:
        """Query every metric; windows come from the thresholds' windowed triggers."""
        windows = {defn.conditions[0].metric: defn.window for defn in definitions(thresholds) if defn.window}
        metrics: dict[str, tuple[Sample, ...]] = {}
        series: dict[str, int] = {}
        for name, metric in METRICS.items():
            window = windows.get(name)
            if window is None:
                found = self._series(name, "/api/v1/query", {"query": self.queries[name], "time": self._ts(self.at)})
            else:
                found = self._series(name, "/api/v1/query_range", self._range_params(name, window))
            series[name] = len(found)
            samples = _worst(found, metric.kind == OK_KIND)
            if samples:
                metrics[name] = samples
        return Observations(self.name, self.at, self.interval, metrics, series, dict(self.queries))

    def _range_params(self, name: str, window: datetime.timedelta) -> dict[str, str]:
        steps = slot_count(window, self.interval)
        if steps > 11000:
            raise UsageError(f"{name}: a {matrix.format_duration(window)} window in "
                             f"{matrix.format_duration(self.interval)} steps is {steps} points; Prometheus "
                             "allows 11000: use a larger --interval")
        start = self.at - (steps - 1) * self.interval
        return {"query": self.queries[name], "start": self._ts(start), "end": self._ts(self.at),
                "step": f"{self.interval.total_seconds():g}"}

    @staticmethod
    def _ts(moment: datetime.datetime) -> str:
        return f"{moment.timestamp():.3f}"

    def _series(self, name: str, path: str, params: Mapping[str, str]) -> list[list[tuple[float, str]]]:
        """The result series of one query as lists of (unix time, value text), with retries."""
        data = self._query(name, path, params)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list):
            return [[tuple(result)]]
        if kind == "vector" and isinstance(result, list):
            return [[tuple(item["value"])] for item in result]
        if kind == "matrix" and isinstance(result, list):
            return [[tuple(v) for v in item["values"]] for item in result]
        raise MetricsUnavailable(f"{self.name}: unexpected answer for {name} ({self.queries[name]!r}): "
                                 f"resultType {kind!r}; the query must return numbers")

    def _query(self, name: str, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        errors: list[str] = []
        for attempt in range(self.max_consecutive_errors + 1):
            try:
                return self._get(path, params)
            except _QueryRejected as exc:
                raise MetricsUnavailable(
                    f"{self.name} rejected the query for {name} ({self.queries[name]!r}): {exc}. "
                    f"Correct it with --query {name}=PROMQL."
                ) from None
            except _QueryError as exc:
                errors.append(str(exc))
                if attempt < self.max_consecutive_errors:
                    self._sleep(self.retry_delay * 2**attempt)
        raise MetricsUnavailable(
            f"metrics source unreadable: {self.name} failed {len(errors)} times in a row for {name} "
            f"({self.queries[name]!r}); last error: {errors[-1]}. No trigger was evaluated: check that "
            "Prometheus is up and reachable from here."
        )

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - scheme checked
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc.read())
            if exc.code == 400:
                raise _QueryRejected(detail) from None
            raise _QueryError(f"HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise _QueryError(str(getattr(exc, "reason", exc))) from None
        try:
            document = json.loads(body)
        except ValueError:
            raise _QueryError("the answer is not JSON") from None
        if not isinstance(document, dict) or document.get("status") != "success":
            raise _QueryError(_error_detail(body))
        data = document.get("data")
        if not isinstance(data, dict):
            raise _QueryError("the answer has no data")
        return data


def _error_detail(body: bytes) -> str:
    try:
        document = json.loads(body)
        return f"{document.get('errorType', 'error')}: {document.get('error', '?')}"
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace") or "empty answer"


def _worst(found: list[list[tuple[float, str]]], probe: bool) -> tuple[Sample, ...]:
    """Merge series: per timestamp the worst value (min for probes, max otherwise); NaN is missing."""
    merged: dict[float, float] = {}
    pick = min if probe else max
    for values in found:
        for stamp, text in values:
            value = float(text)
            if math.isnan(value):
                continue
            stamp = float(stamp)
            merged[stamp] = pick(merged[stamp], value) if stamp in merged else value
    return tuple(Sample(datetime.datetime.fromtimestamp(stamp, UTC), value) for stamp, value in sorted(merged.items()))


# ---- output ---------------------------------------------------------------------------------------

def _tag(result: TriggerResult) -> str:
    return f"[{result.issue_type}/{result.severity}]"


def format_report(report: TriggerReport) -> str:
    """The report for a terminal: fired triggers with evidence, the others, the implied decision."""
    words = {BREACHING: "counts as breaching", NOT_BREACHING: "counts as not breaching", FAIL: "stops the run"}
    lines = [f"Triggers from {report.source}, collected at {iso(report.collected_at)} "
             f"(interval {matrix.format_duration(report.interval)}; missing data {words[report.missing_policy]})"]
    if report.fired:
        lines.append(f"FIRED ({len(report.fired)}):")
        lines.extend(f"  {r.name} {_tag(r)} {r.description}\n      {r.reason}" for r in report.fired)
    lines.append(f"Not fired ({len(report.not_fired)}):")
    lines.extend(f"  {r.name}: {r.reason}" for r in report.not_fired)
    lines.extend(f"WARNING: {warning}" for warning in report.warnings)
    if report.implied is None:
        lines.append("No trigger fired.")
    else:
        lines.append(f"Implied decision (most urgent fired trigger: {report.implied_by}):")
        lines.extend(f"  {line}" for line in matrix.format_decision(report.implied).splitlines())
    return "\n".join(lines)


# ---- command line ---------------------------------------------------------------------------------

def _query_overrides(pairs: Iterable[str]) -> dict[str, str]:
    queries = {}
    for pair in pairs:
        name, sep, promql = pair.partition("=")
        name = name.strip()
        if not sep or name not in METRICS or not promql.strip():
            raise UsageError(f"invalid --query {pair!r}: use METRIC=PROMQL with METRIC one of {', '.join(METRICS)}")
        queries[name] = promql.strip()
    return queries


def _observations_for(args: argparse.Namespace, thresholds: Thresholds) -> Observations:
    if args.observations is not None:
        misplaced = [flag for flag, value in (("--at", args.at), ("--interval", args.interval),
                                              ("--query", args.query)) if value]
        if misplaced:
            raise UsageError(f"{', '.join(misplaced)} only apply with --prometheus; the observations file "
                             "carries its own collected_at and interval_seconds")
        return load_observations(args.observations)
    at = None if args.at in (None, "now") else parse_time(args.at, "--at")
    interval = matrix.parse_duration(args.interval) if args.interval else datetime.timedelta(seconds=60)
    source = PrometheusSource(args.prometheus, at=at, interval=interval, queries=_query_overrides(args.query or []))
    return source.collect(thresholds)


def cmd_triggers(args: argparse.Namespace) -> int:
    """`rollbackctl triggers`: evaluate, print, and return 0 (none fired) or 6 (fired).

    Raises UsageError (exit 2) and MetricsUnavailable (exit 7); the main CLI prints them.
    """
    thresholds = Thresholds().with_overrides(args.threshold or [])
    observations = _observations_for(args, thresholds)
    report = evaluate(observations, thresholds, missing=args.missing)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        for warning in report.warnings:
            print(f"rollbackctl: warning: {warning}", file=sys.stderr)
    else:
        print(format_report(report))
    return report.exit_code


def _triggers_epilog() -> str:
    rows = "\n".join(f"  {d.name:<25} {d.condition_text:<48} -> {d.issue_type}/{d.severity}" for d in definitions())
    queries = "\n".join(f"  {m.name}: {m.default_query}" for m in METRICS.values())
    return (
        "triggers (plan defaults) and the matrix row each implies:\n"
        f"{rows}\n\n"
        "observations file (JSON, or YAML for .yml/.yaml):\n"
        '  {"source": "text", "collected_at": "2026-11-28T16:00:00Z", "interval_seconds": 60,\n'
        '   "metrics": {"api_5xx_ratio": 0.42, "auth_ok": true,\n'
        '               "cpu_percent": [{"t": "2026-11-28T15:56:00Z", "v": 95.0}, ...]}}\n'
        "  A scalar is the value at collected_at; a list holds samples. Windowed triggers split\n"
        "  (collected_at - window, collected_at] into interval-long slots and fire when every slot breaches;\n"
        "  one non-breaching sample stops them. A slot without a sample, or an absent metric, is missing data.\n\n"
        f"default PromQL per metric (override with --query METRIC=PROMQL):\n{queries}\n\n"
        "exit codes:\n"
        "  0  no trigger fired\n"
        "  2  usage error (bad option, unreadable or malformed observations file)\n"
        "  6  at least one trigger fired (the implied decision is printed)\n"
        "  7  the metrics source is unreadable, or data is missing with --missing fail\n"
    )


def add_triggers_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `triggers` sub-command on an argparse subparsers object; returns its parser."""
    parser = subparsers.add_parser(
        "triggers",
        help="evaluate the rollback plan's triggers on observed metrics",
        description=textwrap.fill(width=78, text=(
            "Evaluate the rollback plan's Rollback Triggers on metrics from an observations file or from "
            "Prometheus, print the fired triggers with their evidence and the decision the most urgent one "
            "implies in the decision matrix. Missing data counts as breaching unless --missing says otherwise."
        )),
        epilog=_triggers_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--observations", metavar="FILE", help="observations file (JSON, or YAML for .yml/.yaml)")
    source.add_argument("--prometheus", metavar="URL", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--missing", choices=MISSING_POLICIES, default=BREACHING,
                        help="how missing data counts: breaching (default, safe for rollback signals), "
                             "not_breaching, or fail (stop with exit 7 naming the metric)")
    parser.add_argument("--at", metavar="TIME",
                        help="Prometheus only: evaluation time, ISO-8601 (e.g. 2026-11-28T16:00:00Z); default now")
    parser.add_argument("--interval", metavar="DURATION",
                        help=f"Prometheus only: slot length and query_range step ({matrix.DURATION_FORMS}); "
                             "default 1m")
    parser.add_argument("--query", action="append", metavar="METRIC=PROMQL",
                        help="Prometheus only: PromQL for a metric instead of the default (repeatable)")
    parser.add_argument("--threshold", action="append", metavar="NAME=VALUE",
                        help=f"override a threshold (repeatable); NAME one of {', '.join(Thresholds.names())}; "
                             "windows and max_sample_age are durations (5m)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=cmd_triggers)
    return parser
