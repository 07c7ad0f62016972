"""Fixtures of the fault-injection suite: the shared sandbox (tests/conftest.py), the chains of faults, the
summary table printed at the end of the session."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from rollbackctl.paths import INCIDENTS_ENV

from ..platform_client import PlatformClient
from . import harness

FAULTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """The suite runs last: it reuses the session's sandbox, and the other sandbox tests expect it untouched."""
    faults = [item for item in items if FAULTS_DIR in Path(str(item.fspath)).parents]
    if faults and len(faults) != len(items):
        items[:] = [item for item in items if item not in faults] + faults


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not harness.ROWS:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"fault injection: {len(harness.ROWS)} faults")
    columns = ("chain", "fault", "exit", "record", "served", "observed", "recovery", "seconds", "result")
    widths = {"chain": 7, "fault": 44, "exit": 6, "record": 60, "served": 42, "observed": 48, "recovery": 60,
              "seconds": 4, "result": 8}
    write("  ".join(c.ljust(widths[c]) for c in columns))
    for row in harness.ROWS:
        write("  ".join(str(row.get(c, ""))[: widths[c] if c != "result" else None].ljust(widths[c])
                        for c in columns))
    passed = sum(row["result"] == "pass" for row in harness.ROWS)
    write(f"{passed} of {len(harness.ROWS)} faults survived (safe state, record, no document lost, resume).")


@pytest.fixture(scope="module", autouse=True)
def in_project(project):
    cwd = os.getcwd()
    os.chdir(project)
    yield
    os.chdir(cwd)


@pytest.fixture(scope="session")
def platform(sandbox, mongo) -> harness.Platform:
    return harness.Platform(sandbox, mongo, Path(os.environ[INCIDENTS_ENV]))


def _writes_after_deployment(platform: harness.Platform, password: str) -> None:
    """Users keep writing on the bad release (it stores messages before failing): these must survive."""
    client = PlatformClient(platform.web_url)
    assert client.login("synthetic-monitor", password).status == 200
    conversation = client.conversations().body["conversations"][0]["id"]
    for n in range(3):
        client.send(conversation, f"written on the bad release #{n}")


def _stable(platform: harness.Platform, project: Path, workdir: Path) -> None:
    """v0.9.0 with maintenance off, or a plain rollback first (a chain that broke may have left anything)."""
    platform.start_nginx()
    platform.start_ferretdb()
    if harness._direct_version(platform) is None:
        platform.start_app()
    backup = platform.backups / f"{harness.BACKUP}.manifest.json"
    state = harness.Chain("probe", [], platform, project, workdir, bad_stable={"-": "-"}).state() \
        if backup.exists() else ("good" if platform.current() == f"releases/{harness.TARGET}" else "mixed")
    if state == "good" and not platform.maintenance_files():
        return
    incident = f"INC-FAULTS-RESET-{len(list(workdir.glob('reset-*.log')))}"
    run = harness.start(project, ["run", "standard", "-i", "inventories/local", "--to", harness.TARGET, "--reason",
                                  "reset between fault chains", "--incident-id", incident, "--break-lock",
                                  *harness.AUTHORITY], None, incident, workdir, f"reset-{incident}")
    assert run.wait() == 0, f"the platform could not be brought back to {harness.TARGET}:\n{run.tail()}"


def _chain(name, faults, platform, project, sandbox, synthetic_password, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"faults-{name}")
    _stable(platform, project, workdir)
    result = sandbox._run("deploy.yml", extravars={"deploy_version": harness.BAD}, raise_on_failure=False)
    assert result.ok, f"deploying {harness.BAD} failed: {result.failures}"
    _writes_after_deployment(platform, synthetic_password)
    chain = harness.Chain(name, faults, platform, project, workdir)
    chain.universe = platform.documents()
    chain.bad_stable = platform.stable_hashes()
    assert chain.state() == "bad", chain.state()
    return chain


def _teardown(chain: harness.Chain) -> None:
    chain.stop()
    with contextlib.suppress(Exception):
        for fault in chain.faults:
            if fault.kind != "kill-wrapper" and fault.kind != "kill-playbook":
                harness.recover(chain, fault)
    harness.unmount(chain.platform.snapshots)


@pytest.fixture(scope="module")
def kills(platform, project, sandbox, synthetic_password, tmp_path_factory):
    from .faults import KILLS

    chain = _chain("kills", KILLS, platform, project, sandbox, synthetic_password, tmp_path_factory)
    yield chain
    _teardown(chain)


@pytest.fixture(scope="module")
def outages(platform, project, sandbox, synthetic_password, tmp_path_factory):
    from .faults import OUTAGES

    chain = _chain("outages", OUTAGES, platform, project, sandbox, synthetic_password, tmp_path_factory)
    yield chain
    _teardown(chain)
