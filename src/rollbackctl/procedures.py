"""The rollback procedures as a Python API: run one (`run_rollback`) or continue one (`resume_rollback`).

Both take explicit keyword arguments, hold the environment's lock for the whole run, keep the incident
record and return it with the exit code (`ExitCode`). What they refuse, they refuse before changing
anything: no authority (AuthorityRefused), a malformed version or an unknown inventory (UsageError),
a held or stale lock (LockHeld). The command line (`rollbackctl.cli.run`, `.resume`) only parses the
options and prints the outcome.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import inputs, matrix, monitoring_data, people, retry
from .authority import check_authority
from .errors import ExitCode, IncidentNotFound, ProcedureNotAvailable, RecordInvalid, UsageError
from .inputs import DATABASE_CHOICES, PROCEDURES, VERSION_RE, check_version, version_arg  # noqa: F401 - API
from .lock import LockHolder
from .orchestrator import Context, Rollback, lock_for
from .paths import check_new_incident, incident_path, incidents_dir, state_dir
from .progress import Progress
from .project import find_project
from .record import IncidentRecord, make_incident_id, schema_problems
from .roster import check_decision_authority, load_roster
from .times import utcnow


class Console:
    """Where a procedure's messages go: `info` on stdout, `warn` (``rollbackctl: ...``) on stderr."""

    def info(self, text: str) -> None:
        print(text, flush=True)

    def warn(self, text: str) -> None:
        print(f"rollbackctl: {text}", file=sys.stderr, flush=True)


@dataclass
class Outcome:
    """What a procedure returns: the exit code, the incident record, and whether phases ran at all."""

    code: ExitCode
    record: IncidentRecord
    ran: bool = True


def resolve_inventory(value: str, project: Path, option: str = "-i/--inventory") -> Path:
    """The inventory path (as given, else relative to the project); UsageError when it does not exist."""
    inputs.plain_value(value, option, what="an inventory path such as inventories/production")
    try:
        path = Path(value)
        if not path.is_absolute() and not path.exists():
            path = project / value
        if not path.exists():
            raise UsageError(f"inventory {value!r} not found (give a path such as inventories/production)")
        return path.resolve()
    except OSError as exc:
        raise UsageError(f"{option}: inventory {value!r}: {exc.strerror or exc}") from None


def decision_row(issue_type: str | None, severity: str | None, fix_estimate: str | None) -> dict | None:
    """The decision-matrix answer to record for the rollback (None when no row was given)."""
    if (issue_type is None) != (severity is None):
        raise UsageError("--issue-type and --severity go together (the decision-matrix row of this rollback)")
    if fix_estimate is not None and not issue_type:
        raise UsageError("--fix-estimate: needs --issue-type and --severity (the estimate decides a matrix row)")
    if not issue_type:
        return None
    estimate = inputs.duration(fix_estimate, "--fix-estimate", positive=False) if fix_estimate is not None else None
    return matrix.decide(issue_type, severity, estimate).to_dict()


def read_trigger_report(path: str | None) -> dict | None:
    """A `rollbackctl triggers --json` report to record (None when no file was given)."""
    if path is None:
        return None
    where = f"--triggers-report {str(path)[:200]}"
    report = inputs.load_document(path, where, yaml_ok=False)
    if not isinstance(report.get("fired"), list):
        raise UsageError(f"{where}: not a trigger report (no 'fired' list); write it with `rollbackctl triggers "
                         "--json`")
    return report


#: Set to 1, every phase runs in an ansible-playbook of its own (slower; for debugging a phase in isolation).
PHASE_BY_PHASE_ENV = "ROLLBACKCTL_PHASE_BY_PHASE"


def context(project: Path, *, quiet: bool = False, runs_dir: Path | None = None) -> Context:
    """The orchestrator's context: the project, ansible-runner's folder, the progress display."""
    return Context(project=project, runs_dir=runs_dir or state_dir() / "runs", progress=Progress(quiet=quiet),
                   batch=os.environ.get(PHASE_BY_PHASE_ENV, "") not in ("1", "true", "yes"))


def zero_downtime_departure(chosen_by: str) -> dict[str, str]:
    """The record's note of a zero-downtime rollback: which step of the plan is left out, and why that is safe."""
    return {"id": "zero_downtime", "step": "step 2 (Enable Maintenance Mode) and its undoing in step 7",
            "what": "no maintenance window: users keep being served while pm2 reloads the cluster onto the target "
                    "release; the application and full verifications run on the live target",
            "why": "code-only rollback (the target shares the database schema, so nothing is restored) whose "
                   "switch is a pm2 cluster reload",
            "chosen_by": chosen_by, "at": utcnow()}


def run_rollback(*, inventory: str, to_version: str, reason: str, decided_by: str, role: str,
                 consensus: Iterable[str] = (), procedure: str = "standard", database: str = "auto",
                 backup: str | None = None, incident_id: str | None = None, incidents: str | None = None,
                 issue_type: str | None = None, severity: str | None = None, fix_estimate: str | None = None,
                 triggers_report: str | None = None, check: bool = False, break_lock: bool = False,
                 quiet: bool = False, project: Path | None = None, console: Console | None = None,
                 zero_downtime: bool = False, roster: str | None = None, ack_timeout: float = 0,
                 retry_estimate: str | None = None, tickets: Mapping[str, Any] | None = None) -> Outcome:
    """Run the plan's standard rollback of `inventory` to `to_version` under decision authority.

    Authority is checked first: a refusal changes nothing, not even a record or a lock. Then the
    inputs, then the lock (LockHeld naming the holder), then the record and the phases.
    `zero_downtime` leaves the plan's maintenance window out (recorded as a departure); preflight refuses it
    when the database must be restored. The roster (`roster` file, else the inventory's ``rollback_roster``)
    is recorded, and holds the decision to its decision authority when it lists one; `ack_timeout` waits that
    many seconds after the announcement for everyone in it to acknowledge (`people`); `retry_estimate` is the
    retry timeline (`retry`); `tickets` opens one ticket per cause after the rollback (`tickets`).
    """
    console = console or Console()
    if procedure == "emergency":
        raise ProcedureNotAvailable(
            "the emergency procedure (isolation, rapid rollback, gradual restoration) is not part of this release; "
            "run `rollbackctl run standard ...` - it restores the release and, when needed, the database")
    reason = inputs.free_text(reason, "--reason", purpose="say why the release is rolled back")
    if incident_id is not None:
        inputs.identifier(incident_id, "--incident-id")
    if backup is not None:
        inputs.identifier(backup, "--backup")
    if database not in DATABASE_CHOICES:
        raise UsageError(f"--database: {database!r} is not one of {', '.join(DATABASE_CHOICES)}")
    if zero_downtime and database == "yes":
        raise UsageError("--zero-downtime with --database yes: a database restore needs the plan's maintenance "
                         "window (stop writes, restore, verify, reopen); use --database auto or no, or leave "
                         "--zero-downtime out")
    project = project or find_project()
    granted = check_authority(decided_by, role, list(consensus))
    to = check_version(to_version)
    path = resolve_inventory(inventory, project)
    team = load_roster(path, roster)
    granted = check_decision_authority(team, granted)
    ack_timeout = people.check_ack_timeout(ack_timeout)
    if ack_timeout and team is None:
        console.warn("--ack-timeout: the inventory has no rollback_roster (and no --roster was given): nobody to wait "
                     "for, the run does not wait")
    retry_given = retry.check_estimate(retry_estimate)
    decision = decision_row(issue_type, severity, fix_estimate)
    trigger_report = read_trigger_report(triggers_report)
    incident_id = incident_id or make_incident_id(to)
    base = incidents_dir(incidents)
    check_new_incident(incident_id, base)
    state_dir()  # a state folder that is a file is refused here, before the lock
    with lock_for(state_dir(), path).hold(incident_id, break_stale=break_lock) as holder:
        say_broken(holder, console, "broke")
        record = IncidentRecord.create(
            base, incident_id, mode="check" if check else "run", procedure=procedure, inventory=str(path),
            environment=path.name, reason=reason, to_version=to, authority=granted.to_dict(), database=database,
            triggers=trigger_report, decision=decision,
            departures=[zero_downtime_departure(granted.decided_by)] if zero_downtime else ())
        if backup:
            record.data["database"]["backup_name"] = backup
        people.start(record, team)
        retry.start(record, retry_given)
        console.info(f"incident {incident_id}: rolling back {path.name} to {to} "
                     f"(decided by {granted.decided_by}, {granted.basis}); record in {record.path}")
        ctx = context(project, quiet=quiet)
        ctx.on_phase_done = people.waiter(ack_timeout, console)
        if ctx.on_phase_done:  # the wait sits between announce and maintenance: a run of several phases ends there
            ctx.break_after = ctx.break_after | {"announce"}
        code = Rollback(record, ctx, inventory=path, check=check).execute()
        follow_up(record, tickets, console, check=check)
    return Outcome(code, record)


def follow_up(record: IncidentRecord, tickets: Mapping[str, Any] | None, console: Console, *,
              check: bool = False) -> None:
    """After the run: the retry plan from what the run showed, the monitoring data around the failure (the
    triggers' observations, Prometheus range queries when the trigger report came from one), then (never fatal)
    the tickets."""
    retry.conclude(record)
    monitoring_data.attach(record)
    record.save()
    if tickets and not check and record.data["outcome"]["status"] == "succeeded":
        from .tickets import file_tickets

        file_tickets(record, console=console, **tickets)


def resume_rollback(*, incident_id: str, incidents: str | None = None, break_lock: bool = False,
                    quiet: bool = False, project: Path | None = None, console: Console | None = None,
                    tickets: Mapping[str, Any] | None = None) -> Outcome:
    """Continue an incident's rollback from its first phase not done, with the same inputs.

    The stale lock of the incident's own dead run is taken over; a phase left `running` is marked
    interrupted and runs again. A completed incident is left alone (OK).
    """
    console = console or Console()
    inputs.identifier(incident_id, "INCIDENT_ID", error=IncidentNotFound)
    project = project or find_project()
    record = IncidentRecord.load(incident_path(incident_id, incidents))
    problems = schema_problems(record.data)  # before the record is used, before the lock
    if problems:
        raise RecordInvalid(f"cannot resume {incident_id}: its record {record.path / 'incident.json'} does not match "
                            f"the incident schema ({'; '.join(problems[:3])}); nothing was run")
    data = record.data
    if data["outcome"]["status"] in ("succeeded", "nothing_to_do"):
        console.info(f"incident {record.incident_id} already completed ({data['outcome']['summary']}); "
                     "nothing to resume")
        if tickets:  # tickets asked for after the rollback: opened once (found again by their marker)
            follow_up(record, tickets, console, check=data["mode"] == "check")
        return Outcome(ExitCode.OK, record, ran=False)
    inventory = Path(data["environment"]["inventory"])
    if not inventory.exists():
        raise UsageError(f"cannot resume {incident_id}: the incident's inventory {inventory} no longer exists")
    if data["incident_id"] != record.path.name:
        raise RecordInvalid(f"cannot resume {incident_id}: its record names incident {data['incident_id']!r}, not "
                            "the folder it is in; nothing was run")
    lock = lock_for(state_dir(), inventory)
    with lock.hold(record.incident_id, take_over_from=record.incident_id, break_stale=break_lock) as holder:
        say_broken(holder, console, "took over")
        died = record.interrupt_running(f"the run died (lock holder {holder.broke.describe()})" if holder.broke
                                        else "the run stopped without recording an end")
        if died:
            console.warn(f"phase {', '.join(died)} was interrupted; running it again")
        follow = record.next_phase()
        console.info(f"incident {record.incident_id}: resuming at phase {follow}")
        record.data["follow_up"]["notes"] = ((record.data["follow_up"]["notes"] or "") +
                                             f"resumed at {utcnow()} from phase {follow}. ").strip() + " "
        code = Rollback(record, context(project, quiet=quiet), inventory=inventory,
                        check=data["mode"] == "check").execute()
        follow_up(record, tickets, console, check=data["mode"] == "check")
    return Outcome(code, record)


def say_broken(holder: LockHolder, console: Console, verb: str) -> None:
    """Say which lock this run replaced: a dead holder's (named), or an unusable lock file."""
    if holder.broke:
        console.warn(f"{verb} the stale lock of {holder.broke.describe()}")
    elif holder.broke_reason:
        console.warn(f"{verb} an unusable lock ({holder.broke_reason})")
