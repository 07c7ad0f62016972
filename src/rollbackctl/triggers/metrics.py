"""The trigger metrics, the plan's thresholds and the trigger definitions (see `rollbackctl.triggers`)."""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import inputs, matrix
from ..errors import UsageError

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
                shown = repr(pair) if len(pair) <= 60 else f"{pair[:60]!r}... ({len(pair)} characters)"
                raise UsageError(f"--threshold: invalid threshold {shown}: use NAME=VALUE with NAME one of "
                                 f"{', '.join(self.names())}")
            changes[name] = _threshold_value(name, text.strip())
        return dataclasses.replace(self, **changes)


def _threshold_value(name: str, text: str) -> float | datetime.timedelta:
    if name in _DURATION_FIELDS:
        if len(text) > 40:
            raise UsageError(f"--threshold {name}: invalid threshold: the value is {len(text)} characters long")
        try:
            value = matrix.parse_duration(text)
        except UsageError as exc:
            raise UsageError(f"--threshold {name}: invalid threshold {name}={text}: {exc}") from None
        if value <= datetime.timedelta(0):
            raise UsageError(f"--threshold {name}: invalid threshold {name}={text}: the duration must be more than 0s")
        if value > inputs.DURATION_MAX:
            raise UsageError(f"--threshold {name}: invalid threshold {name}={text}: too large, at most "
                             f"{matrix.format_duration(inputs.DURATION_MAX)}")
        return value
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        shown = repr(text) if len(text) <= 60 else f"{text[:60]!r}... ({len(text)} characters)"
        raise UsageError(f"--threshold {name}: invalid threshold {name}={shown}: a number is expected, e.g. "
                         f"{name}=0.05")
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
        return f"{self.metric} {self.op} {format_number(self.threshold)}"


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


def format_number(value: float | bool | None) -> str:
    """A value as the trigger texts show it: ``0.01``, ``90``, ``true``, ``none``."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}"
