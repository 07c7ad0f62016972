"""Observations: metric samples read from a JSON/YAML file (or built by the Prometheus source)."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import inputs
from ..errors import UsageError
from ..times import parse_time
from .metrics import METRICS, OK_KIND, Metric


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


def read_time(value: Any, what: str) -> datetime.datetime:
    """`times.parse_time`, with a UsageError naming `what` (the file and field, or the option)."""
    try:
        return parse_time(value)
    except ValueError as exc:
        shown = repr(value) if len(repr(value)) <= 80 else f"{repr(value)[:80]}..."
        out_of_range = "out of range" in str(exc)
        raise UsageError(f"{what}: invalid time {shown}: " + (f"{exc}" if out_of_range else
                                                               "use ISO-8601, e.g. 2026-11-28T16:00:00Z")) from None


def _value(raw: Any, metric: Metric, where: str) -> float | bool | None:
    """A metric value from the file: None (missing), a bool for probes, or a finite/inf number."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        if metric.kind != OK_KIND:
            raise UsageError(f"{where}: {metric.name} must be a number, not {raw!r}")
        return raw
    if isinstance(raw, int | float):
        value = inputs.number(raw, f"{where}: {metric.name}")
        return None if math.isnan(value) else value
    accepted = "true/false (or 1/0)" if metric.kind == OK_KIND else "a number"
    shown = repr(raw) if len(repr(raw)) <= 80 else f"{repr(raw)[:80]}..."
    raise UsageError(f"{where}: {metric.name} must be {accepted}, a list of {{t, v}} samples, or null; got {shown}")


def _samples(raw: Any, metric: Metric, collected_at: datetime.datetime, where: str) -> tuple[Sample, ...]:
    """A scalar (value at collected_at) or a list of {t, v}; null values and NaN are dropped (missing)."""
    if not isinstance(raw, list):
        value = _value(raw, metric, where)
        return () if value is None else (Sample(collected_at, value),)
    samples = []
    for index, item in enumerate(raw):
        spot = f"{where}: {metric.name}[{index}]"
        if not isinstance(item, dict) or "t" not in item or "v" not in item:
            shown = repr(item) if len(repr(item)) <= 80 else f"{repr(item)[:80]}..."
            raise UsageError(f"{spot}: a sample must be an object with 't' (ISO-8601 time) and 'v' (value); "
                             f"got {shown}")
        value = _value(item["v"], metric, spot)
        if value is not None:
            samples.append(Sample(read_time(item["t"], spot), value))
    return tuple(sorted(samples, key=lambda s: s.t))


def _read_document(path: Path) -> Any:
    """The file as a document: JSON, or YAML for .yml/.yaml (no aliases), at most 64 levels deep; the top level
    is checked by observations_from_dict."""
    return inputs.load_document(path, f"observations file {path}", top=None)


def _interval(raw: Any, where: str) -> datetime.timedelta:
    if raw is None:
        return datetime.timedelta(seconds=60)
    return inputs.seconds(raw, f"{where}: interval_seconds")


def observations_from_dict(document: Any, where: str = "observations", default_source: str = "observations"
                           ) -> Observations:
    """Validate a parsed observations document (see load_observations) into Observations.

    `where` prefixes error messages; `default_source` names the source when the document has none.
    """
    if not isinstance(document, dict):
        raise UsageError(f"{where}: the top level must be an object with collected_at and metrics")
    if "collected_at" not in document:
        raise UsageError(f"{where}: collected_at is missing (ISO-8601 UTC time the metrics were collected)")
    collected_at = read_time(document["collected_at"], f"{where}: collected_at")
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
    source = str(source)[:200] if source is not None else default_source
    return Observations(source, collected_at, interval,
                        {name: samples for name, samples in metrics.items() if samples}, unknown_metrics=unknown)


def load_observations(path: str | Path) -> Observations:
    """Read an observations file: JSON, or YAML when the name ends in .yml/.yaml.

    Format: {"source": text, "collected_at": ISO-8601, "interval_seconds": 60 (default),
    "metrics": {name: scalar | [{"t": ISO-8601, "v": value}, ...]}}. Raises UsageError naming the
    file and the problem.
    """
    path = Path(path)
    return observations_from_dict(_read_document(path), f"observations file {path}", str(path))
