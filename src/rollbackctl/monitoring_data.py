"""Monitoring data around the failure (plan: Root Cause Analysis), kept in the record's `monitoring_data`.

Two sources, merged per metric:

- the triggers' observations already in the record (`triggers.fired[].evidence.values` and `not_fired`):
  what the decision was made on;
- Prometheus range queries when a Prometheus URL is known (the trigger report's source, or given), over a
  window from `before` ahead of the first observation or phase to `after` past the rollback's end: the
  trigger metrics' queries (the 5xx ratio, the critical response time, CPU and memory).

Never fatal: a Prometheus that cannot be read is noted in the section's `errors`, the observations stay.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from .errors import RollbackctlError
from .redact import redact_url
from .times import iso, maybe_time

UTC = dt.UTC

#: The metrics charted: name -> (label, unit).
CHARTED: dict[str, tuple[str, str]] = {
    "api_5xx_ratio": ("API 5xx ratio", "ratio"),
    "critical_response_seconds": ("Critical response time", "s"),
    "cpu_percent": ("CPU", "%"),
    "memory_percent": ("Memory", "%"),
}
BEFORE = dt.timedelta(minutes=30)
AFTER = dt.timedelta(minutes=5)
MAX_POINTS = 500


def _observations(triggers: Mapping[str, Any] | None) -> dict[str, dict[str, float]]:
    """metric -> {ISO time: value} from the trigger report's evidence."""
    found: dict[str, dict[str, float]] = {}
    if not isinstance(triggers, Mapping):
        return found
    for entry in [*(triggers.get("fired") or []), *(triggers.get("not_fired") or [])]:
        evidence = entry.get("evidence") if isinstance(entry, Mapping) else None
        for value in (evidence or {}).get("values") or []:
            if not isinstance(value, Mapping):
                continue
            metric, moment, number = value.get("metric"), maybe_time(value.get("t")), value.get("v")
            if metric in CHARTED and moment is not None and isinstance(number, int | float) \
                    and not isinstance(number, bool) and math.isfinite(number):
                found.setdefault(metric, {})[iso(moment)] = float(number)
    return found


def window(record: Mapping[str, Any], observed: Mapping[str, Mapping[str, float]],
           before: dt.timedelta = BEFORE, after: dt.timedelta = AFTER) -> tuple[dt.datetime, dt.datetime]:
    """From `before` ahead of the earliest observation or phase start to `after` past the last phase end (or the
    record's last update), never later than the record's last update plus `after`."""
    starts = [maybe_time(t) for points in observed.values() for t in points]
    ends = []
    for phase in record.get("phases") or []:
        starts.append(maybe_time(phase.get("started_at")))
        ends.append(maybe_time(phase.get("ended_at")))
    updated = maybe_time(record.get("updated_at")) or dt.datetime.now(UTC)
    starts = [s for s in starts if s is not None] or [updated]
    ends = [e for e in ends if e is not None] or [updated]
    return min(starts) - before, max(max(ends), max(starts)) + after


def _prometheus(url: str, start: dt.datetime, end: dt.datetime,
                queries: Mapping[str, str] | None) -> tuple[dict[str, dict[str, float]], list[str]]:
    from .triggers.prometheus import PrometheusSource

    found: dict[str, dict[str, float]] = {}
    errors: list[str] = []
    step = max(15.0, math.ceil((end - start).total_seconds() / MAX_POINTS))
    try:
        source = PrometheusSource(url, at=end, queries={k: v for k, v in (queries or {}).items() if k in CHARTED},
                                  max_consecutive_errors=1, retry_delay=0.1, timeout=5.0)
    except RollbackctlError as exc:
        return found, [str(exc)]
    for metric in CHARTED:
        params = {"query": source.queries[metric], "start": f"{start.timestamp():.3f}",
                  "end": f"{end.timestamp():.3f}", "step": f"{step:g}"}
        try:
            series = source._series(metric, "/api/v1/query_range", params)
        except RollbackctlError as exc:
            errors.append(f"{metric}: {exc}")
            if "unreadable" in str(exc):  # down or unreachable: the other metrics would wait for it too
                errors.append("the other metrics were not queried")
                break
            continue
        worst: dict[str, float] = {}
        for points in series:
            for moment, value in points:
                number = float(value)
                if not math.isfinite(number):
                    continue
                key = iso(dt.datetime.fromtimestamp(float(moment), UTC))
                worst[key] = max(worst.get(key, number), number)
        if worst:
            found[metric] = worst
    return found, errors


def collect(record: Mapping[str, Any], *, prometheus: str | None = None, queries: Mapping[str, str] | None = None,
            before: dt.timedelta = BEFORE, after: dt.timedelta = AFTER) -> dict[str, Any] | None:
    """The `monitoring_data` section, or None when there is nothing to keep (no observation, no Prometheus)."""
    observed = _observations(record.get("triggers"))
    start, end = window(record, observed, before, after)
    sources, errors = [], []
    series: dict[str, dict[str, tuple[str, float]]] = {
        metric: {t: ("triggers", v) for t, v in points.items()} for metric, points in observed.items()}
    if observed:
        sources.append("triggers")
    if prometheus:
        found, errors = _prometheus(prometheus, start, end, queries)
        sources.append(f"prometheus {redact_url(prometheus)}")
        for metric, points in found.items():
            merged = series.setdefault(metric, {})
            for t, v in points.items():
                merged.setdefault(t, ("prometheus", v))  # the triggers' own observation wins at the same time
    if not series and not prometheus:
        return None
    return {
        "window": {"start": iso(start), "end": iso(end)},
        "sources": sources,
        "series": [{"metric": metric, "label": CHARTED[metric][0], "unit": CHARTED[metric][1],
                    "points": [{"t": t, "v": v, "source": s} for t, (s, v) in sorted(series[metric].items())]}
                   for metric in CHARTED if series.get(metric)],
        "errors": errors,
    }


def prometheus_of(triggers: Mapping[str, Any] | None) -> str | None:
    """The Prometheus URL a trigger report was read from (its source `prometheus URL`), unless redacted."""
    source = triggers.get("source") if isinstance(triggers, Mapping) else None
    if isinstance(source, str) and source.startswith("prometheus "):
        url = source.split(" ", 1)[1].strip()
        if url.startswith(("http://", "https://")) and "***" not in url:
            return url
    return None


def attach(record: Any, *, prometheus: str | None = None) -> None:
    """Set the record's `monitoring_data` (an IncidentRecord's data); the trigger report's Prometheus by default."""
    data = record.data
    section = collect(data, prometheus=prometheus or prometheus_of(data.get("triggers")))
    if section is not None:
        data["monitoring_data"] = section
