"""Maintenance mode at the real nginx: what users, monitoring and operators get; idempotence; check mode."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.sandbox


def _maintenance(sandbox, state, check=False, stats=None):
    def keep(event):
        if stats is not None and event.get("event") == "playbook_on_stats":
            stats.update(event["event_data"].get("artifact_data") or {})

    return sandbox._run("maintenance.yml", extravars={"maintenance_state": state}, check=check, on_event=keep)


def test_maintenance_on_off_through_nginx(sandbox, client):
    stats: dict = {}
    try:
        switched_on = _maintenance(sandbox, "on", stats=stats)
        # generated (0600) the first time the inventory needs it
        token = (sandbox.directory / "secrets" / "maintenance-bypass-token").read_text().split()[0]
        assert switched_on.changed_count > 0
        drain = stats["maintenance_drain"]["sandbox-app"]
        assert drain["drained"] is True and "in_flight" in drain["final"]

        page = client.request("GET", "/api/conversations")
        assert page.status == 503
        assert page.headers.get("Retry-After") == "600", page.headers
        assert page.headers.get("Cache-Control") == "no-store"
        assert "Scheduled maintenance" in page.body.get("raw", "")
        assert client.health().status == 200, "monitoring keeps reaching /health"

        operator = client.request("GET", "/api/conversations", headers={"X-Maintenance-Bypass": token})
        assert operator.status == 401, "the operator reaches the app (which asks for a login)"
        wrong = client.request("GET", "/api/conversations", headers={"X-Maintenance-Bypass": "x" * 32})
        assert wrong.status == 503

        assert _maintenance(sandbox, "on").changed_count == 0
        assert _maintenance(sandbox, "off", check=True).changed_count > 0
        assert client.request("GET", "/api/conversations").status == 503, "check mode changed nothing"
    finally:
        switched_off = _maintenance(sandbox, "off")
    assert switched_off.changed_count > 0
    assert client.request("GET", "/api/conversations").status == 401
    assert _maintenance(sandbox, "off").changed_count == 0
