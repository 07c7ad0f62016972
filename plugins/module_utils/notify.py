"""Rollback notifications: a Slack-compatible chat webhook and a Statuspage-compatible status page.

Messages are rendered by the role (Jinja2 templates); this file builds the HTTP requests, sends them
with urllib (timeout, retries on 5xx and connection errors, none on 4xx), keeps the dedupe state that
makes a re-run send nothing twice, and redacts secrets (webhook URLs, API keys) from every text it
returns. Neither the state file nor any returned text ever holds a webhook URL or an API key.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import http.client
import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

EVENTS = (
    "rollback_started",
    "rollback_completed",
    "rollback_failed",
    "extended_downtime",
    "maintenance_on",
    "maintenance_off",
)
CHANNELS = ("webhook", "statuspage")
INCIDENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
MAINTENANCE_STATUSES = ("scheduled", "in_progress", "verifying", "completed")
COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage",
                      "under_maintenance")

REDACTED = "********"
RETRIES = 2
BACKOFF = 0.5
MAX_RESPONSE = 64 * 1024
STATE_VERSION = 1
USER_AGENT = "rollbackctl-notify/0.1"
# Planned length of a maintenance window opened by maintenance_on (the plan's total: 1-2 hours).
MAINTENANCE_WINDOW = datetime.timedelta(hours=2)
# The only fields of a record that reach the state file or the incident record.
RECORD_FIELDS = ("channel", "event", "status", "http_status", "sent_at", "statuspage_incident_id", "error")

# event -> (incident status, component status) on a realtime incident.
_REALTIME = {
    "rollback_started": ("identified", "major_outage"),
    "extended_downtime": ("identified", "major_outage"),
    "rollback_failed": ("identified", "major_outage"),
    "maintenance_on": ("identified", "under_maintenance"),
    "maintenance_off": ("monitoring", "operational"),
    "rollback_completed": ("resolved", "operational"),
}
# The same on a scheduled maintenance (a status page incident opened by maintenance_on).
_SCHEDULED = {
    "rollback_started": ("in_progress", "major_outage"),
    "extended_downtime": ("in_progress", "major_outage"),
    "rollback_failed": ("in_progress", "major_outage"),
    "maintenance_on": ("in_progress", "under_maintenance"),
    "maintenance_off": ("completed", "operational"),
    "rollback_completed": ("completed", "operational"),
}
# Events whose outage shows as maintenance while the maintenance page is up.
_MAINTENANCE_AWARE = ("rollback_started", "extended_downtime")


class NotifyError(Exception):
    """A notification could not be delivered. The message is already free of secrets."""

    def __init__(self, message: str, http_status: int | None = None, attempts: int = 0):
        super().__init__(message)
        self.http_status = http_status
        self.attempts = attempts


class StateError(Exception):
    """The dedupe state file cannot be read or written."""


def utcnow() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def valid_incident_id(incident_id: str) -> bool:
    return bool(re.match(INCIDENT_ID_PATTERN, incident_id or ""))


# --- status mapping -------------------------------------------------------------------------------

def statuspage_status(event: str, *, maintenance: bool = False, scheduled: bool = False) -> tuple[str, str]:
    """(incident status, component status) that an event gives the status page.

    `maintenance`: the maintenance page is up, so an outage shows as maintenance.
    `scheduled`: the status page incident is a scheduled maintenance (opened by maintenance_on), whose
    statuses are in_progress/completed rather than identified/monitoring/resolved.
    """
    table = _SCHEDULED if scheduled else _REALTIME
    if event not in table:
        raise ValueError(f"unknown event {event!r}")
    incident_status, component_status = table[event]
    if maintenance and event in _MAINTENANCE_AWARE:
        component_status = "under_maintenance"
    return incident_status, component_status


def opens_maintenance(event: str) -> bool:
    """Whether a status page incident opened by this event is a scheduled maintenance."""
    return event == "maintenance_on"


# --- payloads -------------------------------------------------------------------------------------

def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(key: Any) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def default_title(event: str) -> str:
    return event.replace("_", " ").capitalize()


def slack_payload(*, title: str, message: str, incident_id: str, event: str,
                  fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook payload: fallback text plus header/section/fields blocks.

    Empty field values are left out; an "Incident" field is added unless `fields` has one.
    """
    title = _clip((title or default_title(event)).strip(), 150)
    message = (message or "").strip()
    items = [(_label(k), _value(v)) for k, v in (fields or {}).items() if v not in (None, "", [], {})]
    if not any(label.lower() in ("incident", "incident id") for label, _value in items):
        items.append(("Incident", incident_id))
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    if message:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(message, 3000)}})
    blocks.append({"type": "section",
                   "fields": [{"type": "mrkdwn", "text": _clip(f"*{label}*\n{value}", 2000)}
                              for label, value in items[:10]]})
    blocks.append({"type": "context",
                   "elements": [{"type": "mrkdwn", "text": f"event `{event}` · incident `{incident_id}`"}]})
    text = f"{title}\n{message}" if message else title
    return {"text": _clip(text, 4000), "blocks": blocks}


def statuspage_incident(*, name: str, status: str, body: str, component_ids: Iterable[str],
                        component_status: str, create: bool, scheduled: bool = False,
                        now: datetime.datetime | None = None) -> dict[str, Any]:
    """The JSON body that creates (`create`) or updates a Statuspage incident."""
    if status not in INCIDENT_STATUSES + MAINTENANCE_STATUSES:
        raise ValueError(f"unknown incident status {status!r}")
    if component_status not in COMPONENT_STATUSES:
        raise ValueError(f"unknown component status {component_status!r}")
    ids = [str(i) for i in component_ids or []]
    incident: dict[str, Any] = {}
    if create:
        incident["name"] = _clip(name.strip() or "Service incident", 255)
    incident.update({
        "status": status,
        "body": body.strip(),
        "component_ids": ids,
        "components": dict.fromkeys(ids, component_status),
    })
    if create and scheduled:
        start = now or datetime.datetime.now(datetime.UTC)
        incident.update({
            "scheduled_for": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "scheduled_until": (start + MAINTENANCE_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "scheduled_auto_in_progress": False,
            "scheduled_auto_completed": False,
        })
    return {"incident": incident}


# --- requests -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HttpRequest:
    """One HTTP call. `headers` and `url` may hold secrets: only `display_url` is ever shown."""

    method: str
    url: str = field(repr=False)
    body: dict[str, Any] = field(default_factory=dict)
    display_url: str = ""
    headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: Any
    attempts: int


def check_url(url: str, what: str) -> None:
    """Refuse anything but http(s) URLs with a host; the message never quotes the URL."""
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotifyError(f"{what} is not an http(s) URL")


def webhook_display_url(url: str) -> str:
    """Scheme and host of a webhook URL; its path (the token) is replaced."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}/{REDACTED}"


def webhook_secrets(url: str) -> list[str]:
    """Every part of a webhook URL that must not be shown: the URL, its path, long path segments."""
    if not url:
        return []
    parts = urllib.parse.urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    found = [url, url.rstrip("/")]
    if tail.strip("/"):
        found.append(tail)
    found += [seg for seg in re.split(r"[/?&=#]", tail) if len(seg) >= 8]
    if parts.password:
        found.append(parts.password)
    return found


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (and its URL-quoted forms) in `text`, longest first."""
    variants: set[str] = set()
    for secret in secrets:
        if secret:
            variants.update({secret, urllib.parse.quote(secret), urllib.parse.quote(secret, safe="")})
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, REDACTED)
    return text


def webhook_request(url: str, payload: dict[str, Any]) -> HttpRequest:
    check_url(url, "webhook_url")
    return HttpRequest(method="POST", url=url, body=payload, display_url=webhook_display_url(url),
                       headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})


def statuspage_request(*, api: str, page_id: str, api_key: str, payload: dict[str, Any],
                       statuspage_incident_id: str | None = None) -> HttpRequest:
    """POST a new incident, or PATCH the existing one (`statuspage_incident_id`)."""
    check_url(api, "statuspage_api")
    base = api.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    url = f"{base}/v1/pages/{urllib.parse.quote(page_id, safe='')}/incidents"
    method = "POST"
    if statuspage_incident_id:
        url += f"/{urllib.parse.quote(statuspage_incident_id, safe='')}"
        method = "PATCH"
    headers = {
        "Authorization": f"OAuth {api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    return HttpRequest(method=method, url=url, body=payload, display_url=url, headers=headers)


# --- sending --------------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it would resend the body (and the key) elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _describe(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return "timed out"
    text = str(reason) or type(reason).__name__
    return f"{type(reason).__name__}: {text}" if isinstance(reason, BaseException) else text


def send(request: HttpRequest, *, timeout: float = 10, retries: int = RETRIES, backoff: float = BACKOFF,
         secrets: Iterable[str] = (), opener: urllib.request.OpenerDirector | None = None,
         sleep: Callable[[float], None] = time.sleep) -> HttpResponse:
    """Send `request`; retry 5xx answers and connection errors `retries` times with exponential backoff.

    Raises NotifyError (text redacted with `secrets`) when every attempt failed or on a 4xx answer.
    """
    secrets = list(secrets)
    opener = opener or _opener()
    data = json.dumps(request.body).encode("utf-8")
    error, http_status, attempts = "no attempt", None, 0
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        attempts += 1
        # The scheme was checked by check_url when the request was built.
        req = urllib.request.Request(request.url, data=data, method=request.method,  # noqa: S310
                                     headers=request.headers)
        try:
            with opener.open(req, timeout=timeout) as resp:
                return HttpResponse(status=resp.status, body=_decode(resp.read(MAX_RESPONSE)),
                                    attempts=attempts)
        except urllib.error.HTTPError as exc:
            http_status = exc.code
            detail = ""
            with contextlib.suppress(Exception):
                detail = exc.read(2048).decode("utf-8", errors="replace").strip()
            error = f"HTTP {exc.code} {exc.reason}"
            if detail:
                error += f": {_clip(' '.join(detail.split()), 300)}"
            if exc.code < 500:
                break
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            http_status = None
            error = _describe(exc)
    message = f"{request.method} {request.display_url} failed after {attempts} attempt(s): {error}"
    raise NotifyError(redact(message, secrets), http_status=http_status, attempts=attempts)


# --- dedupe state ---------------------------------------------------------------------------------

def make_record(*, channel: str, event: str, status: str, http_status: int | None = None,
                sent_at: str | None = None, statuspage_incident_id: str | None = None,
                error: str | None = None) -> dict[str, Any]:
    """A notification record for the incident record and the state file (no URL, no key)."""
    record: dict[str, Any] = {"channel": channel, "event": event, "status": status,
                              "http_status": http_status, "sent_at": sent_at}
    if channel == "statuspage":
        record["statuspage_incident_id"] = statuspage_incident_id
    if error:
        record["error"] = error
    return record


class NotifyState:
    """What was sent, per rollback incident: {"version", "incidents": {id: {"statuspage", "sent"}}}.

    `sent` is keyed by "<event>/<channel>"; `statuspage` keeps the status page incident opened for the
    rollback incident (its id and whether it is a scheduled maintenance).
    """

    def __init__(self, data: dict[str, Any] | None = None):
        self.data = data or {"version": STATE_VERSION, "incidents": {}}

    @staticmethod
    def key(event: str, channel: str) -> str:
        return f"{event}/{channel}"

    @classmethod
    def load(cls, path: str) -> NotifyState:
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise StateError(f"cannot read notification state {path}: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("incidents"), dict):
            raise StateError(f"notification state {path} is not a notification state file")
        return cls(data)

    def _incident(self, incident_id: str, create: bool = False) -> dict[str, Any]:
        incidents = self.data["incidents"]
        if create:
            return incidents.setdefault(incident_id, {"statuspage": None, "sent": {}})
        return incidents.get(incident_id) or {}

    def sent(self, incident_id: str, event: str, channel: str) -> dict[str, Any] | None:
        return (self._incident(incident_id).get("sent") or {}).get(self.key(event, channel))

    def statuspage_incident(self, incident_id: str) -> dict[str, Any] | None:
        return self._incident(incident_id).get("statuspage")

    def set_statuspage_incident(self, incident_id: str, statuspage_incident_id: str, scheduled: bool) -> None:
        self._incident(incident_id, create=True)["statuspage"] = {"id": statuspage_incident_id,
                                                                  "scheduled": scheduled}

    def remember(self, incident_id: str, record: dict[str, Any]) -> None:
        clean = {k: record[k] for k in RECORD_FIELDS if k in record and k != "error"}
        sent = self._incident(incident_id, create=True).setdefault("sent", {})
        sent[self.key(record["event"], record["channel"])] = clean

    def save(self, path: str) -> None:
        """Write atomically, 0600, in a 0700 directory created when missing."""
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".notify-state-", dir=directory)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(self.data, handle, indent=2, sort_keys=True)
                    handle.write("\n")
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StateError(f"cannot write notification state {path}: {exc}") from exc


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` so that concurrent runs never send twice."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateError(f"cannot lock notification state {path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
