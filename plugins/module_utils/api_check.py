"""Verification checks of the chatbot platform through its HTTP API (plan steps 4 and 8).

Every check is one dict, the same for every verification module of the toolkit:

    {name, scope, value, threshold, unit, verdict: pass|fail|skip, detail}

`scope` is the smallest verification scope the check belongs to (app, db or full). The verdict
rules live here and are unit-tested: a latency equal to its threshold passes (the plan's trigger is
"response times > 3 seconds"), a rate equal to its maximum passes, and missing data (no answer, an
unreadable metrics source, counters that went backwards) fails rather than passes.

Nothing secret leaves this file: the password, the session token and the maintenance bypass token are
sent in requests only; details name HTTP statuses and the app's error codes, never bodies or headers.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

PASS = "pass"  # noqa: S105 - a verdict, not a password
FAIL = "fail"
SKIP = "skip"

BYPASS_HEADER = "X-Maintenance-Bypass"
DEFAULT_TITLE = "synthetic verification"


def check(name: str, scope: str, value=None, threshold=None, unit: str = "", verdict: str = SKIP,
          detail: str = "") -> dict:
    """One verification check."""
    if verdict not in (PASS, FAIL, SKIP):
        raise ValueError(f"unknown verdict {verdict!r}")
    return {"name": name, "scope": scope, "value": value, "threshold": threshold, "unit": unit,
            "verdict": verdict, "detail": detail}


def at_most(value, threshold) -> str:
    """pass when value <= threshold (equal passes); fail when the value is missing."""
    if value is None:
        return FAIL
    return PASS if value <= threshold else FAIL


def failed(checks: list[dict]) -> list[dict]:
    return [c for c in checks if c["verdict"] == FAIL]


def summary(checks: list[dict]) -> str:
    """One line per failed check: name, value vs threshold, detail."""
    lines = []
    for c in failed(checks):
        unit = f" {c['unit']}" if c["unit"] else ""
        line = f"{c['name']}: {c['value']}{unit} vs {c['threshold']}{unit}"
        if c["detail"]:
            line += f" ({c['detail']})"
        lines.append(line)
    return "; ".join(lines)


# ---- versions ----------------------------------------------------------------------------------

def normalize_version(version) -> str:
    """'v0.9.0' and '0.9.0' are the same release; None and '' are ''."""
    text = str(version or "").strip()
    return text[1:] if text[:1] in ("v", "V") and text[1:2].isdigit() else text


class UnknownVersion(str):
    """An expected version that could not be read (the reason is the string); the version check fails."""


def release_version(path: str) -> str:
    """The `version` of a release.json (the release `current` points to), or UnknownVersion(why)."""
    try:
        with open(path, encoding="utf-8") as handle:
            version = json.load(handle).get("version")
    except (OSError, ValueError, AttributeError) as exc:
        return UnknownVersion(f"{path} cannot be read: {getattr(exc, 'strerror', None) or exc}")
    if not isinstance(version, str) or not version:
        return UnknownVersion(f"{path} names no version")
    return version


def version_check(expected, actual, worker_versions=None, scope: str = "app") -> dict:
    """The release reported by /health (and by every worker, from /metrics) against the expected one."""
    have = normalize_version(actual) or None
    if isinstance(expected, UnknownVersion):
        return check("app_version", scope, have, None, "", FAIL, f"expected version unknown: {expected}")
    want = normalize_version(expected)
    if not want:
        return check("app_version", scope, have, None, "", SKIP, "no expected version given")
    if have is None:
        return check("app_version", scope, None, want, "", FAIL, "/health reported no version")
    workers = sorted({normalize_version(v) for v in (worker_versions or []) if v})
    if have != want:
        return check("app_version", scope, have, want, "", FAIL, f"/health reports {have}, expected {want}")
    others = [v for v in workers if v != want]
    if others:
        return check("app_version", scope, have, want, "", FAIL,
                     f"some workers run another release: {', '.join(workers)}")
    detail = f"workers report {', '.join(workers)}" if workers else "per-worker versions not available"
    return check("app_version", scope, have, want, "", PASS, detail)


# ---- 5xx rate from two /metrics samples -------------------------------------------------------

def rate_5xx(before: dict | None, after: dict | None) -> dict:
    """The share of 5xx answers among the requests counted between two /metrics samples.

    Returns {rate, requests, errors, problem}; rate is None (and problem says why) when it cannot be
    known: a sample is missing, no request was counted in between, or the counters went backwards
    (a worker restarted and its counters started again from zero).
    """
    result = {"rate": None, "requests": None, "errors": None, "problem": None}
    if not before or not after:
        result["problem"] = "a /metrics sample is missing"
        return result
    try:
        requests = int(after["requests_total"]) - int(before["requests_total"])
        errors = int(after["responses_5xx"]) - int(before["responses_5xx"])
    except (KeyError, TypeError, ValueError):
        result["problem"] = "the /metrics answer has no requests_total/responses_5xx counters"
        return result
    result.update(requests=requests, errors=errors)
    pids_before, pids_after = before.get("worker_pids"), after.get("worker_pids")
    if requests < 0 or errors < 0 or (pids_before and pids_after and pids_before != pids_after):
        result["problem"] = (f"the counters were reset between the samples (workers {pids_before} -> "
                             f"{pids_after}): a worker restarted")
        return result
    if requests == 0:
        result["problem"] = "no request was counted between the samples: the metrics do not see the traffic"
        return result
    result["rate"] = round(errors / requests, 4)
    return result


def rate_5xx_check(before: dict | None, after: dict | None, max_rate: float, window_s: float | None = None,
                   scope: str = "full") -> dict:
    rate = rate_5xx(before, after)
    if rate["rate"] is None:
        return check("api_5xx_rate", scope, None, max_rate, "ratio", FAIL,
                     f"{rate['problem']} (missing data counts as failing)")
    window = f" in {window_s:.1f} s" if window_s is not None else ""
    return check("api_5xx_rate", scope, rate["rate"], max_rate, "ratio", at_most(rate["rate"], max_rate),
                 f"{rate['errors']} of {rate['requests']} requests answered 5xx during the verification{window}")


def since_start_check(after: dict | None, scope: str = "full") -> dict:
    """The 5xx share since the workers started: reported for information, never judged."""
    if not after or not isinstance(after.get("requests_total"), int):
        return check("api_5xx_rate_since_start", scope, None, None, "ratio", SKIP,
                     "information only: /metrics not available")
    total, errors = after["requests_total"], int(after.get("responses_5xx") or 0)
    rate = round(errors / total, 4) if total else 0.0
    return check("api_5xx_rate_since_start", scope, rate, None, "ratio", SKIP,
                 f"information only (not judged): {errors} of {total} requests answered 5xx since "
                 f"{after.get('since') or 'the workers started'}")


# ---- HTTP --------------------------------------------------------------------------------------

@dataclass
class HttpResult:
    status: int | None
    body: dict | list | None
    headers: dict = field(default_factory=dict)
    elapsed_ms: float = 0.0
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.status is not None


def describe(result: HttpResult, expected: int | None = None) -> str:
    """What happened to a request, without any body or header value."""
    if not result.answered:
        return f"no answer: {result.error}"
    text = f"HTTP {result.status}"
    if isinstance(result.body, dict) and isinstance(result.body.get("error"), str):
        text += f" ({result.body['error'][:60]})"
    if expected is not None and result.status != expected:
        text += f", expected {expected}"
    return text


class Api:
    """The platform's API at a base URL (through nginx), optionally with the maintenance bypass header."""

    def __init__(self, base_url: str, timeout: float = 10.0, bypass_token: str = "", use_proxy: bool = True):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.bypass_token = bypass_token
        handlers = [] if use_proxy else [urllib.request.ProxyHandler({})]
        self._opener = urllib.request.build_opener(*handlers)

    def request(self, method: str, path: str, payload: dict | None = None, token: str | None = None) -> HttpResult:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)  # noqa: S310
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", "chatbot-rollback-verify")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if self.bypass_token:
            req.add_header(BYPASS_HEADER, self.bypass_token)
        start = time.perf_counter()
        try:
            with self._opener.open(req, timeout=self.timeout) as response:
                raw, status, headers = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            raw, status, headers = exc.read(), exc.code, dict(exc.headers or {})
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return HttpResult(None, None, {}, _ms(start), f"{type(reason).__name__}: {reason}"[:200])
        elapsed = _ms(start)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return HttpResult(status, body, headers, elapsed, None)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def latency_check(name: str, result: HttpResult | None, threshold_ms: float, scope: str,
                  not_run: str = "") -> dict:
    """Response time of one critical operation against the plan's threshold (equal passes)."""
    if result is None:
        return check(name, scope, None, threshold_ms, "ms", FAIL, f"not measured: {not_run}")
    if not result.answered:
        return check(name, scope, result.elapsed_ms, threshold_ms, "ms", FAIL, describe(result))
    return check(name, scope, result.elapsed_ms, threshold_ms, "ms", at_most(result.elapsed_ms, threshold_ms),
                 describe(result))


def status_check(name: str, result: HttpResult | None, expected: int, scope: str, not_run: str = "",
                 extra_problem: str = "", ok_detail: str = "") -> dict:
    """An operation answered with the expected status (and nothing else went wrong)."""
    if result is None:
        return check(name, scope, None, expected, "http status", FAIL, f"not run: {not_run}")
    if result.status != expected:
        return check(name, scope, result.status, expected, "http status", FAIL,
                     extra_problem or describe(result, expected))
    if extra_problem:
        return check(name, scope, result.status, expected, "http status", FAIL, extra_problem)
    return check(name, scope, result.status, expected, "http status", PASS, ok_detail or describe(result))


# ---- /health ------------------------------------------------------------------------------------

def health_checks(result: HttpResult, scope: str, expected_version, worker_versions=None,
                  server_header: str = "nginx") -> list[dict]:
    """Checks read from one GET /health through the web URL.

    app scope: the app answers (200, or 503 with a health body: the database may still be on the newer
    schema right after a code rollback) and reports the expected release. full scope adds: status ok,
    database schema compatible, and the answer came through the web tier (its Server header).
    """
    body = result.body if isinstance(result.body, dict) else {}
    has_body = "status" in body and "version" in body
    checks = []
    if result.status in (200, 503) and has_body:
        checks.append(check("health_answers", "app", result.status, "200, or 503 with a health body", "http status",
                            PASS, f"status {body.get('status')}, db reachable: "
                                  f"{(body.get('db') or {}).get('reachable')}"))
    else:
        problem = describe(result) if not result.answered or result.status not in (200, 503) else \
            f"HTTP {result.status} without a health body (is this the app?)"
        checks.append(check("health_answers", "app", result.status, "200, or 503 with a health body", "http status",
                            FAIL, problem))
    checks.append(version_check(expected_version, body.get("version"), worker_versions, "app"))
    if scope != "full":
        return checks

    status = body.get("status")
    checks.append(check("health_status", "full", status, "ok", "", PASS if status == "ok" and result.status == 200
                        else FAIL, describe(result) if not has_body else f"HTTP {result.status}, db "
                        f"{'reachable' if (body.get('db') or {}).get('reachable') else 'unreachable'}"))
    schema = body.get("schema") if isinstance(body.get("schema"), dict) else {}
    if schema:
        checks.append(check("schema_compatible", "full", schema.get("actual"), schema.get("expected"), "",
                            PASS if schema.get("compatible") is True else FAIL,
                            "database schema matches the release" if schema.get("compatible")
                            else "the release expects another database schema version"))
    else:
        checks.append(check("schema_compatible", "full", None, None, "", FAIL, "/health reported no schema"))
    checks.append(web_tier_check(result, server_header))
    return checks


def web_tier_check(result: HttpResult, server_header: str = "nginx") -> dict:
    """The web URL is answered by the web tier (nginx), not by the app directly."""
    server = next((v for k, v in result.headers.items() if k.lower() == "server"), None)
    if not server_header:
        verdict = PASS if result.answered else FAIL
        return check("nginx", "full", server, None, "", verdict, describe(result))
    if not result.answered:
        return check("nginx", "full", None, server_header, "", FAIL, describe(result))
    ok = bool(server) and server.lower().startswith(server_header.lower())
    detail = f"the web URL answered HTTP {result.status}" + ("" if ok else f"; Server header is not {server_header}")
    return check("nginx", "full", server, server_header, "", PASS if ok else FAIL, detail)


# ---- the checks of a scope ---------------------------------------------------------------------

@dataclass
class Options:
    scope: str = "full"
    user: str = ""
    password: str = field(default="", repr=False)
    expected_version: str = ""
    latency_threshold_ms: float = 3000.0
    max_5xx_rate: float = 0.0
    write: bool = True
    conversation_title: str = DEFAULT_TITLE
    metrics_settle_s: float = 1.5
    server_header: str = "nginx"


def run_checks(api: Api, options: Options, secrets: set | None = None) -> list[dict]:
    """Run the HTTP checks of a scope (app or full) and return them; never raises for a platform problem.

    `secrets` collects values that must never be shown (the session token), for the module's no_log.
    """
    full = options.scope == "full"
    threshold = options.latency_threshold_ms
    checks: list[dict] = []
    started = time.monotonic()

    metrics_before = _metrics(api)
    health = api.request("GET", "/health")
    versions = (metrics_before or {}).get("versions")
    checks += health_checks(health, options.scope, options.expected_version, versions, options.server_header)

    login = api.request("POST", "/api/login", {"username": options.user, "password": options.password})
    token = login.body.get("token") if login.status == 200 and isinstance(login.body, dict) else None
    if token and secrets is not None:
        secrets.add(token)
    checks.append(status_check("auth_login", login, 200, "app", extra_problem="" if token or login.status != 200
                               else "the answer holds no session token",
                               ok_detail=f"user {options.user} logged in"))
    checks.append(latency_check("latency_login", login, threshold, "app"))
    if not full:
        return checks

    checks += _messaging(api, options, token, threshold)
    if options.metrics_settle_s > 0:
        # Each worker writes its counters every second: wait so that the last requests are counted.
        time.sleep(options.metrics_settle_s)
    metrics_after = _metrics(api)
    checks.append(rate_5xx_check(metrics_before, metrics_after, options.max_5xx_rate, time.monotonic() - started))
    checks.append(since_start_check(metrics_after))
    return checks


def _metrics(api: Api) -> dict | None:
    result = api.request("GET", "/metrics")
    return result.body if result.status == 200 and isinstance(result.body, dict) else None


def pick_conversation(conversations: list, title: str) -> str | None:
    """The synthetic user's conversation to write in: the one titled `title`, else its newest one, else None
    (then one titled `title` is created)."""
    own = [c for c in conversations if isinstance(c, dict) and c.get("id")]
    titled = [c for c in own if c.get("title") == title]
    return (titled or own or [{}])[0].get("id")


def _messaging(api: Api, options: Options, token: str | None, threshold: float) -> list[dict]:
    """List conversations, send a synthetic message, read it back, delete it (and the bot's reply)."""
    checks = []
    why = "" if token else "the synthetic user could not log in"
    listed = api.request("GET", "/api/conversations", token=token) if token else None
    conversations = listed.body.get("conversations") if listed and listed.status == 200 and \
        isinstance(listed.body, dict) else None
    checks.append(status_check("conversations_list", listed, 200, "full", why,
                               "" if listed is None or listed.status != 200 or isinstance(conversations, list)
                               else "the answer holds no conversation list",
                               f"{len(conversations or [])} conversations"))
    checks.append(latency_check("latency_list_conversations", listed, threshold, "full", why))

    conversation_id = None
    if isinstance(conversations, list):
        conversation_id = pick_conversation(conversations, options.conversation_title)
        why = ""
    elif not why:
        why = "the conversations could not be listed"
    if not options.write:
        reason = "check mode: no message is written"
        for name, unit in (("messaging_send", "http status"), ("latency_send_message", "ms"),
                           ("messaging_read", "http status"), ("latency_list_messages", "ms"),
                           ("messaging_cleanup", "messages")):
            checks.append(check(name, "full", None, threshold if unit == "ms" else None, unit, SKIP, reason))
        return checks

    if conversation_id is None and not why:
        created = api.request("POST", "/api/conversations", {"title": options.conversation_title}, token=token)
        if created.status == 201 and isinstance(created.body, dict):
            conversation_id = (created.body.get("conversation") or {}).get("id")
        if not conversation_id:
            why = f"the conversation {options.conversation_title!r} could not be created: {describe(created, 201)}"

    sent = None
    text = f"synthetic verification {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {uuid.uuid4().hex[:12]}"
    if conversation_id and not why:
        sent = api.request("POST", f"/api/conversations/{conversation_id}/messages", {"text": text}, token=token)
    body = sent.body if sent is not None and isinstance(sent.body, dict) else {}
    message_id = (body.get("message") or {}).get("id") if sent is not None and sent.status == 201 else None
    reply = body.get("reply") or {}
    reply_id = reply.get("id") if message_id else None
    send_problem = ""
    if sent is not None and sent.status == 201 and not (message_id and reply.get("text")):
        send_problem = "the answer holds no message or no bot reply"
    elif sent is not None and sent.status != 201:
        send_problem = (describe(sent, 201) + "; the app may have stored the message anyway, it cannot be deleted "
                        "without its id")
    checks.append(status_check("messaging_send", sent, 201, "full", why, send_problem,
                               "message sent, the bot replied"))
    checks.append(latency_check("latency_send_message", sent, threshold, "full", why))

    read = None
    if message_id:
        read = api.request("GET", f"/api/conversations/{conversation_id}/messages?limit=50", token=token)
    elif not why:
        why = "no message was sent"
    messages = read.body.get("messages") if read is not None and read.status == 200 and \
        isinstance(read.body, dict) else None
    found = isinstance(messages, list) and any(isinstance(m, dict) and m.get("id") == message_id
                                               and m.get("text") == text for m in messages)
    checks.append(status_check("messaging_read", read, 200, "full", why,
                               "" if read is None or read.status != 200 or found
                               else "the message sent is not in the conversation",
                               "the message sent is listed in its conversation"))
    checks.append(latency_check("latency_list_messages", read, threshold, "full", why))

    written = [i for i in (message_id, reply_id) if i]
    if not written:
        checks.append(check("messaging_cleanup", "full", 0, 0, "messages", SKIP,
                            "nothing to delete: no message id was returned"))
        return checks
    deleted, problems = 0, []
    for ident in written:
        result = api.request("DELETE", f"/api/messages/{ident}", token=token)
        if result.status == 204:
            deleted += 1
        else:
            problems.append(f"{ident}: {describe(result, 204)}")
    checks.append(check("messaging_cleanup", "full", deleted, len(written), "messages",
                        PASS if deleted == len(written) else FAIL,
                        "the synthetic message and the bot's reply were deleted" if not problems
                        else "left behind: " + "; ".join(problems)))
    return checks
