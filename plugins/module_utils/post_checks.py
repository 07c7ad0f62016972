"""The two post-rollback checks of plan step 8 that look beyond the platform itself.

"Verify third-party integrations": each outbound integration declared in the inventory is checked end
to end where the platform can be made to use it (kind C(reply_webhook): a synthetic message is sent
through the app's API, the bot's reply is POSTed by the app to the webhook, and the app's delivery
report in the answer must say the receiver took it), else its endpoint must answer (kind C(http)).

"Confirm monitoring systems are operational": each monitoring system declared (kind C(prometheus)) must
answer (C(/-/ready)), scrape the targets it is expected to (the jobs named) and have them all up
(C(/api/v1/targets)). A monitoring system that does not answer is a failed check, never a skipped one.

Nothing declared: one skipped check saying so. Checks have the shape of api_check.check.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

from ansible_collections.chatbot.rollback.plugins.module_utils.api_check import (
    FAIL,
    PASS,
    SKIP,
    Api,
    check,
    describe,
    pick_conversation,
)

INTEGRATION_KINDS = ("reply_webhook", "http")
MONITORING_KINDS = ("prometheus",)


class DeclarationError(ValueError):
    """An inventory entry that cannot be checked (missing name or url, unknown kind)."""


def _entries(declared, kinds: tuple[str, ...], what: str) -> list[dict]:
    entries, seen = [], set()
    for index, entry in enumerate(declared or []):
        if not isinstance(entry, dict):
            raise DeclarationError(f"{what}[{index}] is not a mapping")
        name, kind = str(entry.get("name") or "").strip(), entry.get("kind") or kinds[0]
        if not name:
            raise DeclarationError(f"{what}[{index}] has no name")
        if name in seen:
            raise DeclarationError(f"{what}[{index}]: the name {name!r} is declared twice")
        if kind not in kinds:
            raise DeclarationError(f"{what} {name!r}: unknown kind {kind!r} (one of {', '.join(kinds)})")
        if kind != "reply_webhook" and not entry.get("url"):
            raise DeclarationError(f"{what} {name!r}: no url")
        seen.add(name)
        entries.append({**entry, "name": name, "kind": kind})
    return entries


def none_declared(name: str, variable: str) -> dict:
    return check(name, "full", None, None, "", SKIP, f"none declared in the inventory ({variable} is empty)")


def _get(url: str, timeout: float, method: str = "GET") -> tuple[int | None, object, str]:
    """(status, parsed JSON body or None, error); never raises for a network problem."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method=method, headers={"User-Agent": "chatbot-rollback-verify",  # noqa: S310
                                                                  "Accept": "application/json"})
    try:
        with opener.open(request, timeout=timeout) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        return exc.code, None, ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, None, f"{type(reason).__name__}: {reason}"[:200]
    try:
        return status, json.loads(raw) if raw else None, ""
    except ValueError:
        return status, None, ""


# ---- third-party integrations -------------------------------------------------------------------

def integration_checks(declared, api: Api | None, user: str = "", password: str = "", timeout: float = 10.0,
                       write: bool = True, conversation_title: str = "synthetic verification",
                       secrets: set | None = None) -> list[dict]:
    entries = _entries(declared, INTEGRATION_KINDS, "verify_integrations")
    if not entries:
        return [none_declared("integrations", "verify_integrations")]
    return [_reply_webhook(entry, api, user, password, write, conversation_title, secrets)
            if entry["kind"] == "reply_webhook" else _http_integration(entry, timeout) for entry in entries]


def _http_integration(entry: dict, timeout: float) -> dict:
    name = f"integration_{entry['name']}"
    expected = [int(s) for s in entry.get("expect_status") or []]
    status, _body, error = _get(entry["url"], float(entry.get("timeout") or timeout), entry.get("method") or "GET")
    if status is None:
        return check(name, "full", None, expected or None, "http status", FAIL,
                     f"the integration endpoint does not answer: {error}")
    ok = status in expected if expected else status < 500
    want = ", ".join(map(str, expected)) if expected else "any status below 500"
    return check(name, "full", status, expected or None, "http status", PASS if ok else FAIL,
                 f"the endpoint answered HTTP {status}" + ("" if ok else f", expected {want}"))


def _reply_webhook(entry: dict, api: Api | None, user: str, password: str, write: bool, title: str,
                   secrets: set | None) -> dict:
    """End to end: send a message through the app, read the app's delivery report of the bot's reply, clean up."""
    name = f"integration_{entry['name']}"

    def result(verdict: str, detail: str, value=None) -> dict:
        return check(name, "full", value, None, "http status", verdict, detail)

    if not write:
        return result(SKIP, "check mode: no message is sent, so the webhook is not triggered")
    if api is None:
        return result(FAIL, "no web URL to send the triggering message through")
    login = api.request("POST", "/api/login", {"username": user, "password": password})
    token = login.body.get("token") if login.status == 200 and isinstance(login.body, dict) else None
    if not token:
        return result(FAIL, f"the synthetic user could not log in ({describe(login, 200)}); the webhook was not "
                            "triggered")
    if secrets is not None:
        secrets.add(token)
    listed = api.request("GET", "/api/conversations", token=token)
    conversations = listed.body.get("conversations") if listed.status == 200 and isinstance(listed.body, dict) else []
    conversation_id = pick_conversation(conversations or [], title)
    if not conversation_id:
        created = api.request("POST", "/api/conversations", {"title": title}, token=token)
        conversation_id = ((created.body or {}).get("conversation") or {}).get("id") \
            if created.status == 201 and isinstance(created.body, dict) else None
        if not conversation_id:
            return result(FAIL, f"no conversation to send in ({describe(created, 201)})")
    text = f"synthetic integration check {uuid.uuid4().hex[:12]}"
    sent = api.request("POST", f"/api/conversations/{conversation_id}/messages", {"text": text}, token=token)
    body = sent.body if isinstance(sent.body, dict) else {}
    if sent.status != 201:
        return result(FAIL, f"the triggering message was not sent: {describe(sent, 201)}")
    left = [m.get("id") for m in (body.get("message") or {}, body.get("reply") or {}) if m.get("id")]
    for ident in left:
        api.request("DELETE", f"/api/messages/{ident}", token=token)
    delivery = (body.get("integrations") or {}).get("reply_webhook")
    if not isinstance(delivery, dict):
        return result(FAIL, "the app did not call the reply webhook (REPLY_WEBHOOK_URL not set in the app's "
                            "configuration?)")
    status, ms = delivery.get("status"), delivery.get("ms")
    if delivery.get("delivered"):
        return result(PASS, f"the bot's reply was POSTed by the app and taken by the receiver (HTTP {status}, "
                            f"{ms} ms)", status)
    if status is None:
        return result(FAIL, f"the app could not reach the receiver: {delivery.get('error') or 'no answer'}")
    return result(FAIL, f"the receiver refused the bot's reply: HTTP {status}", status)


# ---- monitoring ------------------------------------------------------------------------------------

def monitoring_checks(declared, timeout: float = 10.0, settle_s: float = 30.0, interval_s: float = 1.0) -> list[dict]:
    entries = _entries(declared, MONITORING_KINDS, "verify_monitoring")
    if not entries:
        return [none_declared("monitoring", "verify_monitoring")]
    return [_prometheus(entry, timeout, settle_s, interval_s) for entry in entries]


def _prometheus(entry: dict, timeout: float, settle_s: float, interval_s: float) -> dict:
    name, base = f"monitoring_{entry['name']}", str(entry["url"]).rstrip("/")
    jobs = [str(j) for j in entry.get("jobs") or []]
    unit = "targets up"
    status, _body, error = _get(f"{base}/-/ready", timeout)
    if status != 200:
        why = f"no answer: {error}" if status is None else f"HTTP {status}"
        return check(name, "full", None, None, unit, FAIL, f"Prometheus at {base} is not operational ({why})")
    deadline = time.monotonic() + max(0.0, settle_s)
    while True:
        status, body, error = _get(f"{base}/api/v1/targets?state=active", timeout)
        targets = (body or {}).get("data", {}).get("activeTargets") if isinstance(body, dict) else None
        if status != 200 or not isinstance(targets, list):
            why = f"no answer: {error}" if status is None else f"HTTP {status}"
            return check(name, "full", None, None, unit, FAIL, f"Prometheus at {base} lists no targets ({why})")
        mine = [t for t in targets if not jobs or (t.get("labels") or {}).get("job") in jobs
                or t.get("scrapePool") in jobs]
        # A target not scraped yet is 'unknown', one not discovered yet is absent (just after a restart of
        # Prometheus): wait for them (bounded).
        seen = {(t.get("labels") or {}).get("job") for t in mine} | {t.get("scrapePool") for t in mine}
        pending = any(t.get("health") == "unknown" for t in mine) or any(j not in seen for j in jobs) or not mine
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    up = [t for t in mine if t.get("health") == "up"]
    scraped = {(t.get("labels") or {}).get("job") for t in mine} | {t.get("scrapePool") for t in mine}
    missing = [j for j in jobs if j not in scraped]
    problems = []
    if missing:
        problems.append("not scraped: " + ", ".join(missing))
    if not mine and not jobs:
        problems.append("no active targets")
    for t in mine:
        if t.get("health") != "up":
            where = (t.get("labels") or {}).get("instance") or t.get("scrapeUrl") or "?"
            problems.append(f"{t.get('scrapePool') or '?'} {where} {t.get('health')}"
                            + (f" ({str(t.get('lastError'))[:80]})" if t.get("lastError") else ""))
    if problems:
        return check(name, "full", len(up), len(mine), unit, FAIL, "; ".join(problems))
    return check(name, "full", len(up), len(mine), unit, PASS,
                 f"Prometheus at {base} is ready and scrapes {len(mine)} targets, all up"
                 + (f" (jobs {', '.join(jobs)})" if jobs else ""))
