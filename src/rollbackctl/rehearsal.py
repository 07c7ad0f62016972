"""The plan's Rollback Testing: deploy, let the triggers fire, roll back, compare with the state before.

`rehearse()` runs it on the local sandbox (no inventory) or a staging inventory and returns the
incident record (kind ``rehearsal``) with the differences found; the command line is
`rollbackctl.cli.rehearse`.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import inputs, people, triggers
from .authority import check_authority
from .errors import ExitCode, PlaybookFailed, UsageError
from .orchestrator import Rollback, lock_for
from .paths import check_new_incident, incidents_dir, state_dir
from .procedures import DATABASE_CHOICES, Console, check_version, context, resolve_inventory, say_broken
from .progress import Progress
from .project import find_project
from .receiver import Receiver
from .record import IncidentRecord, make_incident_id
from .roster import load_roster
from .runner import run_playbook
from .sandbox import Sandbox


@dataclass
class RehearsalResult:
    """The exit code, the record (None when the rehearsal stopped before the rollback) and what differs."""

    code: ExitCode
    deployed: str
    record: IncidentRecord | None = None
    differences: list[str] = field(default_factory=list)


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


#: Runtime state whose content a rollback does not bring back on purpose: a database restore keeps the live
#: sessions created after the backup (db_restore_live_sessions: keep, the default), so users who logged in
#: meanwhile stay logged in. The collection must still be there; its content is not compared.
RUNTIME_COLLECTIONS = ("sessions",)


def compare_fingerprints(before: dict, after_restore: dict, final: dict) -> list[str]:
    """What differs between the state before the deployment and after the rollback."""
    differences = []
    for host, version in (before.get("releases") or {}).items():
        now = (final.get("releases") or {}).get(host)
        if now != version:
            differences.append(f"{host}: runs {now}, ran {version} before the deployment")
    for name, digest in (before.get("database") or {}).items():
        got = (after_restore.get("database") or {}).get(name)
        if name in RUNTIME_COLLECTIONS and got is not None:
            continue
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


def rehearse(*, decided_by: str, role: str, consensus: Iterable[str] = (), inventory: str | None = None,
             deploy: str = "v1.0.0", to_version: str = "v0.9.0", database: str = "auto",
             missing: str = triggers.NOT_BREACHING, incident_id: str | None = None, incidents: str | None = None,
             break_lock: bool = False, quiet: bool = False, project: Path | None = None,
             console: Console | None = None) -> RehearsalResult:
    """Rehearse a rollback from `deploy` to `to_version` on the sandbox (`inventory` None) or a staging inventory.

    Returns ERROR when no trigger fired (the rehearsal expects the new release to fail) or when the platform
    did not return to its previous state; otherwise the rollback's own exit code.
    """
    if incident_id is not None:
        inputs.identifier(incident_id, "--incident-id")
    if database not in DATABASE_CHOICES:
        raise UsageError(f"--database: {database!r} is not one of {', '.join(DATABASE_CHOICES)}")
    if missing not in triggers.MISSING_POLICIES:
        raise UsageError(f"--missing: {missing!r} is not one of {', '.join(triggers.MISSING_POLICIES)}")
    project = project or find_project()
    granted = check_authority(decided_by, role, list(consensus))
    local = inventory is None
    inventory_path = resolve_inventory(inventory or "inventories/local", project)
    team = load_roster(inventory_path)  # recorded, as by run (an invalid roster is refused before anything)
    sandbox = Sandbox(project)
    if local:
        sandbox.check_environment()  # $ROLLBACK_SANDBOX_PORT_BASE and $ROLLBACK_SANDBOX_DIR, before provisioning
    bad, stable = check_version(deploy, "--deploy"), check_version(to_version)
    base = incidents_dir(incidents)
    if incident_id is not None:
        check_new_incident(incident_id, base)
    runs_dir = sandbox.runs_dir if local else state_dir() / "runs"
    say = Progress(quiet=quiet)
    if local:
        say.message(f"rehearsal on the local sandbox ({sandbox.directory}): provisioning (idempotent)")
        sandbox.up()
    say.message("1/6 fingerprint of the platform before the deployment (release, database hashes)")
    before = _fingerprint(project, inventory_path, runs_dir)
    running = sorted(set((before.get("releases") or {}).values()), key=str)
    if running != [stable]:
        raise UsageError(f"the platform runs {', '.join(map(str, running)) or 'nothing'}, not the stable {stable}: "
                         "a rehearsal starts from the stable release (roll back first, or recreate the sandbox with "
                         "`rollbackctl sandbox down`)")
    say.message(f"2/6 deploy {bad} the way the plan wants it (backup, test restore, config backup, release)")
    run_playbook(project=project, playbook="deploy.yml", inventory=inventory_path, runs_dir=runs_dir,
                 extravars={"deploy_version": bad}, envvars={"ROLLBACKCTL_RECORD": "off"})
    say.message("3/6 observe the platform and evaluate the plan's rollback triggers")
    observations = _observe(project, inventory_path, runs_dir)
    report = triggers.evaluate(triggers.observations_from_dict(observations, "observe.yml"), missing=missing)
    for line in triggers.format_report(report).splitlines():
        say.message(f"    {line}")
    if not report.fired:
        say.message(f"no rollback trigger fired: {bad} looks healthy; the rehearsal expects it to fail")
        return RehearsalResult(ExitCode.ERROR, bad)
    implied = report.implied
    say.message(f"4/6 decision: {implied.decision or implied.status} (matrix row {implied.row}: {implied.row_text}); "
                "rehearsed with the standard procedure")
    incident_id = incident_id or make_incident_id(stable, kind="rehearsal")
    check_new_incident(incident_id, base)
    after_restore: dict = {}

    def on_phase_done(name: str, _record: IncidentRecord) -> None:
        if name == "verify_db":  # before any verification traffic writes: the data must equal the backup
            after_restore.update(_fingerprint(project, inventory_path, runs_dir))

    lock = lock_for(state_dir(), inventory_path)
    with lock.hold(incident_id, break_stale=break_lock) as holder, _stakeholders(local) as notify_vars:
        say_broken(holder, console or Console(), "broke")
        record = IncidentRecord.create(
            base, incident_id, kind="rehearsal", procedure="standard",
            inventory=str(inventory_path), environment="sandbox" if local else inventory_path.name,
            reason=f"rehearsal: {bad} fails ({', '.join(t.name for t in report.fired)})", to_version=stable,
            authority=granted.to_dict(), database=database, triggers=report.to_dict(), decision=implied.to_dict())
        record.data["rehearsal"] = {"deployed_version": bad, "before": before, "after": None,
                                    "returned_to_previous_state": None, "differences": []}
        people.start(record, team)
        record.save()
        say.message(f"5/6 roll back to {stable} (incident {incident_id})")
        ctx = context(project, quiet=quiet, runs_dir=runs_dir)
        ctx.on_phase_done = on_phase_done
        ctx.break_after = frozenset({"verify_db"})  # the fingerprint runs between verify_db and any traffic
        ctx.extravars = notify_vars
        code = Rollback(record, ctx, inventory=inventory_path).execute()
        say.message("6/6 compare the platform with its state before the deployment")
        final = _fingerprint(project, inventory_path, runs_dir) if code == ExitCode.OK else {}
        differences = compare_fingerprints(before, after_restore or final, final) if code == ExitCode.OK else \
            ["the rollback did not complete"]
        record.data["rehearsal"].update({"after": {"after_restore": after_restore, "final": final},
                                         "returned_to_previous_state": not differences,
                                         "differences": differences})
        record.save()
    if differences:
        code = code or ExitCode.ERROR
    return RehearsalResult(ExitCode(code), bad, record, differences)
