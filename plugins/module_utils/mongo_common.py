"""Connecting Ansible modules to MongoDB (or FerretDB) with pymongo, without leaking the password.

The connection string is the only secret the MongoDB modules take. It never appears in a result or
an error message: messages name the host and port, URIs are shown through redact_uri(), and the
password is registered as a no_log value of the module so that Ansible masks it everywhere.
"""

from __future__ import annotations

import re
import traceback
from urllib.parse import unquote

try:
    import pymongo
    from pymongo.errors import ConfigurationError, InvalidURI, OperationFailure, PyMongoError

    HAS_PYMONGO = True
    PYMONGO_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the managed host
    HAS_PYMONGO = False
    PYMONGO_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib


class MongoConnectionError(Exception):
    """The server cannot be reached, refused the credentials, or the URI is unusable."""


def mongo_argument_spec() -> dict:
    """Options shared by every MongoDB module (documented in the mongo_uri doc fragment)."""
    return {
        "uri": {"type": "str", "required": True, "no_log": True},
        "server_selection_timeout_ms": {"type": "int", "default": 5000},
    }


_SCHEMES = ("mongodb://", "mongodb+srv://")


def _split(uri: str) -> tuple[str, str, str, str, str]:
    """(scheme, userinfo, hosts, path, query) of a connection string, without any network lookup."""
    scheme = next((s for s in _SCHEMES if uri.startswith(s)), None)
    if scheme is None:
        raise ValueError("the URI must start with mongodb:// or mongodb+srv://")
    rest = uri[len(scheme):]
    # Like pymongo: the host part ends at the first "/" (user and password must be percent-encoded).
    authority, slash, tail = rest.partition("/")
    if not slash and "?" in authority:
        authority, _sep, query = authority.partition("?")
        path = ""
    else:
        path, _sep, query = tail.partition("?")
    userinfo, at, hosts = authority.rpartition("@")
    if not at:
        userinfo = ""
    return scheme, userinfo, hosts, path, query


def uri_password(uri: str) -> str | None:
    """The (decoded) password of a connection string, or None."""
    try:
        userinfo = _split(uri)[1]
    except ValueError:
        return None
    if ":" not in userinfo:
        return None
    return unquote(userinfo.partition(":")[2]) or None


def redact_uri(uri: str) -> str:
    """The URI with its password (and any *password* query option) replaced by ***."""
    try:
        scheme, userinfo, hosts, _path, _query = _split(uri)
    except ValueError:
        return "<unparsable MongoDB URI>"
    rest = uri[len(scheme):]
    authority = (userinfo + "@" if userinfo else "") + hosts
    tail = rest[len(authority):] if rest.startswith(authority) else ""
    if ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":***"
    tail = re.sub(r"(?i)([?&][^&=]*password[^&=]*)=[^&]*", r"\1=***", tail)
    return scheme + (userinfo + "@" if userinfo else "") + hosts + tail


def uri_hosts(uri: str) -> str:
    """The host:port list of the URI, as written (for messages)."""
    try:
        return _split(uri)[2]
    except ValueError:
        return "<unparsable MongoDB URI>"


def database_name(uri: str) -> str:
    """The database named in the URI path (mongodb://host/DB); ValueError when there is none."""
    path = _split(uri)[3]
    name = unquote(path)
    if not name:
        raise ValueError(f"the URI {redact_uri(uri)} names no database: add it as the path, "
                         "for example mongodb://user:pass@host:27017/chatbot-platform")
    if any(c in name for c in '/\\. "$\x00'):
        raise ValueError(f"the URI {redact_uri(uri)} names an invalid database {name!r}")
    return name


def uri_without_database(uri: str) -> str:
    """The URI without its database path, keeping that database as authSource when it was one.

    mongorestore reads a database in the URI as a deprecated --db; restoring an archive with
    --nsInclude wants none.
    """
    scheme, userinfo, hosts, path, query = _split(uri)
    options = [part for part in query.split("&") if part]
    if path and not any(part.lower().startswith("authsource=") for part in options):
        options.append("authSource=" + path)
    query = "?" + "&".join(options) if options else ""
    return scheme + (userinfo + "@" if userinfo else "") + hosts + "/" + query


def scrub(text: str, uri: str) -> str:
    """Text (an error message, a tool's output) with the URI and its password removed."""
    if not text:
        return text
    text = text.replace(uri, redact_uri(uri))
    password = uri_password(uri)
    if password:
        text = text.replace(password, "***")
        raw = _split(uri)[1].partition(":")[2]
        if raw and raw != password:
            text = text.replace(raw, "***")
    return text


def _params(module_or_params) -> dict:
    return module_or_params.params if hasattr(module_or_params, "params") else module_or_params


def connect(module_or_params):
    """A MongoClient on the URI of a module (or of a params dict), checked with a ping.

    With a module, every failure ends the module with fail_json; with a dict, it raises
    MongoConnectionError (or ImportError when pymongo is missing). Messages never hold the password.
    """
    module = module_or_params if hasattr(module_or_params, "fail_json") else None
    params = _params(module_or_params)
    uri = params["uri"]
    password = uri_password(uri)
    if module is not None and password:
        module.no_log_values.add(password)

    if not HAS_PYMONGO:
        if module is not None:
            module.fail_json(msg=missing_required_lib("pymongo"), exception=PYMONGO_IMPORT_ERROR)
        raise ImportError(missing_required_lib("pymongo"))
    try:
        return _connect(uri, params.get("server_selection_timeout_ms") or 5000)
    except MongoConnectionError as exc:
        if module is not None:
            module.fail_json(msg=str(exc))
        raise


def _connect(uri: str, timeout_ms: int):
    hosts = uri_hosts(uri)
    try:
        database_name(uri)
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                                     appname="chatbot-rollback")
    except ValueError as exc:
        raise MongoConnectionError(scrub(str(exc), uri)) from None
    except (ConfigurationError, InvalidURI) as exc:
        raise MongoConnectionError(f"invalid MongoDB URI {redact_uri(uri)}: {scrub(str(exc), uri)}") from None
    try:
        client.admin.command("ping")
        # The ping does not authenticate on every server: ask for something that needs a login.
        client.get_database(database_name(uri)).list_collection_names()
    except OperationFailure as exc:
        client.close()
        reason = scrub(str((exc.details or {}).get("errmsg", exc)), uri)
        raise MongoConnectionError(f"MongoDB at {hosts} refused the request (authentication or "
                                   f"authorization failed?): {reason}") from None
    except PyMongoError as exc:
        client.close()
        reason = scrub(str(exc), uri).split(", Timeout:", maxsplit=1)[0].split(" (configured timeouts:", maxsplit=1)[0]
        raise MongoConnectionError(f"cannot reach MongoDB at {hosts} within {timeout_ms} ms: "
                                   f"{reason}") from None
    return client


def server_version(client) -> str:
    return str(client.server_info().get("version", "unknown"))
