"""Authenticated request latency through nginx as sessions accumulate: one platform against another.

    PYTHONPATH=$PWD/src python benchmarks/bench_sessions.py --baseline /work/base-platform

Each side is a real sandbox (nginx, pm2, FerretDB) brought up by the toolkit's own provisioning
(rollbackctl.sandbox.Sandbox, the code the tests use), with that side's fixture app: the first side
(`old`) runs the app of the --baseline checkout, the others (`new`, `new2`, ...: one per --ferretdb
binary) this checkout's. All run at the same time on this machine, measured in alternating rounds, so
that all see the same load.

At each session count the sessions collection of each side is filled (pymongo, straight into
FerretDB) up to that many documents, built like the sessions that side's app writes (the shape is
copied from a session a real login just made); then the benchmark logs in again (the newest session,
stored after the others, as on a busy platform) and every round times, one after the other on each
side: GET /api/conversations, GET /api/conversations/:id/messages?limit=20 and POST /api/login.
The Markdown table gives p50 / p95 per side and old/new ratios (above 1: the new side is faster).
Each timed login adds a session, so a count is "at least": up to --rounds more than it says.

Ports: side i takes $ROLLBACK_SANDBOX_PORT_BASE + 10*i (and the two ports after it); directories:
$ROLLBACK_SANDBOX_DIR-<label>. The sandboxes are torn down at the end unless --keep. A kept sandbox is
reused by the next run (provisioning is idempotent), but its fixture repository is built once: after
a change to the fixture app, run without --keep or remove the directory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rollbackctl.paths import INCIDENTS_ENV, STATE_ENV
from rollbackctl.project import find_project
from rollbackctl.sandbox import DIR_ENV, PORT_ENV, Sandbox

try:
    import pymongo
    from bson import ObjectId
except ImportError:  # pragma: no cover - the toolkit's tests need it as well
    sys.exit("bench_sessions: pymongo is required (pip install pymongo)")

PROJECT = find_project(Path(__file__).resolve().parent)
FIXTURE = "fixtures/chatbot-platform"
REQUESTS = ("GET /api/conversations", "GET /api/conversations/:id/messages", "POST /api/login")


@dataclass
class Side:
    label: str
    fixture: Path
    ferretdb: str
    directory: Path
    port_base: int
    env: dict[str, str] = field(default_factory=dict)
    token: str = ""
    conversation: str = ""
    user: str = "synthetic-monitor"
    password: str = ""
    samples: dict[tuple[int, str], list[float]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port_base}"


@contextmanager
def environment(values: dict[str, str]):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def provision(side: Side) -> None:
    side.env = {DIR_ENV: str(side.directory), PORT_ENV: str(side.port_base),
                INCIDENTS_ENV: str(side.directory.with_name(side.directory.name + "-incidents")),
                STATE_ENV: str(side.directory.with_name(side.directory.name + "-state"))}
    extravars = {"chatbot_fixture_source": str(side.fixture), "ferretdb_server_binary": side.ferretdb}
    t0 = time.monotonic()
    with environment(side.env):
        result = Sandbox(PROJECT).up(extravars=extravars, raise_on_failure=False)
    if not result.ok:
        raise SystemExit(f"bench_sessions: provisioning {side.label} failed: {result.failures[:1]}")
    print(f"# {side.label}: sandbox up in {time.monotonic() - t0:.0f} s at {side.url} ({side.directory})",
          file=sys.stderr, flush=True)
    side.password = (side.directory / "secrets" / "synthetic-password").read_text().split()[0]


def teardown(side: Side) -> None:
    with environment(side.env):
        sandbox = Sandbox(PROJECT)
        if sandbox.directory.exists():
            sandbox.down(raise_on_failure=False)
        leftovers = (sandbox.directory, sandbox.runs_dir, Path(side.env[INCIDENTS_ENV]), Path(side.env[STATE_ENV]))
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)


def database(side: Side):
    password = (side.directory / "secrets" / "db-password").read_text().split()[0]
    client = pymongo.MongoClient(f"mongodb://chatbot:{password}@127.0.0.1:{side.port_base + 2}/chatbot-platform",
                                 serverSelectionTimeoutMS=5000)
    return client, client.get_default_database()


def request(side: Side, method: str, path: str, payload: dict | None = None, token: str | None = None):
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(side.url + path, data=data, method=method)  # noqa: S310 - http, loopback
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as response:  # noqa: S310 - loopback sandbox
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return (time.perf_counter() - t0) * 1000, status, body


def login(side: Side) -> str:
    _, status, body = request(side, "POST", "/api/login", {"username": side.user, "password": side.password})
    if status != 200:
        raise SystemExit(f"bench_sessions: {side.label}: login answered {status}: {body[:200]!r}")
    return json.loads(body)["token"]


def prepare(side: Side) -> None:
    """Log in, find the synthetic user's conversation, and keep only this login's session."""
    side.token = login(side)
    _, status, body = request(side, "GET", "/api/conversations", token=side.token)
    conversations = json.loads(body)["conversations"] if status == 200 else []
    if not conversations:
        raise SystemExit(f"bench_sessions: {side.label}: no conversation to list messages of ({status})")
    side.conversation = conversations[0]["id"]


def template_session(db, token: str) -> dict:
    """The session the app wrote for `token`: every seeded session copies its shape."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    found = db.sessions.find_one({"token_hash": digest})
    if found is None:
        raise SystemExit("bench_sessions: the app's session for the benchmark login was not found")
    return found


def clear_sessions(db, keep: dict) -> None:
    """Delete every session but `keep`, a thousand at a time (FerretDB's SQLite backend fails a delete
    of more than about 32k documents at once: "too many SQL variables")."""
    while True:
        ids = [d["_id"] for d in db.sessions.find({"_id": {"$ne": keep["_id"]}}, {"_id": 1}).limit(1000)]
        if not ids:
            return
        db.sessions.delete_many({"_id": {"$in": ids}})


def fill_sessions(db, template: dict, target: int) -> float:
    """Add sessions until the collection holds `target`, shaped like `template`; seconds taken."""
    keyed_by_hash = template["_id"] == template["token_hash"]
    users = [u["_id"] for u in db.users.find({}, {"_id": 1})]
    have = db.sessions.count_documents({})
    t0 = time.monotonic()
    batch = []
    for i in range(have, target):
        digest = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
        doc = {**template, "_id": digest if keyed_by_hash else ObjectId(), "token_hash": digest,
               "user_id": users[i % len(users)]}
        batch.append(doc)
        if len(batch) == 1000:
            db.sessions.insert_many(batch, ordered=False)
            batch = []
    if batch:
        db.sessions.insert_many(batch, ordered=False)
    return time.monotonic() - t0


def measure_round(side: Side, count: int) -> None:
    paths = {
        REQUESTS[0]: ("GET", "/api/conversations", None),
        REQUESTS[1]: ("GET", f"/api/conversations/{side.conversation}/messages?limit=20", None),
        REQUESTS[2]: ("POST", "/api/login", {"username": side.user, "password": side.password}),
    }
    for name, (method, path, payload) in paths.items():
        ms, status, body = request(side, method, path, payload, None if payload else side.token)
        if status != 200:
            raise SystemExit(f"bench_sessions: {side.label}: {name} answered {status}: {body[:200]!r}")
        side.samples.setdefault((count, name), []).append(ms)


def measure_counts(sides: list[Side], dbs: list, templates: list[dict], counts: list[int], rounds: int) -> None:
    """At each count: fill every side's sessions up to it, log in anew, time `rounds` alternating rounds."""
    for count in counts:
        for side, db, template in zip(sides, dbs, templates, strict=True):
            seconds = fill_sessions(db, template, count)
            print(f"# {side.label}: {db.sessions.count_documents({})} sessions ({seconds:.1f} s to add)",
                  file=sys.stderr, flush=True)
        for side in sides:
            # A login now: its session is the newest, stored after all the others (as a user who
            # logs in on a busy platform); a lookup that scans finds it last.
            side.token = login(side)
            measure_round(side, -1)  # warm-up
        for _ in range(rounds):
            for side in sides:
                measure_round(side, count)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def ferretdb_label(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError as exc:
        return f"{binary}: {exc}"
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return f"{fields.get('version', '?')} ({fields.get('package', '?')})"


def table(sides: list[Side], counts: list[int]) -> str:
    base, other = sides[0], sides[1:]
    head = ["sessions", "request"] + [f"{s.label} p50 / p95 ms" for s in sides]
    head += [f"{base.label}/{s.label} p50" for s in other] + [f"{base.label}/{s.label} p95" for s in other]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for count in counts:
        for name in REQUESTS:
            stats = [(statistics.median(s.samples[count, name]), percentile(s.samples[count, name], 0.95))
                     for s in sides]
            row = [f"{count:,}", f"`{name}`"] + [f"{p50:.1f} / {p95:.1f}" for p50, p95 in stats]
            row += [f"{stats[0][0] / st[0]:.1f}x" for st in stats[1:]]
            row += [f"{stats[0][1] / st[1]:.1f}x" for st in stats[1:]]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True,
                        help="checkout whose fixture app is the old side (e.g. a worktree of 6cd0e2b)")
    parser.add_argument("--counts", default="0,1000,10000,50000", help="session counts (ascending)")
    parser.add_argument("--rounds", type=int, default=20, help="requests of each kind per side and count")
    parser.add_argument("--ferretdb", action="append", default=[],
                        help="FerretDB binary of a new side (repeat for one new side per binary; "
                             "default: the ferretdb on PATH)")
    parser.add_argument("--baseline-ferretdb", default=None,
                        help="FerretDB binary of the old side (default: the first --ferretdb)")
    parser.add_argument("--keep", action="store_true", help="leave the sandboxes up")
    args = parser.parse_args(argv)

    counts = sorted({int(c) for c in args.counts.split(",")})
    root = Path(os.environ.get(DIR_ENV) or PROJECT / ".sandbox").resolve()
    port_base = int(os.environ.get(PORT_ENV, "18080"))
    fixture_old = (args.baseline / FIXTURE).resolve()
    if not (fixture_old / "make-repo.sh").is_file():
        parser.error(f"--baseline {args.baseline}: no {FIXTURE}/make-repo.sh there")
    binaries = args.ferretdb or [shutil.which("ferretdb") or "/usr/local/bin/ferretdb"]
    sides = [Side("old", fixture_old, args.baseline_ferretdb or binaries[0], root.with_name(root.name + "-old"),
                  port_base)]
    for i, binary in enumerate(binaries, start=1):
        label = "new" if i == 1 else f"new{i}"
        sides.append(Side(label, PROJECT / FIXTURE, binary, root.with_name(f"{root.name}-{label}"), port_base + 10 * i))
    try:
        for side in sides:
            provision(side)
        handles = []
        for side in sides:
            client, db = database(side)
            prepare(side)
            template = template_session(db, side.token)
            clear_sessions(db, template)
            handles.append((client, db, template))
            print(f"# {side.label}: session shape {sorted(template)}; _id is the token hash: "
                  f"{template['_id'] == template['token_hash']}", file=sys.stderr, flush=True)
        measure_counts(sides, [db for _, db, _ in handles], [t for _, _, t in handles], counts, args.rounds)
        for client, _, _ in handles:
            client.close()
    finally:
        if not args.keep:
            for side in sides:
                if side.env:
                    teardown(side)

    print(f"Sessions benchmark: {args.rounds} requests of each kind per side and count, through nginx, "
          f"sides measured in alternating rounds on one machine ({os.cpu_count()} CPUs).\n")
    for side in sides:
        print(f"- `{side.label}`: app of {side.fixture}, FerretDB {ferretdb_label(side.ferretdb)} on SQLite")
    print()
    print(table(sides, counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
