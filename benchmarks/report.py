"""The Markdown table: every measure of every target side by side, min/median/max over the repeats, ratios."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .measures import Result
from .stats import Summary, fmt_ratio, ratio, summarize

Pick = Callable[[Result], float | None]


def _values(results: Sequence[Result], measure: str, target: str, pick: Pick) -> list:
    """Every value measured, of runs that succeeded and of runs that failed (a failed rollback's wall and window
    are what users lived through); the success row says how many failed. Setup failures measured nothing."""
    return [pick(r) for r in results if r.measure == measure and r.target == target and r.wall is not None]


def _essential(results, target, key) -> Summary:
    return summarize(_values(results, "essential", target, lambda r: r.extra.get(key)))


ROWS: list[tuple[str, str, Pick, str, int]] = [
    # label, measure, value, unit, digits
    ("full standard rollback with database restore: wall", "full", lambda r: r.wall, " s", 1),
    ("full: CPU of the run's process tree", "full", lambda r: r.cpu, " s", 1),
    ("full: user-visible maintenance window (first to last 503)", "full", lambda r: r.window, " s", 1),
    ("full: failed user requests", "full", lambda r: r.failed, "", 0),
    ("code-only rollback (`--database no`): wall", "code-only", lambda r: r.wall, " s", 1),
    ("code-only: CPU of the run's process tree", "code-only", lambda r: r.cpu, " s", 1),
    ("code-only: user-visible 503 window", "code-only", lambda r: r.window, " s", 1),
    ("code-only: failed user requests", "code-only", lambda r: r.failed, "", 0),
    ("app_rollback playbook alone: wall", "app_rollback", lambda r: r.wall, " s", 1),
    ("app_rollback: 503 window", "app_rollback", lambda r: r.window, " s", 1),
    ("app_rollback: failed user requests", "app_rollback", lambda r: r.failed, "", 0),
    ("plan's manual procedure (git checkout, npm install, npm run build, pm2 restart): wall", "manual",
     lambda r: r.wall, " s", 1),
    ("manual: 503 window", "manual", lambda r: r.window, " s", 1),
    ("manual: failed user requests", "manual", lambda r: r.failed, "", 0),
    ("essential work, code (switch + pm2 reload + 3 API probes)", "essential", lambda r: r.extra.get("code"), " s", 2),
    ("essential work, code + database (+ snapshot, restore, data check)", "essential",
     lambda r: r.extra.get("full"), " s", 2),
    ("ansible-playbook processes per full run", "full", lambda r: r.playbooks, "", 0),
    ("module tasks per full run", "full", lambda r: r.module_tasks, "", 0),
    ("processes started per full run (fork events in its tree)", "full", lambda r: r.forks, "", 0),
    ("programs exec'd per full run", "full", lambda r: r.execs, "", 0),
    ("ansible-playbook processes per code-only run", "code-only", lambda r: r.playbooks, "", 0),
    ("module tasks per code-only run", "code-only", lambda r: r.module_tasks, "", 0),
    ("processes started per code-only run", "code-only", lambda r: r.forks, "", 0),
]


def table(results: Sequence[Result], targets: Sequence[str], load: dict) -> str:
    """Columns: each target (median (min-max)); with two targets the last/first ratio of the medians."""
    compare = len(targets) == 2
    header = ["measure", *targets] + ([f"{targets[1]} / {targets[0]}"] if compare else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def row(label: str, cells: list[str], medians: list[float | None]) -> None:
        extra = [fmt_ratio(ratio(medians[1], medians[0]))] if compare else []
        lines.append("| " + " | ".join([label, *cells, *extra]) + " |")

    for label, measure, pick, unit, digits in ROWS:
        sums = [summarize(_values(results, measure, t, pick)) for t in targets]
        row(label, [s.fmt(unit, digits) for s in sums], [s.median if s.n else None for s in sums])

    def ratio_row(label: str, numerator: Callable[[str], Summary], denominator: Callable[[str], Summary]) -> None:
        values = [ratio(numerator(t).median, denominator(t).median) for t in targets]
        row(label, [fmt_ratio(v) for v in values], values)

    wall = {m: (lambda t, m=m: summarize(_values(results, m, t, lambda r: r.wall))) for m in
            ("full", "code-only", "manual", "app_rollback")}
    ratio_row("full: wall / essential work", wall["full"], lambda t: _essential(results, t, "full"))
    ratio_row("code-only: wall / essential work", wall["code-only"], lambda t: _essential(results, t, "code"))
    ratio_row("toolkit code-only / manual procedure (wall)", wall["code-only"], wall["manual"])
    ratio_row("app_rollback playbook / manual procedure (wall)", wall["app_rollback"], wall["manual"])

    succeeded = []
    for t in targets:
        runs = [r for r in results if r.target == t and r.measure in ("full", "code-only")]
        succeeded.append((sum(r.ok for r in runs), len(runs)))
    row("rollbacks under load that succeeded (full + code-only)", [f"{k} of {n}" for k, n in succeeded],
        [k / n if n else None for k, n in succeeded])
    row("load: capacity (p95 ≤ 1 s) / rate used, requests/s",
        [f"{load['capacity'][t]:.1f} / {load['rate']:.1f}" for t in targets],
        [load["capacity"][t] for t in targets])
    return "\n".join(lines)


def failures(results: Sequence[Result]) -> str:
    failed = [r for r in results if not r.ok]
    return "\n".join(f"- {r.target} {r.measure}: {r.note[:400]}" for r in failed)
