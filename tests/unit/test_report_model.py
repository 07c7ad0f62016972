"""The report's view-model, its golden renderings, and records that do not match the schema."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rollbackctl.errors import RecordInvalid, RecordUnreadable
from rollbackctl.report import DASH, build, render_html, render_markdown
from rollbackctl.report.model import IncidentView

from .test_report import base_record, failed_run, resumed_run, successful_rehearsal

GOLDEN = Path(__file__).parent / "data" / "report-golden"
FACTORIES = {"unit-rehearsal": successful_rehearsal, "unit-failed": failed_run, "unit-resumed": resumed_run,
             "unit-minimal": base_record}


def _record(name: str) -> dict:
    if name in FACTORIES:
        return FACTORIES[name]()
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return re.sub(r"\s+", " ", " ".join(parser.parts)).strip()


# ---- golden renderings: the reports rendered before the report became a package ----------------------
# Deliberate changes to a report: regenerate the file with render_markdown/render_html and say why in the
# commit message.

@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*.md")), ids=lambda p: p.stem)
def test_markdown_is_identical_to_the_golden_rendering(golden):
    assert render_markdown(_record(golden.stem)) == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*.html")), ids=lambda p: p.stem)
def test_html_differs_from_the_golden_rendering_in_whitespace_only(golden):
    page, expected = render_html(_record(golden.stem)), golden.read_text(encoding="utf-8")
    assert re.sub(r"\s", "", page) == re.sub(r"\s", "", expected)
    assert _text(page) == _text(expected)


def test_the_goldens_cover_every_outcome():
    statuses = {_record(p.stem)["outcome"]["status"] for p in GOLDEN.glob("*.md")}
    modes = {_record(p.stem)["mode"] for p in GOLDEN.glob("*.md")}
    assert statuses == {"succeeded", "failed", "interrupted", "in_progress", "nothing_to_do"}
    assert modes == {"run", "check"}


# ---- the view-model ------------------------------------------------------------------------------------

def test_the_view_model_reads_a_complete_record():
    view = build(successful_rehearsal())
    assert isinstance(view, IncidentView) and view.problems == []
    assert (view.incident_id, view.kind, view.status) == ("rehearsal-20240501", "rehearsal", "succeeded")
    assert view.triggers.recorded and view.triggers.not_fired == ["latency", "cpu"]
    assert view.triggers.source == "observations.json"
    assert [row.status for row in view.phases] == ["ok"] * 9
    assert view.phases[5].within == "no" and view.phases[5].estimate == "15-30 min"
    assert view.verification_counts == {"pass": 5, "fail": 0, "skip": 1}
    assert [entry.link for entry in view.logs] == ["logs/app1/app-error.log", "logs/db1/mongod%20log.txt"]
    assert view.rehearsal is not None and view.rehearsal.returned == "yes"
    assert view.rehearsal.bottlenecks[0].startswith("Database rollback: 34 min 00 s")


def test_nullable_fields_of_a_just_started_record_are_dashes_or_not_yet():
    view = build(base_record())
    assert view.problems == []
    assert not view.triggers.recorded and view.triggers.decision is None
    first = view.phases[0]
    assert (first.start, first.end, first.duration, first.within, first.status) == (DASH, DASH, DASH, DASH, "pending")
    assert view.total_time == f"{DASH} (plan: 1-2 h)"
    assert view.backup is None and view.snapshot is None and view.rehearsal is None
    assert dict(view.summary_rows)["Database decision"] == "not decided yet (requested: auto)"
    assert ("Root cause analysis", True) in [(title, placeholder) for title, _, placeholder in view.follow_up]
    assert view.checklist[0] == (False, "Rollback decision made and communicated", "", "")


def test_the_view_model_does_not_touch_the_record():
    record = resumed_run()
    snapshot = json.dumps(record, sort_keys=True)
    build(record)
    assert json.dumps(record, sort_keys=True) == snapshot


# ---- records that do not match the schema ----------------------------------------------------------------

def test_a_readable_record_with_schema_problems_is_reported_with_its_problems_first():
    record = failed_run()
    record["logs"] = [{"host": "app1", "source": "x", "file": "/etc/passwd"}]
    view = build(record)
    assert view.problems == ["logs/0/file: '/etc/passwd' does not match '^logs/[^/]+/[^/]+$'"]
    text = render_markdown(record)
    assert text.index("does not match the incident schema") < text.index("**Outcome: FAILED**")
    assert "- logs/0/file: '/etc/passwd' does not match" in text
    assert "- app1: x: /etc/passwd" in text  # shown, never linked
    page = render_html(record)
    assert page.index("does not match the incident schema") < page.index("Outcome: FAILED")
    assert 'href="/etc' not in page


@pytest.mark.parametrize("broken", [{}, {"incident_id": "INC-9", "phases": None, "outcome": None}, [1, 2]])
def test_an_unreadable_record_gets_its_problems_and_the_stored_json(broken):
    with pytest.raises(RecordUnreadable) as caught:
        build(broken)
    assert isinstance(caught.value, RecordInvalid) and caught.value.exit_code == 1
    assert caught.value.problems
    text = render_markdown(broken)
    assert text.startswith("# Incident ") and "unreadable record" in text.splitlines()[0]
    assert "```json\n" + json.dumps(broken, indent=2) + "\n```" in text
    page = render_html(broken)
    assert page.startswith("<!DOCTYPE html>") and "unreadable record" in page


def test_an_unreadable_record_cannot_break_out_of_its_code_block():
    broken = {"incident_id": "INC-9", "reason": "```\n<script>x</script>\n```"}
    text = render_markdown(broken)
    fence = re.search(r"^(`{3,})json$", text, re.MULTILINE).group(1)
    assert len(fence) > 3
    assert "<script" not in render_html(broken)


def test_a_valid_record_the_model_cannot_read_is_a_bug_not_a_fallback(monkeypatch):
    from rollbackctl.report import model

    def broken_section(record):
        raise KeyError("no such field")

    monkeypatch.setattr(model, "triggers_section", broken_section)
    with pytest.raises(KeyError):
        render_markdown(failed_run())


def test_a_departure_from_the_plan_is_in_the_summary_of_both_reports():
    from rollbackctl.procedures import zero_downtime_departure

    record = base_record()
    assert "Departure from the plan" not in dict(build(record).summary_rows)
    record["departures"] = [zero_downtime_departure("Dana")]
    view = build(record)
    assert view.problems == []
    line = dict(view.summary_rows)["Departure from the plan"]
    assert line.startswith("step 2 (Enable Maintenance Mode) and its undoing in step 7 left out, chosen by Dana")
    assert "Departure from the plan" in render_markdown(view) and "no maintenance window" in render_html(view)
