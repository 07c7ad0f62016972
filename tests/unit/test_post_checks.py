"""post_checks: declarations (refusals, none declared) and the Prometheus target verdicts on canned answers."""

from __future__ import annotations

import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils import post_checks
from ansible_collections.chatbot.rollback.plugins.module_utils.post_checks import (
    DeclarationError,
    integration_checks,
    monitoring_checks,
)


@pytest.mark.parametrize(("declared", "message"), [
    ([{"kind": "http", "url": "http://x"}], "has no name"),
    ([{"name": "a", "kind": "smtp", "url": "x"}], "unknown kind"),
    ([{"name": "a", "kind": "http"}], "no url"),
    ([{"name": "a", "kind": "http", "url": "x"}, {"name": "a", "kind": "http", "url": "y"}], "declared twice"),
    (["http://x"], "not a mapping"),
])
def test_unusable_integrations_are_refused(declared, message):
    with pytest.raises(DeclarationError, match=message):
        integration_checks(declared, None)


def test_none_declared_is_a_skip_that_says_so():
    [integrations] = integration_checks([], None)
    [monitoring] = monitoring_checks([])
    assert (integrations["name"], integrations["verdict"]) == ("integrations", "skip")
    assert "verify_integrations is empty" in integrations["detail"]
    assert (monitoring["name"], monitoring["verdict"]) == ("monitoring", "skip")
    with pytest.raises(DeclarationError, match="no url"):
        monitoring_checks([{"name": "prometheus"}])


def test_reply_webhook_is_skipped_in_check_mode():
    [webhook] = integration_checks([{"name": "hook"}], None, write=False)
    assert (webhook["name"], webhook["verdict"]) == ("integration_hook", "skip")


def _answers(monkeypatch, targets, ready=200):
    def fake(url, timeout, method="GET"):
        if url.endswith("/-/ready"):
            return ready, None, "" if ready else "ConnectionRefusedError: refused"
        return 200, {"status": "success", "data": {"activeTargets": targets}}, ""
    monkeypatch.setattr(post_checks, "_get", fake)


def _target(job, instance, health, error=""):
    return {"labels": {"job": job, "instance": instance}, "scrapePool": job, "health": health, "lastError": error}


def test_prometheus_down_fails(monkeypatch):
    _answers(monkeypatch, [], ready=None)
    [c] = monitoring_checks([{"name": "prom", "url": "http://p:9090"}], settle_s=0)
    assert c["verdict"] == "fail" and "not operational" in c["detail"]


def test_prometheus_targets(monkeypatch):
    declared = [{"name": "prom", "url": "http://p:9090", "jobs": ["app"]}]
    _answers(monkeypatch, [_target("app", "h1:1", "up"), _target("node", "h1:2", "down")])
    [c] = monitoring_checks(declared, settle_s=0)
    assert (c["verdict"], c["value"], c["threshold"]) == ("pass", 1, 1)  # the other job is not ours
    _answers(monkeypatch, [_target("app", "h1:1", "up"), _target("app", "h2:1", "down", "connection refused")])
    [c] = monitoring_checks(declared, settle_s=0)
    assert (c["verdict"], c["value"], c["threshold"]) == ("fail", 1, 2)
    assert "h2:1 down (connection refused)" in c["detail"]
    _answers(monkeypatch, [_target("node", "h1:2", "up")])
    [c] = monitoring_checks(declared, settle_s=0)
    assert c["verdict"] == "fail" and "not scraped: app" in c["detail"]
    _answers(monkeypatch, [])
    [c] = monitoring_checks([{"name": "prom", "url": "http://p:9090"}], settle_s=0)
    assert c["verdict"] == "fail" and "no active targets" in c["detail"]
