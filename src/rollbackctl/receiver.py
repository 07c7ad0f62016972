"""A local HTTP receiver standing in for a Slack incoming webhook and the Statuspage API.

Used by the tests and by sandbox rehearsals::

    with Receiver(api_key="k") as receiver:
        # notify_webhook_url: f"{receiver.url}/webhook/team"; notify_statuspage_api: receiver.url
        receiver.requests  # every request: method, path, headers (no Authorization), body, answer

Endpoints:

- ``POST /webhook/<name>`` -> 200 ``ok`` (400 ``invalid_payload`` when the body has neither text nor blocks);
- ``POST /v1/pages/<page>/incidents`` -> 201 with the new incident (``id`` generated);
- ``PATCH /v1/pages/<page>/incidents/<id>`` -> 200 with the incident (404 when unknown);
- ``GET /v1/pages/<page>/incidents/<id>`` -> 200 with the incident.

Status page calls need ``Authorization: OAuth <key>`` (the configured key, or any key when none is
configured), else 401. Failure knobs: :meth:`Receiver.fail_next` answers the next requests with an
error status, :attr:`Receiver.down` closes every connection without an answer.

Standalone: ``python -m rollbackctl.receiver --port 18099`` prints each request as a JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import ExitCode
from .times import utcnow

_WEBHOOK = re.compile(r"^/webhook/[^?#]+$")
_INCIDENTS = re.compile(r"^/v1/pages/(?P<page>[^/?#]+)/incidents(?:/(?P<incident>[^/?#]+))?/?$")
MAX_BODY = 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: Receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def handle(self) -> None:
        if self.server.receiver.down:
            # Simulate a dead service: accept the connection, then drop it without an answer.
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, MAX_BODY)) if length else b""
        headers = dict(self.headers.items())
        status, payload = self.server.receiver._answer(self.command, self.path, headers, raw)
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        # One request per connection: a kept-alive connection would outlive stop() (its handler thread goes on
        # answering), and a receiver that was stopped must not answer anything.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(data)


class Receiver:
    """A Slack webhook + Statuspage stand-in on `host:port` (port 0: any free port), in a thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = None,
                 on_request: Callable[[dict[str, Any]], None] | None = None):
        self.host = host
        self.port = port
        self.api_key = api_key
        self.on_request = on_request
        self.down = False
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._incidents: dict[str, dict[str, dict[str, Any]]] = {}
        self._components: dict[str, dict[str, str]] = {}
        self._failures: list[int] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> Receiver:
        server = _Server((self.host, self.port), _Handler)
        server.receiver = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"receiver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- knobs and observations ---

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Answer the next `n` requests with `status` (whatever their path)."""
        with self._lock:
            self._failures.extend([status] * n)

    def reset(self) -> None:
        """Forget recorded requests, incidents and failure knobs; come back up."""
        with self._lock:
            self._requests.clear()
            self._incidents.clear()
            self._components.clear()
            self._failures.clear()
            self.down = False

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def incidents(self, page: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._incidents.get(page, {})))

    def components(self, page: str) -> dict[str, str]:
        with self._lock:
            return dict(self._components.get(page, {}))

    # --- the fake services ---

    def _answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        entry: dict[str, Any] = {
            "time": utcnow(),
            "method": method,
            "path": path,
            "headers": {k: v for k, v in headers.items() if k.lower() != "authorization"},
            "authorization": {"present": authorization is not None,
                              "scheme": authorization.split(" ", 1)[0] if authorization else None},
            "body": body,
        }
        with self._lock:
            if self._failures:
                status, payload = self._failures.pop(0), {"error": "simulated failure"}
            else:
                status, payload = self._route(method, path, authorization, body)
            entry["status"] = status
            self._requests.append(entry)
        if self.on_request:
            self.on_request(dict(entry))
        return status, payload

    def _route(self, method: str, path: str, authorization: str | None, body: Any) -> tuple[int, Any]:
        if _WEBHOOK.match(path):
            if method != "POST":
                return 405, "method_not_allowed"
            if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
                return 400, "invalid_payload"
            return 200, "ok"
        match = _INCIDENTS.match(path)
        if not match:
            return 404, {"error": "not found"}
        scheme, _, key = (authorization or "").partition(" ")
        if scheme != "OAuth" or not key or (self.api_key is not None and key != self.api_key):
            return 401, {"error": "Could not authenticate"}
        page, incident_id = match["page"], match["incident"]
        incidents = self._incidents.setdefault(page, {})
        if incident_id is None:
            if method != "POST":
                return 405, {"error": "method not allowed"}
            fields = body.get("incident") if isinstance(body, dict) else None
            if not isinstance(fields, dict) or not fields.get("name") or not fields.get("status"):
                return 422, {"error": "incident name and status are required"}
            incident_id = secrets.token_hex(6)
            incident = {"id": incident_id, "page_id": page, "created_at": utcnow(), "incident_updates": []}
            incidents[incident_id] = incident
            self._apply(page, incident, fields)
            return 201, incident
        incident = incidents.get(incident_id)
        if incident is None:
            return 404, {"error": "incident not found"}
        if method == "GET":
            return 200, incident
        if method != "PATCH":
            return 405, {"error": "method not allowed"}
        fields = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return 422, {"error": "incident is required"}
        self._apply(page, incident, fields)
        return 200, incident

    def _apply(self, page: str, incident: dict[str, Any], fields: dict[str, Any]) -> None:
        for key in ("name", "status", "scheduled_for", "scheduled_until"):
            if fields.get(key):
                incident[key] = fields[key]
        components = fields.get("components") or {}
        if isinstance(components, dict):
            self._components.setdefault(page, {}).update({str(k): str(v) for k, v in components.items()})
            incident["components"] = [{"id": k, "status": v} for k, v in self._components[page].items()
                                      if k in components or k in (fields.get("component_ids") or [])]
        incident["updated_at"] = utcnow()
        incident["incident_updates"].append({"status": fields.get("status") or incident.get("status"),
                                             "body": fields.get("body") or "", "created_at": utcnow()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rollbackctl.receiver",
        description="Local Slack webhook + Statuspage API stand-in; prints every request as a JSON line "
                    "(Authorization values are never printed).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=18099, help="port to listen on (default 18099; 0: any)")
    parser.add_argument("--api-key", default=None,
                        help="status page API key to require (default: accept any OAuth key)")
    args = parser.parse_args(argv)

    def show(entry: dict[str, Any]) -> None:
        print(json.dumps(entry, sort_keys=True), flush=True)

    receiver = Receiver(args.host, args.port, api_key=args.api_key, on_request=show)
    with receiver:
        print(f"receiver listening on {receiver.url} (webhook: {receiver.url}/webhook/<name>, "
              f"status page API: {receiver.url})", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
