"""Rendering the view-model with the Jinja2 templates shipped in the package (templates/incident.*.j2).

Markdown: no autoescape; every record text passes through the `md_text`/`md_link` filters or
`md_table` (cells through `md_cell`), so it cannot break a table or inject HTML. HTML: autoescape on,
values escaped as `html.escape` does (quotes included); only the SVG chart is inserted as markup.

A record that is not schema-valid still gets a report, its problems listed first; one so far from the
schema that the view-model, the templates or the chart cannot be made of it gets a page listing the
problems and the stored JSON (`_guarded`); a schema-valid record that cannot be drawn is a bug, raised.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Iterable
from typing import Any

import jinja2
from markupsafe import Markup

from ..errors import RecordUnreadable
from ..record import schema_problems
from . import model
from .format import md_cell, md_link_text, md_text
from .metrics_chart import metrics_svg
from .timeline import gantt_svg

FORMATS = ("md", "html")


def md_table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A Markdown table: the header row as given, every cell through `md_cell`."""
    headers = list(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(md_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _phase_cells(row: model.PhaseRow) -> list[Any]:
    return [row.index, row.title, row.start, row.end, row.duration, row.estimate, row.within, row.status, row.hosts,
            row.notes]


def _check_cells(row: model.CheckRow) -> list[Any]:
    return [row.name, row.host, "**FAIL**" if row.verdict == "fail" else row.verdict, row.value, row.threshold,
            row.detail]


def _comparison_cells(row: tuple[str, str, str, bool]) -> list[Any]:
    key, before, after, same = row
    return [key, before, after, "yes" if same else "**no**"]


def _monitoring_cells(series: dict[str, Any]) -> list[Any]:
    values = [p["v"] for p in series["points"]]
    unit = f" {series['unit']}" if series["unit"] and series["unit"] != "ratio" else ""
    last = series["points"][-1] if series["points"] else None
    return [series["label"], len(values), f"{min(values):g}{unit}" if values else "-",
            f"{max(values):g}{unit}" if values else "-", f"{last['v']:g}{unit} at {last['t']}" if last else "-"]


def _html_finalize(value: Any) -> Any:
    """Escape like `html.escape` (``&quot;``, ``&#x27;``); None shows as nothing; markup passes."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))  # noqa: S704 - escaped here


@functools.cache
def environment(fmt: str) -> jinja2.Environment:
    """The Jinja2 environment of a format (``md`` or ``html``), templates loaded from the package."""
    loader = jinja2.PackageLoader("rollbackctl.report", "templates")
    common = {"loader": loader, "trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": True,
              "undefined": jinja2.StrictUndefined}
    if fmt == "html":
        return jinja2.Environment(autoescape=True, finalize=_html_finalize, **common)
    env = jinja2.Environment(autoescape=False, **common)  # noqa: S701 - Markdown: escaped by the md filters
    env.filters.update(md_text=md_text, md_cell=md_cell, md_link=md_link_text, phase_cells=_phase_cells,
                       monitoring_cells=_monitoring_cells,
                       check_cells=_check_cells, comparison_cells=_comparison_cells)
    env.globals["md_table"] = md_table
    return env


#: What reading a record of the wrong shape raises anywhere in the model, the templates or the chart.
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError, OverflowError, jinja2.TemplateError)


def _guarded(record: Any, draw, unreadable) -> str:
    """`draw(view)`, or the `unreadable` page when the record is too far from its schema to be drawn."""
    try:
        return draw(model.build(record))
    except RecordUnreadable as exc:
        return unreadable(record, exc.problems)
    except _SHAPE_ERRORS:
        problems = schema_problems(record)
        if not problems:
            raise  # a valid record the report cannot draw: a bug here, not in the record
        return unreadable(record, problems)


def _markdown(view: model.IncidentView) -> str:
    return environment("md").get_template("incident.md.j2").render(v=view)


def _html(view: model.IncidentView) -> str:
    template = environment("html").get_template("incident.html.j2")
    chart = Markup(gantt_svg(view.record))  # noqa: S704 - the chart escapes every record text it draws
    metrics = Markup(metrics_svg(view.record))  # noqa: S704 - so do the monitoring charts
    return template.render(v=view, chart=chart, metrics_chart=metrics)


def render_markdown(record: dict[str, Any]) -> str:
    """The incident report as Markdown: outcome and next step first, then the details."""
    return _guarded(record, _markdown, _unreadable_markdown)


def render_html(record: dict[str, Any]) -> str:
    """The incident report as one self-contained HTML5 page (inline CSS and SVG, no script, nothing external)."""
    return _guarded(record, _html, _unreadable_html)


def render(record: dict[str, Any], fmt: str = "md") -> str:
    """``render_markdown`` or ``render_html`` by format name (``md`` / ``html``)."""
    if fmt == "html":
        return render_html(record)
    if fmt == "md":
        return render_markdown(record)
    raise ValueError(f"unknown report format {fmt!r}: md or html")


# ---- records no report can be made of ------------------------------------------------------------------

def _stored(record: Any) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False, default=str)


def _incident_id(record: Any) -> str:
    incident = record.get("incident_id") if isinstance(record, dict) else None
    return str(incident) if incident else "?"


def _unreadable_markdown(record: Any, problems: list[str]) -> str:
    stored = _stored(record)
    fence = "```"
    while fence in stored:  # a fence longer than any run of backticks in the record
        fence += "`"
    lines = [f"# Incident {md_text(_incident_id(record))}: unreadable record", "",
             "**This record does not match the incident schema**, so no report can be made of it:", ""]
    lines += [f"- {md_text(problem)}" for problem in problems]
    lines += ["", "The record as stored:", "", f"{fence}json", stored, fence, ""]
    return "\n".join(lines)


def _unreadable_html(record: Any, problems: list[str]) -> str:
    incident = html.escape(_incident_id(record))
    items = "".join(f"<li>{html.escape(problem)}</li>" for problem in problems)
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><title>Incident {incident}: unreadable record</title>'
            f"</head><body>\n<h1>Incident {incident}: unreadable record</h1>\n"
            "<p><strong>This record does not match the incident schema</strong>, so no report can be made of it:</p>\n"
            f"<ul>{items}</ul>\n<p>The record as stored:</p>\n<pre><code>{html.escape(_stored(record))}</code></pre>\n"
            "</body></html>\n")
