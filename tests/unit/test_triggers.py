"""The plan's Rollback Triggers: each trigger, windows and missing data, boundaries, files, CLI, Prometheus retries."""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rollbackctl import triggers
from rollbackctl.cli import triggers as triggers_command
from rollbackctl.errors import RollbackctlError, UsageError
from rollbackctl.triggers import (
    MetricsUnavailable,
    PrometheusSource,
    Thresholds,
    evaluate,
    load_observations,
    observations_from_dict,
)

AT = datetime(2026, 11, 28, 16, 0, 0, tzinfo=UTC)
ALL_TRIGGERS = ("api_5xx", "auth_failing", "messaging_failing", "db_connection_failures", "slow_critical_operations",
                "cpu_saturated", "memory_saturated", "db_pool_exhausted", "failed_migrations", "inconsistent_data")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def series(*values: Any, end: datetime = AT, step: int = 60) -> list[dict[str, Any]]:
    """Samples ending at `end`, one per `step` seconds, oldest first."""
    count = len(values)
    return [{"t": iso(end - timedelta(seconds=step * (count - 1 - i))), "v": v} for i, v in enumerate(values)]


def healthy() -> dict[str, Any]:
    return {
        "api_5xx_ratio": 0.001, "auth_ok": True, "messaging_ok": True, "db_connection_failures": 0,
        "critical_response_seconds": 0.4, "cpu_percent": series(40, 41, 42, 43, 44),
        "memory_percent": series(60, 60, 61, 61, 62), "db_pool_utilization": 0.3, "db_pool_wait_queue": 0,
        "failed_migrations": 0, "data_inconsistencies": 0,
    }


def observe(metrics: dict[str, Any], interval: int = 60, collected_at: datetime = AT) -> triggers.Observations:
    return observations_from_dict({"source": "test", "collected_at": iso(collected_at), "interval_seconds": interval,
                                   "metrics": metrics})


def with_metrics(**changes: Any) -> triggers.Observations:
    metrics = healthy()
    for name, value in changes.items():
        if value is ...:
            metrics.pop(name)
        else:
            metrics[name] = value
    return observe(metrics)


def fired_names(report: triggers.TriggerReport) -> list[str]:
    return [r.name for r in report.fired]


def result(report: triggers.TriggerReport, name: str) -> triggers.TriggerResult:
    return next(r for r in (*report.fired, *report.not_fired) if r.name == name)


# ---- all quiet ------------------------------------------------------------------------------------

def test_healthy_metrics_fire_nothing():
    report = evaluate(observe(healthy()))
    assert report.fired == ()
    assert sorted(r.name for r in report.not_fired) == sorted(ALL_TRIGGERS)
    assert (report.implied, report.implied_by, report.exit_code) == (None, None, 0)
    assert all(r.evidence["policy_applied"] is None for r in report.not_fired)


def test_trigger_names_and_implied_rows():
    mapping = {d.name: (d.issue_type, d.severity) for d in triggers.definitions()}
    assert mapping == {
        "api_5xx": ("functional", "critical"), "auth_failing": ("functional", "critical"),
        "messaging_failing": ("functional", "critical"), "db_connection_failures": ("functional", "critical"),
        "slow_critical_operations": ("performance", "high"), "cpu_saturated": ("performance", "high"),
        "memory_saturated": ("performance", "high"), "db_pool_exhausted": ("performance", "high"),
        "failed_migrations": ("data", "high"), "inconsistent_data": ("data", "high"),
    }


# ---- instant triggers: firing, not firing, boundaries ---------------------------------------------

INSTANT_CASES = [
    # trigger, metric, breaching value, non-breaching value (the boundary where there is one)
    ("api_5xx", "api_5xx_ratio", 0.0101, 0.01),
    ("api_5xx", "api_5xx_ratio", 0.42, 0.0),
    ("auth_failing", "auth_ok", False, True),
    ("auth_failing", "auth_ok", 0, 1),
    ("messaging_failing", "messaging_ok", False, True),
    ("messaging_failing", "messaging_ok", 0.0, 1.0),
    ("db_connection_failures", "db_connection_failures", 1, 0),
    ("slow_critical_operations", "critical_response_seconds", 3.001, 3.0),
    ("db_pool_exhausted", "db_pool_utilization", 1.0, 0.999),
    ("db_pool_exhausted", "db_pool_wait_queue", 1, 0),
    ("failed_migrations", "failed_migrations", 1, 0),
    ("inconsistent_data", "data_inconsistencies", 3, 0),
]


@pytest.mark.parametrize(("trigger", "metric", "bad", "good"), INSTANT_CASES)
def test_instant_trigger_fires_on_a_breaching_value(trigger, metric, bad, good):
    report = evaluate(with_metrics(**{metric: bad}))
    assert fired_names(report) == [trigger]
    evidence = result(report, trigger).evidence
    assert {"metric": metric, "t": "2026-11-28T16:00:00Z", "v": bad, "breaching": True} in evidence["values"]
    assert evidence["policy_applied"] is None
    assert metric in evidence["thresholds"]
    assert report.exit_code == 6


@pytest.mark.parametrize(("trigger", "metric", "bad", "good"), INSTANT_CASES)
def test_instant_trigger_does_not_fire_at_or_below_the_threshold(trigger, metric, bad, good):
    report = evaluate(with_metrics(**{metric: good}))
    assert trigger not in fired_names(report)
    assert "does not meet" in result(report, trigger).reason


def test_instant_trigger_uses_the_latest_sample():
    report = evaluate(with_metrics(api_5xx_ratio=series(0.5, 0.5, 0.001)))
    assert "api_5xx" not in fired_names(report)
    report = evaluate(with_metrics(api_5xx_ratio=series(0.001, 0.001, 0.5)))
    assert "api_5xx" in fired_names(report)


def test_instant_sample_after_collection_time_is_ignored():
    samples = [*series(0.001), {"t": iso(AT + timedelta(minutes=1)), "v": 0.9}]
    assert "api_5xx" not in fired_names(evaluate(with_metrics(api_5xx_ratio=samples)))


def test_thresholds_are_configurable():
    observations = with_metrics(api_5xx_ratio=0.03, critical_response_seconds=2.5)
    loose = Thresholds().with_overrides(["api_5xx_ratio=0.05", "critical_response_seconds=2"])
    assert fired_names(evaluate(observations, loose)) == ["slow_critical_operations"]
    assert fired_names(evaluate(observations)) == ["api_5xx"]


@pytest.mark.parametrize("pair", ["nope=1", "cpu_percent", "cpu_percent=high", "cpu_window=5", "cpu_window=0m",
                                  "api_5xx_ratio=nan", "api_5xx_ratio=inf"])
def test_bad_threshold_overrides_are_usage_errors(pair):
    with pytest.raises(UsageError, match="threshold"):
        Thresholds().with_overrides([pair])


# ---- instant triggers: missing data ---------------------------------------------------------------

@pytest.mark.parametrize(("trigger", "metric"), [("api_5xx", "api_5xx_ratio"), ("auth_failing", "auth_ok"),
                                                 ("inconsistent_data", "data_inconsistencies")])
def test_absent_instant_metric_under_each_policy(trigger, metric):
    observations = with_metrics(**{metric: ...})
    report = evaluate(observations)  # default: breaching
    assert fired_names(report) == [trigger]
    evidence = result(report, trigger).evidence
    assert evidence["policy_applied"] == "breaching"
    assert evidence["missing"] == [f"{metric}: no sample"]

    report = evaluate(observations, missing="not_breaching")
    assert report.fired == ()
    assert result(report, trigger).evidence["policy_applied"] == "not_breaching"
    assert result(report, trigger).missing_decided

    with pytest.raises(MetricsUnavailable) as caught:
        evaluate(observations, missing="fail")
    assert metric in str(caught.value) and trigger in str(caught.value)
    assert caught.value.exit_code == 7


def test_null_value_is_missing():
    report = evaluate(with_metrics(auth_ok=None))
    assert fired_names(report) == ["auth_failing"]
    assert result(report, "auth_failing").evidence["policy_applied"] == "breaching"


def test_stale_instant_sample_is_missing():
    old = [{"t": iso(AT - timedelta(minutes=6)), "v": True}]
    report = evaluate(with_metrics(auth_ok=old), missing="not_breaching")
    evidence = result(report, "auth_failing").evidence
    assert evidence["policy_applied"] == "not_breaching"
    assert "older than 5m" in evidence["missing"][0]
    fresh = [{"t": iso(AT - timedelta(minutes=5)), "v": True}]
    assert result(evaluate(with_metrics(auth_ok=fresh)), "auth_failing").evidence["policy_applied"] is None


def test_db_pool_with_one_metric_observed_is_decided_by_it():
    """Either pool metric decides; the trigger is missing data only when neither has a value."""
    report = evaluate(with_metrics(db_pool_wait_queue=..., db_pool_utilization=0.5), missing="fail")
    assert "db_pool_exhausted" not in fired_names(report)
    assert "db_pool_wait_queue: no sample" in result(report, "db_pool_exhausted").reason
    report = evaluate(with_metrics(db_pool_utilization=..., db_pool_wait_queue=4), missing="fail")
    assert fired_names(report) == ["db_pool_exhausted"]
    report = evaluate(with_metrics(db_pool_utilization=..., db_pool_wait_queue=...))
    assert result(report, "db_pool_exhausted").evidence["policy_applied"] == "breaching"


def test_fail_policy_names_every_metric_missing():
    with pytest.raises(MetricsUnavailable) as caught:
        evaluate(with_metrics(auth_ok=..., cpu_percent=...), missing="fail")
    message = str(caught.value)
    assert "auth_ok" in message and "cpu_percent" in message
    assert "--missing breaching" in message


def test_unknown_policy_is_a_usage_error():
    with pytest.raises(UsageError, match="maybe"):
        evaluate(observe(healthy()), missing="maybe")


# ---- windowed triggers ----------------------------------------------------------------------------

WINDOWED = [("cpu_saturated", "cpu_percent"), ("memory_saturated", "memory_percent")]


@pytest.mark.parametrize(("trigger", "metric"), WINDOWED)
@pytest.mark.parametrize("policy", ["breaching", "not_breaching", "fail"])
def test_window_full_of_breaching_samples_fires_under_every_policy(trigger, metric, policy):
    report = evaluate(with_metrics(**{metric: series(95, 96, 97, 98, 99)}), missing=policy)
    assert fired_names(report) == [trigger]
    evidence = result(report, trigger).evidence
    assert (evidence["slots"], evidence["slots_observed"], evidence["slots_missing"]) == (5, 5, 0)
    assert evidence["window"] == "5m"
    assert [v["v"] for v in evidence["values"]] == [95, 96, 97, 98, 99]
    assert evidence["policy_applied"] is None


@pytest.mark.parametrize(("trigger", "metric"), WINDOWED)
@pytest.mark.parametrize("policy", ["breaching", "not_breaching", "fail"])
def test_one_dip_stops_a_windowed_trigger_under_every_policy(trigger, metric, policy):
    """One observed non-breaching sample decides, even with missing slots (so `fail` does not stop)."""
    full = evaluate(with_metrics(**{metric: series(95, 95, 50, 95, 95)}), missing=policy)
    assert trigger not in fired_names(full)
    partial = evaluate(with_metrics(**{metric: series(50, 95, end=AT - timedelta(minutes=1))}), missing=policy)
    assert trigger not in fired_names(partial)
    evidence = result(partial, trigger).evidence
    assert evidence["slots_missing"] == 3
    assert evidence["policy_applied"] is None
    assert "= 50" in result(partial, trigger).reason


@pytest.mark.parametrize(("trigger", "metric"), WINDOWED)
def test_exactly_90_percent_does_not_breach(trigger, metric):
    report = evaluate(with_metrics(**{metric: series(95, 95, 90.0, 95, 95)}))
    assert trigger not in fired_names(report)
    assert "= 90 " in result(report, trigger).reason
    assert trigger not in fired_names(evaluate(with_metrics(**{metric: series(90, 90, 90, 90, 90)})))


@pytest.mark.parametrize(("trigger", "metric"), WINDOWED)
def test_partial_window_under_each_policy(trigger, metric):
    observations = with_metrics(**{metric: series(95, 95, 95)})  # the last 3 of 5 slots
    report = evaluate(observations)
    assert fired_names(report) == [trigger]
    evidence = result(report, trigger).evidence
    assert (evidence["slots_observed"], evidence["slots_missing"], evidence["policy_applied"]) == (3, 2, "breaching")

    report = evaluate(observations, missing="not_breaching")
    assert report.fired == ()
    assert result(report, trigger).evidence["policy_applied"] == "not_breaching"

    with pytest.raises(MetricsUnavailable, match=f"{metric}: 2 of 5 slots"):
        evaluate(observations, missing="fail")


@pytest.mark.parametrize(("trigger", "metric"), WINDOWED)
def test_no_data_in_the_window_under_each_policy(trigger, metric):
    for observations in (with_metrics(**{metric: ...}), with_metrics(**{metric: []}),
                         with_metrics(**{metric: series(99, 99, end=AT - timedelta(minutes=10))})):
        report = evaluate(observations)
        assert fired_names(report) == [trigger]
        evidence = result(report, trigger).evidence
        assert (evidence["slots_observed"], evidence["slots_missing"]) == (0, 5)
        assert "nothing observed" in result(report, trigger).reason
        assert evaluate(observations, missing="not_breaching").fired == ()
        with pytest.raises(MetricsUnavailable, match=metric):
            evaluate(observations, missing="fail")


def test_window_is_half_open():
    """(collected_at - 5m, collected_at]: a dip exactly 5 minutes ago is outside, one at collection time inside."""
    at_start = [{"t": iso(AT - timedelta(minutes=5)), "v": 10}, *series(95, 95, 95, 95, 95)]
    assert "cpu_saturated" in fired_names(evaluate(with_metrics(cpu_percent=at_start)))
    at_end = series(95, 95, 95, 95, 10)
    assert "cpu_saturated" not in fired_names(evaluate(with_metrics(cpu_percent=at_end)))
    future = [*series(95, 95, 95, 95, 95), {"t": iso(AT + timedelta(seconds=30)), "v": 10}]
    assert "cpu_saturated" in fired_names(evaluate(with_metrics(cpu_percent=future)))


def test_several_samples_per_slot_must_all_breach():
    dense = series(*([95] * 10), step=30)  # 30 s samples, 60 s slots
    assert "cpu_saturated" in fired_names(evaluate(with_metrics(cpu_percent=dense)))
    dense[4]["v"] = 89
    assert "cpu_saturated" not in fired_names(evaluate(with_metrics(cpu_percent=dense)))


def test_slots_follow_the_interval_and_the_window_threshold():
    report = evaluate(observe({**healthy(), "cpu_percent": series(*([95] * 10), step=30)}, interval=30))
    assert result(report, "cpu_saturated").evidence["slots"] == 10
    longer = Thresholds().with_overrides(["cpu_window=10m"])
    report = evaluate(with_metrics(cpu_percent=series(95, 95, 95, 95, 95)), longer, missing="not_breaching")
    evidence = result(report, "cpu_saturated").evidence
    assert (evidence["slots"], evidence["slots_missing"], evidence["window"]) == (10, 5, "10m")
    assert not report.fired


def test_a_scalar_windowed_metric_is_one_slot():
    report = evaluate(with_metrics(cpu_percent=97), missing="not_breaching")
    evidence = result(report, "cpu_saturated").evidence
    assert (evidence["slots_observed"], evidence["slots_missing"]) == (1, 4)
    assert not report.fired


# ---- implied decision -----------------------------------------------------------------------------

def test_implied_decision_is_the_most_urgent_fired_trigger():
    report = evaluate(with_metrics(cpu_percent=series(95, 95, 95, 95, 95), data_inconsistencies=2,
                                   api_5xx_ratio=0.3))
    assert fired_names(report) == ["api_5xx", "cpu_saturated", "inconsistent_data"]
    assert report.implied_by == "api_5xx"
    assert (report.implied.decision, report.implied.procedure) == ("immediate_rollback", "emergency")


def test_data_inconsistency_outranks_a_performance_condition():
    report = evaluate(with_metrics(cpu_percent=series(95, 95, 95, 95, 95), data_inconsistencies=2))
    assert report.implied_by == "inconsistent_data"
    assert report.implied.status == "conditional"
    assert (report.implied.row, report.implied.database_restore) == (11, "required")
    assert report.implied.threshold == timedelta(hours=1)


def test_performance_trigger_implies_the_conditional_row():
    report = evaluate(with_metrics(critical_response_seconds=7.5))
    assert report.implied_by == "slow_critical_operations"
    assert (report.implied.status, report.implied.row, report.implied.threshold) == ("conditional", 5,
                                                                                    timedelta(hours=2))


def test_report_to_dict_shape():
    report = evaluate(with_metrics(api_5xx_ratio=0.3, auth_ok=...), missing="not_breaching")
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {"source", "collected_at", "interval", "missing_policy", "result", "fired", "not_fired",
                         "implied_by", "implied", "unknown_metrics", "warnings", "queries"}
    assert data["warnings"] == ["not fired only because missing data counts as not breaching: auth_failing"]
    assert (data["collected_at"], data["interval"], data["result"]) == ("2026-11-28T16:00:00Z", "1m", "fired")
    assert data["implied"]["decision"] == "immediate_rollback"
    fired = data["fired"][0]
    assert set(fired) == {"name", "category", "description", "issue_type", "severity", "fired", "evidence"}
    assert fired["category"] == "Critical Functionality Failure"
    assert {"condition", "thresholds", "window", "values", "missing", "policy_applied", "reason"} <= set(
        fired["evidence"])
    auth = next(r for r in data["not_fired"] if r["name"] == "auth_failing")
    assert auth["evidence"]["policy_applied"] == "not_breaching"


def test_format_report_shows_evidence_and_decision():
    text = triggers.format_report(evaluate(with_metrics(api_5xx_ratio=0.3, auth_ok=...), missing="not_breaching"))
    assert "FIRED (1):" in text
    assert "api_5xx_ratio = 0.3 at 2026-11-28T16:00:00Z" in text
    assert "IMMEDIATE ROLLBACK" in text
    assert "WARNING: not fired only because missing data counts as not breaching: auth_failing" in text
    assert "No trigger fired." in triggers.format_report(evaluate(observe(healthy())))


# ---- observation files ----------------------------------------------------------------------------

def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_json_file(tmp_path):
    document = {"source": "grafana export", "collected_at": "2026-11-28T16:00:00Z", "interval_seconds": 60,
                "metrics": healthy()}
    observations = load_observations(write(tmp_path, "obs.json", json.dumps(document)))
    assert observations.source == "grafana export"
    assert observations.collected_at == AT
    assert len(observations.metrics["cpu_percent"]) == 5


def test_yaml_file_with_unquoted_timestamps(tmp_path):
    text = """\
collected_at: 2026-11-28T16:00:00Z
interval_seconds: 60
metrics:
  auth_ok: false
  cpu_percent:
    - {t: 2026-11-28T15:56:00Z, v: 95}
    - {t: 2026-11-28T15:57:00Z, v: 95}
    - {t: "2026-11-28T15:58:00Z", v: 95}
    - {t: 2026-11-28T17:59:00+02:00, v: 95}
    - {t: 2026-11-28T16:00:00Z, v: 95}
"""
    path = write(tmp_path, "obs.yaml", text)
    observations = load_observations(path)
    assert observations.source == str(path)
    report = evaluate(observations, missing="not_breaching")
    assert fired_names(report) == ["auth_failing", "cpu_saturated"]


def test_interval_defaults_to_60_seconds():
    observations = observations_from_dict({"collected_at": "2026-11-28T16:00:00Z", "metrics": {}})
    assert observations.interval == timedelta(seconds=60)


def test_no_data_at_all_is_called_out():
    report = evaluate(observe({}), missing="not_breaching")
    assert report.warnings[0].startswith("no metric had data")
    assert "WARNING: no metric had data" in triggers.format_report(report)


def test_unknown_metrics_are_reported_not_fatal():
    observations = observe({**healthy(), "cpu_pct": 99})
    report = evaluate(observations)
    assert report.unknown_metrics == ("cpu_pct",)
    assert "misspelt" in triggers.format_report(report)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("obs.json", '{"collected_at": "2026-11-28T16:00:00Z", "metrics": {', "not valid JSON"),
        ("obs.yml", "metrics: [unclosed", "not valid YAML"),
        ("obs.json", "[1, 2]", "top level must be an object"),
        ("obs.json", '{"metrics": {}}', "collected_at is missing"),
        ("obs.json", '{"collected_at": "yesterday", "metrics": {}}', "invalid time 'yesterday'"),
        ("obs.json", '{"collected_at": "2026-11-28T16:00:00Z"}', "metrics must be an object"),
        ("obs.json", '{"collected_at": "2026-11-28T16:00:00Z", "interval_seconds": 0, "metrics": {}}',
         "interval_seconds"),
        ("obs.json", '{"collected_at": "2026-11-28T16:00:00Z", "interval_seconds": "60", "metrics": {}}',
         "interval_seconds"),
        ("obs.json", '{"collected_at": "2026-11-28T16:00:00Z", "metrics": {"cpu_percent": "high"}}',
         "cpu_percent must be a number"),
        ("obs.json", '{"collected_at": "2026-11-28T16:00:00Z", "metrics": {"api_5xx_ratio": true}}',
         "api_5xx_ratio must be a number"),
        ("obs.json", '{"collected_at": "2026-11-28T16:00:00Z", "metrics": {"auth_ok": "yes"}}',
         "auth_ok must be true/false"),
        ("obs.json", '{"collected_at": "2026-11-28T16:00:00Z", "metrics": {"cpu_percent": [{"v": 1}]}}',
         "cpu_percent[0]: a sample must be an object with 't'"),
        ("obs.json", '{"collected_at": "2026-11-28T16:00:00Z", "metrics": {"cpu_percent": [{"t": "x", "v": 1}]}}',
         "cpu_percent[0]: invalid time 'x'"),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(tmp_path, name, text, problem):
    path = write(tmp_path, name, text)
    with pytest.raises(UsageError) as caught:
        load_observations(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_observations(tmp_path / "nope.json")


def test_nan_is_missing_data():
    observations = with_metrics(api_5xx_ratio=math.nan)
    assert "api_5xx_ratio" not in observations.metrics


# ---- command line ---------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollbackctl")
    triggers_command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Like rollbackctl's main: errors print on stderr and give their exit code."""
    args = _parser().parse_args(argv)
    try:
        code = args.func(args)
    except RollbackctlError as exc:
        print(f"rollbackctl: {exc}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, out, err


def obs_file(tmp_path: Path, metrics: dict[str, Any]) -> str:
    document = {"source": "test", "collected_at": "2026-11-28T16:00:00Z", "interval_seconds": 60, "metrics": metrics}
    return str(write(tmp_path, "obs.json", json.dumps(document)))


def test_cli_nothing_fired_exits_0(tmp_path, capsys):
    code, out, _ = run(["triggers", "--observations", obs_file(tmp_path, healthy())], capsys)
    assert code == 0
    assert "No trigger fired." in out


def test_cli_fired_exits_6_with_json(tmp_path, capsys):
    path = obs_file(tmp_path, {**healthy(), "messaging_ok": False})
    code, out, _ = run(["triggers", "--observations", path, "--json"], capsys)
    assert code == 6
    data = json.loads(out)
    assert [r["name"] for r in data["fired"]] == ["messaging_failing"]
    assert data["implied_by"] == "messaging_failing"
    assert data["implied"]["row"] == 1


def test_cli_fail_policy_exits_7_naming_the_metric(tmp_path, capsys):
    metrics = healthy()
    del metrics["memory_percent"]
    code, out, err = run(["triggers", "--observations", obs_file(tmp_path, metrics), "--missing", "fail"], capsys)
    assert code == 7
    assert out == ""
    assert "memory_percent" in err


def test_cli_malformed_file_exits_2(tmp_path, capsys):
    path = write(tmp_path, "broken.json", "{not json")
    code, _, err = run(["triggers", "--observations", str(path)], capsys)
    assert code == 2
    assert str(path) in err and "not valid JSON" in err


def test_cli_threshold_override(tmp_path, capsys):
    path = obs_file(tmp_path, {**healthy(), "api_5xx_ratio": 0.03})
    assert run(["triggers", "--observations", path], capsys)[0] == 6
    assert run(["triggers", "--observations", path, "--threshold", "api_5xx_ratio=0.05"], capsys)[0] == 0


@pytest.mark.parametrize("extra", [["--query", "cpu_percent=up"], ["--at", "2026-11-28T16:00:00Z"],
                                   ["--interval", "30s"]])
def test_cli_prometheus_options_with_a_file_are_usage_errors(tmp_path, capsys, extra):
    code, _, err = run(["triggers", "--observations", obs_file(tmp_path, healthy()), *extra], capsys)
    assert code == 2
    assert "only apply with --prometheus" in err


@pytest.mark.parametrize("argv", [["triggers"], ["triggers", "--observations", "a", "--prometheus", "http://x"],
                                  ["triggers", "--observations", "a", "--missing", "maybe"]])
def test_cli_argument_errors_exit_2(argv):
    with pytest.raises(SystemExit) as caught:
        _parser().parse_args(argv)
    assert caught.value.code == 2


def test_cli_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["triggers", "--help"])
    out = capsys.readouterr().out
    for line in ("0  no trigger fired", "6  at least one trigger fired", "7  the metrics source is unreadable",
                 "2  usage error"):
        assert line in out
    assert all(name in out for name in ALL_TRIGGERS)


# ---- Prometheus client against a local stub (the real server is in tests/integration) -------------

class _Stub(BaseHTTPRequestHandler):
    """Answers from `script` (a list of (status, body)) in order, then with `default`."""

    script: ClassVar[list[tuple[int, Any]]] = []
    default: ClassVar[tuple[int, Any]] = (200, {"status": "success", "data": {"resultType": "vector", "result": []}})
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        type(self).seen.append({"path": url.path, **dict(urllib.parse.parse_qsl(url.query))})
        status, body = type(self).script.pop(0) if type(self).script else type(self).default
        payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[tuple[str, type[_Stub]]]:
    handler = type("Stub", (_Stub,), {"script": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _source(url: str, **kwargs: Any) -> PrometheusSource:
    return PrometheusSource(url, at=AT, sleep=lambda _: None, **kwargs)


UNAVAILABLE = (503, {"status": "error", "errorType": "unavailable", "error": "TSDB not ready"})


def test_prometheus_tolerates_four_consecutive_errors(stub):
    url, handler = stub
    handler.script = [UNAVAILABLE] * 4
    observations = _source(url).collect()
    assert observations.metrics == {}
    assert len(handler.seen) == 4 + len(triggers.METRICS)


def test_prometheus_fifth_consecutive_error_makes_the_source_unreadable(stub):
    url, handler = stub
    handler.script = [UNAVAILABLE] * 5
    with pytest.raises(MetricsUnavailable) as caught:
        _source(url).collect()
    message = str(caught.value)
    assert "failed 5 times in a row for api_5xx_ratio" in message
    assert "TSDB not ready" in message
    assert caught.value.exit_code == 7


def test_prometheus_rejected_query_is_not_retried(stub):
    url, handler = stub
    handler.script = [(400, {"status": "error", "errorType": "bad_data", "error": "parse error"})]
    with pytest.raises(MetricsUnavailable, match="--query api_5xx_ratio=PROMQL"):
        _source(url, queries={"api_5xx_ratio": "sum("}).collect()
    assert len(handler.seen) == 1


def test_prometheus_not_json_is_an_error(stub):
    url, handler = stub
    handler.script = [(200, b"<html>proxy login</html>")] * 5
    with pytest.raises(MetricsUnavailable, match="not JSON"):
        _source(url).collect()


def test_prometheus_queries_and_merging(stub):
    url, handler = stub
    vector = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "auth", "instance": "a"}, "value": [AT.timestamp(), "1"]},
        {"metric": {"job": "auth", "instance": "b"}, "value": [AT.timestamp(), "0"]}]}}
    start = AT.timestamp() - 240
    matrix_ = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"instance": "a"}, "values": [[start + 60 * i, "95"] for i in range(5)]},
        {"metric": {"instance": "b"}, "values": [[start + 60 * i, "NaN" if i == 2 else "20"] for i in range(5)]}]}}
    handler.script = [handler.default, (200, vector), handler.default, handler.default, handler.default, (200, matrix_)]
    observations = _source(url, queries={"cpu_percent": "node_cpu"}).collect()
    assert [s.v for s in observations.metrics["auth_ok"]] == [0.0]  # worst of the probes
    assert [s.v for s in observations.metrics["cpu_percent"]] == [95.0] * 5  # worst per step; NaN dropped
    assert observations.series["auth_ok"] == 2
    instant, windowed = handler.seen[1], handler.seen[5]
    assert instant["path"] == "/api/v1/query" and float(instant["time"]) == AT.timestamp()
    assert windowed["path"] == "/api/v1/query_range" and windowed["query"] == "node_cpu"
    assert (float(windowed["start"]), float(windowed["end"]), windowed["step"]) == (start, AT.timestamp(), "60")
    report = evaluate(observations)
    assert "cpu_saturated" in fired_names(report) and "auth_failing" in fired_names(report)
    assert report.queries["cpu_percent"] == "node_cpu"


@pytest.mark.parametrize(("url", "problem"), [("127.0.0.1:9090", "invalid Prometheus URL"),
                                              ("ftp://host", "invalid Prometheus URL")])
def test_prometheus_bad_url(url, problem):
    with pytest.raises(UsageError, match=problem):
        PrometheusSource(url)


def test_prometheus_unknown_query_metric():
    with pytest.raises(UsageError, match="cpu_pct"):
        PrometheusSource("http://127.0.0.1:9", queries={"cpu_pct": "up"})


def test_prometheus_credentials_stay_out_of_messages():
    source = PrometheusSource("http://user:s3cret@127.0.0.1:9", sleep=lambda _: None, max_consecutive_errors=0)
    with pytest.raises(MetricsUnavailable) as caught:
        source.collect()
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in source.name


def test_cli_bad_query_option(capsys):
    code, _, err = run(["triggers", "--prometheus", "http://127.0.0.1:9", "--query", "cpu_percent"], capsys)
    assert code == 2
    assert "METRIC=PROMQL" in err
