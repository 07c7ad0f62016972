"""Issue Resolution: one ticket per cause in a GitHub-compatible tracker, once per incident, never fatal.

The tracker is a local HTTP receiver (port 36000-36099) that checks each request as GitHub documents it:
``POST /repos/{owner}/{repo}/issues`` with a JSON body {title, body, labels}, ``Authorization: Bearer <token>``,
``Accept: application/vnd.github+json``; ``GET /repos/{owner}/{repo}/issues?state=all&labels=...`` lists them.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rollbackctl import matrix, tickets
from rollbackctl.record import IncidentRecord, validate
from rollbackctl.report import render_markdown

TOKEN = "ghp_unitTestToken0123456789abcdef"
AUTHORITY = {
    "decided_by": "Dana",
    "role": "lead_devops_engineer",
    "basis": "primary",
    "consensus": [],
    "approved_by": ["Dana"],
    "explanation": "Primary",
}
TRIGGERS = {
    "fired": [
        {
            "name": "error_rate",
            "description": "Error rate above 5% for 5 minutes",
            "issue_type": "functional",
            "severity": "critical",
            "evidence": {"value": 0.12, "threshold": 0.05, "window": "5m"},
        },
        {
            "name": "p95_latency",
            "description": "p95 latency above 2s",
            "issue_type": "performance",
            "severity": "high",
            "evidence": {"value": 3.4},
        },
    ],
    "not_fired": [],
}


class Tracker:
    """A GitHub issues API on 127.0.0.1: records every request, answers as GitHub does."""

    def __init__(self):
        self.requests: list[dict] = []
        self.issues: list[dict] = []
        self.fail = 0
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                tracker.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                if url.path != "/repos/chatbot/platform/issues":
                    return self._answer(404, {"message": "Not Found"})
                wanted = query.get("labels", [""])[0]
                per_page, page = int(query.get("per_page", ["30"])[0]), int(query.get("page", ["1"])[0])
                found = [i for i in reversed(tracker.issues) if not wanted or wanted in i["labels"]]  # newest first
                self._answer(200, found[(page - 1) * per_page : page * per_page])

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                tracker.requests.append(
                    {"method": "POST", "path": self.path, "headers": dict(self.headers), "json": json.loads(raw)}
                )
                if tracker.fail:
                    tracker.fail -= 1
                    return self._answer(502, {"message": "Bad Gateway"})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"message": "Bad credentials"})
                number = len(tracker.issues) + 1
                body = json.loads(raw)
                issue = {
                    "number": number,
                    "html_url": f"https://github.example/chatbot/platform/issues/{number}",
                    "url": f"{tracker.url}/repos/chatbot/platform/issues/{number}",
                    "title": body["title"],
                    "body": body["body"],
                    "labels": body["labels"],
                    "state": "open",
                }
                tracker.issues.append(issue)
                self._answer(201, issue)

        for port in range(36000, 36100):
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        else:
            pytest.skip("no free port in 36000-36099")
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tracker():
    tracker = Tracker()
    yield tracker
    tracker.close()


class Console:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, text):
        self.lines.append(text)

    def warn(self, text):
        self.lines.append(f"WARN {text}")


@pytest.fixture
def record(tmp_path) -> IncidentRecord:
    decision = matrix.decide("functional", "critical").to_dict()
    record = IncidentRecord.create(
        tmp_path,
        "INC-TICKETS-1",
        inventory="inventories/local",
        reason="5xx on /chat",
        to_version="v0.9.0",
        authority=AUTHORITY,
        triggers=TRIGGERS,
        decision=decision,
    )
    record.data["from_version"] = "v1.0.0"
    record.set_outcome("succeeded", "rolled back")
    record.save()
    return record


def _saved(record) -> dict:
    return json.loads((record.path / "incident.json").read_text())


def test_one_ticket_per_cause_with_the_request_shape_github_documents(record, tracker):
    console = Console()
    items = tickets.file_tickets(
        record, repo="chatbot/platform", token=TOKEN, api=tracker.url, labels=["team-x"], console=console
    )
    posts = [r for r in tracker.requests if r["method"] == "POST"]
    assert len(posts) == 2
    for post in posts:
        assert post["path"] == "/repos/chatbot/platform/issues"
        headers = {k.lower(): v for k, v in post["headers"].items()}
        assert headers["authorization"] == f"Bearer {TOKEN}"
        assert headers["accept"] == "application/vnd.github+json"
        assert headers["content-type"] == "application/json"
        assert headers["x-github-api-version"] == "2022-11-28"
        assert set(post["json"]) == {"title", "body", "labels"}
        assert all(isinstance(label, str) for label in post["json"]["labels"])
    first, second = (p["json"] for p in posts)
    assert first["title"] == "Rollback of v1.0.0: Error rate above 5% for 5 minutes"
    assert first["labels"] == ["rollback-incident", "severity:critical", "functional", "team-x"]
    assert second["labels"][:2] == ["rollback-incident", "severity:high"]
    assert '"threshold": 0.05' in first["body"]  # the trigger's evidence
    assert str(record.path / "incident.json") in first["body"]  # the link to the record
    assert "<!-- rollbackctl-ticket: INC-TICKETS-1/error_rate -->" in first["body"]
    assert [i["status"] for i in items] == ["created", "created"]
    data = _saved(record)
    validate(data)
    assert data["tickets"]["backend"] == "github"
    assert data["tickets"]["target"] == f"{tracker.url}/repos/chatbot/platform"
    assert data["follow_up"]["tickets"] == [
        "https://github.example/chatbot/platform/issues/1",
        "https://github.example/chatbot/platform/issues/2",
    ]
    markdown = render_markdown(data)
    assert "https://github.example/chatbot/platform/issues/1" in markdown
    assert "| Rollback of v1.0.0: Error rate above 5% for 5 minutes | critical | created |" in markdown
    assert console.lines[0].startswith("ticket (created): https://github.example/chatbot/platform/issues/1")


def test_a_second_run_creates_nothing_new(record, tracker):
    tickets.file_tickets(record, repo="chatbot/platform", token=TOKEN, api=tracker.url)
    tickets.file_tickets(record, repo="chatbot/platform", token=TOKEN, api=tracker.url)
    assert len(tracker.issues) == 2
    # A resume whose record lost the ticket URLs (another copy of the record) finds them by their marker.
    fresh = IncidentRecord.load(record.path)
    fresh.data.pop("tickets")
    fresh.data["follow_up"]["tickets"] = []
    items = tickets.file_tickets(fresh, repo="chatbot/platform", token=TOKEN, api=tracker.url)
    assert len(tracker.issues) == 2
    assert [i["status"] for i in items] == ["found", "found"]
    assert len(_saved(fresh)["follow_up"]["tickets"]) == 2


def test_a_tracker_that_fails_is_recorded_and_never_fatal_and_the_next_run_retries(record, tracker):
    tracker.fail = 1
    console = Console()
    items = tickets.file_tickets(record, repo="chatbot/platform", token=TOKEN, api=tracker.url, console=console)
    assert [i["status"] for i in items] == ["failed", "created"]
    assert "HTTP 502" in items[0]["error"]
    assert any(line.startswith("WARN tickets: error_rate: POST /issues: HTTP 502") for line in console.lines)
    items = tickets.file_tickets(record, repo="chatbot/platform", token=TOKEN, api=tracker.url)
    assert [i["status"] for i in items] == ["created", "created"] and len(tracker.issues) == 2


def test_an_unreachable_tracker_and_a_refused_token_are_never_fatal(record, tracker):
    items = tickets.file_tickets(record, repo="chatbot/platform", token="wrong-token-1234", api=tracker.url)
    assert {i["status"] for i in items} == {"failed"} and "HTTP 401" in items[0]["error"]
    tracker.close()
    items = tickets.file_tickets(record, repo="chatbot/platform", token=TOKEN, api=tracker.url)
    assert {i["status"] for i in items} == {"failed"}
    validate(_saved(record))


def test_the_token_is_redacted_everywhere(record, tracker):
    record.data["reason"] = f"pasted by mistake: {TOKEN}"
    tracker.fail = 0
    tickets.file_tickets(record, repo="chatbot/platform", token=TOKEN, api=tracker.url)
    for post in (r for r in tracker.requests if r["method"] == "POST"):
        assert TOKEN not in json.dumps(post["json"])
    for path in Path(record.path).iterdir():
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path.name


def test_the_causes_are_the_fired_triggers_else_the_matrix_row_else_the_reason():
    assert [c.key for c in tickets.causes({"triggers": TRIGGERS})] == ["error_rate", "p95_latency"]
    decision = matrix.decide("data", "high").to_dict()
    (cause,) = tickets.causes({"triggers": {"fired": []}, "decision": decision})
    assert (cause.key, cause.severity, cause.summary) == ("matrix-data-high", "high", "Data inconsistency")
    (cause,) = tickets.causes({"reason": "checkout broken"})
    assert (cause.key, cause.summary, cause.severity) == ("reason", "checkout broken", None)


class FakeJira:
    """Another backend through the same interface (what a Jira backend would implement)."""

    name = "jira"
    target = "https://jira.example/projects/OPS"

    def __init__(self):
        self.created = []

    def find(self, marker):
        return next((tickets.Ticket(url) for url, body in self.created if marker in body), None)

    def create(self, title, body, labels):
        url = f"https://jira.example/browse/OPS-{len(self.created) + 1}"
        self.created.append((url, body))
        return tickets.Ticket(url)


def test_the_backend_is_an_interface(record):
    backend = FakeJira()
    items = tickets.file_tickets(record, backend=backend)
    assert [i["url"] for i in items] == ["https://jira.example/browse/OPS-1", "https://jira.example/browse/OPS-2"]
    assert _saved(record)["tickets"]["backend"] == "jira"


@pytest.mark.parametrize("repo", ["chatbot", "a/b/c", "../x", "a /b", ""])
def test_a_bad_repository_is_a_usage_error(repo):
    with pytest.raises(tickets.UsageError, match="--tickets-repo"):
        tickets.check_repo(repo)


def test_the_marker_is_found_past_the_first_page(record, tracker):
    tickets.file_tickets(record, repo="chatbot/platform", token=TOKEN, api=tracker.url)
    for number in range(150):  # newer issues of other incidents push these two to page 2
        tracker.issues.append(
            {
                "number": 100 + number,
                "html_url": f"https://github.example/x/{number}",
                "body": "other",
                "labels": ["rollback-incident"],
                "title": "t",
            }
        )
    fresh = IncidentRecord.load(record.path)
    fresh.data.pop("tickets")
    items = tickets.file_tickets(fresh, repo="chatbot/platform", token=TOKEN, api=tracker.url)
    assert [i["status"] for i in items] == ["found", "found"]
    assert [i["number"] for i in items] == [1, 2]
    gets = [r["path"] for r in tracker.requests if r["method"] == "GET"]
    assert any("page=2" in path for path in gets)
