"""Shared fixtures: the project tree and a real local sandbox in a temporary directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ansible.plugins.loader import init_plugin_loader

from rollbackctl.paths import INCIDENTS_ENV, STATE_ENV
from rollbackctl.project import find_project
from rollbackctl.sandbox import DIR_ENV, PORT_ENV, Sandbox

from .platform_client import PlatformClient

# The collection chatbot.rollback, found the way ansible-core finds it (ansible.cfg's collections_path), so that
# tests import `ansible_collections.chatbot.rollback.plugins.module_utils.pm2` exactly as the modules do.
init_plugin_loader([str(Path(__file__).resolve().parents[1] / ".collections")])

# Tests use their own sandbox directory and ports, so a user's sandbox on the default ports is untouched
# (ROLLBACK_TEST_PORT_BASE moves them, for two suites side by side).
TEST_PORT_BASE = os.environ.get("ROLLBACK_TEST_PORT_BASE", "28080")
# The sandbox database password: distinctive, so a test can prove it leaks into no output or file.
DISTINCTIVE_DB_PASSWORD = "Zq7-distinctive-Pw-4471"


@pytest.fixture(scope="session")
def project() -> Path:
    return find_project(Path(__file__).parent)


@pytest.fixture(scope="session")
def sandbox_env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sandbox-root")
    directory = root / "sandbox"
    # Incident records (wrapper and callback) and rollbackctl's locks stay in the test's tree as well.
    return {DIR_ENV: str(directory), PORT_ENV: TEST_PORT_BASE, INCIDENTS_ENV: str(root / "incidents"),
            STATE_ENV: str(root / "rollbackctl-state")}


@pytest.fixture(scope="session")
def sandbox_factory(project, sandbox_env):
    """A Sandbox bound to the test environment; teardown removes whatever was brought up."""
    saved = {key: os.environ.get(key) for key in sandbox_env}
    os.environ.update(sandbox_env)
    sandbox = Sandbox(project)
    yield sandbox
    try:
        if sandbox.directory.exists():
            sandbox.down(raise_on_failure=False)
    finally:
        shutil.rmtree(sandbox.directory, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def sandbox_first_run(sandbox_factory):
    """Provision the sandbox from nothing (once per session); the result of that first run."""
    if not shutil.which("ferretdb") or not shutil.which("pm2") or not shutil.which("nginx"):
        pytest.fail("ferretdb, pm2 and nginx must be installed: run scripts/install-deps.sh")
    assert not sandbox_factory.directory.exists()
    secrets = sandbox_factory.directory / "secrets"
    secrets.mkdir(parents=True, mode=0o700)
    (secrets / "db-password").write_text(DISTINCTIVE_DB_PASSWORD + "\n")
    (secrets / "db-password").chmod(0o600)
    return sandbox_factory.up()


@pytest.fixture(scope="session")
def sandbox(sandbox_factory, sandbox_first_run) -> Sandbox:
    return sandbox_factory


@pytest.fixture
def client(sandbox) -> PlatformClient:
    return PlatformClient(sandbox.web_url)


@pytest.fixture(scope="session")
def synthetic_password(sandbox) -> str:
    return (sandbox.directory / "secrets" / "synthetic-password").read_text().split()[0]


@pytest.fixture(scope="session")
def mongo(sandbox):
    """A pymongo database handle on the sandbox's FerretDB."""
    pymongo = pytest.importorskip("pymongo")
    password = (sandbox.directory / "secrets" / "db-password").read_text().split()[0]
    port = int(os.environ[PORT_ENV]) + 2
    client = pymongo.MongoClient(f"mongodb://chatbot:{password}@127.0.0.1:{port}/chatbot-platform",
                                 serverSelectionTimeoutMS=5000)
    yield client.get_default_database()
    client.close()


def files_holding(secret: str, roots, allowed=()) -> list[str]:
    """Every file under `roots` that holds `secret`, apart from the `allowed` ones and the database's data."""
    allowed = {Path(p) for p in allowed}
    leaks = []
    for root in map(Path, roots):
        for path in root.rglob("*") if root.exists() else ():
            if not path.is_file() or path in allowed or "data" in path.relative_to(root).parts[:2]:
                continue
            if secret.encode() in path.read_bytes():
                leaks.append(str(path))
    return leaks
