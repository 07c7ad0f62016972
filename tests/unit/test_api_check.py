"""Logic of the api_check module_utils: verdicts at their thresholds, versions, the 5xx rate, /health, and the
checks of a scope run over real HTTP against a small stand-in of the platform's API (a local server)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils.api_check import (
    BYPASS_HEADER,
    Api,
    HttpResult,
    Options,
    UnknownVersion,
    at_most,
    check,
    health_checks,
    latency_check,
    normalize_version,
    pick_conversation,
    rate_5xx,
    rate_5xx_check,
    release_version,
    run_checks,
    since_start_check,
    summary,
    version_check,
    web_tier_check,
)

# ---- verdicts ------------------------------------------------------------------------------------


def test_check_has_every_field_and_a_known_verdict():
    assert check("x", "app", 1, 2, "ms", "pass", "d") == {
        "name": "x", "scope": "app", "value": 1, "threshold": 2, "unit": "ms", "verdict": "pass", "detail": "d"}
    with pytest.raises(ValueError, match="verdict"):
        check("x", "app", verdict="ok")


@pytest.mark.parametrize(
    ("value", "verdict"),
    [(0.0, "pass"), (2999.9, "pass"), (3000, "pass"), (3000.0, "pass"), (3000.1, "fail"), (None, "fail")],
)
def test_at_most_equal_passes_missing_fails(value, verdict):
    # The plan triggers on "response times > 3 seconds": exactly 3000 ms is still acceptable.
    assert at_most(value, 3000) == verdict


def test_latency_check_at_the_boundary():
    assert latency_check("latency_login", HttpResult(200, {}, {}, 3000.0), 3000, "app")["verdict"] == "pass"
    slow = latency_check("latency_login", HttpResult(200, {}, {}, 3000.1), 3000, "app")
    assert slow["verdict"] == "fail"
    assert (slow["value"], slow["threshold"], slow["unit"]) == (3000.1, 3000, "ms")


def test_latency_check_without_an_answer_fails():
    result = latency_check("latency_login", HttpResult(None, None, {}, 12.0, "ConnectionRefusedError: refused"),
                           3000, "app")
    assert result["verdict"] == "fail"
    assert "no answer" in result["detail"]
    not_run = latency_check("latency_send_message", None, 3000, "full", "login failed")
    assert (not_run["verdict"], not_run["value"]) == ("fail", None)
    assert "login failed" in not_run["detail"]


def test_summary_lists_failed_checks_with_value_and_threshold():
    checks = [check("a", "app", 1, 0, "restarts", "fail", "crash loop"), check("b", "app", 5, 10, "ms", "pass"),
              check("c", "full", 3500.2, 3000, "ms", "fail")]
    assert summary(checks) == "a: 1 restarts vs 0 restarts (crash loop); c: 3500.2 ms vs 3000 ms"
    assert summary(checks[1:2]) == ""


# ---- versions ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("v0.9.0", "0.9.0"), ("V1.2.3", "1.2.3"), ("0.9.0", "0.9.0"), (" v0.9.0 ", "0.9.0"), ("", ""), (None, ""),
     ("version", "version")],
)
def test_normalize_version(raw, normalized):
    assert normalize_version(raw) == normalized


def test_version_check_compares_normalized_versions():
    ok = version_check("v0.9.0", "0.9.0", ["0.9.0"])
    assert (ok["verdict"], ok["value"], ok["threshold"]) == ("pass", "0.9.0", "0.9.0")
    wrong = version_check("v1.0.0", "0.9.0")
    assert wrong["verdict"] == "fail"
    assert "expected 1.0.0" in wrong["detail"]
    assert version_check("", "0.9.0")["verdict"] == "skip"
    assert version_check("v0.9.0", None)["verdict"] == "fail"


def test_version_check_fails_when_a_worker_runs_another_release():
    mixed = version_check("v0.9.0", "0.9.0", ["0.9.0", "1.0.0"])
    assert mixed["verdict"] == "fail"
    assert "1.0.0" in mixed["detail"]


def test_release_version_reads_release_json(tmp_path):
    path = tmp_path / "release.json"
    path.write_text(json.dumps({"version": "v0.9.0", "schema_version": 1}))
    assert release_version(str(path)) == "v0.9.0"
    missing = release_version(str(tmp_path / "nope.json"))
    assert isinstance(missing, UnknownVersion)
    unknown = version_check(missing, "0.9.0")
    assert unknown["verdict"] == "fail"
    assert "cannot be read" in unknown["detail"]
    path.write_text("{not json")
    assert isinstance(release_version(str(path)), UnknownVersion)
    path.write_text(json.dumps({"schema_version": 1}))
    assert isinstance(release_version(str(path)), UnknownVersion)


# ---- the 5xx rate from two /metrics samples -----------------------------------------------------

def _metrics(requests, errors, pids=(101, 102)):
    return {"requests_total": requests, "responses_5xx": errors, "worker_pids": list(pids), "since": "t0"}


def test_rate_is_the_delta_of_5xx_over_the_delta_of_requests():
    assert rate_5xx(_metrics(100, 7), _metrics(110, 9)) == {"rate": 0.2, "requests": 10, "errors": 2,
                                                            "problem": None}
    # errors from before the window do not count
    assert rate_5xx(_metrics(100, 50), _metrics(108, 50))["rate"] == 0.0


def test_rate_with_zero_requests_is_unknown_and_fails():
    rate = rate_5xx(_metrics(100, 1), _metrics(100, 1))
    assert rate["rate"] is None
    assert "no request" in rate["problem"]
    result = rate_5xx_check(_metrics(100, 1), _metrics(100, 1), 0.0)
    assert (result["verdict"], result["value"]) == ("fail", None)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (_metrics(100, 1), _metrics(20, 0)),                     # counters went backwards
        (_metrics(100, 1), _metrics(110, 1, pids=(101, 103))),  # a worker was replaced
        (None, _metrics(10, 0)),
        (_metrics(10, 0), None),
        ({"requests_total": 1}, _metrics(10, 0)),
    ],
)
def test_rate_fails_on_missing_or_reset_counters(before, after):
    assert rate_5xx(before, after)["rate"] is None
    assert rate_5xx_check(before, after, 1.0)["verdict"] == "fail"


def test_rate_check_thresholds():
    assert rate_5xx_check(_metrics(0, 0), _metrics(10, 0), 0.0)["verdict"] == "pass"
    any_5xx = rate_5xx_check(_metrics(0, 0), _metrics(10, 1), 0.0, window_s=2.5)
    assert (any_5xx["verdict"], any_5xx["value"], any_5xx["threshold"]) == ("fail", 0.1, 0.0)
    assert "1 of 10 requests" in any_5xx["detail"]
    assert "2.5 s" in any_5xx["detail"]
    assert rate_5xx_check(_metrics(0, 0), _metrics(10, 1), 0.1)["verdict"] == "pass"  # equal passes
    assert rate_5xx_check(_metrics(0, 0), _metrics(10, 2), 0.1)["verdict"] == "fail"


def test_since_start_rate_is_information_only():
    info = since_start_check(_metrics(200, 50))
    assert (info["verdict"], info["value"], info["threshold"]) == ("skip", 0.25, None)
    assert since_start_check(_metrics(0, 0))["value"] == 0.0
    assert since_start_check(None)["verdict"] == "skip"


# ---- /health -------------------------------------------------------------------------------------

def _health(status=200, state="ok", version="0.9.0", compatible=True, server="nginx/1.22.1"):
    body = {"status": state, "version": version, "db": {"reachable": True},
            "schema": {"expected": 1, "actual": 1 if compatible else 2, "compatible": compatible}}
    return HttpResult(status, body, {"Server": server} if server else {}, 5.0)


def _by_name(checks):
    return {c["name"]: c for c in checks}


def test_health_app_scope_accepts_a_degraded_answer_before_the_database_restore():
    checks = _by_name(health_checks(_health(503, "degraded", compatible=False), "app", "v0.9.0"))
    assert set(checks) == {"health_answers", "app_version"}
    assert checks["health_answers"]["verdict"] == "pass"
    assert checks["app_version"]["verdict"] == "pass"


def test_health_full_scope_wants_ok_and_a_compatible_schema():
    good = _by_name(health_checks(_health(), "full", "0.9.0"))
    assert {c["verdict"] for c in good.values()} == {"pass"}
    assert set(good) == {"health_answers", "app_version", "health_status", "schema_compatible", "nginx"}
    bad = _by_name(health_checks(_health(503, "degraded", compatible=False), "full", "0.9.0"))
    assert bad["health_status"]["verdict"] == "fail"
    assert (bad["schema_compatible"]["verdict"], bad["schema_compatible"]["value"],
            bad["schema_compatible"]["threshold"]) == ("fail", 2, 1)


@pytest.mark.parametrize("result", [HttpResult(502, None, {"Server": "nginx"}, 1.0),
                                    HttpResult(200, {"hello": "world"}, {}, 1.0),
                                    HttpResult(None, None, {}, 1.0, "refused")])
def test_health_fails_when_the_app_does_not_answer(result):
    checks = _by_name(health_checks(result, "app", "0.9.0"))
    assert checks["health_answers"]["verdict"] == "fail"
    assert checks["app_version"]["verdict"] == "fail"


def test_web_tier_check_reads_the_server_header():
    assert web_tier_check(_health())["verdict"] == "pass"
    assert web_tier_check(HttpResult(502, None, {"server": "nginx"}, 1.0))["verdict"] == "pass"  # nginx answers
    assert web_tier_check(_health(server=None))["verdict"] == "fail"  # the app itself (no Server header)
    assert web_tier_check(_health(server="Apache"))["verdict"] == "fail"
    assert web_tier_check(HttpResult(None, None, {}, 1.0, "refused"))["verdict"] == "fail"
    assert web_tier_check(_health(server=None), server_header="")["verdict"] == "pass"


# ---- the checks of a scope against a stand-in of the platform's API -------------------------------

PASSWORD = "pw-Very-Secret-1"
TOKEN = "tok-abcdefghijklmnopqrstuvwxyz012345"


class FakePlatform(ThreadingHTTPServer):
    """Just enough of the chatbot API: login, conversations, messages, /health, /metrics (request counters)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests = []
        self.counters = {"requests_total": 0, "responses_5xx": 0}
        self.conversations = [{"id": "c" * 24, "title": "seeded"}]
        self.messages = {}
        self.send_status = 201
        self.login_delay = 0.0
        self.version = "0.9.0"
        self.health_status = 200

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def methods(self, prefix=""):
        return [f"{m} {p}" for m, p, _ in self.requests if p.startswith(prefix)]


class _Handler(BaseHTTPRequestHandler):
    server: FakePlatform

    def log_message(self, *args):
        pass

    def _reply(self, status, body=None):
        payload = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        with self.server.lock:
            self.server.counters["requests_total"] += 1
            self.server.counters["responses_5xx"] += status >= 500

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else {}

    def _handle(self, method):
        srv = self.server
        body = self._body() if method in ("POST",) else {}
        srv.requests.append((method, self.path, dict(self.headers)))
        authed = self.headers.get("Authorization") == f"Bearer {TOKEN}"
        path = self.path.split("?")[0]
        if path == "/health":
            return self._reply(srv.health_status, {"status": "ok" if srv.health_status == 200 else "degraded",
                                                   "version": srv.version, "db": {"reachable": True},
                                                   "schema": {"expected": 1, "actual": 1, "compatible": True}})
        if path == "/metrics":
            with srv.lock:
                counters = dict(srv.counters)
            return self._reply(200, {**counters, "worker_pids": [1, 2], "versions": [srv.version], "since": "t0"})
        if path == "/api/login":
            time.sleep(srv.login_delay)
            if body.get("username") == "synthetic-monitor" and body.get("password") == PASSWORD:
                return self._reply(200, {"token": TOKEN, "user": {"username": "synthetic-monitor"}})
            return self._reply(401, {"error": "invalid_credentials"})
        if not authed:
            return self._reply(401, {"error": "unauthorized"})
        if path == "/api/conversations" and method == "GET":
            return self._reply(200, {"conversations": srv.conversations})
        if path == "/api/conversations" and method == "POST":
            conv = {"id": f"{len(srv.conversations):024x}", "title": body["title"]}
            srv.conversations.append(conv)
            return self._reply(201, {"conversation": conv})
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "conversations"] and parts[3:] == ["messages"]:
            if method == "POST":
                if srv.send_status != 201:
                    return self._reply(srv.send_status, {"error": "internal"})
                n = len(srv.messages)
                mine = {"id": f"m{n}", "text": body["text"]}
                reply = {"id": f"m{n + 1}", "text": "Hello!"}
                srv.messages.update({mine["id"]: (parts[2], mine), reply["id"]: (parts[2], reply)})
                return self._reply(201, {"message": mine, "reply": reply})
            return self._reply(200, {"messages": [m for c, m in srv.messages.values() if c == parts[2]]})
        if parts[:2] == ["api", "messages"] and method == "DELETE":
            return self._reply(204) if srv.messages.pop(parts[2], None) else self._reply(404, {"error": "not_found"})
        return self._reply(404, {"error": "not_found"})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")


@pytest.fixture
def platform():
    server = FakePlatform()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run(platform, **overrides):
    options = Options(scope="full", user="synthetic-monitor", password=PASSWORD, expected_version="v0.9.0",
                      metrics_settle_s=0, server_header="")
    for key, value in overrides.items():
        setattr(options, key, value)
    secrets: set = set()
    checks = run_checks(Api(platform.url, timeout=5, bypass_token="bypass-token-0123456789"), options, secrets)
    return _by_name(checks), secrets, checks


def test_full_scope_on_a_healthy_platform_passes_and_cleans_up(platform):
    checks, secrets, ordered = _run(platform)
    assert {c["verdict"] for name, c in checks.items() if name != "api_5xx_rate_since_start"} == {"pass"}
    assert {"auth_login", "latency_login", "conversations_list", "latency_list_conversations", "messaging_send",
            "latency_send_message", "messaging_read", "latency_list_messages", "messaging_cleanup", "api_5xx_rate",
            "health_status", "schema_compatible", "nginx", "app_version", "health_answers"} <= set(checks)
    assert all(c["threshold"] == 3000 for name, c in checks.items() if name.startswith("latency_"))
    # written in the user's conversation, the message and the bot's reply are gone again
    assert [c["title"] for c in platform.conversations] == ["seeded"]
    assert "POST /api/conversations/" + "c" * 24 + "/messages" in platform.methods()
    assert platform.messages == {}
    assert checks["messaging_cleanup"]["value"] == 2
    # every request carried the bypass header; the secrets never appear in the checks
    assert all(headers.get(BYPASS_HEADER) == "bypass-token-0123456789" for _, _, headers in platform.requests)
    assert secrets == {TOKEN}
    text = json.dumps(ordered)
    assert PASSWORD not in text and TOKEN not in text and "bypass-token" not in text


def test_a_user_without_conversations_gets_one_created_once(platform):
    platform.conversations = []
    _run(platform)
    checks, _, _ = _run(platform)
    assert checks["messaging_send"]["verdict"] == "pass"
    assert [c["title"] for c in platform.conversations] == ["synthetic verification"]
    assert platform.messages == {}


def test_pick_conversation_prefers_the_titled_one_then_the_newest():
    listed = [{"id": "a", "title": "newest"}, {"id": "b", "title": "synthetic verification"}]
    assert pick_conversation(listed, "synthetic verification") == "b"
    assert pick_conversation(listed[:1], "synthetic verification") == "a"
    assert pick_conversation([], "synthetic verification") is None
    assert pick_conversation([{"title": "no id"}, "junk"], "x") is None


def test_app_scope_only_reads_health_and_logs_in(platform):
    checks, _, _ = _run(platform, scope="app")
    assert set(checks) == {"health_answers", "app_version", "auth_login", "latency_login"}
    assert {c["verdict"] for c in checks.values()} == {"pass"}
    assert not [r for r in platform.methods() if r.startswith(("POST /api/conversations", "DELETE"))]


def test_check_mode_writes_nothing(platform):
    checks, _, _ = _run(platform, write=False)
    for name in ("messaging_send", "latency_send_message", "messaging_read", "latency_list_messages",
                 "messaging_cleanup"):
        assert checks[name]["verdict"] == "skip"
        assert "check mode" in checks[name]["detail"]
    assert checks["auth_login"]["verdict"] == "pass"
    assert not [r for r in platform.methods() if r.startswith(("POST /api/conversations", "DELETE"))]


def test_messaging_5xx_fails_send_and_the_5xx_rate(platform):
    platform.send_status = 500
    checks, _, _ = _run(platform)
    assert checks["messaging_send"]["verdict"] == "fail"
    assert checks["messaging_send"]["value"] == 500
    assert "may have stored" in checks["messaging_send"]["detail"]
    assert checks["messaging_read"]["verdict"] == "fail"  # not run: nothing was sent
    assert checks["messaging_cleanup"]["verdict"] == "skip"
    assert checks["api_5xx_rate"]["verdict"] == "fail"
    assert checks["api_5xx_rate"]["value"] > 0
    assert "1 of" in checks["api_5xx_rate"]["detail"]


def test_wrong_password_fails_login_and_everything_that_needs_it(platform):
    checks, secrets, _ = _run(platform, password="wrong-password")
    assert (checks["auth_login"]["verdict"], checks["auth_login"]["value"]) == ("fail", 401)
    assert "invalid_credentials" in checks["auth_login"]["detail"]
    for name in ("conversations_list", "messaging_send", "messaging_read", "latency_send_message"):
        assert checks[name]["verdict"] == "fail"
        assert "log in" in checks[name]["detail"]
    assert secrets == set()


def test_slow_login_fails_its_latency_check(platform):
    platform.login_delay = 0.2
    checks, _, _ = _run(platform, scope="app", latency_threshold_ms=100)
    assert checks["auth_login"]["verdict"] == "pass"
    assert checks["latency_login"]["verdict"] == "fail"
    assert checks["latency_login"]["value"] >= 200


def test_wrong_version_fails_the_version_check(platform):
    platform.version = "1.0.0"
    checks, _, _ = _run(platform, scope="app")
    assert checks["app_version"]["verdict"] == "fail"
    assert (checks["app_version"]["value"], checks["app_version"]["threshold"]) == ("1.0.0", "0.9.0")


def test_nothing_listening_fails_every_check_without_raising():
    api = Api("http://127.0.0.1:9", timeout=2)
    checks = run_checks(api, Options(scope="full", user="u", password=PASSWORD, metrics_settle_s=0))
    judged = [c for c in checks if c["name"] != "api_5xx_rate_since_start"]
    assert {c["verdict"] for c in judged} <= {"fail", "skip"}
    assert {"health_answers", "auth_login", "api_5xx_rate", "nginx"} <= {c["name"] for c in judged
                                                                         if c["verdict"] == "fail"}
