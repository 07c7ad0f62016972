"""The benchmark's pure logic (benchmarks/stats.py): summaries of repeats, percentiles, ratios."""

from __future__ import annotations

import math

import pytest

from benchmarks.stats import fmt_ratio, percentile, ratio, summarize


def test_summary_is_min_median_max_of_what_was_measured():
    summary = summarize([3.0, None, 1.0, 2.0, float("nan"), 10.0])
    assert (summary.n, summary.min, summary.median, summary.max) == (4, 1.0, 2.5, 10.0)
    assert summary.fmt(" s") == "2.5 s (1.0-10.0)"


def test_summary_of_one_value_or_none():
    assert summarize([4.25]).fmt(" s", 2) == "4.25 s"
    empty = summarize([None])
    assert empty.n == 0 and math.isnan(empty.median) and empty.fmt() == "n/a"


@pytest.mark.parametrize(("fraction", "expected"), [(0.95, 95), (0.5, 50), (1.0, 100), (0.001, 1)])
def test_percentile_is_nearest_rank(fraction, expected):
    values = list(range(100, 0, -1))  # 100 .. 1, unordered on purpose
    assert percentile(values, fraction) == expected


def test_percentile_of_nothing_is_nan():
    assert math.isnan(percentile([], 0.95))


def test_ratios_refuse_what_cannot_be_divided():
    assert ratio(82.0, 4.5) == pytest.approx(18.222, rel=1e-3)
    assert ratio(None, 1.0) is None and ratio(1.0, 0.0) is None and ratio(float("nan"), 1.0) is None
    assert fmt_ratio(10 / 3) == "3.33x" and fmt_ratio(None) == "n/a"
