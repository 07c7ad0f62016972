"""Secrets never appear in records, logs or artifacts: each redaction rule, and what must survive."""

from __future__ import annotations

import base64
import copy
import json
import time
import urllib.parse

import pytest

from rollbackctl.redact import ANSIBLE_NO_LOG, REDACTED, is_allowed_key, is_secret_key, redact, redact_text

PASSWORD = "Zq7-distinctive-Pw-4471"
URI = f"mongodb://chatbot:{PASSWORD}@db1.internal:27017,db2.internal:27017/chat?authSource=admin"
SAFE_URI = f"mongodb://chatbot:{REDACTED}@db1.internal:27017,db2.internal:27017/chat?authSource=admin"


def _dump(value) -> str:
    return json.dumps(value, default=repr)


# -- (a) credentials in URIs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (URI, SAFE_URI),
        ("mongodb+srv://u:pw@cluster0.example.net/db", f"mongodb+srv://u:{REDACTED}@cluster0.example.net/db"),
        ("https://deploy:hunter22@git.example.com/repo.git", f"https://deploy:{REDACTED}@git.example.com/repo.git"),
        ("amqp://guest:guest@rabbit:5672/", f"amqp://guest:{REDACTED}@rabbit:5672/"),
        ("redis://:s3cret@localhost:6379/0", f"redis://:{REDACTED}@localhost:6379/0"),
        ("postgres://app:pa%40ss%2Fw0rd@pg/app", f"postgres://app:{REDACTED}@pg/app"),
        ("mongodb://u:p@ss@host/db", f"mongodb://u:{REDACTED}@host/db"),
        ("error: cannot reach http://admin:pw1@10.0.0.5:8080/health (timeout)",
         f"error: cannot reach http://admin:{REDACTED}@10.0.0.5:8080/health (timeout)"),
    ],
)
def test_uri_password_is_redacted(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "mongodb://chatbot@db1:27017/chat",
        "https://example.com:8443/path?q=1",
        "http://localhost:18080/health and mail ops@example.com",
        "mongodb://db1:27017,db2:27017/chat",
        f"mongodb://u:{REDACTED}@host/db",
    ],
)
def test_uri_without_password_is_untouched(text):
    assert redact_text(text) == text


def test_distinctive_password_in_a_mongodb_uri_nested_everywhere():
    record = {
        "incident": "INC-7",
        "targets": [{"name": "db", "uris": [URI, ("backup", URI)]}],
        "log": [f"2024-05-01 connecting to {URI} ... ok", {"line": f"retry {URI}"}],
        "tuple": (URI, [URI]),
        URI: "uri as a key",
        "set": {URI},
        "bytes": URI.encode(),
    }
    original = copy.deepcopy(record)
    safe = redact(record)
    assert PASSWORD not in _dump(safe)
    assert SAFE_URI in safe["targets"][0]["uris"]
    assert safe["targets"][0]["uris"][1] == ("backup", SAFE_URI)
    assert safe["log"][0] == f"2024-05-01 connecting to {SAFE_URI} ... ok"
    assert isinstance(safe["tuple"], tuple)
    assert safe[SAFE_URI] == "uri as a key"
    assert safe["set"] == {SAFE_URI}
    assert safe["bytes"] == SAFE_URI.encode()
    assert record == original, "redact() must not modify its argument"


# -- (b) secret-looking keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["password", "DB_PASSWORD", "passwd", "pwd", "secret", "client_secret", "token", "access_token", "api_key",
     "apiKey", "X-Api-Key", "access_key", "private_key", "Authorization", "Cookie", "set-cookie", "session",
     "session_id", "webhook_url", "slackWebhook", "bypass_token", "maintenance_mode_bypass_token", "credentials"],
)
def test_secret_keys_are_redacted(key):
    assert is_secret_key(key)
    assert redact({key: "value-1234"}) == {key: REDACTED}
    assert redact({key: 12345}) == {key: REDACTED}
    assert redact({key: {"nested": "x"}}) == {key: REDACTED}


@pytest.mark.parametrize("value", ["", None, True, False, [], {}, REDACTED, ANSIBLE_NO_LOG])
def test_empty_boolean_and_placeholder_values_are_kept(value):
    assert redact({"password": value}) == {"password": value}


@pytest.mark.parametrize(
    "key",
    ["password_file", "token_file", "secret_ref", "vault_password_file", "ssh_private_key_path", "api_key_env",
     "webhook_url_file", "secretsDir"],
)
def test_allow_listed_keys_survive(key):
    assert is_allowed_key(key)
    assert not is_secret_key(key)
    assert redact({key: "/etc/rollbackctl/secret.txt"}) == {key: "/etc/rollbackctl/secret.txt"}


def test_allow_listed_values_still_go_through_the_text_rules():
    assert redact({"password_file": f"see {URI}"}) == {"password_file": f"see {SAFE_URI}"}


@pytest.mark.parametrize("key", ["name", "sessions", "tokens_used", "host", "max_tokens", "author", "incident_id"])
def test_ordinary_keys_are_not_secret(key):
    assert not is_secret_key(key)
    assert redact({key: "visible"}) == {key: "visible"}


def test_header_pairs_are_redacted_like_dict_entries():
    headers = [("Content-Type", "application/json"), ("Authorization", "Bearer x")]
    assert redact(headers) == [("Content-Type", "application/json"), ("Authorization", REDACTED)]


def test_other_types_pass_through():
    value = {"n": 3, "f": 1.5, "none": None, "flag": True}
    assert redact(value) == value


# -- (c) headers and key=value text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOi.abc.def", f"Authorization: Bearer {REDACTED}"),
        ("authorization=Basic dXNlcjpwYXNz", f"authorization=Basic {REDACTED}"),
        ('{"Authorization": "Token abc123"}', f'{{"Authorization": "Token {REDACTED}"}}'),
        ("Proxy-Authorization: Digest username=\"u\", response=\"x\"", f"Proxy-Authorization: Digest {REDACTED}"),
        ("Cookie: sid=abc; theme=dark", f"Cookie: {REDACTED}"),
        ("sent header Bearer abcdefgh12345", f"sent header Bearer {REDACTED}"),
        (f"login with Basic {base64.b64encode(b'admin:pw').decode()}", f"login with Basic {REDACTED}"),
        ("GET /api?token=abc123&page=2", f"GET /api?token={REDACTED}&page=2"),
        ("https://h/x?api_key=K3y&access_token=T0k", f"https://h/x?api_key={REDACTED}&access_token={REDACTED}"),
        ("MONGO_PASSWORD=hunter2 PORT=27017", f"MONGO_PASSWORD={REDACTED} PORT=27017"),
        ("password: 'two words'", f"password: '{REDACTED}'"),
        ('{"db_password": "p w", "user": "u"}', f'{{"db_password": "{REDACTED}", "user": "u"}}'),
        ("X-Bypass-Token: tok-123", f"X-Bypass-Token: {REDACTED}"),
        ("rollbackctl run --password hunter2 --yes", f"rollbackctl run --password {REDACTED} --yes"),
        ("rollbackctl run --token=abc --break-lock", f"rollbackctl run --token={REDACTED} --break-lock"),
    ],
)
def test_text_patterns_are_redacted(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Basic authentication failed",
        "token_file=/etc/rollbackctl/token password_file=/run/secrets/db",
        "--password-file /run/secrets/db",
        "tokens_used=15 sessions=3",
        f"password: {ANSIBLE_NO_LOG}",
        f"token={REDACTED}",
        "rollback of release v1.2.3 finished: status ok",
    ],
)
def test_innocent_text_is_untouched(text):
    assert redact_text(text) == text


# -- (d) extra secrets ----------------------------------------------------------------------------------


def test_extra_secrets_are_replaced_everywhere_including_encoded_forms():
    secret = "s3cr3t/with spaces&@"
    text = f"a {secret} b {urllib.parse.quote(secret, safe='')} c {urllib.parse.quote_plus(secret)} d"
    assert redact_text(text, [secret]) == f"a {REDACTED} b {REDACTED} c {REDACTED} d"
    nested = {"list": [f"x{secret}x", (secret,)], "k": {"v": secret}}
    assert secret not in _dump(redact(nested, [secret]))


def test_extra_secret_inside_a_webhook_url_and_longest_first():
    webhook = "https://hooks.example.com/services/T000/B000/XXXXsecretXXXX"
    assert redact_text(f"posting to {webhook}", [webhook, "XXXXsecretXXXX"]) == f"posting to {REDACTED}"


def test_short_or_empty_extra_secrets_are_ignored():
    assert redact_text("a b abc", ["", "a", "abc"]) == "a b abc"


def test_ansible_placeholders_pass_through():
    value = {"password": ANSIBLE_NO_LOG, "msg": f"token={ANSIBLE_NO_LOG}", "other": REDACTED}
    assert redact(value) == value


# -- speed ------------------------------------------------------------------------------------------------


PATHOLOGICAL = {
    "secret words without separators": "token" * 40_000,
    "keys joined by hyphens": "token_x-" * 30_000,
    "many secret keys without values": "a token_x=" * 20_000,
    "dotted run": "a." * 100_000,
    "long scheme": "a" * 100_000 + "://" + "b:" * 20_000,
    "userinfo without @": "http://a:" + "b" * 200_000,
    "unclosed quote": "password='" + "a" * 200_000,
    "long bearer": "Bearer " + "a" * 200_000,
    "flag and spaces": "--password" + " " * 100_000,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_text_takes_linear_time(text):
    started = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - started < 2, "a regex backtracks quadratically"
