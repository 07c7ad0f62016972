"""The rollback plan's Rollback Triggers, evaluated on observed metrics.

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

One module a concern: `metrics` (the metric table, thresholds, trigger definitions), `observations`
(observation files), `evaluate` (conditions, windows, missing data, the implied decision),
`prometheus` (the Prometheus source) and `output` (text and JSON). The `triggers` command is
`rollbackctl.cli.triggers`.
"""

from ..errors import MetricsUnavailable
from .evaluate import (
    BREACHING,
    FAIL,
    MISSING_POLICIES,
    NOT_BREACHING,
    TriggerReport,
    TriggerResult,
    evaluate,
    slot_count,
)
from .metrics import (
    METRICS,
    OK_KIND,
    VALUE_KIND,
    Condition,
    Metric,
    Thresholds,
    TriggerDefinition,
    definitions,
)
from .observations import Observations, Sample, load_observations, observations_from_dict, read_time
from .output import format_json, format_report


def __getattr__(name: str):
    """`PrometheusSource` is imported when first used (it brings urllib.request and http.client)."""
    if name == "PrometheusSource":
        from .prometheus import PrometheusSource

        return PrometheusSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BREACHING",
    "FAIL",
    "METRICS",
    "MISSING_POLICIES",
    "NOT_BREACHING",
    "OK_KIND",
    "VALUE_KIND",
    "Condition",
    "Metric",
    "MetricsUnavailable",
    "Observations",
    "PrometheusSource",
    "Sample",
    "Thresholds",
    "TriggerDefinition",
    "TriggerReport",
    "TriggerResult",
    "definitions",
    "evaluate",
    "format_json",
    "format_report",
    "load_observations",
    "observations_from_dict",
    "read_time",
    "slot_count",
]
