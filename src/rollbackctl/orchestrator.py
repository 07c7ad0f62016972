"""Run the standard rollback phase by phase through ansible-runner, keeping the incident record.

Each phase is one or two phase playbooks. Between phases the wrapper decides (database restore or
not, anything to roll back at all) from what preflight published with set_stats. A failure stops the
run where it is - maintenance mode stays on - and the record says why and what to do next; `resume`
continues from the first phase that is not done. A SIGTERM/SIGINT cancels the running playbook
(ansible-runner stops ansible-playbook) and leaves the phase `interrupted`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import batch
from . import phases as phase_table
from .errors import ExitCode, RunInterrupted
from .lock import EnvironmentLock
from .notices import notice_vars
from .progress import Progress
from .record import IncidentRecord
from .runner import PlaybookResult, run_playbook
from .target import identify
from .times import utcnow


@dataclass
class Step:
    playbook: str
    extravars: dict[str, Any]


@dataclass
class Context:
    project: Path
    runs_dir: Path
    progress: Progress
    extravars: dict[str, Any] = field(default_factory=dict)  # added to every phase (e.g. a rehearsal's receiver)
    on_phase_done: Callable[[str, IncidentRecord], None] | None = None  # tests and rehearse hook in here
    batch: bool = True  # run the phases preflight decided in one ansible-playbook (rollbackctl.batch)
    break_after: frozenset[str] = frozenset()  # phases a batch ends with (rehearse looks at the data after verify_db)


class Cancelled:
    """SIGTERM/SIGINT set a flag; the running playbook is cancelled through ansible-runner's callback."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Cancelled:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, _frame) -> None:
        self.signal = signum
        self.event.set()

    def __exit__(self, *exc) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def __call__(self) -> bool:
        return self.event.is_set()


def _common_vars(record: IncidentRecord) -> dict[str, Any]:
    data = record.data
    authority = data["authority"]
    values = {
        "rollback_to": data["to_version"],
        "incident_id": data["incident_id"],
        "reason": data["reason"],
        "decided_by": authority.get("decided_by", ""),
        "authority": f"{authority.get('role', '')} ({authority.get('basis', '')})",
        "procedure": data["procedure"],
        "database": data["database"]["requested"],
    }
    if data.get("from_version"):
        values["rollback_from"] = data["from_version"]
    if data["database"].get("backup_name"):
        values["backup"] = data["database"]["backup_name"]
    return values


def _since(record: IncidentRecord, earlier: Collection[str] = ()) -> str:
    """Logs are scanned from the start of the code rollback (the release switch)."""
    if "app_rollback" in earlier:
        return batch.phase_time("app_rollback", "started")
    return record.phase("app_rollback")["started_at"] or record.data["created_at"]


def _attributed_before(record: IncidentRecord, *phases: str, earlier: Collection[str] = ()) -> str:
    """Error lines logged before the latest end of these phases (done) belong to them, not to the target: the old
    release's workers drain during the switch, the app fails on the database while it is restored.

    `earlier`: the phases that run before this one in the same ansible-playbook run (their end is a run time)."""
    ends = [batch.phase_time(name, "ended") if name in earlier else p["ended_at"] for name in phases
            if name in earlier or ((p := record.phase(name))["status"] == "ok" and p.get("ended_at"))]
    return batch.latest(ends)


def steps_for(name: str, record: IncidentRecord, earlier: Collection[str] = ()) -> list[Step]:
    """The playbooks of one phase, with the extra vars taken from the record.

    `earlier`: the phases that run before this one in the same ansible-playbook run (rollbackctl.batch): what the
    record will only know once they are done is read from the run instead."""
    common = _common_vars(record)
    data = record.data
    to = data["to_version"]
    if name == "preflight":
        return [Step("preflight.yml", common)]
    if name == "announce":
        return [Step("notify.yml", {**common, "notify_event": "rollback_started", **notice_vars(record, name)})]
    if name == "maintenance_on":
        return [Step("maintenance.yml", {**common, "maintenance_state": "on"})]
    if name == "app_rollback":
        return [Step("app_rollback.yml", common)]
    if name == "verify_app":
        return [Step("verify.yml", {**common, "verify_scope": "app", "verify_expected_version": to,
                                    "verify_log_since": _since(record, earlier),
                                    "verify_log_attributed_before": _attributed_before(record, "app_rollback",
                                                                                       earlier=earlier)})]
    if name == "db_restore":
        return [Step("db_restore.yml", common)]
    if name == "verify_db":
        restored = data["database"]["restore"] and (record.phase("db_restore")["status"] == "ok"
                                                    or "db_restore" in earlier)
        manifest = (data.get("backup") or {}).get("manifest") if restored else ""
        return [Step("verify.yml", {**common, "verify_scope": "db",
                                    "verify_expected_schema": data["database"]["target_schema"],
                                    "verify_backup_manifest": manifest or ""})]
    full = {**common, "verify_scope": "full", "verify_expected_version": to,
            "verify_log_since": _since(record, earlier),
            "verify_log_attributed_before": _attributed_before(record, "app_rollback", "db_restore", earlier=earlier)}
    if name == "maintenance_off":
        return [Step("verify.yml", full), Step("maintenance.yml", {**common, "maintenance_state": "off"})]
    if name == "post_verify":
        return [Step("verify.yml", full)]
    if name == "notify_done":
        return [Step("notify.yml", {**common, "notify_event": "rollback_completed", **notice_vars(record, name)})]
    if name == "collect_logs":
        return [Step("collect_logs.yml", {**common, "incident_logs_dir": str(record.path / "logs")})]
    raise KeyError(name)


#: The phases one ansible-playbook run may take together: what preflight's findings decide, and not the logs
#: (collected on their own, after a failure too).
BATCHABLE = frozenset(phase_table.NAMES) - {"preflight", "collect_logs"}


#: The phases a zero-downtime rollback leaves out: the plan's step 2 and its undoing (step 7). The full
#: verification of step 7 is not lost: post_verify runs it, on live traffic.
WITHOUT_MAINTENANCE = ("maintenance_on", "maintenance_off")


def zero_downtime(record: IncidentRecord) -> dict[str, Any] | None:
    """The zero-downtime departure this incident's operator chose, or None (the plan's procedure)."""
    return next((d for d in record.data.get("departures") or [] if d["id"] == "zero_downtime"), None)


def zero_downtime_refusal(record: IncidentRecord) -> str | None:
    """Why preflight's findings rule a zero-downtime rollback out (None: it may go on)."""
    database = record.data["database"]
    if zero_downtime(record) and database["restore"]:
        return ("zero-downtime rollback refused: the database must be restored "
                f"({database['reason'] or 'preflight decided a restore'}), which needs the plan's maintenance "
                "window; nothing was changed - run the rollback again without --zero-downtime")
    return None


def skip_reason(name: str, record: IncidentRecord, check: bool) -> str | None:
    """Why a phase does not run in this rollback (None: it runs)."""
    phase = phase_table.get(name)
    data = record.data
    needed = data["environment"].get("rollback_needed", True)
    if phase.needs_rollback and not needed:
        return f"nothing to roll back: the platform already runs {data['to_version']}"
    departure = zero_downtime(record)
    if departure and name in WITHOUT_MAINTENANCE:
        return (f"zero-downtime rollback chosen by {departure['chosen_by']}: a deliberate departure from the plan's "
                f"{departure['step']} ({departure['why']})")
    if name == "db_restore" and not data["database"]["restore"]:
        return f"not necessary: {data['database']['reason'] or 'preflight decided no restore'}"
    if check and phase.verifies:
        return "check mode: nothing was changed, so there is nothing new to verify"
    if check and name == "collect_logs":
        return "check mode"
    return None


def maintenance_on(record: IncidentRecord) -> bool:
    """Whether this rollback left maintenance mode on (enabled and not yet disabled)."""
    return (record.phase("maintenance_on")["status"] == "ok"
            and record.phase("maintenance_off")["status"] != "ok")


def next_step_after_failure(name: str, record: IncidentRecord, interrupted: bool = False) -> str:
    incident = record.incident_id
    if name == "preflight":
        return ("nothing was changed. Fix the problem named above (input, inventory, target release, backup or "
                f"database) and run the rollback again, or `rollbackctl resume {incident}`.")
    state = ("the platform is in maintenance mode (users get the maintenance page)" if maintenance_on(record)
             else "maintenance mode is off")
    cause = "the run was interrupted" if interrupted else "fix the cause named above"
    return (f"{state}; {cause}, then `rollbackctl resume {incident}` continues from phase {name} (phases are "
            f"idempotent); `rollbackctl report {incident}` shows the record.")


class Rollback:
    """One rollback run (or its continuation) over an existing record."""

    def __init__(self, record: IncidentRecord, ctx: Context, *, inventory: Path, check: bool = False):
        self.record = record
        self.ctx = ctx
        self.inventory = inventory
        self.check = check

    # --- running playbooks -----------------------------------------------------------------

    def _event(self, event: dict[str, Any]) -> None:
        data = event.get("event_data") or {}
        if event.get("event") == "playbook_on_task_start":
            self.ctx.progress.task(data.get("task", ""))
        self.record.add_event(event)

    def _run_step(self, step: Step, cancelled: Cancelled, phase: str) -> PlaybookResult:
        ident = f"{self.record.incident_id}-{phase}-{step.playbook.removesuffix('.yml')}-{utcnow()}"
        ident = ident.replace(":", "")
        return run_playbook(project=self.ctx.project, playbook=step.playbook, inventory=self.inventory,
                            extravars={**self.ctx.extravars, **step.extravars}, check=self.check, ident=ident,
                            runs_dir=self.ctx.runs_dir, envvars={"ROLLBACKCTL_RECORD": "off"},
                            on_event=self._event, raise_on_failure=False, cancel_callback=cancelled)

    # --- between phases --------------------------------------------------------------------

    def _after(self, name: str, results: list[PlaybookResult]) -> None:
        for result in results:
            self.record.apply_stats(result.custom_stats, phase=name)
        data = self.record.data
        if name == "preflight" and not data["database"].get("backup_name") and data.get("from_version"):
            data["database"]["backup_name"] = f"pre-deploy-{data['from_version']}"  # backup.yml's name
        if name == "collect_logs":
            self.record.adopt_logs()

    def _collect_logs_best_effort(self, cancelled: Cancelled) -> None:
        """After a failure the logs matter most: collect them now (the phase itself runs again on resume)."""
        try:
            result = self._run_step(steps_for("collect_logs", self.record)[0], cancelled, "collect_logs")
            if result.ok:
                self.record.adopt_logs()
                self.record.save()
        except Exception as exc:  # never let log collection hide the real failure
            self.ctx.progress.message(f"collecting the logs failed too: {exc}")

    # --- the run ---------------------------------------------------------------------------

    def execute(self) -> ExitCode:
        record = self.record
        record.set_outcome("in_progress", "rollback in progress")
        record.save()
        with Cancelled() as cancelled:
            while (name := record.next_phase()) is not None:
                phase = phase_table.get(name)
                reason = skip_reason(name, record, self.check)
                if reason:
                    record.skip_phase(name, reason)
                    record.save()
                    self.ctx.progress.phase_skipped(phase, reason)
                    continue
                together = self._batch_from(name)
                if len(together) > 1:
                    code = self._run_batch(together, cancelled)
                else:
                    code = self._run_phase(phase, cancelled)
                    if code == ExitCode.OK and self.ctx.on_phase_done:
                        self.ctx.on_phase_done(name, record)
                if code != ExitCode.OK:
                    return code
        return self._finish()

    # --- several phases in one ansible-playbook run ------------------------------------------

    def _batch_from(self, name: str) -> list[tuple[str, str | None]]:
        """The phases to run together from `name` on: (phase, why it is skipped or None), in order.

        Only what preflight already decided goes together: the phases between preflight and collect_logs, up to a
        phase the context wants a break after. Skipped ones stay in the list (recorded when the run reaches them)."""
        if not self.ctx.batch or name not in BATCHABLE:
            return [(name, None)]
        together: list[tuple[str, str | None]] = []
        for other in phase_table.NAMES[phase_table.NAMES.index(name):]:
            if other not in BATCHABLE or self.record.phase(other)["status"] in ("ok", "skipped"):
                break
            together.append((other, skip_reason(other, self.record, self.check)))
            if other in self.ctx.break_after and together[-1][1] is None:
                break
        while together and together[-1][1] is not None:  # trailing skips are recorded by the main loop
            together.pop()
        return together

    def _run_batch(self, together: list[tuple[str, str | None]], cancelled: Cancelled) -> ExitCode:
        record = self.record
        runnable = [name for name, reason in together if reason is None]
        steps, earlier = [], []
        for name in runnable:
            phase_steps = steps_for(name, record, earlier=tuple(earlier))
            steps.extend((name, step) for step in phase_steps)
            earlier.append(name)
        common = {**_common_vars(record), **self.ctx.extravars}
        text = batch.playbook(((name, step.playbook, {key: value for key, value in step.extravars.items()
                                                      if key not in common or common[key] != value})
                               for name, step in steps), str(self.ctx.project / "playbooks"))
        first = runnable[0]
        ident = f"{record.incident_id}-{first}-batch-{utcnow()}".replace(":", "")
        self.ctx.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.ctx.runs_dir / f".{ident}.yml"
        path.write_text(text)
        path.chmod(0o600)
        tracker = _BatchTracker(self, together, [(name, step.playbook) for name, step in steps],
                                str(self.ctx.runs_dir / "artifacts" / ident))
        tracker.enter(first)
        try:
            result = run_playbook(project=self.ctx.project, playbook=str(path), inventory=self.inventory,
                                  extravars=common, check=self.check, ident=ident, runs_dir=self.ctx.runs_dir,
                                  envvars={"ROLLBACKCTL_RECORD": "off"}, on_event=tracker.event,
                                  raise_on_failure=False, cancel_callback=cancelled)
        finally:
            path.unlink(missing_ok=True)
        return tracker.finish(result, cancelled)

    def _run_phase(self, phase: phase_table.Phase, cancelled: Cancelled) -> ExitCode:
        record = self.record
        steps = steps_for(phase.name, record)
        record.start_phase(phase.name, [step.playbook for step in steps])
        record.save()
        self.ctx.progress.phase_started(phase)
        results: list[PlaybookResult] = []
        for step in steps:
            result = self._run_step(step, cancelled, phase.name)
            results.append(result)
            if not result.ok:
                break
        artifacts = [r.artifacts_dir for r in results]
        hosts = sorted({h for r in results for h in r.changed_hosts})
        changed = sum(r.changed_count for r in results)
        last = results[-1]
        if cancelled() or last.status == "canceled":
            error = f"interrupted by signal {cancelled.signal or '?'} during {last.playbook}"
            record.finish_phase(phase.name, "interrupted", hosts_changed=hosts, changed=changed, error=error,
                                artifacts=artifacts)
            record.set_outcome("interrupted", f"interrupted in phase {phase.name}",
                               next_step_after_failure(phase.name, record, interrupted=True))
            record.save()
            self.ctx.progress.phase_finished(phase, "interrupted")
            raise RunInterrupted(f"{error}; `rollbackctl resume {record.incident_id}` continues from {phase.name}")
        if not last.ok:
            error = f"{last.playbook} failed: {last.why()}"
            self._after(phase.name, results)
            record.finish_phase(phase.name, "failed", hosts_changed=hosts, changed=changed, error=error,
                                artifacts=artifacts)
            next_step = next_step_after_failure(phase.name, record)
            record.set_outcome("failed", f"stopped in phase {phase.name}: {error}", next_step)
            record.save()
            if phase.name != "preflight" and not self.check:
                self._collect_logs_best_effort(cancelled)
            self.ctx.progress.phase_finished(phase, "FAILED", error)
            return ExitCode.PHASE_FAILED
        self._after(phase.name, results)
        refusal = zero_downtime_refusal(record) if phase.name == "preflight" else None
        if refusal:
            record.finish_phase(phase.name, "failed", hosts_changed=hosts, changed=changed, error=refusal,
                                artifacts=artifacts)
            record.set_outcome("failed", f"stopped in phase {phase.name}: {refusal}",
                               next_step_after_failure(phase.name, record))
            record.save()
            self.ctx.progress.phase_finished(phase, "FAILED", refusal)
            return ExitCode.PHASE_FAILED
        record.finish_phase(phase.name, "ok", hosts_changed=hosts, changed=changed, artifacts=artifacts)
        record.save()
        self.ctx.progress.phase_finished(phase, "ok", f"changed={changed}" + (f" on {', '.join(hosts)}" if hosts
                                                                               else ""))
        return ExitCode.OK

    def _finish(self) -> ExitCode:
        record = self.record
        if self.check:
            changed = sum(p["changed"] for p in record.data["phases"])
            record.set_outcome("succeeded", f"check mode: {changed} change(s) would be made; nothing was changed")
        else:
            record.conclude()
        record.save()
        return ExitCode.OK


class _BatchTracker:
    """Keeps the record phase by phase while one run takes several phases (rollbackctl.batch)."""

    def __init__(self, rollback: Rollback, together: list[tuple[str, str | None]], steps: list[tuple[str, str]],
                 artifacts_dir: str):
        self.rollback = rollback
        self.artifacts_dir = artifacts_dir
        self.together = together
        self.steps = steps
        self.current: str | None = None
        self.events: batch.PhaseEvents = batch.PhaseEvents()
        self.done: list[str] = []

    def _skip_up_to(self, name: str | None) -> None:
        """Record the skipped phases that come before `name` in this run (or all that are left: None)."""
        record, progress = self.rollback.record, self.rollback.ctx.progress
        for other, reason in self.together:
            if other == name:
                return
            if reason is not None and record.phase(other)["status"] not in ("skipped", "ok"):
                record.skip_phase(other, reason)
                progress.phase_skipped(phase_table.get(other), reason)

    def enter(self, name: str) -> None:
        record = self.rollback.record
        self._skip_up_to(name)
        record.start_phase(name, [playbook for phase, playbook in self.steps if phase == name])
        record.save()
        self.rollback.ctx.progress.phase_started(phase_table.get(name))
        self.current, self.events = name, batch.PhaseEvents()

    def _close(self, status: str, error: str | None = None) -> None:
        name, events, record = self.current, self.events, self.rollback.record
        for stats in events.stats:
            record.apply_stats(stats, phase=name)
        hosts = sorted(events.hosts_changed)
        record.finish_phase(name, status, hosts_changed=hosts, changed=events.changed, error=error,
                            artifacts=[self.artifacts_dir])
        record.save()
        if status == "ok":
            self.done.append(name)
            self.rollback.ctx.progress.phase_finished(
                phase_table.get(name), "ok", f"changed={events.changed}" + (f" on {', '.join(hosts)}" if hosts else ""))
            if self.rollback.ctx.on_phase_done:
                self.rollback.ctx.on_phase_done(name, record)

    def event(self, event: dict[str, Any]) -> None:
        self.rollback._event(event)
        step = batch.entered(event)
        if step and step[0] != self.current:
            # The boundary let the run go on: every host came through, the phase is done (a failure a block
            # rescued does not stop it, as in a run of its own).
            self._close("ok")
            self.enter(step[0])
        if step:
            self.events.playbook = step[1]
        batch.fold(self.events, event)

    def finish(self, result: PlaybookResult, cancelled: Cancelled) -> ExitCode:
        rollback, record, name = self.rollback, self.rollback.record, self.current
        phase = phase_table.get(name)
        artifacts = [self.artifacts_dir]
        playbook = self.events.playbook or next(p for n, p in self.steps if n == name)
        if cancelled() or result.status == "canceled":
            error = f"interrupted by signal {cancelled.signal or '?'} during {playbook}"
            record.finish_phase(name, "interrupted", hosts_changed=sorted(self.events.hosts_changed),
                                changed=self.events.changed, error=error, artifacts=artifacts)
            record.set_outcome("interrupted", f"interrupted in phase {name}",
                               next_step_after_failure(name, record, interrupted=True))
            record.save()
            rollback.ctx.progress.phase_finished(phase, "interrupted")
            raise RunInterrupted(f"{error}; `rollbackctl resume {record.incident_id}` continues from {name}")
        if not result.ok:
            error = f"{playbook} failed: {result.why()}"
            self._close("failed", error)
            record.set_outcome("failed", f"stopped in phase {name}: {error}", next_step_after_failure(name, record))
            record.save()
            if not rollback.check:
                rollback._collect_logs_best_effort(cancelled)
            rollback.ctx.progress.phase_finished(phase, "FAILED", error)
            return ExitCode.PHASE_FAILED
        self._close("ok")
        self._skip_up_to(None)
        record.save()
        return ExitCode.OK


def lock_for(state_dir: Path, inventory: Path) -> EnvironmentLock:
    """The lock of the platform `inventory` points at: keyed by the platform itself (`target.identify`), so
    every spelling of one inventory takes the same lock."""
    platform = identify(inventory)
    return EnvironmentLock(state_dir / "locks", platform.description, key=platform.key)
