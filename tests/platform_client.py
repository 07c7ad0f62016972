"""A small HTTP client for the chatbot platform's API (what a user's browser would do)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    body: dict
    headers: dict


class PlatformClient:
    def __init__(self, base_url: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token: str | None = None

    def request(self, method: str, path: str, payload: dict | None = None,
                headers: dict[str, str] | None = None) -> Response:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw, status, headers = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            raw, status, headers = exc.read(), exc.code, dict(exc.headers)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"raw": raw.decode(errors="replace")}
        return Response(status, body, headers)

    def login(self, username: str, password: str) -> Response:
        response = self.request("POST", "/api/login", {"username": username, "password": password})
        if response.status == 200:
            self.token = response.body["token"]
        return response

    def conversations(self) -> Response:
        return self.request("GET", "/api/conversations")

    def send(self, conversation_id: str, text: str) -> Response:
        return self.request("POST", f"/api/conversations/{conversation_id}/messages", {"text": text})

    def messages(self, conversation_id: str, limit: int = 50) -> Response:
        return self.request("GET", f"/api/conversations/{conversation_id}/messages?limit={limit}")

    def create_conversation(self, title: str) -> Response:
        return self.request("POST", "/api/conversations", {"title": title})

    def delete_message(self, message_id: str) -> Response:
        return self.request("DELETE", f"/api/messages/{message_id}")

    def health(self) -> Response:
        return self.request("GET", "/health")
