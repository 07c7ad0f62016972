"""`rollbackctl triggers --prometheus` against a real Prometheus with a backfilled, controlled history.

The history is written as OpenMetrics with explicit timestamps, turned into TSDB blocks by
`promtool tsdb create-blocks-from openmetrics`, and served by a Prometheus started on a free loopback
port for this module (stopped at teardown). Evaluation happens at a fixed time in the past (`--at`),
inside the backfilled range; retention is set long so Prometheus keeps the old blocks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rollbackctl import triggers
from rollbackctl.cli import triggers as triggers_command
from rollbackctl.errors import RollbackctlError

AT = datetime(2025, 3, 10, 12, 0, 0, tzinfo=UTC)
AT_TEXT = "2025-03-10T12:00:00Z"
HISTORY = timedelta(minutes=20)
STEP = 15  # seconds between backfilled samples

# Every metric points at a backfilled test series, so only the metric under test varies.
HEALTHY_QUERIES = {
    "api_5xx_ratio": "max(test_api_5xx_ratio)",
    "auth_ok": 'min(test_probe{job="auth"})',
    "messaging_ok": 'min(test_probe{job="messaging"})',
    "db_connection_failures": "max(test_db_connection_failures)",
    "critical_response_seconds": "max(test_critical_response_seconds)",
    "cpu_percent": 'max(test_cpu_percent{instance="steady"})',
    "memory_percent": "max(test_memory_percent)",
    "db_pool_utilization": "max(test_db_pool_utilization)",
    "db_pool_wait_queue": "max(test_db_pool_wait_queue)",
    "failed_migrations": "max(test_failed_migrations)",
    "data_inconsistencies": "max(test_data_inconsistencies)",
}


def _cpu_dip(moment: datetime) -> float:
    """The 'dip' series: 95 % except 50 % from 3 to 1 minutes before AT (two 1-minute slots)."""
    return 50.0 if AT - timedelta(minutes=3) <= moment < AT - timedelta(minutes=1) else 95.0


def _gauges(moment: datetime) -> dict[str, float]:
    return {
        'test_cpu_percent{instance="steady"}': 95.0,
        'test_cpu_percent{instance="dip"}': _cpu_dip(moment),
        "test_memory_percent": 55.0,
        "test_api_5xx_ratio": 0.001,
        'test_probe{job="auth"}': 1.0,
        'test_probe{job="messaging"}': 1.0,
        "test_db_connection_failures": 0.0,
        "test_critical_response_seconds": 0.25,
        "test_db_pool_utilization": 0.3,
        "test_db_pool_wait_queue": 0.0,
        "test_failed_migrations": 0.0,
        "test_data_inconsistencies": 0.0,
    }


def write_openmetrics(path: Path) -> None:
    """Samples every STEP seconds over HISTORY up to and including AT, grouped by metric family."""
    moments = [AT - HISTORY + timedelta(seconds=STEP * i) for i in range(int(HISTORY.total_seconds()) // STEP + 1)]
    families: dict[str, list[str]] = {}
    for moment in moments:
        for series, value in _gauges(moment).items():
            family = series.split("{")[0]
            families.setdefault(family, []).append(f"{series} {value} {moment.timestamp():.0f}")
    lines = []
    for family, samples in families.items():
        lines += [f"# HELP {family} test series", f"# TYPE {family} gauge", *samples]
    path.write_text("\n".join([*lines, "# EOF"]) + "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"prometheus was not ready within {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[str]:
    """A Prometheus serving the backfilled history on a free loopback port; its base URL."""
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not binary or not promtool:
        pytest.skip("the prometheus and promtool binaries are absent (Debian package `prometheus`; "
                    "scripts/install-deps.sh installs it)")
    root = tmp_path_factory.mktemp("prometheus")
    data, source = root / "data", root / "history.om"
    write_openmetrics(source)
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                   check=True, capture_output=True, text=True)
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "prometheus.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=10y"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollbackctl")
    triggers_command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def run(argv: list[str], capsys) -> tuple[int, dict[str, Any] | None, str]:
    """Run `triggers` as rollbackctl's main would; the exit code, the JSON report (if any), stderr."""
    args = _parser().parse_args(argv)
    try:
        code = args.func(args)
    except RollbackctlError as exc:
        print(f"rollbackctl: {exc}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def argv(url: str, *extra: str, **queries: str) -> list[str]:
    merged = {**HEALTHY_QUERIES, **queries}
    args = ["triggers", "--prometheus", url, "--at", AT_TEXT, "--interval", "1m", "--json"]
    for metric, promql in merged.items():
        args += ["--query", f"{metric}={promql}"]
    return [*args, *extra]


def cpu(report: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in report["fired"] + report["not_fired"] if r["name"] == "cpu_saturated")


def test_the_backfilled_history_is_queryable(prometheus):
    source = triggers.PrometheusSource(prometheus, at=AT, queries=HEALTHY_QUERIES)
    observations = source.collect()
    assert sorted(observations.metrics) == sorted(HEALTHY_QUERIES)
    assert [s.v for s in observations.metrics["cpu_percent"]] == [95.0] * 5
    assert observations.metrics["cpu_percent"][-1].t == AT


def test_windowed_trigger_fires_on_a_saturated_window(prometheus, capsys):
    code, report, _ = run(argv(prometheus, "--missing", "fail"), capsys)  # fail: proves no data is missing
    assert code == 6
    assert [r["name"] for r in report["fired"]] == ["cpu_saturated"]
    evidence = cpu(report)["evidence"]
    assert (evidence["slots"], evidence["slots_observed"], evidence["slots_missing"]) == (5, 5, 0)
    assert [v["v"] for v in evidence["values"]] == [95.0] * 5
    assert evidence["window_end"] == AT_TEXT
    assert evidence["policy_applied"] is None
    assert report["implied_by"] == "cpu_saturated"
    assert (report["implied"]["status"], report["implied"]["row"]) == ("conditional", 5)
    assert report["source"] == f"prometheus {prometheus}"


def test_one_dip_in_the_window_stops_the_trigger(prometheus, capsys):
    code, report, _ = run(argv(prometheus, "--missing", "fail", cpu_percent='max(test_cpu_percent{instance="dip"})'),
                          capsys)
    assert code == 0
    assert report["fired"] == []
    evidence = cpu(report)["evidence"]
    assert [v["v"] for v in evidence["values"]] == [95.0, 50.0, 50.0, 95.0, 95.0]
    assert "= 50 at 2025-03-10T11:57:00Z" in evidence["reason"]


@pytest.mark.parametrize(("policy", "code", "fired"), [("breaching", 6, True), ("not_breaching", 0, False)])
def test_no_series_is_missing_data_under_the_policy(prometheus, capsys, policy, code, fired):
    absent = 'max(test_cpu_percent{instance="absent"})'
    exit_code, report, _ = run(argv(prometheus, "--missing", policy, cpu_percent=absent), capsys)
    assert exit_code == code
    result = cpu(report)
    assert result["fired"] is fired
    evidence = result["evidence"]
    assert (evidence["slots_observed"], evidence["slots_missing"], evidence["policy_applied"]) == (0, 5, policy)
    assert [r["name"] for r in report["fired"]] == (["cpu_saturated"] if fired else [])


def test_no_series_with_the_fail_policy_exits_7(prometheus, capsys):
    code, report, err = run(argv(prometheus, "--missing", "fail",
                                 auth_ok='min(test_probe{job="nothing"})'), capsys)
    assert (code, report) == (7, None)
    assert "auth_ok: no sample" in err and "auth_failing" in err


def test_missing_instant_metric_fires_under_breaching(prometheus, capsys):
    code, report, _ = run(argv(prometheus, auth_ok='min(test_probe{job="nothing"})'), capsys)
    assert code == 6
    assert [r["name"] for r in report["fired"]] == ["auth_failing", "cpu_saturated"]
    assert report["implied_by"] == "auth_failing"  # functional/critical outranks the performance condition
    assert report["implied"]["decision"] == "immediate_rollback"


def test_rejected_promql_exits_7_at_once(prometheus, capsys):
    code, _, err = run(argv(prometheus, cpu_percent="max(test_cpu_percent"), capsys)
    assert code == 7
    assert "rejected the query for cpu_percent" in err and "--query cpu_percent=PROMQL" in err


def test_unreachable_prometheus_exits_7(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, report, err = run(["triggers", "--prometheus", url, "--at", AT_TEXT, "--json"], capsys)
    assert (code, report) == (7, None)
    assert "metrics source unreadable" in err
    assert "failed 5 times in a row" in err


def test_monitoring_data_range_queries_over_the_backfilled_history(prometheus):
    """The record's monitoring_data from the real Prometheus: each charted metric over the window, every step."""
    from rollbackctl import monitoring_data

    phase_start, phase_end = AT - timedelta(minutes=10), AT - timedelta(minutes=6)
    record = {"triggers": None, "updated_at": AT_TEXT,
              "phases": [{"started_at": phase_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "ended_at": phase_end.strftime("%Y-%m-%dT%H:%M:%SZ")}]}
    section = monitoring_data.collect(record, prometheus=prometheus, queries=HEALTHY_QUERIES,
                                      before=timedelta(minutes=5), after=timedelta(minutes=5))
    assert section["errors"] == []
    assert section["sources"] == [f"prometheus {prometheus}"]
    assert (section["window"]["start"], section["window"]["end"]) == ("2025-03-10T11:45:00Z", "2025-03-10T11:59:00Z")
    by_metric = {s["metric"]: s for s in section["series"]}
    assert sorted(by_metric) == sorted(monitoring_data.CHARTED)
    cpu_points = by_metric["cpu_percent"]["points"]
    assert len(cpu_points) == 14 * 60 // 15 + 1  # a 14 min window in 15 s steps, both ends included
    assert {p["v"] for p in cpu_points} == {95.0} and {p["source"] for p in cpu_points} == {"prometheus"}
    assert {p["v"] for p in by_metric["critical_response_seconds"]["points"]} == {0.25}
