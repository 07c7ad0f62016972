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
        reopened: dict = {}
        switched_off = _maintenance(sandbox, "off", stats=reopened)
    assert switched_off.changed_count > 0
    assert client.request("GET", "/api/conversations").status == 401
    # Reopened in the inventory's steps, each served (a client the step admits passes, one outside gets 503) and
    # judged from its traffic - synthetic requests, as nobody else is calling.
    steps = reopened["maintenance_ramp"]["sandbox-app"]
    assert [step["percent"] for step in steps] == [25, 50]
    for step in steps:
        assert step["healthy"] and step["probe_outside"] == 503 and step["probe_inside"] != 503, step
        assert step["requests"] >= 3 and step["synthetic"] >= 1 and step["errors"] == 0, step
    assert _maintenance(sandbox, "off").changed_count == 0
