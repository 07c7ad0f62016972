"""`rollbackctl run`, `resume` and `rehearse`: authority, lock, record, phases."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

from . import matrix, triggers
from .authority import ROLE_HELP, check_authority
from .errors import PlaybookFailed, UsageError
from .orchestrator import Context, Rollback, lock_for
from .paths import incident_path, incidents_dir, state_dir
from .progress import Progress
from .project import find_project
from .receiver import Receiver
from .record import IncidentRecord, make_incident_id, utcnow
from .runner import run_playbook
from .sandbox import Sandbox

VERSION_RE = re.compile(r"v[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}")

EXIT_CODES = """exit codes:
  0  the rollback completed and verified (or there was nothing to roll back)
  1  error (message on stderr)
  2  usage error: bad option, malformed version, unknown inventory or incident, procedure not available
  3  a phase failed: the run stopped in a safe state (maintenance mode stays on); the next step is printed
  4  refused: the decider has no rollback authority under the plan (nothing was changed)
  5  locked: another rollback holds this environment (its holder is named), or a stale lock must be broken
  130 interrupted (SIGINT/SIGTERM): the phase is recorded as interrupted; `rollbackctl resume` continues
"""


class ProcedureNotAvailable(UsageError):
    """The emergency procedure is not part of this release."""


def _inventory(value: str, project: Path) -> Path:
    path = Path(value)
    if not path.is_absolute() and not path.exists():
        path = project / value
    if not path.exists():
        raise UsageError(f"inventory {value!r} not found (give a path such as inventories/production)")
    return path.resolve()


def _version(value: str) -> str:
    if not VERSION_RE.fullmatch(value or ""):
        raise UsageError(f"--to {value!r} is malformed: expected vMAJOR.MINOR.PATCH, e.g. v0.9.0")
    return value


def _context(project: Path, args: argparse.Namespace, runs_dir: Path | None = None) -> Context:
    runs = runs_dir or state_dir() / "runs"
    return Context(project=project, runs_dir=runs, progress=Progress(quiet=getattr(args, "quiet", False)))


def _print_outcome(record: IncidentRecord) -> None:
    outcome = record.data["outcome"]
    print(f"incident {record.incident_id}: {outcome['status']} - {outcome['summary']}")
    if outcome.get("next_step"):
        print(f"next step: {outcome['next_step']}")
    print(f"record: {record.path / 'incident.json'} (rollbackctl report {record.incident_id})")


def _decision_from_args(args: argparse.Namespace) -> dict | None:
    if not getattr(args, "issue_type", None):
        return None
    estimate = matrix.parse_duration(args.fix_estimate) if args.fix_estimate else None
    return matrix.decide(args.issue_type, args.severity, estimate).to_dict()


def _triggers_from_args(args: argparse.Namespace) -> dict | None:
    path = getattr(args, "triggers_report", None)
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--triggers-report {path}: cannot read a JSON trigger report ({exc})") from exc


def cmd_run(args: argparse.Namespace) -> int:
    if args.procedure == "emergency":
        raise ProcedureNotAvailable(
            "the emergency procedure (isolation, rapid rollback, gradual restoration) is not part of this release; "
            "run `rollbackctl run standard ...` - it restores the release and, when needed, the database")
    project = find_project()
    # Authority first: a refusal changes nothing, not even a record or a lock.
    granted = check_authority(args.decided_by, args.role, args.consensus or [])
    to = _version(args.to)
    inventory = _inventory(args.inventory, project)
    if (args.issue_type is None) != (args.severity is None):
        raise UsageError("--issue-type and --severity go together (the decision-matrix row of this rollback)")
    decision = _decision_from_args(args)
    trigger_report = _triggers_from_args(args)
    incident_id = args.incident_id or make_incident_id(to)
    base = incidents_dir(args.incidents_dir)
    lock = lock_for(state_dir(), inventory)
    with lock.hold(incident_id, break_stale=args.break_lock) as holder:
        if holder.broke:
            print(f"rollbackctl: broke the stale lock of {holder.broke.describe()}", file=sys.stderr)
        record = IncidentRecord.create(
            base, incident_id, mode="check" if args.check else "run", procedure=args.procedure,
            inventory=str(inventory), environment=inventory.name, reason=args.reason, to_version=to,
            authority=granted.to_dict(), database=args.database, triggers=trigger_report, decision=decision)
        if args.backup:
            record.data["database"]["backup_name"] = args.backup
        print(f"incident {incident_id}: rolling back {inventory.name} to {to} "
              f"(decided by {granted.decided_by}, {granted.basis}); record in {record.path}", flush=True)
        code = Rollback(record, _context(project, args), inventory=inventory, check=args.check).execute()
    _print_outcome(record)
    return code


def cmd_resume(args: argparse.Namespace) -> int:
    project = find_project()
    path = incident_path(args.incident_id, args.incidents_dir)
    record = IncidentRecord.load(path)
    data = record.data
    if data["outcome"]["status"] in ("succeeded", "nothing_to_do"):
        print(f"incident {record.incident_id} already completed ({data['outcome']['summary']}); nothing to resume")
        return 0
    inventory = Path(data["environment"]["inventory"])
    if not inventory.exists():
        raise UsageError(f"the incident's inventory {inventory} no longer exists")
    lock = lock_for(state_dir(), inventory)
    with lock.hold(record.incident_id, take_over_from=record.incident_id, break_stale=args.break_lock) as holder:
        if holder.broke:
            print(f"rollbackctl: took over the lock of {holder.broke.describe()}", file=sys.stderr)
        died = record.interrupt_running(f"the run died (lock holder {holder.broke.describe()})" if holder.broke
                                        else "the run stopped without recording an end")
        if died:
            print(f"rollbackctl: phase {', '.join(died)} was interrupted; running it again", file=sys.stderr)
        follow = record.next_phase()
        print(f"incident {record.incident_id}: resuming at phase {follow}", flush=True)
        record.data["follow_up"]["notes"] = ((record.data["follow_up"]["notes"] or "") +
                                             f"resumed at {utcnow()} from phase {follow}. ").strip() + " "
        code = Rollback(record, _context(project, args), inventory=inventory,
                        check=data["mode"] == "check").execute()
    _print_outcome(record)
    return code


# --- rehearse ------------------------------------------------------------------------------------


def _fingerprint(project: Path, inventory: Path, runs_dir: Path) -> dict:
    result = run_playbook(project=project, playbook="fingerprint.yml", inventory=inventory, runs_dir=runs_dir,
                          envvars={"ROLLBACKCTL_RECORD": "off"})
    return result.custom_stats.get("fingerprint") or {}


def _observe(project: Path, inventory: Path, runs_dir: Path) -> dict:
    result = run_playbook(project=project, playbook="observe.yml", inventory=inventory, runs_dir=runs_dir,
                          envvars={"ROLLBACKCTL_RECORD": "off"})
    observations = result.custom_stats.get("observations")
    if not observations:
        raise PlaybookFailed("observe.yml published no observations", result)
    return observations


def compare_fingerprints(before: dict, after_restore: dict, final: dict) -> list[str]:
    """What differs between the state before the deployment and after the rollback."""
    differences = []
    for host, version in (before.get("releases") or {}).items():
        now = (final.get("releases") or {}).get(host)
        if now != version:
            differences.append(f"{host}: runs {now}, ran {version} before the deployment")
    for name, digest in (before.get("database") or {}).items():
        got = (after_restore.get("database") or {}).get(name)
        if got != digest:
            differences.append(f"collection {name}: content {str(got)[:12]} after the restore, "
                               f"{str(digest)[:12]} before the deployment")
    for name in sorted(set(after_restore.get("database") or {}) - set(before.get("database") or {})):
        differences.append(f"collection {name}: exists after the rollback, not before the deployment")
    return differences


@contextlib.contextmanager
def _stakeholders(local: bool) -> Iterator[dict[str, str]]:
    """On the sandbox, a local receiver stands in for the team's chat webhook and the status page, so that the
    rehearsal's communication is exercised; a staging inventory uses its own channels."""
    if not local:
        yield {}
        return
    key = secrets.token_hex(16)
    with Receiver(api_key=key) as receiver:
        yield {"chatbot_notify_webhook_url": f"{receiver.url}/webhook/rehearsal",
               "chatbot_statuspage_api": receiver.url, "chatbot_statuspage_page_id": "rehearsal",
               "chatbot_statuspage_api_key": key}


def cmd_rehearse(args: argparse.Namespace) -> int:
    project = find_project()
    granted = check_authority(args.decided_by, args.role, args.consensus or [])
    local = args.inventory is None
    inventory = _inventory(args.inventory or "inventories/local", project)
    sandbox = Sandbox(project)
    runs_dir = sandbox.runs_dir if local else state_dir() / "runs"
    bad, stable = _version(args.deploy), _version(args.to)
    say = Progress(quiet=args.quiet)
    if local:
        say.message(f"rehearsal on the local sandbox ({sandbox.directory}): provisioning (idempotent)")
        sandbox.up()
    say.message("1/6 fingerprint of the platform before the deployment (release, database hashes)")
    before = _fingerprint(project, inventory, runs_dir)
    running = sorted(set((before.get("releases") or {}).values()), key=str)
    if running != [stable]:
        raise UsageError(f"the platform runs {', '.join(map(str, running)) or 'nothing'}, not the stable {stable}: "
                         "a rehearsal starts from the stable release (roll back first, or recreate the sandbox with "
                         "`rollbackctl sandbox down`)")
    say.message(f"2/6 deploy {bad} the way the plan wants it (backup, test restore, config backup, release)")
    run_playbook(project=project, playbook="deploy.yml", inventory=inventory, runs_dir=runs_dir,
                 extravars={"deploy_version": bad}, envvars={"ROLLBACKCTL_RECORD": "off"})
    say.message("3/6 observe the platform and evaluate the plan's rollback triggers")
    observations = _observe(project, inventory, runs_dir)
    report = triggers.evaluate(triggers.observations_from_dict(observations, "observe.yml"), missing=args.missing)
    for line in triggers.format_report(report).splitlines():
        say.message(f"    {line}")
    if not report.fired:
        say.message(f"no rollback trigger fired: {bad} looks healthy; the rehearsal expects it to fail")
        return 1
    implied = report.implied
    say.message(f"4/6 decision: {implied.decision or implied.status} (matrix row {implied.row}: {implied.row_text}); "
                "rehearsed with the standard procedure")
    incident_id = args.incident_id or make_incident_id(stable, kind="rehearsal")
    base = incidents_dir(args.incidents_dir)
    lock = lock_for(state_dir(), inventory)
    after_restore: dict = {}

    def on_phase_done(name: str, _record: IncidentRecord) -> None:
        if name == "verify_db":  # before any verification traffic writes: the data must equal the backup
            after_restore.update(_fingerprint(project, inventory, runs_dir))

    with lock.hold(incident_id, break_stale=args.break_lock), _stakeholders(local) as notify_vars:
        record = IncidentRecord.create(
            base, incident_id, kind="rehearsal", procedure="standard", inventory=str(inventory),
            environment="sandbox" if local else inventory.name,
            reason=f"rehearsal: {bad} fails ({', '.join(t.name for t in report.fired)})", to_version=stable,
            authority=granted.to_dict(), database=args.database, triggers=report.to_dict(),
            decision=implied.to_dict())
        record.data["rehearsal"] = {"deployed_version": bad, "before": before, "after": None,
                                    "returned_to_previous_state": None, "differences": []}
        record.save()
        say.message(f"5/6 roll back to {stable} (incident {incident_id})")
        ctx = _context(project, args, runs_dir)
        ctx.on_phase_done = on_phase_done
        ctx.extravars = notify_vars
        code = Rollback(record, ctx, inventory=inventory).execute()
        say.message("6/6 compare the platform with its state before the deployment")
        final = _fingerprint(project, inventory, runs_dir) if code == 0 else {}
        differences = compare_fingerprints(before, after_restore or final, final) if code == 0 else \
            ["the rollback did not complete"]
        record.data["rehearsal"].update({"after": {"after_restore": after_restore, "final": final},
                                         "returned_to_previous_state": not differences,
                                         "differences": differences})
        record.save()
    _print_outcome(record)
    if differences:
        for line in differences:
            print(f"difference: {line}")
        return code or 1
    print(f"the platform returned to its state before {bad}: releases and database content hashes match")
    print(f"rehearsal report (every phase against Appendix C): {record.path / 'incident.md'}")
    return code


# --- parsers -------------------------------------------------------------------------------------

def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "rehearsal"


def _authority_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--decided-by", required=required, default=None if required else _whoami(),
                        metavar="NAME", help="who decided the rollback")
    parser.add_argument("--role", required=required, default=None if required else "lead-devops-engineer",
                        help=f"the decider's role. {ROLE_HELP}")
    parser.add_argument("--consensus", action="append", metavar="NAME:ROLE",
                        help="a senior engineer agreeing (repeat): two distinct seniors may decide without the "
                             "Lead DevOps Engineer, the TPM or the CTO")


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--incidents-dir", metavar="DIR",
                        help="where incident records go (default $ROLLBACKCTL_INCIDENTS_DIR, else incidents/)")
    parser.add_argument("--break-lock", action="store_true",
                        help="take over a stale lock (its holder is gone) or one held from another host")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def add_run_parsers(sub) -> None:
    run = sub.add_parser(
        "run", help="roll back: authority, lock, phases through ansible-runner, incident record",
        description=(
            "Run the plan's rollback procedure phase by phase (preflight, announce, maintenance on, code rollback, "
            "verify app, database rollback if necessary, verify database, verify and maintenance off, post-rollback "
            "verification, notify, collect logs) and write the incident record. The database is restored when "
            "preflight finds that the target needs an older schema, or with --database yes. "
            "Lock and state: $ROLLBACKCTL_STATE_DIR (default ~/.local/state/rollbackctl)."),
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("procedure", choices=["standard", "emergency"],
                     help="standard: the plan's Standard Rollback Procedure (emergency: not in this release)")
    run.add_argument("-i", "--inventory", required=True, help="inventory of the environment to roll back")
    run.add_argument("--to", required=True, metavar="VERSION", help="release to roll back to, e.g. v0.9.0")
    run.add_argument("--reason", required=True, help="why (goes into the announcement and the record)")
    _authority_options(run)
    run.add_argument("--database", choices=["auto", "yes", "no"], default="auto",
                     help="auto (default): restore when the target needs an older schema; yes: restore; no: never")
    run.add_argument("--backup", metavar="NAME", help="backup to restore (default pre-deploy-<current release>)")
    run.add_argument("--incident-id", metavar="ID", help="default <UTC timestamp>-rollback-<version>")
    run.add_argument("--issue-type", choices=matrix.ISSUE_TYPES, help="record the matrix row (with --severity)")
    run.add_argument("--severity", choices=matrix.SEVERITIES, help="with --issue-type")
    run.add_argument("--fix-estimate", metavar="DURATION", help="e.g. 90m, 2h (for the matrix row)")
    run.add_argument("--triggers-report", metavar="FILE", help="JSON of `rollbackctl triggers --json` to record")
    run.add_argument("--check", action="store_true", help="check mode: report what would change, change nothing")
    _common_options(run)
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser(
        "resume", help="continue a stopped or interrupted rollback from its failed phase",
        description="Continue the incident's rollback from the first phase that is not done, with the same inputs. "
                    "A phase interrupted mid-way runs again (phases are idempotent). The lock of a run that died is "
                    "taken over.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    resume.add_argument("incident_id", metavar="INCIDENT_ID")
    _common_options(resume)
    resume.set_defaults(func=cmd_resume)

    rehearse = sub.add_parser(
        "rehearse", help="the plan's Rollback Testing on the sandbox (default) or a staging inventory",
        description=(
            "Deploy the new release with its backup, observe the platform and let the rollback triggers fire, "
            "decide with the matrix, run the standard rollback, check that the platform returned to its previous "
            "state (releases, database content hashes) and write the record and a rehearsal report comparing "
            "every phase with Appendix C. Without -i it provisions and uses the local sandbox."),
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    rehearse.add_argument("-i", "--inventory", help="a staging inventory (default: the local sandbox)")
    rehearse.add_argument("--deploy", default="v1.0.0", metavar="VERSION", help="the new release (default v1.0.0)")
    rehearse.add_argument("--to", default="v0.9.0", metavar="VERSION", help="the stable release (default v0.9.0)")
    rehearse.add_argument("--database", choices=["auto", "yes", "no"], default="auto")
    rehearse.add_argument("--missing", choices=["breaching", "not_breaching", "fail"], default="not_breaching",
                          help="missing-data policy for the triggers (default not_breaching: the sandbox does not "
                               "export every metric)")
    rehearse.add_argument("--incident-id", metavar="ID")
    _authority_options(rehearse, required=False)
    _common_options(rehearse)
    rehearse.set_defaults(func=cmd_rehearse)
