"""The pure logic of the benchmark: summaries of repeats, what a request log says users saw, the capacity
search, ratios. No I/O here (tests/unit/test_bench_*.py cover it)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

# The operations users send that count for what they see (/health probes the release, it is not a user).
USER_OPS = ("login", "conversations", "messages")
# The app's own error answer (routes.js: 500 internal): the bad release v1.0.0 fails message lists with it. It is
# the reason for the rollback, not something the rollback did to users, so it is counted apart.
APP_ERROR = 500


@dataclass(frozen=True)
class Summary:
    n: int
    min: float
    median: float
    max: float

    def fmt(self, unit: str = "", digits: int = 1) -> str:
        if self.n == 0:
            return "n/a"
        if self.n == 1 or self.min == self.max:
            return f"{self.median:.{digits}f}{unit}"
        return f"{self.median:.{digits}f}{unit} ({self.min:.{digits}f}-{self.max:.{digits}f})"


def summarize(values: Iterable[float | None]) -> Summary:
    """min/median/max of the values that were measured (None: not measured, left out)."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not kept:
        return Summary(0, math.nan, math.nan, math.nan)
    return Summary(len(kept), min(kept), statistics.median(kept), max(kept))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction 0.95 = p95); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Request:
    """One request of the load: when it was due and sent (seconds on the run's clock), how it ended."""

    op: str
    due: float
    sent: float
    latency: float | None  # None: no answer (connection refused, timeout)
    status: int | None  # None: no HTTP answer
    maintenance: bool = False  # a 503 with Retry-After (nginx's maintenance page)
    release: str | None = None  # the release that answered, when the answer says it (/health)

    @property
    def done(self) -> float:
        return self.sent + (self.latency or 0.0)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 400


@dataclass(frozen=True)
class Seen:
    """What users saw during an interval of the load."""

    requests: int
    failed: int  # user requests the rollback failed: 503, 502, 504, 401 (logged out), no answer (APP_ERROR apart)
    app_errors: int  # answered APP_ERROR: the application's own failure (the bad release's symptom)
    count_503: int
    window: float  # first to last 503 answer (seconds; 0 when there was none)
    first_503: float | None
    last_503: float | None
    releases: tuple[str, ...]  # releases that answered, in order of first appearance
    failed_by_status: dict = field(default_factory=dict)  # "503", "502", "401", "none" (no answer) -> count


def seen(log: Iterable[Request], start: float = -math.inf, end: float = math.inf) -> Seen:
    """The user-visible window (first to last 503, by the time each answer arrived) and the failed user requests
    among the requests sent in [start, end] (APP_ERROR answers counted apart)."""
    users = [r for r in log if r.op in USER_OPS and start <= r.sent <= end]
    answers_503 = sorted(r.done for r in users if r.status == 503)
    releases: list[str] = []
    for r in sorted(log, key=lambda r: r.sent):
        if r.release and r.release not in releases and start <= r.sent <= end:
            releases.append(r.release)
    first, last = (answers_503[0], answers_503[-1]) if answers_503 else (None, None)
    return Seen(requests=len(users), failed=sum(not r.ok and r.status != APP_ERROR for r in users),
                app_errors=sum(r.status == APP_ERROR for r in users), count_503=len(answers_503),
                window=(last - first) if answers_503 else 0.0, first_503=first, last_503=last,
                releases=tuple(releases),
                failed_by_status=dict(Counter(str(r.status).lower() for r in users if not r.ok)))


@dataclass(frozen=True)
class Step:
    """One step of the capacity search: the rate asked for, the rate achieved, the p95 response time."""

    rate: float
    achieved: float
    p95: float
    errors: int = 0

    def holds(self, p95_limit: float, min_share: float = 0.9) -> bool:
        return self.p95 <= p95_limit and self.achieved >= min_share * self.rate and self.errors == 0


@dataclass(frozen=True)
class Capacity:
    rate: float  # the highest rate that held (0 when none did)
    steps: tuple[Step, ...]
    limited_by: str  # "p95" (a step exceeded it), "max_rate" or "max_steps" (the search's bounds)


def find_capacity(measure: Callable[[float], Step], *, start: float = 5.0, factor: float = 1.5,
                  max_rate: float = 400.0, max_steps: int = 10, p95_limit: float = 1.0) -> Capacity:
    """Step the rate up (start, start*factor, ...) until a step does not hold (p95 above the limit, the rate not
    achieved, or errors), bounded by max_rate and max_steps. The capacity is the last rate that held."""
    if start <= 0 or factor <= 1 or max_steps < 1:
        raise ValueError("start > 0, factor > 1 and max_steps >= 1")
    steps: list[Step] = []
    best, rate = 0.0, start
    while len(steps) < max_steps:
        if rate > max_rate:
            return Capacity(best, tuple(steps), "max_rate")
        step = measure(rate)
        steps.append(step)
        if not step.holds(p95_limit):
            return Capacity(best, tuple(steps), "p95")
        best = rate
        rate *= factor
    return Capacity(best, tuple(steps), "max_steps")


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0 or math.isnan(numerator) \
            or math.isnan(denominator):
        return None
    return numerator / denominator


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"
