"""monitoring_data: the record section from the triggers' observations, its window and schema, and the charts."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from importlib import resources

import pytest
from jsonschema import Draft202012Validator

from rollbackctl import monitoring_data
from rollbackctl.report import render_html

from .test_report import base_record, failed_run, successful_rehearsal, ts

SVG_NS = "{http://www.w3.org/2000/svg}"


def trigger_report() -> dict:
    """A trigger report as `rollbackctl triggers --json` writes it: evidence values before the rollback (t < 0)."""
    def values(metric, pairs):
        return [{"metric": metric, "t": ts(t), "v": v, "breaching": False} for t, v in pairs]
    return {
        "fired": [{"name": "api_5xx", "evidence": {"values": values("api_5xx_ratio",
                                                                    [(-240, 0.01), (-180, 0.2), (-120, 0.35)])}}],
        "not_fired": [
            {"name": "cpu_saturated", "evidence": {"values": values("cpu_percent",
                                                                   [(-240, 40.0), (-180, 60.0), (-120, 55.0)])}},
            {"name": "slow", "evidence": {"values": values("critical_response_seconds", [(-120, 0.4)])}},
            {"name": "probe", "evidence": {"values": values("auth_ok", [(-120, 1.0)])}},  # not charted
            {"name": "broken", "evidence": None},
        ],
        "source": "prometheus http://user:***@prom:9090",
    }


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    text = resources.files("rollbackctl").joinpath("schemas/incident.schema.json").read_text(encoding="utf-8")
    return Draft202012Validator(json.loads(text))


def with_data(record: dict) -> dict:
    record["triggers"] = trigger_report()
    section = monitoring_data.collect(record)
    assert section is not None
    record["monitoring_data"] = section
    return record


def test_the_section_keeps_the_charted_observations_over_a_window_around_the_run(validator):
    record = with_data(successful_rehearsal())
    section = record["monitoring_data"]
    assert section["sources"] == ["triggers"] and section["errors"] == []
    assert [s["metric"] for s in section["series"]] == ["api_5xx_ratio", "critical_response_seconds", "cpu_percent"]
    assert [p["v"] for p in section["series"][0]["points"]] == [0.01, 0.2, 0.35]
    assert all(p["source"] == "triggers" for s in section["series"] for p in s["points"])
    start, end = (dt.datetime.fromisoformat(section["window"][k].replace("Z", "+00:00")) for k in ("start", "end"))
    last_end = max(p["ended_at"] for p in record["phases"] if p["ended_at"])
    assert section["window"]["start"] == ts(-240 - 30 * 60)
    assert end == dt.datetime.fromisoformat(last_end.replace("Z", "+00:00")) + monitoring_data.AFTER
    assert start < end
    assert list(validator.iter_errors(record)) == []


def test_nothing_to_keep_without_observations_or_prometheus():
    assert monitoring_data.collect(base_record()) is None
    assert monitoring_data.prometheus_of(trigger_report()) is None  # redacted: not usable
    assert monitoring_data.prometheus_of({"source": "prometheus http://prom:9090"}) == "http://prom:9090"
    assert monitoring_data.prometheus_of({"source": "file x.json"}) is None


def test_an_unreachable_prometheus_is_noted_not_fatal(validator):
    record = failed_run()
    record["triggers"] = trigger_report()
    section = monitoring_data.collect(record, prometheus="http://127.0.0.1:9")  # nothing listens on port 9
    assert section["sources"] == ["triggers", "prometheus http://127.0.0.1:9"]
    assert section["errors"] and "unreadable" in section["errors"][0]
    assert len(section["series"]) == 3
    record["monitoring_data"] = section
    assert list(validator.iter_errors(record)) == []


def test_the_html_draws_one_line_per_series_with_every_point_and_the_phase_bands():
    record = with_data(successful_rehearsal())
    page = render_html(record)
    start = page.index('<svg xmlns="http://www.w3.org/2000/svg" class="gantt metrics"')
    svg = ET.fromstring(page[start:page.index("</svg>", start) + 6])  # noqa: S314 - our own renderer's output
    lines = svg.findall(f"{SVG_NS}polyline")
    assert [(line.get("data-metric"), int(line.get("data-points"))) for line in lines] == \
        [("api_5xx_ratio", 3), ("critical_response_seconds", 1), ("cpu_percent", 3)]
    assert [len(line.get("points").split()) for line in lines] == [3, 1, 3]
    bands = [r for r in svg.findall(f"{SVG_NS}rect") if "phase-band" in (r.get("class") or "")]
    assert len(bands) == sum(1 for p in record["phases"] if p["started_at"])
    # The observations came before the first phase: they lie left of its band.
    first_band_x = min(float(b.get("x")) for b in bands)
    xs = [float(pair.split(",")[0]) for pair in lines[0].get("points").split()]
    assert max(xs) < first_band_x
    assert "Monitoring data around the failure" in page


def test_no_section_no_chart():
    assert 'class="gantt metrics"' not in render_html(successful_rehearsal())


def test_the_markdown_report_summarises_each_series():
    from rollbackctl.report import render_markdown

    record = with_data(successful_rehearsal())
    text = render_markdown(record)
    assert "### Monitoring data around the failure" in text
    assert "| API 5xx ratio | 3 | 0.01 | 0.35 | 0.35 at 2024-05-01T15:58:00Z |" in text
    assert "### Monitoring data" not in render_markdown(successful_rehearsal())


def test_the_run_keeps_the_monitoring_data_in_the_saved_record(tmp_path):
    """procedures.follow_up (after every run and resume) stores the section; the saved record validates."""
    from rollbackctl.procedures import Console, follow_up
    from rollbackctl.record import IncidentRecord, validate

    record = IncidentRecord.create(tmp_path, "INC-MON-1", inventory="inventories/local", reason="5xx",
                                   to_version="v0.9.0", triggers=trigger_report(),
                                   authority={"decided_by": "Dana", "role": "lead_devops_engineer",
                                              "basis": "primary"})
    follow_up(record, None, Console())
    saved = json.loads((record.path / "incident.json").read_text())
    validate(saved)
    assert [s["metric"] for s in saved["monitoring_data"]["series"]] == \
        ["api_5xx_ratio", "critical_response_seconds", "cpu_percent"]
    assert saved["monitoring_data"]["sources"] == ["triggers"]  # the report's Prometheus URL is redacted
