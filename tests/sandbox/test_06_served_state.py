"""State a kill can strand, and free text on the plain ansible-playbook path, against the real sandbox.

Served state (issue 9, class 6): a run killed after writing a file and before reloading leaves the file
written but not served; the rerun finds no file to change. Each role decides from what is served - nginx's
maintenance answer, nginx's configuration generation, the release pm2's workers run - and reloads, so the
rerun converges; check mode reports the reload and does nothing; a second run changes nothing.

Free text (class 0): plain ansible-playbook (as AWX runs it, without the wrapper's `!unsafe` tags) with a
lookup in every free-text extra var runs nothing, and the text arrives verbatim in the release manifest
(app_rollback.yml marks the rolled-back release bad with the reason and who decided) and in the incident
record written by the rollback_record callback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from rollbackctl.paths import INCIDENTS_ENV

pytestmark = pytest.mark.sandbox

PROJECT = Path(__file__).resolve().parents[2]


def _root(sandbox) -> Path:
    return sandbox.directory / "app" / "opt" / "chatbot-platform"


def _pm2(sandbox, *args: str) -> str:
    env = {**os.environ, "PM2_HOME": str(sandbox.directory / "app" / "pm2")}
    return subprocess.run(["pm2", *args], env=env, capture_output=True, text=True, check=True, timeout=120).stdout


def _served_releases(sandbox) -> set[str]:
    """The release directory each online pm2 worker runs in."""
    text = _pm2(sandbox, "jlist")
    workers = [p for p in json.loads(text[text.index("["):]) if p["pm2_env"]["status"] == "online"]
    assert workers
    return {Path(os.path.realpath(f"/proc/{p['pid']}/cwd")).name for p in workers}


def _nginx(sandbox, *args: str) -> None:
    prefix = sandbox.directory / "nginx"
    subprocess.run(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), *args], check=True,
                   capture_output=True, timeout=60)


def _ansible_playbook(sandbox, playbook: str, extra: dict, check: bool = False) -> subprocess.CompletedProcess:
    """Plain ansible-playbook, extra vars as JSON on the command line (trusted as templates by ansible-core)."""
    command = ["nice", "ansible-playbook", "-i", str(sandbox.inventory), f"playbooks/{playbook}",
               "-e", json.dumps(extra), *(["--check"] if check else [])]
    return subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "ANSIBLE_NOCOLOR": "1"})


# --- maintenance mode -------------------------------------------------------------------------


def test_maintenance_written_but_not_served_is_applied(sandbox, client, tmp_path):
    def maintenance(state, check=False):
        return sandbox._run("maintenance.yml", extravars={"maintenance_state": state}, check=check)

    conf = sandbox.directory / "nginx" / "conf.d"
    try:
        assert maintenance("on").ok
        for path in conf.glob("chatbot-maintenance*"):
            shutil.copy2(path, tmp_path / path.name)
        assert maintenance("off").ok
        # killed after writing the switch, before nginx reloaded: written on, served off
        for path in tmp_path.glob("chatbot-maintenance*"):
            shutil.copy2(path, conf / path.name)
        assert client.request("GET", "/api/conversations").status == 401

        assert maintenance("on", check=True).changed_count > 0, "check mode reports the reload"
        assert client.request("GET", "/api/conversations").status == 401, "check mode changed nothing"
        assert maintenance("on").changed_count > 0
        page = client.request("GET", "/api/conversations")
        assert page.status == 503 and page.headers.get("Retry-After") == "600"
        assert maintenance("on").changed_count == 0

        # killed after removing the switch, before nginx reloaded: written off, served on
        for path in conf.glob("chatbot-maintenance*"):
            path.unlink()
        assert client.request("GET", "/api/conversations").status == 503
        assert maintenance("off", check=True).changed_count > 0
        assert client.request("GET", "/api/conversations").status == 503, "check mode changed nothing"
        assert maintenance("off").changed_count > 0
        assert client.request("GET", "/api/conversations").status == 401
        assert maintenance("off").changed_count == 0
    finally:
        maintenance("off")


# --- nginx's configuration --------------------------------------------------------------------


def test_nginx_configuration_written_but_not_served_is_applied(sandbox, client, tmp_path):
    site = sandbox.directory / "nginx" / "conf.d" / "chatbot.conf"
    assert sandbox._run("platform_web.yml").ok
    written = re.search(r'return 200 "([0-9a-f]{40})\\n"', site.read_text()).group(1)
    assert _generation(sandbox) == written
    # nginx serves an older configuration while the written one is current (a kill between write and reload,
    # or a broken site file repaired by hand)
    shutil.copy2(site, tmp_path / "chatbot.conf")
    site.write_text(site.read_text().replace(written, "stale"))

    def served():
        return _generation(sandbox)

    _nginx(sandbox, "-s", "reload")  # a signal: the master reads the file after this returns, maybe much later
    _wait_for(lambda: served() == "stale", seconds=60)
    shutil.copy2(tmp_path / "chatbot.conf", site)
    assert sandbox._run("platform_web.yml", check=True).changed_count > 0
    assert served() == "stale", "check mode changed nothing"
    assert sandbox._run("platform_web.yml").changed_count > 0
    _wait_for(lambda: served() == written, seconds=60)
    assert sandbox._run("platform_web.yml").changed_count == 0
    assert client.health().status == 200


def _generation(sandbox) -> str:
    with urllib.request.urlopen(sandbox.web_url + "/nginx_generation", timeout=10) as response:
        return response.read().decode().strip()


def _wait_for(condition, seconds: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


# --- free text, then the release pm2 serves ------------------------------------------------------


@pytest.fixture(scope="module")
def bad_release_deployed(sandbox):
    """v1.0.0 deployed beside v0.9.0 (without its migration, so that the database stays the stable one's).

    An earlier test may have rolled v1.0.0 back (marked bad): an operator clears the mark first, so that the
    rollback below marks it bad again, with this test's words."""
    root = _root(sandbox)
    entry = {"event": "marked_good", "version": "v1.0.0", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "actor": "pytest"}
    with (root / "releases" / "manifest.jsonl").open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    (root / "releases" / "v1.0.0" / "BAD_RELEASE").unlink(missing_ok=True)
    result = _ansible_playbook(sandbox, "deploy_release.yml",
                               {"deploy_version": "v1.0.0", "app_release_migrate": False})
    assert result.returncode == 0, result.stdout[-3000:]
    assert _served_releases(sandbox) == {"v1.0.0"}
    return sandbox


def _payload(marker: Path, who: str) -> str:
    return f"{who} {{{{ lookup('ansible.builtin.pipe', 'touch {marker}') }}}}"


def test_free_text_in_every_var_runs_nothing_and_arrives_verbatim(bad_release_deployed, sandbox):
    sandbox = bad_release_deployed
    marker = Path(f"/tmp/ft-{uuid.uuid4().hex[:8]}")  # short: a role name holds at most 100 characters
    free = {name: _payload(marker, name) for name in ("reason", "decided_by", "decided_by_role", "authority")}
    free["reason"] += " {% raw %}x{# c #} {{ 7 * 7 }}\nsince 10:02"
    free["consensus"] = [_payload(marker, "alice") + ":senior-engineer"]
    result = _ansible_playbook(sandbox, "app_rollback.yml", {"rollback_to": "v0.9.0", "incident_id": "INC-FREE-1",
                                                             **free})
    assert result.returncode == 0, result.stdout[-3000:]
    assert not marker.exists(), "a lookup in free text ran a command"
    entries = [json.loads(line) for line in (_root(sandbox) / "releases" / "manifest.jsonl").read_text().splitlines()]
    bad = [e for e in entries if e["event"] == "marked_bad" and e["version"] == "v1.0.0"]
    assert bad, entries
    assert bad[-1]["reason"] == free["reason"] and bad[-1]["actor"] == free["decided_by"]

    # the whole rollback.yml in check mode: the callback's record holds the text verbatim
    record_id = "INC-FREE-2"
    result = _ansible_playbook(sandbox, "rollback.yml", {"rollback_to": "v0.9.0", "incident_id": record_id, **free},
                               check=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert not marker.exists()
    record = json.loads((Path(os.environ[INCIDENTS_ENV]) / record_id / "incident.json").read_text())
    assert record["reason"] == free["reason"]
    assert record["authority"]["decided_by"] == free["decided_by"]
    marker.unlink(missing_ok=True)


def _events(root: Path, version: str) -> list[str]:
    lines = (root / "releases" / "manifest.jsonl").read_text().splitlines()
    return [entry["event"] for entry in map(json.loads, lines) if entry["version"] == version]


def test_workers_serving_another_release_than_current_are_reloaded(bad_release_deployed, sandbox):
    sandbox = bad_release_deployed
    root = _root(sandbox)
    # an operator cleared the bad mark of v1.0.0 (the free-text test set it), so that marking it again shows
    entry = {"event": "marked_good", "version": "v1.0.0", "at": "2026-01-01T00:00:00Z", "actor": "pytest"}
    with (root / "releases" / "manifest.jsonl").open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    # workers on v1.0.0 while current points back at v0.9.0: a rollback killed between the switch and the reload
    (root / "current.tmp").symlink_to("releases/v1.0.0")
    os.replace(root / "current.tmp", root / "current")
    _pm2(sandbox, "reload", "app")
    assert _served_releases(sandbox) == {"v1.0.0"}
    (root / "current.tmp").symlink_to("releases/v0.9.0")
    os.replace(root / "current.tmp", root / "current")

    check = sandbox._run("app_rollback.yml", extravars={"rollback_to": "v0.9.0"}, check=True)
    assert check.changed_count > 0, "check mode reports the reload"
    assert _served_releases(sandbox) == {"v1.0.0"}, "check mode changed nothing"
    assert _events(root, "v1.0.0")[-1] == "marked_good", "check mode changed nothing"
    assert sandbox._run("app_rollback.yml", extravars={"rollback_to": "v0.9.0"}).changed_count > 0
    assert _served_releases(sandbox) == {"v0.9.0"}
    # the release the workers served is the one rolled back: marked bad although current already pointed away
    assert _events(root, "v1.0.0")[-1] == "marked_bad"
    assert sandbox.health()["version"] == "0.9.0"
    assert sandbox._run("app_rollback.yml", extravars={"rollback_to": "v0.9.0"}).changed_count == 0
