"""The platform's requests on FerretDB's SQLite backend against its PostgreSQL backend.

    PYTHONPATH=$PWD/src python benchmarks/bench_backends.py \\
        --ferretdb sqlite=/usr/local/bin/ferretdb --ferretdb sqlite-idx=/path/to/patched/ferretdb

Each side is the fixture app of this checkout (`node src/server.js`, one process, no nginx) on its own
FerretDB: one per --ferretdb LABEL=BINARY on SQLite, and one on PostgreSQL (Debian's postgresql, a
throw-away cluster made with initdb in the work directory; the first --ferretdb binary serves it).
Every database gets the fixture's migrations and full seed from the app's own scripts; then, as in
bench_sessions.py (whose measuring code this reuses), sessions shaped like the app's are added up to
each count and the three request kinds are timed in alternating rounds. Ratios: first side / others.
Ports: $ROLLBACK_SANDBOX_PORT_BASE + 50 onwards (FerretDB, app, PostgreSQL per side). Everything
started is stopped at the end, and the work directory (a temporary one unless --workdir) removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sessions as bench

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def run(argv: list[str], **kwargs) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"bench_backends: {' '.join(argv[:3])} failed ({done.returncode}): {done.stderr[-400:]}")
    return done.stdout


def as_postgres(argv: list[str]) -> list[str]:
    """initdb refuses to run as root: run PostgreSQL's programs as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def wait_for(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit(f"bench_backends: {url} did not answer within {seconds:.0f} s") from None
            time.sleep(0.2)


class Backend:
    def __init__(self, label: str, binary: str, kind: str, work: Path, ports: tuple[int, int, int]):
        self.label, self.binary, self.kind, self.work = label, binary, kind, work / label
        self.db_port, self.app_port, self.pg_port = ports
        self.processes: list[subprocess.Popen] = []
        self.pg_data = self.work / "pg"

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.db_port}/chatbot-platform"

    def start_postgresql(self) -> str:
        self.work.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.work, "postgres")
        run(as_postgres([str(PG_BIN / "initdb"), "-D", str(self.pg_data), "-A", "trust", "-U", "postgres"]))
        run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.pg_data), "-l", str(self.work / "pg.log"), "-w",
                         "-o", f"-p {self.pg_port} -k {self.work} -c listen_addresses=127.0.0.1", "start"]))
        run(["psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-c", "CREATE DATABASE ferretdb"])
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/ferretdb"

    def start(self, app: Path) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FERRETDB_LISTEN_ADDR": f"127.0.0.1:{self.db_port}", "FERRETDB_DEBUG_ADDR": "-",
               "FERRETDB_TELEMETRY": "disable", "FERRETDB_LOG_LEVEL": "error",
               "FERRETDB_STATE_DIR": str(self.work / "state")}
        (self.work / "state").mkdir(exist_ok=True)
        if self.kind == "postgresql":
            env |= {"FERRETDB_HANDLER": "postgresql", "FERRETDB_POSTGRESQL_URL": self.start_postgresql()}
        else:
            (self.work / "data").mkdir(exist_ok=True)
            env |= {"FERRETDB_HANDLER": "sqlite", "FERRETDB_SQLITE_URL": f"file:{self.work / 'data'}/"}
        log = open(self.work / "ferretdb.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen([self.binary], env=env, stdout=log, stderr=log))
        app_env = {**os.environ, "MONGODB_URI": self.uri, "SEED_USER_PASSWORD": "bench-" + self.label,
                   "PORT": str(self.app_port), "HOST": "127.0.0.1", "METRICS_DIR": str(self.work / "metrics"),
                   "LOG_LEVEL": "warn"}
        app_env.pop("CHATBOT_ENV_FILE", None)
        for attempt in range(50):
            try:
                run(["node", "scripts/migrate.js"], cwd=app, env=app_env)
                break
            except SystemExit:
                if attempt == 49:
                    raise
                time.sleep(0.2)
        run(["node", "scripts/seed.js"], cwd=app, env=app_env)
        log = open(self.work / "app.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen(["node", "src/server.js"], cwd=app, env=app_env,
                                               stdout=log, stderr=log))
        wait_for(f"http://127.0.0.1:{self.app_port}/health")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.kind == "postgresql" and self.pg_data.exists():
            subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.pg_data), "-m", "fast", "stop"]),
                           capture_output=True, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ferretdb", action="append", default=[], metavar="LABEL=BINARY",
                        help="a FerretDB binary to run on SQLite (repeatable); the first also runs PostgreSQL")
    parser.add_argument("--counts", default="0,1000,10000,50000")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    binaries = [item.split("=", 1) for item in args.ferretdb] or [["sqlite", shutil.which("ferretdb") or ""]]
    counts = sorted({int(c) for c in args.counts.split(",")})
    base = int(os.environ.get(bench.PORT_ENV, "18080")) + 50
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-backends-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # the postgres user walks into it

    app = work / "app"
    shutil.copytree(bench.PROJECT / bench.FIXTURE / "app", app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=app)

    specs = [(label, binary, "sqlite") for label, binary in binaries] + [("postgresql", binaries[0][1], "postgresql")]
    backends = [Backend(label, binary, kind, work, (base + 3 * i, base + 3 * i + 1, base + 3 * i + 2))
                for i, (label, binary, kind) in enumerate(specs)]
    sides, handles = [], []
    try:
        for backend in backends:
            t0 = time.monotonic()
            backend.start(app)
            print(f"# {backend.label}: up and seeded in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
            side = bench.Side(backend.label, app, backend.binary, backend.work, backend.app_port,
                              password="bench-" + backend.label)
            bench.prepare(side)
            client = bench.pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=5000)
            db = client.get_default_database()
            template = bench.template_session(db, side.token)
            sides.append(side)
            handles.append((client, db, template))
        bench.measure_counts(sides, [db for _, db, _ in handles], [t for _, _, t in handles], counts, args.rounds)
        for client, _, _ in handles:
            client.close()
    finally:
        for backend in backends:
            backend.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    print(f"FerretDB backends: the fixture app of this checkout, {args.rounds} requests of each kind per side and "
          f"count, straight to the app (no nginx), sides in alternating rounds on one machine "
          f"({os.cpu_count()} CPUs).\n")
    for backend in backends:
        print(f"- `{backend.label}`: FerretDB {bench.ferretdb_label(backend.binary)} on {backend.kind}")
    print()
    print(bench.table(sides, counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
