"""Keep secrets out of incident records, logs and artifacts.

`redact(value)` returns a redacted deep copy of any JSON-like value (dicts, lists, tuples, sets,
strings, bytes); `redact_text(text)` does the same for one string such as a log line;
`redact_url(url)` removes the whole user information (user and password) of a URL shown in messages.
All are pure and never modify their argument. This is the one implementation: the wrapper, the
rollback_record callback and the rollback_redact filter all use it.

The rules, applied to every string (and dict key) in this order:

1. exact secrets the caller knows (`extra_secrets`, each at least 4 characters long), also in their
   percent-encoded forms, wherever they occur;
2. the password in a URI's userinfo: ``mongodb://user:pw@host`` -> ``mongodb://user:********@host``
   (any scheme: mongodb, mongodb+srv, http(s), amqp, redis, postgres...; also inside longer text;
   a URI without a password is left alone);
3. ``Authorization:`` / ``Proxy-Authorization:`` values (the scheme word such as ``Bearer`` is kept),
   ``Cookie:`` / ``Set-Cookie:`` values, a free-standing ``Bearer <token>``, and ``Basic <base64>`` when
   it decodes to ``user:password``;
4. ``key=value`` / ``key: value`` text (query strings, env assignments, YAML or JSON text) whose key
   looks secret, e.g. ``token=...``, ``password=...``, ``api_key=...``, ``MONGO_PASSWORD=...``;
5. a command-line option with a secret name followed by its value: ``--password VALUE``.

And for dicts (and ``(key, value)`` tuples, as HTTP header lists are): the value of a key that looks
secret (see `is_secret_key`) becomes ``"********"`` whatever its type, unless it is empty, None or a
bool. Keys that name a place rather than hold a secret (`is_allowed_key`: ``password_file``,
``token_file``, ``secret_ref``, ``*_file``, ``*_path``, ``*_dir``, ``*_ref``, ``*_env``, ``*_var``) keep
their value; their strings still go through the text rules. Values already redacted by Ansible
(``VALUE_SPECIFIED_IN_NO_LOG_PARAMETER``) or by this module (``********``) pass through unchanged.
Other types (numbers, None, objects) are returned as they are. Dict keys go through the text rules
too (a key holding a secret is rewritten; two keys that become equal keep the last value).
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

REDACTED = "********"
ANSIBLE_NO_LOG = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
#: Values left as they are: they are already placeholders.
PLACEHOLDERS = frozenset({REDACTED, ANSIBLE_NO_LOG})
#: Shorter extra secrets are ignored: replacing them would shred ordinary text.
MIN_SECRET_LENGTH = 4

# Key names: a substring match for words that are never innocent, a whole-word match for short ones.
_SECRET_SUBSTRINGS = (
    "password", "passwd", "passphrase", "secret", "credential", "apikey", "api_key", "access_key",
    "private_key", "authorization", "cookie", "webhook", "bypass_token",
)
_SECRET_WORDS = frozenset({"pwd", "token", "session"})
_ALLOWED_KEYS = frozenset({"password_file", "token_file", "secret_ref", "no_log"})
_ALLOWED_SUFFIXES = ("_file", "_files", "_path", "_paths", "_dir", "_ref", "_env", "_var")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")

# 2. scheme://user:password@host -- the password runs to the last "@" before a path, query, fragment
# or whitespace, so an unencoded "@" in a password is still covered.
_URI_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s:/?#@]*:)(?P<password>[^\s/?#]*)@")
# 3. Header values: keep the header name, the separator and an auth scheme word; redact the rest of the line,
# or up to the closing quote when the value is quoted.
_HEADER = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization|\b(?:set-)?cookie)(?P<sep>[\"']?\s*[:=]\s*)"
    r"(?:(?P<quote>[\"'])(?P<quoted>(?:(?!(?P=quote))[^\r\n])*)|(?P<bare>[^\s\"'][^\r\n]*))",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"(?:bearer|basic|token|digest|negotiate|ntlm)\s+", re.IGNORECASE)
_BEARER = re.compile(r"\b(?P<scheme>Bearer\s+)(?P<value>[A-Za-z0-9\-._~+/]{8,}=*)", re.IGNORECASE)
_BASIC = re.compile(r"\b(?P<scheme>Basic\s+)(?P<value>[A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])", re.IGNORECASE)
# 4. key=value or key: value, with optional quotes around key and value (JSON, YAML, env, query strings).
# _KEY matches a key and its separator only (possessively: no backtracking, so long runs of word characters
# cost linear time); the value is parsed with _VALUE only after is_secret_key() said yes, so that an innocent
# "https:" does not swallow the "//host/?token=x" that follows it.
_KEY = re.compile(r"(?<![\w.])(?P<key>[A-Za-z_][\w.\-]{0,127}+)(?P<sep>[\"']?\s*+[:=]\s*+)")
_VALUE = re.compile(r"(?P<quote>[\"'])(?P<quoted>(?:(?!(?P=quote))[^\r\n])*+)(?P=quote)?|(?P<bare>[^\s\"'&,;)\]}]++)")

# 5. A command-line option followed by its value: --password VALUE, -token VALUE.
_FLAG = re.compile(r"(?<![\w-])(?P<flag>--?[A-Za-z][\w-]{0,63}+)(?P<sep>\s++)(?P<value>(?!-)[^\s\"']+)")


def _key_words(key: str) -> str:
    """Normalise a key name: camelCase and separators become underscores, lower case."""
    return _NON_WORD.sub("_", _CAMEL.sub("_", key).lower()).strip("_")


def is_allowed_key(key: str) -> bool:
    """True for keys that name a place or a reference (``password_file``, ``*_path``...), not a secret."""
    name = _key_words(key)
    return name in _ALLOWED_KEYS or name.endswith(_ALLOWED_SUFFIXES)


def is_secret_key(key: Any) -> bool:
    """True when the value under `key` must be redacted (and the key is not allow-listed).

    >>> is_secret_key("MONGO_PASSWORD"), is_secret_key("apiKey"), is_secret_key("password_file")
    (True, True, False)
    """
    if not isinstance(key, str) or is_allowed_key(key):
        return False
    name = _key_words(key)
    compact = name.replace("_", "")
    if any(word in name or word.replace("_", "") in compact for word in _SECRET_SUBSTRINGS):
        return True
    return any(word in _SECRET_WORDS for word in name.split("_"))


def _secret_variants(extra_secrets: Iterable[str]) -> list[str]:
    variants: set[str] = set()
    for secret in extra_secrets or ():
        if isinstance(secret, str) and len(secret) >= MIN_SECRET_LENGTH and secret not in PLACEHOLDERS:
            quoted = (urllib.parse.quote(secret), urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret))
            variants.update((secret, *quoted))
    return sorted(variants, key=len, reverse=True)


def _secrets_pattern(extra_secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation of every known secret and its encoded forms, longest first; None when there are none."""
    variants = _secret_variants(extra_secrets)
    return re.compile("|".join(map(re.escape, variants))) if variants else None


def _uri_password(match: re.Match[str]) -> str:
    password = match["password"]
    if not password or password in PLACEHOLDERS:
        return match[0]
    return f"{match['head']}{REDACTED}@"


def _header_value(match: re.Match[str]) -> str:
    quote = match["quote"] or ""
    value = match["quoted"] if quote else match["bare"]
    scheme = _AUTH_SCHEME.match(value)
    secret = value[scheme.end():] if scheme else value
    if not secret.strip() or secret.strip() in PLACEHOLDERS:
        return match[0]
    return f"{match['head']}{match['sep']}{quote}{scheme[0] if scheme else ''}{REDACTED}"


def _bearer(match: re.Match[str]) -> str:
    return f"{match['scheme']}{REDACTED}"


def _basic(match: re.Match[str]) -> str:
    """Redact ``Basic <base64>`` only when it decodes to ``user:password`` (ordinary text stays)."""
    try:
        decoded = base64.b64decode(match["value"], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return match[0]
    return f"{match['scheme']}{REDACTED}" if ":" in decoded else match[0]


def _secret_value_at(text: str, key: re.Match[str]) -> re.Match[str] | None:
    """The value after a secret `key` match that should be redacted, or None."""
    name = key["key"].lower()
    if "authorization" in name or "cookie" in name or not is_secret_key(key["key"]):
        return None  # headers are handled by _HEADER; other keys are not secret
    value = _VALUE.match(text, key.end())
    if value is None:
        return None
    content = value["quoted"] if value["quote"] else value["bare"]
    return None if not content or content in PLACEHOLDERS or content.startswith(REDACTED) else value


def _redact_key_values(text: str) -> str:
    """Rule 4: one left-to-right pass; the value of a secret key becomes REDACTED (quotes kept)."""
    parts: list[str] = []
    position = 0
    while key := _KEY.search(text, position):
        value = _secret_value_at(text, key)
        if value is None:
            parts.append(text[position:key.end()])
            position = key.end()
            continue
        quote = value["quote"] or ""
        closing = quote if value[0].endswith(quote) and len(value[0]) > 1 else ""
        parts.append(f"{text[position:key.end()]}{quote}{REDACTED}{closing}")
        position = value.end()
    parts.append(text[position:])
    return "".join(parts)


def _flag_value(match: re.Match[str]) -> str:
    if not is_secret_key(match["flag"].lstrip("-")) or match["value"] in PLACEHOLDERS:
        return match[0]
    return f"{match['flag']}{match['sep']}{REDACTED}"


def _substitution(pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    return lambda text: pattern.sub(replace, text)


# Each rule with the lower-case words without which it cannot match: most log lines skip most rules.
_SECRET_WORDS_HINT = ("passw", "passphrase", "pwd", "secret", "token", "credential", "key", "session", "webhook",
                      "authorization", "cookie")
_TEXT_RULES: tuple[tuple[tuple[str, ...], Callable[[str], str]], ...] = (
    (("://",), _substitution(_URI_USERINFO, _uri_password)),
    (("authorization", "cookie"), _substitution(_HEADER, _header_value)),
    (("bearer",), _substitution(_BEARER, _bearer)),
    (("basic",), _substitution(_BASIC, _basic)),
    (_SECRET_WORDS_HINT, _redact_key_values),
    (_SECRET_WORDS_HINT, _substitution(_FLAG, _flag_value)),
)


def _redact_string(text: str, secrets: re.Pattern[str] | None) -> str:
    if secrets is not None:
        text = secrets.sub(REDACTED, text)
    lowered = text.lower()  # redacting only removes text, so hints found here stay valid for every rule
    for hints, rule in _TEXT_RULES:
        if any(hint in lowered for hint in hints):
            text = rule(text)
    return text


def redact_text(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Redact one string (a log line, a command line, an error message) with the text rules 1-5."""
    return _redact_string(text, _secrets_pattern(extra_secrets))


def _keeps_value(value: Any) -> bool:
    """Values shown even under a secret key: nothing to hide (empty, None, bool) or already a placeholder."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str | bytes | Mapping | list | tuple | set | frozenset) and not value:
        return True
    return isinstance(value, str) and value in PLACEHOLDERS


def _redact_entry(key: Any, value: Any, secrets: re.Pattern[str] | None) -> Any:
    if is_secret_key(key) and not _keeps_value(value):
        return REDACTED
    return _walk(value, secrets)


def _walk(value: Any, secrets: re.Pattern[str] | None) -> Any:
    if isinstance(value, str):
        return _redact_string(value, secrets)
    if isinstance(value, bytes):
        try:
            return _redact_string(value.decode("utf-8"), secrets).encode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, Mapping):
        return {_walk(key, secrets): _redact_entry(key, item, secrets) for key, item in value.items()}
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return (_walk(value[0], secrets), _redact_entry(value[0], value[1], secrets))
    if isinstance(value, list):
        return [_walk(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(_walk(item, secrets) for item in value)
    if isinstance(value, set | frozenset):
        return type(value)(_walk(item, secrets) for item in value)
    return value


def redact_url(url: str) -> str:
    """`url` with its user information replaced by ``***`` (a token used as user name is a secret too).

    >>> redact_url("http://user:pw@prometheus:9090/x")
    'http://***@prometheus:9090/x'
    """
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = f"***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def redact(value: Any, extra_secrets: Iterable[str] = ()) -> Any:
    """Return a redacted deep copy of `value` (same shape: dicts, lists, tuples, sets, strings).

    `extra_secrets` are exact values known to be secret (passwords, tokens, webhook URLs); each one of
    at least 4 characters is replaced wherever it occurs, also percent-encoded. See the module docstring
    for the rules.
    """
    return _walk(value, _secrets_pattern(extra_secrets))
