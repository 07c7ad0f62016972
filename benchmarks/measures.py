"""The measures. Each takes a Target (a checkout and its platform: inventory, base URL) and the load's rate,
brings the platform into the state the measure starts from (not timed), then times the operation while the load
generator sends users' requests, and returns a Result.

The fleet reuses them with another Target (inventory, gateway URL)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from . import load
from .procs import Measured
from .stats import Seen, seen
from .target import AUTHORITY, BAD, GOOD, SetupFailed, Target

LEAD, TAIL = 2.0, 3.0  # seconds of load before the operation and after it ends (the tail of its window)
LOAD_BOUND = 900.0  # the load of one measure stops after this many seconds whatever happens


@dataclass
class Result:
    measure: str
    target: str
    ok: bool
    wall: float | None = None
    cpu: float | None = None
    window: float | None = None  # first to last 503 users saw
    failed: int | None = None  # user requests not answered 2xx/3xx
    requests: int | None = None
    forks: int | None = None
    execs: int | None = None
    playbooks: int | None = None
    module_tasks: int | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def under_load(target: Target, rate: float, operation: Callable[[], Measured],
               keep: str | None = None) -> tuple[Measured, Seen]:
    """Run `operation` with the load on (LEAD seconds before, TAIL after); what users saw meanwhile. The request
    log goes to <state dir>/requests/<keep>.jsonl (times on the load's clock; the operation's start and end too)."""
    generator = load.LoadGenerator(target.base_url, target.password(), rate=rate,
                                   max_requests=int(rate * LOAD_BOUND) + 1, max_seconds=LOAD_BOUND)
    with generator:
        time.sleep(LEAD)
        start = generator.now()
        measured = operation()
        end = generator.now()
        time.sleep(TAIL)
    if keep:
        folder = target.state_dir / "requests"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"operation": {"start": start, "end": end, "rate": rate}})]
        lines += [json.dumps(asdict(r)) for r in sorted(generator.log, key=lambda r: r.sent)]
        (folder / f"{keep}.jsonl").write_text("\n".join(lines) + "\n")
    return measured, seen(generator.log, start, end + TAIL)


def _result(name: str, target: Target, measured: Measured, users: Seen, ok: bool, note: str = "") -> Result:
    return Result(name, target.name, ok, measured.wall, measured.cpu, users.window, users.failed, users.requests,
                  measured.forks, measured.execs, note=note,
                  extra={"releases": list(users.releases), "app_errors": users.app_errors, "503s": users.count_503,
                         "failed_by_status": users.failed_by_status,
                         "programs": dict(measured.programs.most_common(10)),
                         "lost_process_events": measured.lost_events})


def _rollback(name: str, target: Target, rate: float, incident: str, database: str | None) -> Result:
    target.stable(f"{incident}-RESET")
    target.deploy_bad(migrate=database != "no")
    args = ["run", "standard", "-i", target.inventory, "--to", GOOD, "--reason", f"bench {name}",
            "--incident-id", incident, *AUTHORITY, *(["--database", database] if database else [])]
    measured, users = under_load(target, rate, lambda: target.rollbackctl(*args), incident)
    record = target.record(incident)
    outcome = (record.get("outcome") or {}).get("status")
    ok = measured.ok and outcome == "succeeded" and target.health().get("version") == GOOD.lstrip("v")
    result = _result(name, target, measured, users, ok,
                     "" if ok else f"exit {measured.rc}, outcome {outcome}: {_why(record, measured)}")
    result.extra["phases"] = {p["name"]: p.get("duration_seconds") for p in record.get("phases", [])
                              if p.get("status") == "ok"}
    result.extra["restored"] = (record.get("database") or {}).get("restore")
    result.__dict__.update(target.playbook_runs(incident))
    return result


def _why(record: dict, measured: Measured) -> str:
    for phase in record.get("phases", []):
        if phase.get("status") == "failed":
            return f"phase {phase['name']}: {str(phase.get('error') or phase.get('note') or '')[:300]}"
    return measured.output[-300:].replace("\n", " ")


def full_rollback(target: Target, rate: float, incident: str) -> Result:
    """(1) The standard rollback with the database restore, after deploy.yml put v1.0.0 (and its migration) live."""
    return _rollback("full", target, rate, incident, None)


def code_only_rollback(target: Target, rate: float, incident: str) -> Result:
    """(2) `run standard --database no` after v1.0.0 was deployed without its migration (a shared schema)."""
    return _rollback("code-only", target, rate, incident, "no")


def app_rollback_playbook(target: Target, rate: float, incident: str) -> Result:
    """(3) playbooks/app_rollback.yml alone (plain ansible-playbook): the switch and reload, nothing around it."""
    target.stable(f"{incident}-RESET")
    target.deploy_bad(migrate=False)
    measured, users = under_load(target, rate, lambda: target.playbook(
        "app_rollback.yml", {"rollback_to": GOOD, "incident_id": incident}), incident)
    served = target.wait_version(GOOD, 30)
    ok = measured.ok and served
    note = "" if ok else f"exit {measured.rc}, /health {'answers' if served else 'does not answer'} {GOOD}: " + \
        measured.output[-300:]
    return _result("app_rollback", target, measured, users, ok, note)


def manual_procedure(target: Target, rate: float, incident: str) -> Result:
    """(4) The plan's literal procedure: `git checkout <tag>`, `npm install`, `npm run build`, `pm2 restart`, in the
    directory the app runs from. The sandbox's releases are packages, not working copies, so (not timed) v1.0.0 runs
    from a git working copy of the sandbox's repository first (current -> releases/.manual-git), as the plan
    assumes; afterwards current points back at releases/v0.9.0."""
    target.stable(f"{incident}-RESET")
    target.deploy_bad(migrate=False)
    root = target.app_root
    work = root / "releases" / ".manual-git"
    repo = target.sandbox_dir / "git" / "chatbot-platform.git"
    shutil.rmtree(work, ignore_errors=True)
    for command, cwd in ((["git", "clone", "--quiet", "--branch", BAD, str(repo), str(work)], root),
                         (["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], work),
                         (["npm", "run", "build"], work)):
        prepared = target.shell(command, cwd, count_processes=False)
        if not prepared.ok:
            raise SetupFailed(f"{target.name}: manual procedure setup {command[:2]} failed:\n{prepared.output}")
    _point_current(root, "releases/.manual-git")
    if not target.pm2("reload", "app", count_processes=False).ok or not target.wait_version(BAD):
        raise SetupFailed(f"{target.name}: v1.0.0 from the working copy did not come up")

    def procedure() -> Measured:
        steps = [target.shell(["git", "checkout", "--quiet", GOOD], work),
                 target.shell(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], work),
                 target.shell(["npm", "run", "build"], work),
                 target.pm2("restart", "app")]
        total = Measured(["manual"], max(s.rc for s in steps), sum(s.wall for s in steps), sum(s.cpu for s in steps),
                         sum(s.forks or 0 for s in steps), sum(s.execs or 0 for s in steps))
        total.output = "\n".join(s.output for s in steps if not s.ok)
        total.extra = {" ".join(s.command[:2]): round(s.wall, 2) for s in steps}
        return total

    try:
        measured, users = under_load(target, rate, procedure, incident)
        ok = measured.ok and target.wait_version(GOOD, 30)
    finally:
        _point_current(root, f"releases/{GOOD}")
        target.pm2("reload", "app", count_processes=False)
        target.wait_version(GOOD)
        shutil.rmtree(work, ignore_errors=True)
    result = _result("manual", target, measured, users, ok, "" if ok else measured.output[-300:])
    result.extra["steps"] = measured.extra
    return result


def _point_current(root, relative: str) -> None:
    temporary = root / "current.bench-tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(relative)
    os.replace(temporary, root / "current")


def essential_work(target: Target, rate: float, incident: str) -> Result:
    """The operations a rollback cannot do without, each timed alone under the same load, on the stable platform:
    the release switch (an atomic link replace), `pm2 reload`, three API probes (login, conversations, messages);
    for a database rollback also a snapshot (every collection read), a restore (every document written: into a
    scratch database, dropped afterwards) and a data check (every collection read and hashed again)."""
    target.stable(f"{incident}-RESET")
    parts: dict[str, float | None] = {}

    def operation() -> Measured:
        root = target.app_root
        started = time.monotonic()
        _point_current(root, os.readlink(root / "current"))
        parts["switch"] = time.monotonic() - started
        reload = target.pm2("reload", "app", count_processes=False)
        parts["pm2 reload"] = reload.wall
        started = time.monotonic()
        password = target.password()
        login = load.call(target.base_url, "POST", "/api/login", {"username": load.USER, "password": password})
        token = login.body.get("token")
        listed = load.call(target.base_url, "GET", "/api/conversations", token=token)
        conversation = (listed.body.get("conversations") or [{}])[0].get("id", "none")
        load.call(target.base_url, "GET", f"/api/conversations/{conversation}/messages?limit=50", token=token)
        parts["3 probes"] = time.monotonic() - started
        parts.update(_database_essentials(target))
        return Measured(["essential"], reload.rc, sum(v for v in parts.values() if v), 0.0)

    measured, users = under_load(target, rate, operation, incident)
    code = sum(parts[k] or 0 for k in ("switch", "pm2 reload", "3 probes"))
    db = [parts.get(k) for k in ("snapshot", "restore", "data check")]
    result = _result("essential", target, measured, users, measured.ok)
    result.extra.update({"parts": parts, "code": code, "full": code + sum(db) if None not in db else None})
    return result


def _database_essentials(target: Target) -> dict[str, float | None]:
    try:
        import pymongo
        from bson.codec_options import CodecOptions
        from bson.raw_bson import RawBSONDocument
    except ImportError:
        return {"snapshot": None, "restore": None, "data check": None}
    password = (target.sandbox_dir / "secrets" / "db-password").read_text().split()[0]
    client = pymongo.MongoClient(f"mongodb://chatbot:{password}@127.0.0.1:{target.port_base + 2}/chatbot-platform",
                                 serverSelectionTimeoutMS=5000, document_class=RawBSONDocument)
    raw = CodecOptions(document_class=RawBSONDocument)
    try:
        db = client.get_default_database()
        names = [n for n in db.list_collection_names() if not n.startswith("system.")]
        started = time.monotonic()
        dump = {n: list(db.get_collection(n, codec_options=raw).find({})) for n in names}
        snapshot = time.monotonic() - started
        scratch = client["bench-scratch"]
        client.drop_database("bench-scratch")
        started = time.monotonic()
        for name, documents in dump.items():
            if documents:
                scratch[name].insert_many(documents, ordered=False)
        restore = time.monotonic() - started
        started = time.monotonic()
        digest = hashlib.sha256()
        for name in names:
            for document in scratch.get_collection(name, codec_options=raw).find({}).sort("_id", 1):
                digest.update(document.raw)
        check = time.monotonic() - started
        client.drop_database("bench-scratch")
        return {"snapshot": snapshot, "restore": restore, "data check": check}
    except pymongo.errors.PyMongoError:
        return {"snapshot": None, "restore": None, "data check": None}
    finally:
        client.close()


MEASURES: dict[str, Callable[[Target, float, str], Result]] = {
    "manual": manual_procedure,
    "app_rollback": app_rollback_playbook,
    "code-only": code_only_rollback,
    "full": full_rollback,
    "essential": essential_work,
}
