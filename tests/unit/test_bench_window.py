"""What users saw, computed from a request log (benchmarks/stats.seen): the 503 window, the failed requests."""

from __future__ import annotations

from benchmarks.stats import Request, seen


def _r(op, sent, status, latency=0.1, release=None, maintenance=False):
    return Request(op, sent, sent, latency if status is not None else None, status, maintenance, release)


LOG = [
    _r("health", 0.0, 200, release="1.0.0"),
    _r("login", 0.5, 200),
    _r("messages", 1.0, 500),  # the bad release's own error
    _r("conversations", 2.0, 503, latency=0.05, maintenance=True),  # answered at 2.05
    _r("health", 2.5, 200, release="1.0.0"),
    _r("messages", 3.0, 502),
    _r("messages", 4.0, None),  # no answer at all
    _r("conversations", 6.0, 503, latency=0.3, maintenance=True),  # answered at 6.3
    _r("health", 6.5, 200, release="0.9.0"),
    _r("messages", 7.0, 401),  # logged out by the restore
    _r("messages", 8.0, 200),
    _r("health", 9.0, 503),  # /health is not a user: never in the window
]


def test_window_runs_from_the_first_to_the_last_503_answer():
    users = seen(LOG)
    assert users.first_503 == 2.05 and users.last_503 == 6.3
    assert users.window == 6.3 - 2.05
    assert users.count_503 == 2


def test_failed_requests_are_what_the_rollback_did_to_users_and_app_errors_apart():
    users = seen(LOG)
    assert users.requests == 8  # user operations only
    assert users.failed == 5  # two 503s, the 502, no answer, the 401
    assert users.app_errors == 1


def test_releases_in_order_of_first_answer():
    assert seen(LOG).releases == ("1.0.0", "0.9.0")


def test_interval_keeps_only_requests_sent_in_it():
    users = seen(LOG, start=5.0, end=8.5)
    assert (users.requests, users.failed, users.count_503, users.window) == (3, 2, 1, 0.0)
    assert users.releases == ("0.9.0",)


def test_no_503_no_window():
    users = seen([_r("login", 0.0, 200), _r("messages", 1.0, 200)])
    assert (users.window, users.first_503, users.failed) == (0.0, None, 0)
