"""The Prometheus source: the trigger metrics read from the Prometheus HTTP API, with retries."""

from __future__ import annotations

import datetime
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from .. import inputs, matrix
from ..errors import MetricsUnavailable, PrometheusQueryError, PrometheusQueryRejected, UsageError
from ..redact import redact_url
from .evaluate import slot_count
from .metrics import METRICS, OK_KIND, Thresholds, definitions
from .observations import Observations, Sample

UTC = datetime.UTC


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
        try:
            inputs.url(url, "--prometheus")
        except UsageError as exc:
            raise UsageError(f"invalid Prometheus URL: {exc} (use http(s)://HOST:PORT)") from None
        if interval <= datetime.timedelta(0):
            raise UsageError("--interval: invalid interval: it must be more than 0s")
        if interval > inputs.DURATION_MAX:
            raise UsageError(f"--interval: invalid interval: at most {matrix.format_duration(inputs.DURATION_MAX)}")
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
        return f"prometheus {redact_url(self.url)}"

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

    def _series(self, name: str, path: str, params: Mapping[str, str]) -> list[list[tuple[float, float]]]:
        """The result series of one query as lists of (unix time, value text), with retries."""
        data = self._query(name, path, params)
        kind, result = data.get("resultType"), data.get("result")
        try:
            return _parse_result(kind, result)
        except ValueError as exc:  # an answer of a shape the Prometheus API does not give
            raise MetricsUnavailable(f"metrics source unreadable: {self.name} gave an unexpected answer for {name} "
                                     f"({self.queries[name]!r}): {exc}; the query must return numbers") from None

    def _query(self, name: str, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        errors: list[str] = []
        for attempt in range(self.max_consecutive_errors + 1):
            try:
                return self._get(path, params)
            except PrometheusQueryRejected as exc:
                raise MetricsUnavailable(
                    f"{self.name} rejected the query for {name} ({self.queries[name]!r}): {exc}. "
                    f"Correct it with --query {name}=PROMQL."
                ) from None
            except PrometheusQueryError as exc:
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
                raise PrometheusQueryRejected(detail) from None
            raise PrometheusQueryError(f"HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise PrometheusQueryError(str(getattr(exc, "reason", exc))) from None
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, nested too deeply, a number Python refuses
            raise PrometheusQueryError("the answer is not JSON") from None
        if not isinstance(document, dict) or document.get("status") != "success":
            raise PrometheusQueryError(_error_detail(body))
        data = document.get("data")
        if not isinstance(data, dict):
            raise PrometheusQueryError("the answer has no data")
        return data


def _error_detail(body: bytes) -> str:
    try:
        document = json.loads(body)
        return f"{document.get('errorType', 'error')}: {document.get('error', '?')}"[:500]
    except (ValueError, AttributeError, RecursionError):
        return body[:200].decode("utf-8", "replace") or "empty answer"


#: Sample times Prometheus can give that the wrapper can compute with (1970 to 8999, as times.parse_time).
_LATEST_STAMP = 221845392000.0


def _sample(pair: Any, where: str) -> tuple[float, float]:
    """A [unix time, "value"] pair as floats; ValueError naming `where` for anything else."""
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise ValueError(f"{where} is not a [time, value] pair: {str(pair)[:80]}")
    stamp, text = pair
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        raise ValueError(f"{where}: the time {str(stamp)[:40]!r} is not a number")
    try:
        stamp = float(stamp)
    except OverflowError:
        raise ValueError(f"{where}: the time is out of range") from None
    if not (math.isfinite(stamp) and 0 <= stamp < _LATEST_STAMP):
        raise ValueError(f"{where}: the time {stamp!r} is out of range")
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"{where}: the value {str(text)[:40]!r} is not a number")
    try:
        value = float(text)
    except (ValueError, OverflowError):
        raise ValueError(f"{where}: the value {str(text)[:40]!r} is not a number") from None
    return stamp, value


def _parse_result(kind: Any, result: Any) -> list[list[tuple[float, float]]]:
    """The series of a query answer: scalar, vector (`value`) or matrix (`values`), every sample checked."""
    if kind == "scalar" and isinstance(result, list):
        return [[_sample(result, "the scalar")]]
    if kind == "vector" and isinstance(result, list):
        series = []
        for index, item in enumerate(result):
            if not isinstance(item, dict) or "value" not in item:
                raise ValueError(f"result[{index}] has no 'value'")
            series.append([_sample(item["value"], f"result[{index}].value")])
        return series
    if kind == "matrix" and isinstance(result, list):
        series = []
        for index, item in enumerate(result):
            if not isinstance(item, dict) or not isinstance(item.get("values"), list):
                raise ValueError(f"result[{index}] has no 'values' list")
            series.append([_sample(pair, f"result[{index}].values[{i}]") for i, pair in enumerate(item["values"])])
        return series
    raise ValueError(f"resultType {str(kind)[:40]!r} with a result of type {type(result).__name__}")


def _worst(found: list[list[tuple[float, float]]], probe: bool) -> tuple[Sample, ...]:
    """Merge series: per timestamp the worst value (min for probes, max otherwise); NaN is missing."""
    merged: dict[float, float] = {}
    pick = min if probe else max
    for values in found:
        for stamp, value in values:
            if math.isnan(value):
                continue
            merged[stamp] = pick(merged[stamp], value) if stamp in merged else value
    return tuple(Sample(datetime.datetime.fromtimestamp(stamp, UTC), value) for stamp, value in sorted(merged.items()))
