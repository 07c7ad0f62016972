"""Logic of the notify module_utils: payloads, status mapping, dedupe state, sending, redaction.

Sending is exercised against the real local receiver (rollbackctl.receiver), never a mock of urllib,
except where a server would have to misbehave in a way the receiver does not (echo a secret back).
"""

from __future__ import annotations

import io
import json
import stat
import urllib.error
import urllib.parse
from pathlib import Path

import jinja2
import pytest
import yaml
from ansible_collections.chatbot.rollback.plugins.module_utils.notify import (
    EVENTS,
    REDACTED,
    HttpRequest,
    NotifyError,
    NotifyState,
    StateError,
    make_record,
    opens_maintenance,
    redact,
    send,
    slack_payload,
    statuspage_incident,
    statuspage_request,
    statuspage_status,
    valid_incident_id,
    webhook_request,
    webhook_secrets,
)

from rollbackctl.receiver import Receiver

TOKEN = "XyZ123tokenSEGMENT987"
API_KEY = "sp-api-key-4f1c2e"
ROLE = Path(__file__).resolve().parents[2] / "roles" / "notify"


# --- status mapping -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("event", "maintenance", "scheduled", "expected"),
    [
        ("rollback_started", False, False, ("identified", "major_outage")),
        ("rollback_started", True, False, ("identified", "under_maintenance")),
        ("rollback_completed", False, False, ("resolved", "operational")),
        ("rollback_completed", True, False, ("resolved", "operational")),
        ("rollback_failed", False, False, ("identified", "major_outage")),
        ("rollback_failed", True, False, ("identified", "major_outage")),
        ("extended_downtime", False, False, ("identified", "major_outage")),
        ("extended_downtime", True, False, ("identified", "under_maintenance")),
        ("maintenance_on", False, False, ("identified", "under_maintenance")),
        ("maintenance_off", False, False, ("monitoring", "operational")),
        ("maintenance_on", False, True, ("in_progress", "under_maintenance")),
        ("maintenance_off", False, True, ("completed", "operational")),
        ("rollback_started", True, True, ("in_progress", "under_maintenance")),
        ("rollback_completed", False, True, ("completed", "operational")),
    ],
)
def test_statuspage_status(event, maintenance, scheduled, expected):
    assert statuspage_status(event, maintenance=maintenance, scheduled=scheduled) == expected


def test_every_event_maps_on_both_kinds_of_incident():
    for event in EVENTS:
        for scheduled in (False, True):
            incident, component = statuspage_status(event, scheduled=scheduled)
            statuspage_incident(name="n", status=incident, body="b", component_ids=["c"],
                                component_status=component, create=True, scheduled=scheduled)


def test_statuspage_status_rejects_unknown_event():
    with pytest.raises(ValueError, match="unknown event"):
        statuspage_status("rollback_sideways")


def test_only_maintenance_on_opens_a_scheduled_maintenance():
    assert [e for e in EVENTS if opens_maintenance(e)] == ["maintenance_on"]


@pytest.mark.parametrize(
    ("incident_id", "valid"),
    [("20240501T101500Z-api-5xx", True), ("a", True), ("A.b_c-1", True), ("x" * 128, True),
     ("x" * 129, False), ("", False), ("-leading", False), (".hidden", False), ("a/b", False),
     ("a b", False), ("inc\n1", False), ("../etc", False)],
)
def test_incident_id_validation(incident_id, valid):
    assert valid_incident_id(incident_id) is valid


# --- payloads -------------------------------------------------------------------------------------

def test_slack_payload_has_text_header_section_and_fields():
    payload = slack_payload(title="Rollback started: production", message="Decision made.\n- Reason: 5xx",
                            incident_id="inc-1", event="rollback_started",
                            fields={"Environment": "production", "Versions": "v1.0.0 → v0.9.0",
                                    "Reason": "API 5xx", "Empty": "", "Nothing": None})
    assert payload["text"].startswith("Rollback started: production\nDecision made.")
    header, section, fields, context = payload["blocks"]
    assert header["type"] == "header"
    assert header["text"] == {"type": "plain_text", "text": "Rollback started: production"}
    assert section["text"] == {"type": "mrkdwn", "text": "Decision made.\n- Reason: 5xx"}
    assert [f["text"] for f in fields["fields"]] == [
        "*Environment*\nproduction", "*Versions*\nv1.0.0 → v0.9.0", "*Reason*\nAPI 5xx", "*Incident*\ninc-1"]
    assert "rollback_started" in context["elements"][0]["text"]


def test_slack_payload_keeps_a_given_incident_field_and_clips_the_header():
    payload = slack_payload(title="T" * 400, message="", incident_id="inc-1", event="maintenance_on",
                            fields={"incident_id": "inc-1", "hosts": ["a", "b"]})
    header = payload["blocks"][0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")
    fields = payload["blocks"][1]["fields"]
    assert [f["text"] for f in fields] == ["*Incident id*\ninc-1", "*Hosts*\na, b"]
    assert payload["text"] == header


def test_slack_payload_title_defaults_to_the_event():
    payload = slack_payload(title="", message="m", incident_id="i", event="rollback_failed")
    assert payload["blocks"][0]["text"]["text"] == "Rollback failed"


def test_statuspage_create_payload():
    payload = statuspage_incident(name="Chatbot platform: service disruption", status="identified",
                                  body=" We are on it. ", component_ids=["c1", "c2"],
                                  component_status="major_outage", create=True)
    assert payload == {"incident": {"name": "Chatbot platform: service disruption", "status": "identified",
                                    "body": "We are on it.", "component_ids": ["c1", "c2"],
                                    "components": {"c1": "major_outage", "c2": "major_outage"}}}


def test_statuspage_update_payload_keeps_the_name():
    payload = statuspage_incident(name="ignored", status="resolved", body="Back.", component_ids=["c1"],
                                  component_status="operational", create=False)
    assert "name" not in payload["incident"]
    assert payload["incident"]["components"] == {"c1": "operational"}


def test_statuspage_scheduled_maintenance_payload_has_a_window():
    payload = statuspage_incident(name="m", status="in_progress", body="b", component_ids=[],
                                  component_status="under_maintenance", create=True, scheduled=True)
    incident = payload["incident"]
    assert incident["scheduled_for"] < incident["scheduled_until"]
    assert incident["scheduled_auto_completed"] is False


@pytest.mark.parametrize(("status", "component"), [("sideways", "operational"), ("resolved", "broken")])
def test_statuspage_payload_rejects_unknown_statuses(status, component):
    with pytest.raises(ValueError, match="unknown"):
        statuspage_incident(name="n", status=status, body="b", component_ids=[], component_status=component,
                            create=True)


def test_statuspage_requests_create_then_update():
    create = statuspage_request(api="https://api.statuspage.io/", page_id="pg1", api_key=API_KEY,
                                payload={"incident": {}})
    assert (create.method, create.url) == ("POST", "https://api.statuspage.io/v1/pages/pg1/incidents")
    assert create.headers["Authorization"] == f"OAuth {API_KEY}"
    update = statuspage_request(api="https://status.example/v1", page_id="pg1", api_key=API_KEY,
                                payload={"incident": {}}, statuspage_incident_id="abc")
    assert (update.method, update.url) == ("PATCH", "https://status.example/v1/pages/pg1/incidents/abc")
    assert API_KEY not in repr(update) and API_KEY not in update.display_url


def test_webhook_request_shows_only_the_host():
    request = webhook_request(f"https://hooks.example.com:8443/services/T01/B02/{TOKEN}", {"text": "x"})
    assert request.display_url == f"https://hooks.example.com:8443/{REDACTED}"
    assert TOKEN not in repr(request)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://h/x", f"hooks.example.com/{TOKEN}", ""])
def test_non_http_urls_are_refused_without_quoting_them(url):
    with pytest.raises(NotifyError) as exc:
        webhook_request(url, {"text": "x"})
    assert "webhook_url is not an http(s) URL" in str(exc.value)
    assert not url or url not in str(exc.value)


# --- redaction ------------------------------------------------------------------------------------

def test_redact_removes_the_url_its_path_its_token_and_quoted_forms():
    url = f"https://hooks.example.com/services/T01ABCDEF/B02/{TOKEN}?x=1"
    secrets = webhook_secrets(url)
    text = (f"POST {url} failed; path /services/T01ABCDEF/B02/{TOKEN}?x=1; token {TOKEN}; "
            f"quoted {urllib.parse.quote(url, safe='')}")
    clean = redact(text, secrets)
    assert TOKEN not in clean and "hooks.example.com/services" not in clean
    assert clean.endswith(f"quoted {REDACTED}")
    assert clean.startswith(f"POST {REDACTED} failed")


def test_redact_api_key_and_leaves_other_text_alone():
    assert redact(f"HTTP 401: key {API_KEY} rejected", [API_KEY, ""]) == f"HTTP 401: key {REDACTED} rejected"
    assert redact("nothing secret", []) == "nothing secret"


def test_webhook_secrets_of_no_url():
    assert webhook_secrets("") == []


# --- sending --------------------------------------------------------------------------------------

@pytest.fixture
def receiver():
    with Receiver(api_key=API_KEY) as running:
        yield running


def _webhook(receiver) -> HttpRequest:
    return webhook_request(f"{receiver.url}/webhook/{TOKEN}", {"text": "hello"})


def test_send_posts_json(receiver):
    response = send(_webhook(receiver), timeout=5)
    assert (response.status, response.body, response.attempts) == (200, "ok", 1)
    (request,) = receiver.requests
    assert request["body"] == {"text": "hello"} and request["headers"]["Content-Type"] == "application/json"


def test_send_retries_5xx_with_backoff(receiver):
    receiver.fail_next(2, status=503)
    sleeps = []
    response = send(_webhook(receiver), timeout=5, sleep=sleeps.append)
    assert (response.status, response.attempts) == (200, 3)
    assert sleeps == [0.5, 1.0]
    assert [r["status"] for r in receiver.requests] == [503, 503, 200]


def test_send_gives_up_after_two_retries_and_redacts(receiver):
    receiver.fail_next(10, status=500)
    with pytest.raises(NotifyError) as exc:
        send(_webhook(receiver), timeout=5, secrets=webhook_secrets(f"{receiver.url}/webhook/{TOKEN}"),
             sleep=lambda _: None)
    assert (exc.value.http_status, exc.value.attempts) == (500, 3)
    assert "HTTP 500" in str(exc.value) and "3 attempt(s)" in str(exc.value)
    assert TOKEN not in str(exc.value)
    assert len(receiver.requests) == 3


def test_send_does_not_retry_4xx(receiver):
    request = statuspage_request(api=receiver.url, page_id="pg", api_key="wrong-key",
                                 payload={"incident": {}})
    with pytest.raises(NotifyError) as exc:
        send(request, timeout=5, secrets=["wrong-key"], sleep=lambda _: pytest.fail("no retry on 4xx"))
    assert (exc.value.http_status, exc.value.attempts) == (401, 1)
    assert "HTTP 401" in str(exc.value) and "wrong-key" not in str(exc.value)
    (seen,) = receiver.requests
    assert seen["authorization"] == {"present": True, "scheme": "OAuth"}
    assert "Authorization" not in seen["headers"]


def test_send_retries_connection_errors(receiver):
    receiver.down = True
    sleeps = []
    with pytest.raises(NotifyError) as exc:
        send(_webhook(receiver), timeout=5, sleep=sleeps.append)
    assert exc.value.http_status is None and exc.value.attempts == 3 and len(sleeps) == 2
    assert receiver.requests == []


def test_send_redacts_a_secret_echoed_by_the_server():
    class EchoingOpener:
        def open(self, req, timeout):
            body = io.BytesIO(f"invalid token {TOKEN} for {req.full_url}".encode())
            raise urllib.error.HTTPError(req.full_url, 403, "Forbidden", {}, body)

    url = f"https://hooks.example.com/services/{TOKEN}"
    with pytest.raises(NotifyError) as exc:
        send(webhook_request(url, {"text": "x"}), secrets=webhook_secrets(url), opener=EchoingOpener())
    assert "HTTP 403 Forbidden: invalid token" in str(exc.value)
    assert TOKEN not in str(exc.value) and "services" not in str(exc.value)


def test_statuspage_create_and_update_against_the_receiver(receiver):
    opened = statuspage_incident(name="n", status="identified", body="b", component_ids=["c1"],
                                 component_status="major_outage", create=True)
    created = send(statuspage_request(api=receiver.url, page_id="pg", api_key=API_KEY, payload=opened),
                   timeout=5)
    assert created.status == 201
    incident_id = created.body["id"]
    resolved = statuspage_incident(name="n", status="resolved", body="ok", component_ids=["c1"],
                                   component_status="operational", create=False)
    updated = send(statuspage_request(api=receiver.url, page_id="pg", api_key=API_KEY, payload=resolved,
                                      statuspage_incident_id=incident_id), timeout=5)
    assert updated.status == 200
    assert receiver.incidents("pg")[incident_id]["status"] == "resolved"
    assert receiver.components("pg") == {"c1": "operational"}


# --- dedupe state ---------------------------------------------------------------------------------

def test_state_starts_empty_when_missing(tmp_path):
    state = NotifyState.load(str(tmp_path / "absent.json"))
    assert state.sent("inc", "rollback_started", "webhook") is None
    assert state.statuspage_incident("inc") is None


def test_state_remembers_per_incident_event_and_channel(tmp_path):
    path = tmp_path / "deep" / "state" / "notify.json"
    state = NotifyState()
    record = make_record(channel="statuspage", event="rollback_started", status="sent", http_status=201,
                         sent_at="2024-05-01T10:00:00Z", statuspage_incident_id="sp1")
    state.remember("inc-1", {**record, "url": f"https://x/{TOKEN}", "api_key": API_KEY, "error": "e"})
    state.set_statuspage_incident("inc-1", "sp1", scheduled=False)
    state.save(str(path))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert TOKEN not in text and API_KEY not in text and '"error"' not in text

    loaded = NotifyState.load(str(path))
    assert loaded.sent("inc-1", "rollback_started", "statuspage") == record
    assert loaded.sent("inc-1", "rollback_started", "webhook") is None
    assert loaded.sent("inc-1", "rollback_completed", "statuspage") is None
    assert loaded.sent("inc-2", "rollback_started", "statuspage") is None
    assert loaded.statuspage_incident("inc-1") == {"id": "sp1", "scheduled": False}
    assert json.loads(text)["incidents"]["inc-1"]["sent"].keys() == {"rollback_started/statuspage"}


def test_state_save_replaces_atomically(tmp_path):
    path = tmp_path / "notify.json"
    for event in ("rollback_started", "rollback_completed"):
        state = NotifyState.load(str(path))
        state.remember("inc", make_record(channel="webhook", event=event, status="sent", http_status=200))
        state.save(str(path))
    assert sorted(json.loads(path.read_text())["incidents"]["inc"]["sent"]) == [
        "rollback_completed/webhook", "rollback_started/webhook"]
    assert [p.name for p in tmp_path.iterdir()] == ["notify.json"]


@pytest.mark.parametrize("content", ["{broken", "[]", '{"incidents": []}'])
def test_state_refuses_garbage(tmp_path, content):
    path = tmp_path / "notify.json"
    path.write_text(content)
    with pytest.raises(StateError, match="notification state"):
        NotifyState.load(str(path))


def test_records_name_the_statuspage_incident_only_for_the_status_page():
    sent = make_record(channel="webhook", event="maintenance_on", status="sent")
    assert "statuspage_incident_id" not in sent
    failed = make_record(channel="statuspage", event="maintenance_on", status="failed", error="boom")
    assert failed["statuspage_incident_id"] is None and failed["error"] == "boom"


# --- templates ------------------------------------------------------------------------------------

def _render(event: str, audience: str, context: dict) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), trim_blocks=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 (markdown, not HTML)
    defaults = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__notify_context_defaults"]
    ctx = {**defaults, **context}
    return env.get_template(f"{event}.md.j2").render(__notify_ctx=ctx, __notify_audience=audience).strip()


FULL_CONTEXT = {
    "environment": "production", "incident_id": "inc-1", "from_version": "v1.0.0", "to_version": "v0.9.0",
    "reason": "API endpoints returning 5xx errors", "decided_by": "Ana", "authority": "Lead DevOps Engineer",
    "procedure": "emergency", "eta_minutes": 45, "started_at": "2024-05-01T10:15:00Z",
    "finished_at": "2024-05-01T11:02:00Z", "outcome": "success",
    "status_page_note": "Thanks for your patience.",
    "maintenance": True, "failed_phase": "verify_app", "error": "health check failed",
}


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("audience", ["team", "public"])
@pytest.mark.parametrize("context", [{"incident_id": "inc-1"}, FULL_CONTEXT], ids=["minimal", "full"])
def test_templates_render_a_title_and_a_body(event, audience, context):
    text = _render(event, audience, context)
    title, _, body = text.partition("\n")
    assert title.startswith("# ") and len(title) > 5
    assert body.strip()
    for junk in ("None", "{{", "{%", "  ", "\n\n\n", ": ,", "()"):
        assert junk not in text, (junk, text)


def test_public_messages_hold_no_internal_details():
    for event in EVENTS:
        text = _render(event, "public", FULL_CONTEXT)
        for internal in ("Ana", "Lead DevOps", "inc-1", "verify_app", "health check failed"):
            assert internal not in text, (event, internal)


def test_team_messages_carry_the_decision_and_the_eta():
    started = _render("rollback_started", "team", FULL_CONTEXT)
    assert started.startswith("# Rollback started: production v1.0.0 → v0.9.0")
    assert "by Ana (Lead DevOps Engineer); emergency procedure" in started
    assert "acknowledge" in started
    assert "45 minutes" in _render("extended_downtime", "public", FULL_CONTEXT)
    assert "unknown" in _render("extended_downtime", "team", {"incident_id": "inc-1"})
