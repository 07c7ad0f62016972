"""A zero-downtime code-only rollback (`rollbackctl run standard --zero-downtime`) on the real sandbox, under load.

A same-schema release v0.9.1 (v0.9.0 with another version number, tagged in the sandbox's release repository)
is deployed, then rolled back to v0.9.0 without the plan's maintenance window while a bounded load generator
sends users' requests through nginx: no request fails and none gets the maintenance page, every worker serves
v0.9.0 within seconds of the switch, and the record says which step of the plan was left out, by whose choice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from rollbackctl.paths import INCIDENTS_ENV
from rollbackctl.record import validate

from ..platform_client import PlatformClient

pytestmark = pytest.mark.sandbox

AUTHORITY = ["--decided-by", "Dana", "--role", "lead-devops-engineer"]
SAME_SCHEMA = "v0.9.1"


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "pytest", "GIT_AUTHOR_EMAIL": "pytest@example.invalid",
           "GIT_COMMITTER_NAME": "pytest", "GIT_COMMITTER_EMAIL": "pytest@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def _tag_same_schema_release(sandbox, work: Path) -> None:
    """v0.9.1 = v0.9.0 with its version number changed: same schema, same code."""
    repo = sandbox.directory / "git" / "chatbot-platform.git"
    if _git("tag", "--list", SAME_SCHEMA, cwd=repo).strip():
        return
    _git("clone", "-q", "--branch", "v0.9.0", str(repo), str(work))
    package = work / "package.json"
    data = json.loads(package.read_text())
    data["version"] = SAME_SCHEMA.removeprefix("v")
    package.write_text(json.dumps(data, indent=2) + "\n")
    lock = work / "package-lock.json"
    if lock.exists():
        locked = json.loads(lock.read_text())
        locked["version"] = data["version"]
        locked.get("packages", {}).get("", {})["version"] = data["version"]
        lock.write_text(json.dumps(locked, indent=2) + "\n")
    _git("commit", "-q", "-am", f"Release {data['version']}: the schema of 0.9.0", cwd=work)
    _git("tag", "-a", SAME_SCHEMA, "-m", f"chatbot-platform {SAME_SCHEMA}", cwd=work)
    _git("push", "-q", "origin", SAME_SCHEMA, cwd=work)


def _root(sandbox) -> Path:
    return sandbox.directory / "app" / "opt" / "chatbot-platform"


def _rollbackctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rollbackctl.cli", *args], capture_output=True, text=True,
                          timeout=900, env=os.environ.copy())


class Load:
    """Users' requests through nginx (list conversations, read messages, now and then send one), paced and
    bounded in count and time; every answer kept with its time."""

    def __init__(self, base_url: str, password: str, limit: int = 6000, seconds: float = 600):
        self.client = PlatformClient(base_url, timeout=10)
        self.password, self.limit, self.seconds = password, limit, seconds
        self.answers: list[tuple[float, str, int, str]] = []  # (time, what, status, version or error)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        assert self.client.login("synthetic-monitor", self.password).status == 200
        # a conversation of its own: the verification's synthetic message goes to another one
        created = self.client.create_conversation("zero-downtime load")
        assert created.status in (200, 201), created
        self.conversation = created.body.get("id") or created.body["conversation"]["id"]
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _one(self, n: int) -> tuple[str, int, str]:
        if n % 4 == 0:
            response = self.client.health()
            return "health", response.status, str(response.body.get("version", ""))
        if n % 25 == 1:
            return "send", self.client.send(self.conversation, f"zero-downtime load #{n}").status, ""
        if n % 2:
            return "messages", self.client.messages(self.conversation, limit=20).status, ""
        return "conversations", self.client.conversations().status, ""

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        n = 0
        while not self.stop.is_set() and n < self.limit and time.monotonic() < deadline:
            try:
                what, status, detail = self._one(n)
            except OSError as exc:  # refused, reset, timed out: a failed request too
                what, status, detail = "error", 0, str(exc)
            self.answers.append((time.time(), what, status, detail))
            n += 1
            time.sleep(0.03)

    def failed(self) -> list[tuple[float, str, int, str]]:
        return [a for a in self.answers if a[2] == 0 or a[2] >= 500]


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def same_schema_release(sandbox, tmp_path_factory):
    _tag_same_schema_release(sandbox, tmp_path_factory.mktemp("release-repo") / "work")
    packaged = sandbox._run("package.yml", extravars={"package_versions": [SAME_SCHEMA]}, raise_on_failure=False)
    assert packaged.ok, packaged.failures
    result = sandbox._run("deploy.yml", extravars={"deploy_version": SAME_SCHEMA}, raise_on_failure=False)
    assert result.ok, result.failures
    assert sandbox.health()["version"] == SAME_SCHEMA.removeprefix("v")
    yield
    # leave the platform as the other files expect it: v0.9.0 live, no trace of the extra release on disk
    subprocess.run(["rm", "-rf", str(_root(sandbox) / "releases" / SAME_SCHEMA)], check=True)


def test_zero_downtime_rollback_fails_no_request_and_records_the_departure(same_schema_release, sandbox, project,
                                                                           synthetic_password, monkeypatch):
    monkeypatch.chdir(project)
    incident = "INC-ZERO-DOWNTIME"
    with Load(sandbox.web_url, synthetic_password) as load:
        time.sleep(2)  # users are being served on v0.9.1 before the rollback starts
        result = _rollbackctl("run", "standard", "-i", "inventories/local", "--to", "v0.9.0", "--reason",
                              "messaging errors", "--incident-id", incident, "--zero-downtime", *AUTHORITY)
        time.sleep(2)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads((Path(os.environ[INCIDENTS_ENV]) / incident / "incident.json").read_text())
    validate(record)

    # users: no failed request and no maintenance page, for the whole run
    assert len(load.answers) > 100, f"the load generator sent only {len(load.answers)} requests"
    assert load.failed() == [], f"{len(load.failed())} failed requests: {load.failed()[:5]}"
    assert not [a for a in load.answers if a[2] == 503]
    # every worker on the target within 5 s of the switch (the app_rollback phase)
    switched = _epoch(next(p for p in record["phases"] if p["name"] == "app_rollback")["ended_at"])
    late = [a for a in load.answers if a[1] == "health" and a[3] != "0.9.0" and a[0] > switched + 5]
    assert not late, f"workers still served another release more than 5 s after the switch: {late[:3]}"
    assert [a[3] for a in load.answers if a[1] == "health"][-3:] == ["0.9.0"] * 3
    assert {a[3] for a in load.answers if a[1] == "health"} == {"0.9.1", "0.9.0"}

    # the record: a departure from step 2 by Dana's choice; the maintenance phases skipped for it; verified live
    (departure,) = record["departures"]
    assert departure["id"] == "zero_downtime" and departure["chosen_by"] == "Dana"
    status = {p["name"]: p for p in record["phases"]}
    for name in ("maintenance_on", "maintenance_off"):
        assert status[name]["status"] == "skipped", status[name]
        assert "zero-downtime rollback chosen by Dana" in status[name]["note"], status[name]
    for name in ("preflight", "app_rollback", "verify_app", "post_verify"):
        assert status[name]["status"] == "ok", status[name]
    assert status["db_restore"]["status"] == "skipped" and record["database"]["restore"] is False
    assert record["outcome"]["status"] == "succeeded", record["outcome"]
    assert os.readlink(_root(sandbox) / "current") == "releases/v0.9.0"
    assert not list((sandbox.directory / "nginx" / "conf.d").glob("chatbot-maint*"))
