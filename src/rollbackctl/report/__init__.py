"""The incident report: an incident record (incident.json) rendered for people, as Markdown or HTML.

The report follows the rollback plan: the outcome and the next step first, then who decided and why, the
phases against the plan's Appendix C estimates, the Appendix A checklist, the backup, the verifications, the
notifications, the collected logs, the rollback testing comparison (rehearsals) and the Post-Rollback
Actions still to do. The record writer also stores the Markdown as ``incident.md`` next to
``incident.json``; ``rollbackctl report`` (`rollbackctl.cli.report`) prints or writes either format.

One module a concern: `model` (the view-model, built once from the schema-validated record), `queries`
(what the record says: timings, where a run stopped, bottlenecks), `format`
(durations, estimates, clock times; Markdown escaping), `timeline` (the SVG Gantt chart), `render`
(the Jinja2 templates in ``templates/``).
"""

from .format import (
    DASH,
    describe,
    estimate_range,
    format_bytes,
    format_clock,
    format_duration,
    format_estimate,
    format_value,
    md_cell,
    md_text,
    safe_relative_link,
    yes_no,
)
from .model import TOTAL_ESTIMATE, IncidentView, build, decision_text
from .queries import (
    bottlenecks,
    maintenance_state,
    phase_duration,
    phase_within_estimate,
    total_duration,
    verification_groups,
)
from .render import render, render_html, render_markdown
from .timeline import Segment, attempt_segments, axis_ticks, gantt_svg

__all__ = [
    "DASH",
    "TOTAL_ESTIMATE",
    "IncidentView",
    "Segment",
    "attempt_segments",
    "axis_ticks",
    "bottlenecks",
    "build",
    "decision_text",
    "describe",
    "estimate_range",
    "format_bytes",
    "format_clock",
    "format_duration",
    "format_estimate",
    "format_value",
    "gantt_svg",
    "maintenance_state",
    "md_cell",
    "md_text",
    "phase_duration",
    "phase_within_estimate",
    "render",
    "render_html",
    "render_markdown",
    "safe_relative_link",
    "total_duration",
    "verification_groups",
    "yes_no",
]
