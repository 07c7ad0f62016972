"""Issue Resolution: one ticket per cause of the rollback, in an issue tracker.

The plan's Post-Rollback Actions: "Create tickets for issues that caused the rollback; prioritize fixes based
on severity". `file_tickets()` opens one ticket per cause of the incident: each fired trigger of the recorded
trigger report (with its evidence), else the decision-matrix row, else the reason given. Each ticket carries
a title, the severity (label ``severity:<level>``), the evidence, a link to the record, and a marker
(``rollbackctl-ticket: <incident>/<cause>``) by which it is found again: a second run (a resume, the same
command twice) creates nothing new. The record keeps each ticket (``tickets.items``; its URL also in
``follow_up.tickets``).

Filing tickets is never fatal to the rollback: a tracker that refuses or cannot be reached is recorded (status
``failed``, the error, redacted) and reported as a warning. The token is sent only in the ``Authorization``
header and is redacted from everything written (it joins the record's secrets).

Backends implement `TicketBackend` (``find(marker)``, ``create(title, body, labels)``); `GitHubIssues` speaks
GitHub's REST API (``POST /repos/{owner}/{repo}/issues``, ``Authorization: Bearer``), which Gitea and GitHub
Enterprise also serve. A Jira backend would implement the same two methods (``POST /rest/api/2/issue``, a JQL
search on the marker label).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from . import __version__
from .errors import TicketError, UsageError
from .redact import redact, redact_text
from .times import utcnow

if TYPE_CHECKING:
    from .record import IncidentRecord

DEFAULT_API = "https://api.github.com"
TOKEN_ENV = "ROLLBACKCTL_TICKETS_TOKEN"  # noqa: S105 - the name of a variable, not a token
LABEL = "rollback-incident"
MARKER = "rollbackctl-ticket"
PER_PAGE = 100
PAGES = 10
_REPO = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}", re.ASCII)
_CAUSE = re.compile(r"[^A-Za-z0-9._-]+")


def check_repo(value: Any, option: str = "--tickets-repo") -> str:
    """OWNER/NAME of a repository (letters, digits, '.', '_', '-')."""
    if not isinstance(value, str) or not _REPO.fullmatch(value) or ".." in value:
        raise UsageError(f"{option}: {str(value)[:80]!r} is not OWNER/NAME, e.g. chatbot/platform")
    return value


@dataclass(frozen=True)
class Ticket:
    url: str
    number: int | None = None


class TicketBackend(Protocol):
    """What a ticket backend does: find a ticket by its marker, create one."""

    name: str
    target: str

    def find(self, marker: str) -> Ticket | None: ...

    def create(self, title: str, body: str, labels: list[str]) -> Ticket: ...


class GitHubIssues:
    """GitHub's issues REST API (and compatible servers): ``POST /repos/{owner}/{repo}/issues``."""

    name = "github"

    def __init__(self, repo: str, token: str, api: str = DEFAULT_API, timeout: float = 10.0):
        self.repo = check_repo(repo)
        self.api = api.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.target = f"{self.api}/repos/{self.repo}"

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"rollbackctl/{__version__}",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self.target}{path}", data=data, headers=headers, method=method)  # noqa: S310 - http(s) only (inputs.url)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                text = response.read(4 * 1024 * 1024)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace") if exc.fp else ""
            raise TicketError(f"{method} {path}: HTTP {exc.code} {exc.reason} {detail}".strip()) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TicketError(f"{method} {path}: {getattr(exc, 'reason', None) or exc}") from None
        try:
            return json.loads(text) if text else None
        except ValueError:
            raise TicketError(f"{method} {path}: the answer is not JSON") from None

    def find(self, marker: str) -> Ticket | None:
        """The issue (open or closed) with the marker label whose body holds `marker`, newest first, at most
        `PAGES` pages of 100 (GitHub's search API is not used: its index lags behind a just-created issue)."""
        for page in range(1, PAGES + 1):
            query = urllib.parse.urlencode({"state": "all", "labels": LABEL, "per_page": PER_PAGE, "page": page})
            issues = self._request("GET", f"/issues?{query}")
            issues = issues if isinstance(issues, list) else []
            for issue in issues:
                if isinstance(issue, dict) and marker in str(issue.get("body") or ""):
                    number = issue.get("number")
                    return Ticket(
                        str(issue.get("html_url") or issue.get("url") or ""),
                        number if isinstance(number, int) else None,
                    )
            if len(issues) < PER_PAGE:
                return None
        return None

    def create(self, title: str, body: str, labels: list[str]) -> Ticket:
        issue = self._request("POST", "/issues", {"title": title, "body": body, "labels": labels})
        if not isinstance(issue, dict) or not (issue.get("html_url") or issue.get("url")):
            raise TicketError("POST /issues: the answer names no issue (no html_url)")
        number = issue.get("number")
        return Ticket(str(issue.get("html_url") or issue["url"]), number if isinstance(number, int) else None)


# ---- the causes of a rollback -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cause:
    key: str
    summary: str
    severity: str | None
    issue_type: str | None
    evidence: Any


def causes(data: Mapping[str, Any]) -> list[Cause]:
    """The causes of the incident: each fired trigger, else the decision-matrix row, else the reason."""
    decision = data.get("decision") or {}
    found = []
    for trigger in (data.get("triggers") or {}).get("fired") or []:
        if isinstance(trigger, Mapping) and trigger.get("name"):
            name = str(trigger["name"])
            found.append(
                Cause(
                    _CAUSE.sub("-", name)[:80],
                    str(trigger.get("description") or name),
                    trigger.get("severity") or decision.get("severity"),
                    trigger.get("issue_type"),
                    trigger.get("evidence"),
                )
            )
    if found:
        return found
    if decision.get("issue_type"):
        return [
            Cause(
                f"matrix-{decision['issue_type']}-{decision.get('severity')}",
                str(decision.get("impact") or decision.get("row_text") or decision["issue_type"]),
                decision.get("severity"),
                decision.get("issue_type"),
                decision.get("row_text"),
            )
        ]
    return [Cause("reason", str(data.get("reason") or "rollback")[:120], None, None, None)]


def marker(incident_id: str, cause: Cause) -> str:
    return f"{MARKER}: {incident_id}/{cause.key}"


def _title(data: Mapping[str, Any], cause: Cause) -> str:
    release = data.get("from_version") or "the release"
    first = cause.summary.splitlines()[0] if cause.summary else cause.key
    return f"Rollback of {release}: {first}"[:200]


def _body(data: Mapping[str, Any], cause: Cause, record_link: str, mark: str) -> str:
    evidence = json.dumps(cause.evidence, indent=2, sort_keys=True, default=str) if cause.evidence else "none recorded"
    lines = [
        f"The release {data.get('from_version') or '?'} was rolled back to {data.get('to_version') or '?'} "
        f"(incident `{data.get('incident_id')}`, outcome: {(data.get('outcome') or {}).get('status')}).",
        "",
        f"- Cause: {cause.summary}",
        f"- Severity: {cause.severity or 'not given'}",
        f"- Issue type: {cause.issue_type or 'not given'}",
        f"- Reason given: {data.get('reason') or ''}",
        f"- Decided by: {(data.get('authority') or {}).get('decided_by') or '?'}",
        f"- Incident record: {record_link}",
        "",
        "Evidence:",
        "",
        "```json",
        evidence,
        "```",
        "",
        "Post-Rollback Actions: implement and test the fix in development/staging, update the deployment plan.",
        "",
        f"<!-- {mark} -->",
    ]
    return "\n".join(lines)


def _labels(cause: Cause, extra: Iterable[str]) -> list[str]:
    labels = [LABEL]
    if cause.severity:
        labels.append(f"severity:{cause.severity}")
    if cause.issue_type:
        labels.append(str(cause.issue_type))
    return labels + [label for label in extra if label not in labels]


def file_tickets(
    record: IncidentRecord,
    *,
    repo: str | None = None,
    token: str = "",
    api: str = DEFAULT_API,
    labels: Iterable[str] = (),
    backend: TicketBackend | None = None,
    console=None,
    record_link: str | None = None,
) -> list[dict[str, Any]]:
    """Open one ticket per cause of `record`'s incident (idempotent); the record's ticket items. Never raises."""
    if token:
        record.secrets.append(token)
    secrets = [token] if token else []
    try:
        backend = backend or GitHubIssues(repo or "", token, api)
    except UsageError as exc:
        if console is not None:
            console.warn(f"tickets: {exc}")
        return []
    data = record.data
    section = data.get("tickets") or {}
    if section.get("target") != backend.target:
        section = {"backend": backend.name, "target": backend.target, "items": list(section.get("items") or [])}
    data["tickets"] = section
    link = record_link or str(record.path / "incident.json")
    for cause in causes(data):
        mark = marker(data["incident_id"], cause)
        item = next((i for i in section["items"] if i["marker"] == mark), None)
        if item and item["status"] in ("created", "found") and item.get("url"):
            continue
        entry = {
            "cause": cause.key,
            "title": _title(data, cause),
            "severity": cause.severity,
            "marker": mark,
            "status": "failed",
            "url": None,
            "number": None,
            "error": None,
            "at": utcnow(),
        }
        try:
            ticket = backend.find(mark)
            status = "found"
            if ticket is None:
                body = redact_text(_body(redact(data, secrets), cause, link, mark), secrets)
                ticket = backend.create(entry["title"], body, _labels(cause, labels))
                status = "created"
            entry.update(status=status, url=ticket.url, number=ticket.number)
        except Exception as exc:  # never fatal to the rollback: recorded and reported
            entry["error"] = redact_text(str(exc), secrets)[:500]
            if console is not None:
                console.warn(f"tickets: {cause.key}: {entry['error']}")
        if item:
            item.update(entry)
        else:
            section["items"].append(entry)
    urls = data["follow_up"]["tickets"]
    for entry in section["items"]:
        if entry.get("url") and entry["url"] not in urls:
            urls.append(entry["url"])
    try:
        record.save()
    except Exception as exc:  # the tickets exist; the record says so next time (they are found by marker)
        if console is not None:
            console.warn(f"tickets: the record could not be saved: {redact_text(str(exc), secrets)}")
    if console is not None:
        for entry in section["items"]:
            if entry["status"] != "failed":
                console.info(f"ticket ({entry['status']}): {entry['url']} - {entry['title']}")
    return section["items"]
