"""Module nginx_ramp against a real nginx configured by the real role templates, under bounded load.

The nginx site is rendered from role nginx_front's template and the maintenance files from role
maintenance_mode's templates (as Ansible renders them), in front of a small HTTP app on loopback whose
answers the test can break. Clients with stable tokens keep calling while the module reopens; the test
checks that nginx's split agrees with the module's hash, that a client let through stays let through, that
each step is checked as served and judged from its traffic (no data is not healthy; synthetic requests fill
in), that a failed step holds everyone back again, that a configuration nginx -t refuses leaves the last
good state served, and that a rerun or check mode changes nothing.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import ansible_runner
import jinja2
import pytest
import yaml
from ansible_collections.chatbot.rollback.plugins.module_utils.traffic_ramp import in_step, parse_percent

PROJECT = Path(__file__).resolve().parents[2]
ROLES = PROJECT / "roles"
RAMP = "chatbot-maintenance-ramp.conf"

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class App(http.server.ThreadingHTTPServer):
    """Answers 200, or 500 while `failing` is set."""

    daemon_threads = True
    failing = False


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 500 if self.server.failing else 200
        body = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _render(template: Path, destination: Path, **variables) -> None:
    environment = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True,  # noqa: S701 - nginx text, not HTML
                                     loader=jinja2.FileSystemLoader(str(template.parent)))
    destination.write_text(environment.get_template(template.name).render(ansible_managed="test", **variables))


class Gateway:
    def __init__(self, root: Path, app_port: int) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf_dir = root / "conf.d"
        self.traffic_log = root / "logs" / "traffic.json"
        self.command = ["nginx", "-p", str(root), "-c", str(root / "nginx.conf")]
        for sub in ("conf.d", "logs", "tmp", "html"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        _render(ROLES / "nginx_front" / "templates" / "nginx.conf.j2", root / "nginx.conf",
                nginx_front_prefix=str(root), ansible_user_uid=os.getuid(), nginx_front_user="root")
        _render(ROLES / "nginx_front" / "templates" / "chatbot.conf.j2", self.conf_dir / "chatbot.conf",
                nginx_front_upstreams=[f"127.0.0.1:{app_port}"], nginx_front_listen=f"127.0.0.1:{self.port}",
                nginx_front_server_name="_", nginx_front_status_allow=["127.0.0.1"],
                __nginx_front_conf_dir=str(self.conf_dir), __nginx_front_generation="test",
                __nginx_front_traffic_log=str(self.traffic_log))
        self.maintenance_vars = {
            "maintenance_mode_allow": [], "maintenance_mode_bypass_token": "", "maintenance_mode_retry_after": 30,
            "maintenance_mode_html_dir": str(root / "html"), "maintenance_mode_title": "Maintenance",
            "maintenance_mode_message": "Back soon", "maintenance_mode_ramp_key_header": "Authorization",
            "maintenance_mode_ramp_key_fallback": "$remote_addr"}

    def maintenance_on(self) -> None:
        """The files role maintenance_mode writes when it switches on (every client held back)."""
        templates = ROLES / "maintenance_mode" / "templates"
        _render(templates / "maintenance.html.j2", self.root / "html" / "maintenance.html", **self.maintenance_vars)
        for name in (RAMP, "chatbot-maintenance.conf", "chatbot-maintenance.conf.inc"):
            _render(templates / f"{name}.j2", self.conf_dir / name, **self.maintenance_vars)
        self.nginx("-s", "reload")
        for number in range(60):  # every client held back: the old workers no longer answer
            self.wait_status(f"Bearer user-{number}", 503)

    def nginx(self, *arguments: str) -> None:
        subprocess.run([*self.command, *arguments], check=True, capture_output=True, timeout=30)

    def status(self, key: str, path: str = "/api/x") -> int:
        request = urllib.request.Request(self.url + path, headers={"Authorization": key})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def wait_status(self, key: str, expected: int) -> None:
        deadline = time.monotonic() + 10
        while self.status(key) != expected:
            assert time.monotonic() < deadline, f"nginx does not answer {expected} for {key}"
            time.sleep(0.05)

    def percent(self) -> int | None:
        return parse_percent((self.conf_dir / RAMP).read_text())


@pytest.fixture(scope="module")
def app():
    server = App(("127.0.0.1", _free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, app):
    gw = Gateway(tmp_path_factory.mktemp("gateway"), app.server_address[1])
    gw.nginx("-t", "-q")
    subprocess.run(gw.command, check=True, timeout=30)
    try:
        gw.wait_status("Bearer nobody", 200)
        yield gw
    finally:
        subprocess.run([*gw.command, "-s", "stop"], check=False, timeout=30)


class Load:
    """Clients with stable tokens calling in turn, bounded in time; every answer kept with its client."""

    def __init__(self, gateway: Gateway, clients: int = 120, seconds: float = 30.0) -> None:
        self.gateway = gateway
        self.keys = [f"Bearer user-{n}" for n in range(clients)]
        self.seconds = seconds
        self.answers: list[tuple[float, str, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        end = time.monotonic() + self.seconds
        number = 0
        while not self.stop.is_set() and time.monotonic() < end:
            key = self.keys[number % len(self.keys)]
            self.answers.append((time.monotonic(), key, self.gateway.status(key)))
            number += 1
            time.sleep(0.005)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def ramp(tmp_path: Path, gateway: Gateway, check: bool = False, **options) -> dict:
    args = {"path": str(gateway.conf_dir / RAMP), "nginx_command": gateway.command, "probe_url": gateway.url + "/",
            "traffic_log": str(gateway.traffic_log), **options}
    play = [{"name": "Ramp", "hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "ramp", "chatbot.rollback.nginx_ramp": args, "ignore_errors": True}]}]
    private = tmp_path / f"runner-{time.monotonic_ns()}"
    (private / "project").mkdir(parents=True)
    (private / "project" / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    runner = ansible_runner.run(
        private_data_dir=str(private), playbook="play.yml", ident="run",
        inventory=f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}",
        envvars={"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "PATH": os.environ["PATH"]},
        cmdline="--check" if check else None, quiet=True, suppress_env_files=True)
    for event in runner.events:
        if event["event"] in ("runner_on_ok", "runner_on_failed"):
            return dict(event["event_data"]["res"], failed=event["event"] == "runner_on_failed")
    raise AssertionError(f"no result: {runner.status} rc={runner.rc}\n{runner.stdout.read()}")


def test_nginx_splits_clients_as_the_module_computes(gateway):
    gateway.maintenance_on()
    ramp_file = gateway.conf_dir / RAMP
    ramp_file.write_text(ramp_file.read_text().replace("    * 0;", "    30% 1;\n    * 0;"))
    gateway.nginx("-s", "reload")
    time.sleep(0.5)
    keys = [f"Bearer user-{n}" for n in range(150)]
    served = {key: gateway.status(key) != 503 for key in keys}
    assert served == {key: in_step(key, 30) for key in keys}
    assert 0 < sum(served.values()) < len(keys)


def test_reopening_in_steps_under_load(tmp_path, gateway):
    gateway.maintenance_on()
    with Load(gateway, seconds=25) as load:
        time.sleep(0.5)
        result = ramp(tmp_path, gateway, steps=[10, 50], interval=1.5)
    assert not result["failed"], result
    assert result["changed"]
    assert result["opened_before"] == 0
    assert [step["percent"] for step in result["steps"]] == [10, 50]
    for step in result["steps"]:
        assert step["healthy"], step
        assert step["probe_inside"] == 200 and step["probe_outside"] == 503, step
        assert step["requests"] >= 3 and step["errors"] == 0
        assert step["served_after_s"] < 5
    assert gateway.percent() == 50
    # A client let through stays let through; only the clients of the 50 % step ever got through.
    first_open: dict[str, float] = {}
    for when, key, status in load.answers:
        if status != 503:
            first_open.setdefault(key, when)
        elif key in first_open:
            pytest.fail(f"{key} was let through at {first_open[key]:.2f} and held back again at {when:.2f}")
    assert set(first_open) == {key for key in load.keys if in_step(key, 50)}
    assert set(first_open) > {key for key in load.keys if in_step(key, 10)}
    assert {status for _when, _key, status in load.answers} <= {200, 503}

    # A rerun and check mode change nothing: the file says 50 % is open.
    again = ramp(tmp_path, gateway, steps=[10, 50], interval=1.5)
    assert not again["failed"] and not again["changed"] and again["steps"] == []
    checked = ramp(tmp_path, gateway, check=True, steps=[10, 50, 75])
    assert checked["changed"] and [step["percent"] for step in checked["steps"]] == [75]
    assert gateway.percent() == 50


def test_check_mode_changes_nothing(tmp_path, gateway):
    gateway.maintenance_on()
    before = (gateway.conf_dir / RAMP).read_text()
    result = ramp(tmp_path, gateway, check=True, steps=[25, 50])
    assert result["changed"] and not result["failed"]
    assert (gateway.conf_dir / RAMP).read_text() == before
    assert gateway.status("Bearer nobody") == 503


def test_no_traffic_is_not_healthy_and_holds_everyone_back(tmp_path, gateway):
    gateway.maintenance_on()
    result = ramp(tmp_path, gateway, steps=[50], interval=0.5, min_requests=3)
    assert result["failed"]
    assert result["closed"]
    assert "fewer than the 3 needed" in result["msg"]
    assert gateway.percent() == 0
    assert all(gateway.status(f"Bearer user-{n}") == 503 for n in range(30))


def test_synthetic_requests_fill_in_for_missing_traffic(tmp_path, gateway):
    gateway.maintenance_on()
    result = ramp(tmp_path, gateway, steps=[50], interval=0.5, min_requests=3, synthetic_url=gateway.url + "/api/x")
    assert not result["failed"], result
    step = result["steps"][0]
    # The served check's client inside the step reached the app too and counts; synthetic requests make up the rest.
    assert 1 <= step["synthetic"] <= 3 and step["requests"] >= 3 and step["healthy"], step
    lines = [json.loads(line) for line in gateway.traffic_log.read_text().splitlines()]
    assert sum(1 for line in lines if line["synthetic"] == "synthetic") >= step["synthetic"]
    assert any(line["synthetic"] == "probe" and line["status"] == 503 for line in lines)


def test_a_failing_step_holds_everyone_back_and_resume_continues(tmp_path, gateway, app):
    gateway.maintenance_on()
    app.failing = True
    try:
        with Load(gateway, seconds=20):
            failed = ramp(tmp_path, gateway, steps=[25, 50], interval=1.0)
    finally:
        app.failing = False
    assert failed["failed"] and failed["closed"]
    assert [step["percent"] for step in failed["steps"]] == [25]
    assert "5xx ratio" in failed["msg"] and "held back again" in failed["msg"]
    assert gateway.percent() == 0
    assert all(gateway.status(f"Bearer user-{n}") == 503 for n in range(30))
    # The host is fixed: the rerun reopens.
    with Load(gateway, seconds=20):
        resumed = ramp(tmp_path, gateway, steps=[25, 50], interval=1.0)
    assert not resumed["failed"], resumed
    assert gateway.percent() == 50


def test_a_configuration_nginx_refuses_keeps_the_last_good_state(tmp_path, gateway):
    gateway.maintenance_on()
    broken = gateway.conf_dir / "zz-broken.conf"
    broken.write_text("this is not nginx;\n")
    try:
        before = (gateway.conf_dir / RAMP).read_text()
        result = ramp(tmp_path, gateway, steps=[50], interval=0.2)
        assert result["failed"]
        assert "nginx -t -q failed" in result["msg"]
        assert (gateway.conf_dir / RAMP).read_text() == before
    finally:
        broken.unlink()
    assert gateway.status("Bearer nobody") == 503


def test_nothing_to_reopen_and_bad_steps(tmp_path, gateway):
    missing = ramp(tmp_path, gateway, steps=[50], path=str(gateway.root / "absent.conf"))
    assert not missing["failed"] and not missing["changed"]
    assert "nothing to reopen" in missing["msg"]
    gateway.maintenance_on()
    before = (gateway.conf_dir / RAMP).read_text()
    bad = ramp(tmp_path, gateway, steps=[50, 25])
    assert bad["failed"] and "must increase" in bad["msg"]
    fallback = ramp(tmp_path, gateway, steps=[50], key_fallback="$remote_addr; return 200")
    assert fallback["failed"] and "nginx variables only" in fallback["msg"]
    assert (gateway.conf_dir / RAMP).read_text() == before
