"""The timeline chart of the HTML report: an inline SVG Gantt chart of the phases against Appendix C.

One row per phase: a bar per attempt (coloured by status), the Appendix C estimate as a band, the axis
in elapsed time from the first phase start. Well-formed XML with nothing external.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..times import maybe_time, parse_time
from .format import estimate_range, format_clock, format_duration, format_estimate
from .queries import phase_duration, phase_label

STATUS_COLOURS = {
    "ok": "#2e7d32",
    "failed": "#c62828",
    "interrupted": "#ef6c00",
    "skipped": "#9e9e9e",
    "running": "#1565c0",
    "pending": "#cfd8dc",
}
ESTIMATE_COLOUR = "#7e57c2"
TEXT_COLOURS = {**STATUS_COLOURS, "skipped": "#757575", "pending": "#78909c"}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class Segment:
    """One attempt of a phase on the timeline, in seconds from the chart's origin."""

    start: float
    end: float
    status: str
    attempt: int
    attempts: int
    open_ended: bool = False


def attempt_segments(phase: Mapping[str, Any], origin: dt.datetime,
                     now: dt.datetime | None = None) -> list[Segment]:
    """The bars of a phase: one per attempt (or one for the phase when it has no attempts), none when pending.

    An attempt without an end (running, or the process died) ends at ``now`` (the record's updated_at) and is
    ``open_ended``.
    """
    spans = [(a["started_at"], a["ended_at"], a["status"]) for a in phase["attempts"]]
    if not spans and phase["started_at"]:
        spans = [(phase["started_at"], phase["ended_at"], phase["status"])]
    segments = []
    for index, (start_ts, end_ts, status) in enumerate(spans, 1):
        start = parse_time(start_ts)
        end = maybe_time(end_ts)
        open_ended = end is None
        if end is None:
            end = now if now is not None and now >= start else start
        segments.append(Segment((start - origin).total_seconds(), (max(end, start) - origin).total_seconds(),
                                status, index, len(spans), open_ended))
    return segments


_TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]


def axis_ticks(span_seconds: float, max_ticks: int = 8) -> list[tuple[float, str]]:
    """Ticks from 0 to the span: ``(seconds, label)``, labels in s, m:ss, min or h as suits the span."""
    span = max(float(span_seconds), 1.0)
    smallest = 3600 if span >= 7200 else 1  # long runs: whole hours
    step = next((s for s in _TICK_STEPS if s >= smallest and span / s <= max_ticks), _TICK_STEPS[-1])
    while span / step > max_ticks:
        step *= 2
    ticks = []
    value = 0
    while value <= span + 1e-9:
        if step < 60 and span < 60:
            label = f"{value} s"
        elif step < 60:
            label = f"{value // 60}:{value % 60:02d}"
        elif step < 3600:
            label = f"{value // 60} min"
        else:
            hours, rest = divmod(value, 3600)
            label = f"{hours} h" if not rest else f"{hours} h {rest // 60:02d}"
        ticks.append((float(value), label))
        value += step
    return ticks


def _estimate_seconds(phase: Mapping[str, Any]) -> tuple[float, float] | None:
    bounds = estimate_range(phase["estimate"])
    return None if bounds is None else (bounds[0] * 60, bounds[1] * 60)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _shorten(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def gantt_svg(record: Mapping[str, Any]) -> str:
    """The timeline as an inline SVG Gantt chart (well-formed XML), or a paragraph when there is nothing to draw.

    One row per phase: a bar per attempt from its start to its end, coloured by status; the Appendix C estimate
    as a band from phase start + minimum to phase start + maximum (a dashed lead from the start to the
    minimum); the axis in elapsed time from the first phase start. Estimates reaching far beyond the actual
    run (a fast sandbox rehearsal) are cut at the right edge and marked with an arrow.
    """
    phases = record["phases"]
    if not phases:
        return '<p class="gantt-empty">No phase recorded yet: nothing to chart.</p>'
    starts = []
    for phase in phases:
        for ts in [phase["started_at"], *(a["started_at"] for a in phase["attempts"])]:
            moment = maybe_time(ts)
            if moment is not None:
                starts.append(moment)
    if not starts:
        return '<p class="gantt-empty">No phase has started yet: nothing to chart.</p>'
    origin = min(starts)
    now = parse_time(record["updated_at"])
    rows = []
    actual_end = 0.0
    estimate_end = 0.0
    for phase in phases:
        segments = attempt_segments(phase, origin, now)
        estimate = _estimate_seconds(phase)
        if segments:
            actual_end = max(actual_end, *(s.end for s in segments))
            if estimate:
                estimate_end = max(estimate_end, segments[0].start + estimate[1])
        rows.append((phase, segments, estimate))
    span = actual_end if actual_end > 0 else max(estimate_end, 60.0)
    if estimate_end > span:
        span = min(estimate_end, span * 3)
    span = max(span, 1.0)

    label_w, chart_w, info_w = 250.0, 560.0, 290.0
    top, row_h = 34.0, 30.0
    height = top + row_h * len(rows) + 40.0
    width = label_w + chart_w + info_w

    def x(seconds: float) -> float:
        return label_w + min(max(seconds, 0.0), span) / span * chart_w

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" viewBox="0 0 {_f(width)} {_f(height)}" '
           f'width="{_f(width)}" height="{_f(height)}" role="img" '
           f'aria-label="Timeline of the phases against their Appendix C estimates" '
           f'font-family="sans-serif" font-size="12">',
           f"<title>Timeline from {_e(format_clock(origin))}: bars are the phase "
           f"attempts, bands the Appendix C estimates</title>"]
    bottom = top + row_h * len(rows)
    for seconds, label in axis_ticks(span):
        tx = x(seconds)
        out.append(f'<line class="tick" x1="{_f(tx)}" y1="{_f(top - 6)}" x2="{_f(tx)}" y2="{_f(bottom)}" '
                   f'stroke="#e0e0e0" stroke-width="1"/>')
        out.append(f'<text class="tick-label" x="{_f(tx)}" y="{_f(top - 10)}" text-anchor="middle" '
                   f'fill="#616161">{_e(label)}</text>')
    for index, (phase, segments, estimate) in enumerate(rows):
        y = top + index * row_h
        status = phase["status"]
        title = phase_label(phase)
        duration = phase_duration(phase)
        if index % 2:
            out.append(f'<rect class="row" x="0" y="{_f(y)}" width="{_f(width)}" height="{_f(row_h)}" '
                       f'fill="#fafafa"/>')
        out.append(f'<text class="phase-label" x="{_f(label_w - 8)}" y="{_f(y + 18)}" text-anchor="end">'
                   f"<title>{_e(title)}</title>{_e(_shorten(title))}</text>")
        if estimate and segments:
            start = segments[0].start
            low, high = start + estimate[0], start + estimate[1]
            est_text = (f"{title}: Appendix C estimate {format_estimate(phase['estimate'])}, "
                        f"actual {format_duration(duration)}")
            clipped = high > span
            if clipped:
                est_text += " (the estimate reaches beyond the chart)"
            band_y = y + row_h * 0.68
            if estimate[0] > 0:
                out.append(f'<line class="estimate-lead" x1="{_f(x(start))}" y1="{_f(band_y + 3)}" '
                           f'x2="{_f(x(low))}" y2="{_f(band_y + 3)}" stroke="{ESTIMATE_COLOUR}" stroke-width="1" '
                           f'stroke-dasharray="3,3"/>')
            band_w = max(x(high) - x(low), 2.0)
            band_x = min(x(low), label_w + chart_w - band_w)
            out.append(f'<rect class="estimate" x="{_f(band_x)}" y="{_f(band_y)}" width="{_f(band_w)}" height="6" '
                       f'fill="{ESTIMATE_COLOUR}" '
                       f'fill-opacity="0.35" stroke="{ESTIMATE_COLOUR}" stroke-width="0.5">'
                       f"<title>{_e(est_text)}</title></rect>")
            if clipped:
                edge = label_w + chart_w
                out.append(f'<path class="estimate-clipped" d="M{_f(edge)},{_f(band_y - 2)} L{_f(edge + 7)},'
                           f'{_f(band_y + 3)} L{_f(edge)},{_f(band_y + 8)} Z" fill="{ESTIMATE_COLOUR}"/>')
        for segment in segments:
            colour = STATUS_COLOURS.get(segment.status, STATUS_COLOURS["pending"])
            left = x(segment.start)
            bar_w = max(x(segment.end) - left, 2.0)
            tip = (f"{title}: attempt {segment.attempt}/{segment.attempts} {segment.status}, "
                   f"{format_duration(segment.end - segment.start)}"
                   f"{' so far (no end recorded)' if segment.open_ended else ''}")
            out.append(f'<rect class="bar status-{_e(segment.status)}" data-attempt="{segment.attempt}" '
                       f'x="{_f(left)}" y="{_f(y + 5)}" width="{_f(bar_w)}" height="{_f(row_h * 0.5)}" rx="2" '
                       f'fill="{colour}"><title>{_e(tip)}</title></rect>')
        if duration is not None:
            info = f"{status} {format_duration(duration)}"
        elif segments:
            info = f"{status} {format_duration(sum(seg.end - seg.start for seg in segments))} so far"
        else:
            info = status
        if estimate:
            info += f" (est. {format_estimate(phase['estimate'])})"
        if len(segments) > 1:
            info += f", {len(segments)} attempts"
        out.append(f'<text class="phase-info status-{_e(status)}" x="{_f(label_w + chart_w + 12)}" '
                   f'y="{_f(y + 18)}" fill="{TEXT_COLOURS.get(status, "#424242")}">{_e(info)}</text>')
    legend_y = bottom + 24
    legend_x = label_w
    for name in ("ok", "failed", "interrupted", "skipped", "running"):
        out.append(f'<rect class="legend" x="{_f(legend_x)}" y="{_f(legend_y - 9)}" width="10" height="10" '
                   f'fill="{STATUS_COLOURS[name]}"/>')
        out.append(f'<text x="{_f(legend_x + 14)}" y="{_f(legend_y)}">{name}</text>')
        legend_x += 90
    out.append(f'<rect class="legend" x="{_f(legend_x)}" y="{_f(legend_y - 6)}" width="18" height="6" '
               f'fill="{ESTIMATE_COLOUR}" fill-opacity="0.35"/>')
    out.append(f'<text x="{_f(legend_x + 22)}" y="{_f(legend_y)}">Appendix C estimate (min..max)</text>')
    out.append("</svg>")
    return "".join(out)
