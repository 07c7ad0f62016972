"""The capacity search (benchmarks/stats.find_capacity) on a fake platform whose latency is a function of the rate."""

from __future__ import annotations

import pytest

from benchmarks.stats import Step, find_capacity


def fake(knee: float, achieved_share: float = 1.0, errors_above: float | None = None):
    """p95 stays at 50 ms up to `knee` requests/s, then grows past a second."""
    asked = []

    def measure(rate: float) -> Step:
        asked.append(rate)
        p95 = 0.05 if rate <= knee else 0.05 + (rate - knee)
        errors = 1 if errors_above is not None and rate > errors_above else 0
        return Step(rate, rate * achieved_share, p95, errors)

    return measure, asked


def test_capacity_is_the_last_rate_under_the_p95_limit():
    measure, asked = fake(knee=30.0)
    found = find_capacity(measure, start=5.0, factor=2.0, max_rate=1000, max_steps=10, p95_limit=1.0)
    assert asked == [5.0, 10.0, 20.0, 40.0]  # 40/s: p95 = 10 s, the search stops there
    assert found.rate == 20.0 and found.limited_by == "p95" and len(found.steps) == 4


def test_search_is_bounded_by_max_rate_and_max_steps():
    measure, asked = fake(knee=10_000.0)
    by_rate = find_capacity(measure, start=5.0, factor=2.0, max_rate=50.0, max_steps=10)
    assert (by_rate.rate, by_rate.limited_by) == (40.0, "max_rate")
    assert max(asked) <= 50.0
    measure, asked = fake(knee=10_000.0)
    by_steps = find_capacity(measure, start=1.0, factor=1.5, max_rate=1e9, max_steps=3)
    assert (len(asked), by_steps.rate, by_steps.limited_by) == (3, 2.25, "max_steps")


def test_a_rate_not_achieved_or_with_errors_does_not_hold():
    measure, _ = fake(knee=10_000.0, achieved_share=0.5)
    assert find_capacity(measure, start=5.0).rate == 0.0, "a generator that cannot send the rate measures nothing"
    measure, _ = fake(knee=10_000.0, errors_above=12.0)
    assert find_capacity(measure, start=5.0, factor=2.0).rate == 10.0


def test_p95_exactly_at_the_limit_holds():
    assert Step(10.0, 10.0, 1.0).holds(1.0) and not Step(10.0, 10.0, 1.0001).holds(1.0)


@pytest.mark.parametrize("bad", [{"start": 0}, {"factor": 1.0}, {"max_steps": 0}])
def test_search_refuses_bounds_that_never_end_or_never_start(bad):
    measure, _ = fake(knee=1.0)
    with pytest.raises(ValueError):
        find_capacity(measure, **bad)
