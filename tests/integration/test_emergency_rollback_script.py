"""The on-host emergency rollback script (roles/app_release/files/emergency-rollback.sh), alone on a host.

No controller, no Ansible, no network: a host tree laid out as app_release lays it out (releases/<version> with
release.json, `current`, releases/manifest.jsonl, shared/ecosystem.config.js and the script's settings file)
holding a good v0.9.0 and a bad v0.9.2 (a tiny node server each, reporting its version on /health), run by a
real pm2 daemon in cluster mode with its own PM2_HOME. The script runs with a bare environment.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils.releases import (
    previous_good,
    read_manifest,
    releases_on_disk,
)

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "app_release" / "files" / "emergency-rollback.sh"
GOOD, BAD = "v0.9.0", "v0.9.2"
LIAR = "v0.8.0"  # its workers come up, but its /health reports another version: never ready
INSTANCES = 2


SERVER_JS = """\
'use strict';
const http = require('http');
const version = require('../package.json').version;
const server = http.createServer((req, res) => {
  const code = req.url === '/health' ? 200 : 404;
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(code === 200 ? { status: 'ok', version, pid: process.pid } : { error: 'not_found' }));
});
server.listen(Number(process.env.PORT), process.env.HOST, () => { if (process.send) process.send('ready'); });
process.on('SIGINT', () => server.close(() => process.exit(0)));
"""

ECOSYSTEM_JS = """\
module.exports = {{ apps: [{{
  name: "app", script: {script}, cwd: {cwd}, exec_mode: "cluster", instances: {instances},
  wait_ready: true, listen_timeout: 15000, kill_timeout: 3000,
  out_file: {out}, error_file: {err},
  env: {{ HOST: "127.0.0.1", PORT: "{port}" }}
}}] }};
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Host:
    """One app host's tree and its pm2 daemon."""

    def __init__(self, base: Path, port: int):
        self.base, self.port = base, port
        self.root = base / "opt" / "chatbot-platform"
        self.releases = self.root / "releases"
        self.pm2_home = base / "pm2"
        self.script = self.root / "scripts" / "emergency-rollback.sh"

    # ---- layout -----------------------------------------------------------------------------------------
    def lay_out(self) -> None:
        for version in (GOOD, BAD, LIAR):
            release = self.releases / version
            (release / "dist").mkdir(parents=True)
            reported = "0.0.0" if version == LIAR else version.removeprefix("v")
            (release / "package.json").write_text(json.dumps({"name": "chatbot-platform", "version": reported}))
            (release / "dist" / "server.js").write_text(SERVER_JS)
            (release / "release.json").write_text(json.dumps({"version": version, "git_sha": "0" * 40,
                                                              "schema_version": 1,
                                                              "built_at": "2024-03-01T10:00:00Z"}))
        (self.root / "shared" / "logs").mkdir(parents=True)
        (self.root / "scripts").mkdir()
        shutil.copy(SCRIPT, self.script)
        self.script.chmod(0o755)
        (self.root / "shared" / "ecosystem.config.js").write_text(ECOSYSTEM_JS.format(
            script=json.dumps(str(self.root / "current" / "dist" / "server.js")),
            cwd=json.dumps(str(self.root / "current")), instances=INSTANCES, port=self.port,
            out=json.dumps(str(self.root / "shared" / "logs" / "out.log")),
            err=json.dumps(str(self.root / "shared" / "logs" / "err.log"))))
        (self.root / "shared" / "emergency-rollback.conf").write_text(
            f"# settings\nPM2_HOME={self.pm2_home}\nPM2_BINARY=pm2\nAPP_NAME=app\nINSTANCES={INSTANCES}\n"
            f"APP_HOST=127.0.0.1\nAPP_PORT={self.port}\nTIMEOUT=40\n")
        self.pm2_home.mkdir(mode=0o700)

    def reset(self, history: list[tuple[str, str]], current: str) -> None:
        """The manifest holds `history` ((event, version) lines), `current` points at a release, no marker."""
        lines = [json.dumps({"event": event, "version": version, "at": f"2024-03-0{n + 1}T10:00:00Z"})
                 for n, (event, version) in enumerate(history)]
        (self.releases / "manifest.jsonl").write_text("".join(line + "\n" for line in lines))
        for version in (GOOD, BAD, LIAR):
            (self.releases / version / "BAD_RELEASE").unlink(missing_ok=True)
        (self.releases / ".emergency-rollback.lock").unlink(missing_ok=True)
        self.point(current)

    def point(self, version: str) -> None:
        tmp = self.root / ".current.test"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(f"releases/{version}")
        tmp.rename(self.root / "current")

    # ---- pm2 --------------------------------------------------------------------------------------------
    def pm2(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "PM2_HOME": str(self.pm2_home), "PM2_DISCRETE_MODE": "true", "NO_COLOR": "1"}
        return subprocess.run(["pm2", *args], env=env, capture_output=True, text=True, timeout=120, check=check)

    def workers(self) -> list[tuple[int, str, str]]:
        """(pid, status, the release directory it runs in) of each instance of `app`."""
        text = self.pm2("jlist").stdout
        result = []
        for proc in json.loads(text[text.index("["):]):
            if proc["name"] != "app":
                continue
            try:
                cwd = os.path.realpath(f"/proc/{proc['pid']}/cwd")
            except OSError:
                cwd = ""
            result.append((proc["pid"], proc["pm2_env"]["status"], os.path.basename(cwd)))
        return sorted(result)

    def serve(self, version: str) -> None:
        """Every worker online and serving `version` (start or reload as needed)."""
        if not all(w[2] == version and w[1] == "online" for w in self.workers()) or len(self.workers()) != INSTANCES:
            ecosystem = str(self.root / "shared" / "ecosystem.config.js")
            action = "reload" if self.workers() else "start"
            self.pm2(action, ecosystem, "--only", "app", *(["--update-env"] if action == "reload" else []))
        deadline = time.monotonic() + 30
        while not (len(self.workers()) == INSTANCES and all(w[1:] == ("online", version) for w in self.workers())):
            assert time.monotonic() < deadline, self.workers()
            time.sleep(0.3)

    def health(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as response:
            return json.loads(response.read())

    # ---- the script -------------------------------------------------------------------------------------
    def run(self, *args: str, timeout: int = 120) -> tuple[subprocess.CompletedProcess, dict]:
        """The script as an engineer runs it on the host: from the root, a bare environment, no controller."""
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": str(self.base),
               "USER": "oncall", "LANG": "C.UTF-8"}
        proc = subprocess.run(["./scripts/emergency-rollback.sh", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=timeout)
        lines = proc.stdout.strip().splitlines()
        assert lines, f"no result line (rc={proc.returncode}): {proc.stderr[-2000:]}"
        return proc, json.loads(lines[-1])

    def snapshot(self) -> dict:
        """What a run must not change when it changes nothing."""
        return {"current": os.readlink(self.root / "current"),
                "manifest": (self.releases / "manifest.jsonl").read_text(),
                "markers": sorted(str(p) for p in self.releases.glob("*/BAD_RELEASE")),
                "workers": self.workers()}


@pytest.fixture(scope="module")
def host():
    if not shutil.which("pm2") or not shutil.which("node"):
        pytest.fail("pm2 and node must be installed: run scripts/install-deps.sh")
    # a short path: pm2's sockets live in PM2_HOME and a unix socket path is limited to about 100 bytes
    base = Path(tempfile.mkdtemp(prefix="erb-", dir="/tmp"))
    machine = Host(base, _free_port())
    machine.lay_out()
    try:
        yield machine
    finally:
        machine.pm2("kill", check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def bad_host(host):
    """v0.9.0 was deployed, then the bad v0.9.2, which every worker serves."""
    host.reset([("deployed", GOOD), ("deployed", BAD)], BAD)
    host.serve(BAD)
    return host


def test_rolls_back_to_the_previous_good_release_alone_and_a_second_run_changes_nothing(bad_host):
    host = bad_host
    assert host.health()["version"] == BAD.removeprefix("v")
    started = time.monotonic()
    proc, result = host.run("--incident-id", "INC-ONHOST-1", "--reason", "messaging answers 500")
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result["from"] == BAD and result["to"] == GOOD and result["changed"] is True, result
    assert result["status"] == "rolled_back" and result["error"] is None and result["dry_run"] is False
    assert result["workers"] == INSTANCES and result["marked_bad"] == BAD
    assert 0 < result["duration"] <= took + 1
    assert set(result) >= {"host", "from", "to", "changed", "workers", "duration", "status", "error"}

    # the host: current switched, every worker on v0.9.0 and answering, the bad release kept and marked
    assert os.readlink(host.root / "current") == f"releases/{GOOD}"
    workers = host.workers()
    assert len(workers) == INSTANCES and all(w[1:] == ("online", GOOD) for w in workers), workers
    assert host.health()["version"] == GOOD.removeprefix("v")
    assert (host.releases / BAD / "release.json").is_file()
    marker = json.loads((host.releases / BAD / "BAD_RELEASE").read_text())
    assert marker["incident_id"] == "INC-ONHOST-1" and marker["reason"] == "messaging answers 500"
    assert marker["actor"].startswith("oncall@")

    # the manifest, as the toolkit's own module_utils read it: v0.9.2 bad, v0.9.0 live by a rollback
    manifest = read_manifest(str(host.releases / "manifest.jsonl"))
    releases = manifest.releases(releases_on_disk(str(host.releases)))
    assert releases[BAD].status == "bad" and releases[BAD].bad["incident_id"] == "INC-ONHOST-1"
    assert manifest.entries[-1]["event"] == "rolled_back" and manifest.entries[-1]["version"] == GOOD
    assert manifest.entries[-1]["git_sha"] == "0" * 40 and manifest.entries[-1]["schema_version"] == 1
    assert previous_good(manifest, GOOD, releases_on_disk(str(host.releases))) is None  # never back to v0.9.2

    # idempotent: the second run reports no change and changes nothing (no reload: same worker pids)
    before = host.snapshot()
    proc, again = host.run()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert again["changed"] is False and again["status"] == "unchanged", again
    assert again["from"] == GOOD and again["to"] == GOOD and again["workers"] == INSTANCES
    assert host.snapshot() == before


def test_a_host_with_no_previous_good_release_is_refused_and_left_alone(host):
    host.reset([("deployed", GOOD), ("marked_bad", GOOD), ("deployed", BAD)], BAD)
    host.serve(BAD)
    before = host.snapshot()
    proc, result = host.run()
    assert proc.returncode == 3, (proc.returncode, proc.stderr[-2000:])
    assert result["status"] == "no_target" and result["changed"] is False and result["from"] == BAD
    assert "no previous good release" in result["error"] and "no previous good release" in proc.stderr
    assert host.snapshot() == before
    assert not (host.releases / BAD / "BAD_RELEASE").exists()


@pytest.mark.parametrize("to, message", [(BAD, "marked bad"), ("v9.9.9", "not on disk")])
def test_an_unusable_explicit_target_is_refused_and_nothing_changes(bad_host, to, message):
    host = bad_host
    host.reset([("deployed", GOOD), ("deployed", BAD), ("marked_bad", BAD)], GOOD)  # v0.9.2 bad, served
    before = host.snapshot()
    proc, result = host.run("--to", to)
    assert proc.returncode == 3 and result["status"] == "no_target" and message in result["error"], result
    assert host.snapshot() == before


def test_dry_run_says_what_it_would_do_and_changes_nothing(bad_host):
    host = bad_host
    before = host.snapshot()
    proc, result = host.run("--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert result["status"] == "dry_run" and result["dry_run"] is True and result["changed"] is True, result
    assert result["from"] == BAD and result["to"] == GOOD and result["marked_bad"] == BAD
    assert "dry run" in proc.stderr
    assert host.snapshot() == before
    assert not (host.releases / ".emergency-rollback.lock").exists()


def test_a_run_stopped_after_the_switch_is_finished_by_the_next_one(bad_host):
    """current already points at v0.9.0 but the workers still serve v0.9.2: reload, and v0.9.2 is marked bad."""
    host = bad_host
    host.point(GOOD)
    proc, result = host.run("--to", GOOD)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (result["from"], result["to"], result["changed"], result["status"]) == (BAD, GOOD, True, "rolled_back")
    assert all(w[1:] == ("online", GOOD) for w in host.workers())
    assert (host.releases / BAD / "BAD_RELEASE").is_file()


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown argument: --bogus"),
    (["--to", "1.0"], "--to 1.0 is malformed"),
    (["--to"], "option --to needs a value"),
    (["--timeout", "soon"], "--timeout soon is not"),
    (["--root", "/nonexistent-erb"], "not a deployment root"),
])
def test_bad_usage_exits_2_with_a_message_and_changes_nothing(host, args, message):
    host.reset([("deployed", GOOD), ("deployed", BAD)], BAD)
    before_link, before_manifest = os.readlink(host.root / "current"), (host.releases / "manifest.jsonl").read_text()
    proc, result = host.run(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert message in proc.stderr and result["status"] == "usage" and result["changed"] is False
    assert os.readlink(host.root / "current") == before_link
    assert (host.releases / "manifest.jsonl").read_text() == before_manifest


def test_help_documents_the_options_and_exit_codes(host):
    proc = subprocess.run([str(host.script), "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    for word in ("--to VERSION", "--root DIR", "--dry-run", "Exit codes", "no previous good release"):
        assert word in proc.stdout


def test_the_script_is_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (scripts/install-deps.sh installs it)")
    proc = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


def test_a_second_run_while_one_holds_the_lock_exits_6_and_changes_nothing(bad_host):
    import fcntl

    host = bad_host
    before = host.snapshot()
    with open(host.releases / ".emergency-rollback.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc, result = host.run()
    assert proc.returncode == 6 and result["status"] == "locked" and result["changed"] is False, result
    assert host.snapshot() == before


def test_workers_that_never_serve_the_target_end_in_a_bounded_timeout_exit_5(bad_host):
    host = bad_host
    host.reset([("deployed", LIAR), ("deployed", BAD)], BAD)
    started = time.monotonic()
    proc, result = host.run("--timeout", "3")
    assert time.monotonic() - started < 30
    assert proc.returncode == 5, (proc.returncode, proc.stderr[-2000:])
    assert (result["status"], result["from"], result["to"], result["changed"]) == ("timeout", BAD, LIAR, True), result
    assert "within 3s" in result["error"]
    assert os.readlink(host.root / "current") == f"releases/{LIAR}"  # switched: a rerun continues from here
    assert not (host.releases / BAD / "BAD_RELEASE").exists()  # the release left is marked only once ready


def test_a_pm2_failure_exits_4_and_marks_nothing(bad_host):
    host = bad_host
    wrapper = host.base / "pm2-that-cannot-reload"
    wrapper.write_text('#!/bin/sh\ncase "$1" in reload|restart|start) echo "reload refused" >&2; exit 1 ;; esac\n'
                       'exec pm2 "$@"\n')
    wrapper.chmod(0o755)
    conf = host.root / "shared" / "emergency-rollback.conf"
    saved = conf.read_text()
    conf.write_text(saved.replace("PM2_BINARY=pm2", f"PM2_BINARY={wrapper}"))
    try:
        workers = host.workers()
        proc, result = host.run()
    finally:
        conf.write_text(saved)
    assert proc.returncode == 4, (proc.returncode, proc.stderr[-2000:])
    assert result["status"] == "pm2_failed" and "reload" in result["error"] and result["to"] == GOOD, result
    assert "reload refused" in proc.stderr
    assert host.workers() == workers  # still the bad release's workers, untouched
    assert not (host.releases / BAD / "BAD_RELEASE").exists()
    assert "marked_bad" not in (host.releases / "manifest.jsonl").read_text()
