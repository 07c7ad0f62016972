"""Plan step 8's integration and monitoring checks, run by the verify role through ansible-runner against real
services: the fixture app's real request handler (on its in-memory test database) calling its reply webhook,
the local receiver as that webhook, and a real Prometheus scraping a local exporter.

Ports: ROLLBACK_TEST_PROMETHEUS_PORT_BASE (default 36230) and the three after it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from rollbackctl.receiver import Receiver

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "verify_external.yml"
APP_HELPER = Path(__file__).resolve().parent / "apps" / "fake_db_app.js"
INVENTORY = f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"
BASE = int(os.environ.get("ROLLBACK_TEST_PROMETHEUS_PORT_BASE", "36230"))
PROM_PORT, EXPORTER_PORT, RECEIVER_PORT, APP_PORT = BASE, BASE + 1, BASE + 2, BASE + 3
PASSWORD = "synthpw-post-checks"
JOB = "chatbot-platform"


def _wait(url: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url}: the process exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error status: it answers
                return
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {timeout}s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"# TYPE chatbot_up gauge\nchatbot_up 1\n"
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", EXPORTER_PORT), _Exporter)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{EXPORTER_PORT}"
    finally:
        server.shutdown()
        server.server_close()


def _start_prometheus(root: Path, targets: list[str]) -> subprocess.Popen:
    binary = shutil.which("prometheus")
    if not binary:
        pytest.skip("the prometheus binary is absent (Debian package `prometheus`, see scripts/install-deps.sh)")
    root.mkdir(parents=True, exist_ok=True)
    config = root / "prometheus.yml"
    listed = ", ".join(f"'{t}'" for t in targets)
    config.write_text(f"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
                      f"  - job_name: {JOB}\n    static_configs:\n      - targets: [{listed}]\n")
    log = root / "prometheus.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address=127.0.0.1:{PROM_PORT}"], stdout=log_file, stderr=subprocess.STDOUT)
    _wait(f"http://127.0.0.1:{PROM_PORT}/-/ready", process, log)
    return process


@pytest.fixture
def prometheus(tmp_path, exporter) -> Iterator[subprocess.Popen]:
    process = _start_prometheus(tmp_path / "prometheus", [exporter])
    try:
        yield process
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory) -> Path:
    """The fixture release with its dependencies (npm ci from its lock file)."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are needed to run the fixture app")
    target = tmp_path_factory.mktemp("app") / "app"
    shutil.copytree(PROJECT / "fixtures" / "chatbot-platform" / "app", target,
                    ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target, check=True,
                   capture_output=True, text=True, timeout=300)
    return target


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(port=RECEIVER_PORT) as running:
        yield running


@pytest.fixture
def app(app_dir, tmp_path) -> Iterator[str]:
    """The app with its reply webhook pointing at the receiver's port (whether the receiver runs or not)."""
    log = tmp_path / "app.log"
    env = dict(os.environ, PORT=str(APP_PORT), SYNTH_USER="synthetic-monitor", SYNTH_PASSWORD=PASSWORD,
               REPLY_WEBHOOK_URL=f"http://127.0.0.1:{RECEIVER_PORT}/webhook/replies")
    with log.open("w") as log_file:
        process = subprocess.Popen(["node", str(APP_HELPER), str(app_dir)], env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT)
    try:
        _wait(f"http://127.0.0.1:{APP_PORT}/health", process, log)
        yield f"http://127.0.0.1:{APP_PORT}"
    finally:
        _stop(process)


def run_verify(tmp_path: Path, ident: str, **extravars: Any) -> tuple[str, dict[str, dict[str, Any]]]:
    """The role's status and its checks by name (from the set_fact event of `verify_results`)."""
    (tmp_path / "runner").mkdir(exist_ok=True)
    runner = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"), playbook=str(PLAYBOOK), inventory=INVENTORY,
        envvars={"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
                 "ANSIBLE_NOCOLOR": "1"},
        extravars={"verify_password": PASSWORD, "verify_web_url": "http://127.0.0.1:1", **extravars},
        ident=ident, quiet=True)
    checks: list[dict[str, Any]] = []
    for event in runner.events:
        data = event.get("event_data", {})
        if event["event"] == "runner_on_ok" and data.get("task_action") == "ansible.builtin.set_fact":
            checks = (data["res"].get("ansible_facts") or {}).get("verify_results", checks)
    return runner.status, {c["name"]: c for c in checks}


def monitoring(url: str = f"http://127.0.0.1:{PROM_PORT}") -> list[dict[str, Any]]:
    return [{"name": "prometheus", "kind": "prometheus", "url": url, "jobs": [JOB]}]


def integrations() -> list[dict[str, Any]]:
    return [{"name": "reply_webhook", "kind": "reply_webhook"}]


def test_both_pass_when_the_receiver_and_prometheus_are_up(tmp_path, app, receiver, prometheus):
    status, checks = run_verify(tmp_path, "up", verify_web_url=app, verify_integrations=integrations(),
                                verify_monitoring=monitoring())
    assert status == "successful", checks
    webhook, prom = checks["integration_reply_webhook"], checks["monitoring_prometheus"]
    assert (webhook["verdict"], webhook["value"], webhook["scope"]) == ("pass", 200, "full"), webhook
    posted = [r for r in receiver.requests if r["path"] == "/webhook/replies"]
    assert len(posted) == 1 and posted[0]["method"] == "POST"
    assert posted[0]["body"]["event"] == "bot_reply" and posted[0]["body"]["text"]
    assert (prom["verdict"], prom["value"], prom["threshold"], prom["unit"]) == ("pass", 1, 1, "targets up"), prom


def test_the_integration_check_fails_when_the_receiver_is_down(tmp_path, app, prometheus):
    status, checks = run_verify(tmp_path, "receiver-down", verify_web_url=app, verify_integrations=integrations(),
                                verify_monitoring=monitoring())
    assert status == "failed"
    webhook = checks["integration_reply_webhook"]
    assert webhook["verdict"] == "fail", webhook
    assert "could not reach the receiver" in webhook["detail"] and "ECONNREFUSED" in webhook["detail"]
    assert checks["monitoring_prometheus"]["verdict"] == "pass"


def test_the_monitoring_check_fails_when_prometheus_is_stopped(tmp_path, app, receiver, prometheus):
    _stop(prometheus)
    status, checks = run_verify(tmp_path, "prometheus-down", verify_web_url=app, verify_integrations=integrations(),
                                verify_monitoring=monitoring())
    assert status == "failed"
    prom = checks["monitoring_prometheus"]
    assert prom["verdict"] == "fail" and "not operational" in prom["detail"], prom
    assert checks["integration_reply_webhook"]["verdict"] == "pass"


def test_the_monitoring_check_fails_when_a_scraped_target_is_down(tmp_path, exporter):
    down = f"127.0.0.1:{RECEIVER_PORT}"  # nothing listens there in this test
    process = _start_prometheus(tmp_path / "prometheus", [exporter, down])
    try:
        status, checks = run_verify(tmp_path, "target-down", verify_monitoring=monitoring())
    finally:
        _stop(process)
    assert status == "failed"
    prom = checks["monitoring_prometheus"]
    assert (prom["verdict"], prom["value"], prom["threshold"]) == ("fail", 1, 2), prom
    assert down in prom["detail"]


def test_nothing_declared_is_skipped_and_says_so(tmp_path):
    status, checks = run_verify(tmp_path, "none")
    assert status == "successful"
    assert checks["integrations"]["verdict"] == "skip" and "none declared" in checks["integrations"]["detail"]
    assert checks["monitoring"]["verdict"] == "skip" and "verify_monitoring is empty" in checks["monitoring"]["detail"]


def test_an_http_integration_is_checked_by_its_endpoint_answering(tmp_path, receiver):
    declared = [{"name": "hook", "kind": "http", "url": f"{receiver.url}/webhook/ping"},  # GET answers 405
                {"name": "strict", "kind": "http", "url": f"{receiver.url}/webhook/ping", "expect_status": [200]},
                {"name": "gone", "kind": "http", "url": f"http://127.0.0.1:{APP_PORT}/nothing-listens"}]
    status, checks = run_verify(tmp_path, "http", verify_integrations=declared)
    assert status == "failed"
    assert (checks["integration_hook"]["verdict"], checks["integration_hook"]["value"]) == ("pass", 405)
    assert (checks["integration_strict"]["verdict"], checks["integration_strict"]["value"]) == ("fail", 405)
    assert checks["integration_gone"]["verdict"] == "fail"
    assert "does not answer" in checks["integration_gone"]["detail"]
