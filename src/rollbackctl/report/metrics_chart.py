"""The monitoring charts of the HTML report: the record's `monitoring_data` as inline SVG line charts.

One panel per metric (5xx ratio, critical response time, CPU, memory) over the section's window, all on one
time axis; the phases of the rollback are drawn across every panel as bands (coloured by status, as in the
timeline), so that each value can be read against the phase it fell in. The geometry (label column, plot width,
info column) is the timeline's, and so is its CSS class (full width), so the two charts line up when the page
scales them. Well-formed XML.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ..times import maybe_time
from .format import format_clock
from .queries import phase_label
from .timeline import STATUS_COLOURS, _e, _f, _shorten, axis_ticks

SERIES_COLOUR = "#00838f"  # teal: used nowhere else in the report (the screenshot test looks for it)
TRIGGER_COLOUR = "#d81b60"
LABEL_W, CHART_W, INFO_W = 250.0, 560.0, 290.0
PANEL_H, GAP, TOP = 90.0, 26.0, 40.0


def _number(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value * 100:.2f} %"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    return f"{value:.1f} {unit}".strip()


def metrics_svg(record: Mapping[str, Any]) -> str:
    """The charts (an SVG), or an empty string when the record keeps no monitoring data."""
    section = record.get("monitoring_data")
    if not isinstance(section, Mapping):
        return ""
    series = [s for s in section.get("series") or [] if s.get("points")]
    start, end = maybe_time(section["window"]["start"]), maybe_time(section["window"]["end"])
    if not series or start is None or end is None or end <= start:
        sources = ", ".join(section.get("sources") or []) or "no source"
        errors = "; ".join(section.get("errors") or [])
        return (f'<p class="metrics-empty">No monitoring data was found around the failure ({_e(sources)})'
                f'{": " + _e(errors) if errors else ""}.</p>')
    span = (end - start).total_seconds()
    width = LABEL_W + CHART_W + INFO_W
    height = TOP + len(series) * (PANEL_H + GAP) + 14.0

    def x(moment: dt.datetime) -> float:
        return LABEL_W + min(max((moment - start).total_seconds(), 0.0), span) / span * CHART_W

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt metrics" viewBox="0 0 {_f(width)} {_f(height)}" '
           f'width="{_f(width)}" height="{_f(height)}" role="img" '
           f'aria-label="Monitoring data around the failure, with the rollback phases" '
           f'font-family="sans-serif" font-size="12">',
           f"<title>Monitoring data from {_e(format_clock(start))} to {_e(format_clock(end, start))}; "
           f"bands are the rollback phases</title>"]
    bottom = height - 26.0
    # Phase bands across all panels, labelled at the top.
    for index, phase in enumerate(record.get("phases") or []):
        p_start, p_end = maybe_time(phase.get("started_at")), maybe_time(phase.get("ended_at"))
        if p_start is None:
            continue
        p_end = p_end or maybe_time(record.get("updated_at")) or p_start
        left, right = x(p_start), x(max(p_end, p_start))
        colour = STATUS_COLOURS.get(phase.get("status"), STATUS_COLOURS["pending"])
        title = phase_label(phase)
        out.append(f'<rect class="phase-band status-{_e(phase.get("status"))}" x="{_f(left)}" y="{_f(TOP - 8)}" '
                   f'width="{_f(max(right - left, 1.5))}" height="{_f(bottom - TOP + 8)}" fill="{colour}" '
                   f'fill-opacity="{0.10 if index % 2 else 0.2}"><title>{_e(title)}: {_e(format_clock(p_start))} to '
                   f'{_e(format_clock(p_end, p_start))}</title></rect>')
        out.append(f'<text class="phase-mark" x="{_f(left + 2)}" y="{_f(TOP - 12 - (index % 2) * 12)}" '
                   f'fill="{colour}" font-size="10">{index + 1}</text>')
    # Time axis: elapsed from the window start (bottom), the clock time of its ends (top).
    for seconds, label in axis_ticks(span):
        tx = LABEL_W + seconds / span * CHART_W
        out.append(f'<line class="tick" x1="{_f(tx)}" y1="{_f(TOP)}" x2="{_f(tx)}" y2="{_f(bottom)}" '
                   f'stroke="#eeeeee" stroke-width="1"/>')
        out.append(f'<text class="tick-label" x="{_f(tx)}" y="{_f(height - 4)}" text-anchor="middle" '
                   f'fill="#616161" font-size="10">+{_e(label)}</text>')
    out.append(f'<text x="{_f(LABEL_W)}" y="12" fill="#616161">{_e(format_clock(start))}</text>')
    out.append(f'<text x="{_f(LABEL_W + CHART_W)}" y="12" text-anchor="end" fill="#616161">'
               f'{_e(format_clock(end, start))}</text>')
    for index, entry in enumerate(series):
        top = TOP + index * (PANEL_H + GAP)
        unit = str(entry.get("unit") or "")
        points = [(maybe_time(p["t"]), float(p["v"]), p.get("source")) for p in entry["points"]]
        points = sorted((p for p in points if p[0] is not None and start <= p[0] <= end), key=lambda p: p[0])
        values = [v for _, v, _ in points] or [0.0]
        high = max(max(values), 0.0)
        low = min(min(values), 0.0)
        high = high if high > low else low + (1.0 if unit != "ratio" else 0.01)
        scale = (high - low) * 1.1

        def y(value: float, top: float = top, low: float = low, scale: float = scale) -> float:
            return top + PANEL_H - (value - low) / scale * PANEL_H

        label = str(entry.get("label") or entry.get("metric"))
        out.append(f'<rect class="panel" x="{_f(LABEL_W)}" y="{_f(top)}" width="{_f(CHART_W)}" '
                   f'height="{_f(PANEL_H)}" fill="none" stroke="#bdbdbd" stroke-width="1"/>')
        out.append(f'<text class="metric-label" x="{_f(LABEL_W - 8)}" y="{_f(top + 16)}" text-anchor="end">'
                   f"{_e(_shorten(label))}</text>")
        out.append(f'<text x="{_f(LABEL_W - 8)}" y="{_f(top + 30)}" text-anchor="end" fill="#757575" '
                   f'font-size="10">max {_e(_number(max(values), unit))}</text>')
        coords = " ".join(f"{_f(x(t))},{_f(y(v))}" for t, v, _ in points)
        out.append(f'<polyline class="series" data-metric="{_e(entry.get("metric"))}" '
                   f'data-points="{len(points)}" points="{coords}" fill="none" stroke="{SERIES_COLOUR}" '
                   f'stroke-width="2"><title>{_e(label)}</title></polyline>')
        for t, v, source in points:
            if source == "triggers":
                out.append(f'<circle class="observation" cx="{_f(x(t))}" cy="{_f(y(v))}" r="2.5" '
                           f'fill="{TRIGGER_COLOUR}"><title>{_e(label)} {_e(_number(v, unit))} at '
                           f'{_e(format_clock(t))} (trigger observation)</title></circle>')
        last = points[-1] if points else None
        info = f"last {_number(last[1], unit)} at {format_clock(last[0], start)}" if last else "no data"
        out.append(f'<text class="metric-info" x="{_f(LABEL_W + CHART_W + 12)}" y="{_f(top + 16)}" '
                   f'fill="#424242">{_e(info)}</text>')
    out.append("</svg>")
    return "".join(out)
