"""A throwaway FerretDB (SQLite backend, authentication on) for tests and benchmarks.

    with ferretdb(root, database="chatbot-platform", user="chatbot", password=PW) as server:
        server.uri, server.port

`root` is a fresh directory (data, state and the log go there); the server is stopped on exit.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class FerretDBError(RuntimeError):
    """FerretDB is not installed or did not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class FerretDB:
    port: int
    database: str
    user: str
    password: str
    log: Path

    def uri_for(self, database: str | None = None) -> str:
        return f"mongodb://{self.user}:{self.password}@127.0.0.1:{self.port}/{database or self.database}"

    @property
    def uri(self) -> str:
        return self.uri_for()


@contextlib.contextmanager
def ferretdb(root: Path, *, database: str, user: str, password: str, port: int | None = None,
             timeout: float = 20.0):
    """Start FerretDB under root on port (default: a free one) and yield a FerretDB once it answers."""
    import pymongo  # imported here: the tests that only need free_port() should not need pymongo

    binary = shutil.which("ferretdb")
    if not binary:
        raise FerretDBError("ferretdb is not installed (scripts/install-deps.sh installs it)")
    root = Path(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "state").mkdir(exist_ok=True)
    port = port or free_port()
    server = FerretDB(port, database, user, password, root / "ferretdb.log")
    log = server.log.open("w")
    proc = subprocess.Popen(
        [binary, "--handler=sqlite", f"--sqlite-url=file:{root / 'data'}/", f"--state-dir={root / 'state'}",
         f"--listen-addr=127.0.0.1:{port}", "--debug-addr=-", "--telemetry=disable", "--log-level=error",
         "--test-enable-new-auth", f"--setup-database={database}", f"--setup-username={user}",
         f"--setup-password={password}"],
        stdout=log, stderr=subprocess.STDOUT)
    client = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=500)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.get_database(database).list_collection_names()
                break
            except pymongo.errors.PyMongoError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise FerretDBError(f"FerretDB did not start: {server.log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        client.close()
        yield server
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
