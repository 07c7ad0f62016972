"""One validation layer for everything a person (or a file, or the environment) gives the wrapper.

Every sub-command runs its inputs through these validators before anything touches the disk, the lock
or ansible: the command line through argparse ``type=`` callables (`arg`), the library functions
(`procedures.run_rollback`, `resume_rollback`, `rehearsal.rehearse`) once more at their first step, so
that the Python API is held to the same rules. Each validator returns the value in its canonical form or
raises `UsageError` (exit code 2) with a message that starts with the option or input it judged::

    rollbackctl: --reason: is empty; say why the release is rolled back

The classes of input:

- people's names (`person_name`): NFKC, whitespace collapsed, no control, format (invisible: zero-width,
  bidi), surrogate, private-use or unassigned characters, not empty, at most `NAME_MAX` characters;
  `person_key` is the identity used to count people (the name case-folded as well);
- free text (`free_text`): a reason; not empty, at most `TEXT_MAX` characters, no control characters
  but newline and tab, no bidi overrides;
- identifiers (`identifier`): incident ids and backup names, ``[A-Za-z0-9][A-Za-z0-9._-]{0,127}`` and no
  ``..``: nothing that could name a path outside its folder;
- URLs (`url`), ports from the environment (`env_port`), durations (`duration`), times (`time`),
  JSON/YAML documents (`load_document`, `parse_json`, `check_document`), folders and files
  (`directory`, `output_file`, `input_file`).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import sys
import unicodedata
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .errors import UsageError
from .matrix import DURATION_FORMS, parse_duration
from .times import parse_time

T = TypeVar("T")

NAME_MAX = 128
TEXT_MAX = 2000
ID_MAX = 128
PATH_MAX = 4096
URL_MAX = 2048
HOST_MAX = 253
DOCUMENT_DEPTH = 64
DOCUMENT_BYTES = 16 * 1024 * 1024
DURATION_MAX = datetime.timedelta(days=366)

IDENTIFIER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)
_WHITESPACE = re.compile(r"\s+")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
#: Unicode categories refused in names: control, format (zero-width, bidi, soft hyphen...), surrogate
#: (undecodable bytes on the command line), private use, unassigned, line and paragraph separators.
_NAME_REFUSED = {"Cc": "a control character", "Cf": "an invisible (format) character",
                 "Cs": "an undecodable byte", "Co": "a private-use character", "Cn": "an unassigned character",
                 "Zl": "a line separator", "Zp": "a paragraph separator"}
_TEXT_REFUSED = {"Cc": "a control character", "Cs": "an undecodable byte"}
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)", re.ASCII)


def _show(value: Any, limit: int = 60) -> str:
    """A value for a message: repr (escapes control and undecodable characters), cut when long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(value) if hasattr(value, '__len__') else '?'} " \
                                           "characters)"


def _char_name(char: str) -> str:
    return f"U+{ord(char):04X}" + (f" {unicodedata.name(char)}" if unicodedata.name(char, "") else "")


def _require_text(value: Any, option: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{option}: must be text, not {type(value).__name__}")
    return value


# ---- people -------------------------------------------------------------------------------------------


def person_name(value: Any, option: str = "name") -> str:
    """A person's name in canonical form: NFKC, whitespace collapsed and stripped.

    Refused (UsageError naming `option`): empty or whitespace only, longer than `NAME_MAX`, a control,
    invisible (Unicode format: zero-width, bidi marks), undecodable, private-use or unassigned character.
    """
    text = _require_text(value, option)
    if len(text) > NAME_MAX * 4:
        raise UsageError(f"{option}: is {len(text)} characters long; a name has at most {NAME_MAX}")
    for char in text:
        category = unicodedata.category(char)
        if category in _NAME_REFUSED:
            raise UsageError(f"{option}: {_show(text)} holds {_NAME_REFUSED[category]} ({_char_name(char)}); "
                             "write the name in plain characters")
    name = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    for char in name:  # NFKC can produce characters the checks above never saw (rare, but cheap to re-check)
        if unicodedata.category(char) in _NAME_REFUSED:
            raise UsageError(f"{option}: {_show(text)} normalises to a refused character ({_char_name(char)})")
    if not name:
        raise UsageError(f"{option}: is empty; give the person's name")
    if len(name) > NAME_MAX:
        raise UsageError(f"{option}: is {len(name)} characters long; a name has at most {NAME_MAX}")
    return name


def person_key(name: str) -> str:
    """The identity used to count people: NFKC, case-folded, whitespace collapsed (and invisible characters
    dropped, for names that did not come through `person_name`)."""
    text = unicodedata.normalize("NFKC", name or "")
    text = "".join(c for c in text if unicodedata.category(c) not in _NAME_REFUSED)
    text = unicodedata.normalize("NFKC", text.casefold())
    return _WHITESPACE.sub(" ", text).strip()


# ---- free text ----------------------------------------------------------------------------------------


def free_text(value: Any, option: str = "text", *, purpose: str = "say what it is about",
              max_length: int = TEXT_MAX) -> str:
    """Free text as written (a reason): not empty or whitespace only, at most `max_length` characters, no
    control characters other than newline and tab, no bidi override characters."""
    text = _require_text(value, option)
    if not text.strip():
        raise UsageError(f"{option}: is empty; {purpose}")
    if len(text) > max_length:
        raise UsageError(f"{option}: is {len(text)} characters long; at most {max_length} are accepted")
    for char in text:
        if char in "\n\t":
            continue
        category = unicodedata.category(char)
        if category in _TEXT_REFUSED:
            raise UsageError(f"{option}: {_show(text)} holds {_TEXT_REFUSED[category]} ({_char_name(char)}); only "
                             "newlines and tabs are accepted among control characters")
        if char in _BIDI:
            raise UsageError(f"{option}: {_show(text)} holds a bidi control ({_char_name(char)}), which makes the "
                             "text read differently from what it holds")
    return text


def plain_value(value: Any, option: str, *, what: str = "a value", max_length: int = PATH_MAX) -> str:
    """A short single-line value (an inventory path, a role): not empty, no control or invisible characters."""
    text = _require_text(value, option)
    if not text.strip():
        raise UsageError(f"{option}: is empty; give {what}")
    if len(text) > max_length:
        raise UsageError(f"{option}: is {len(text)} characters long; at most {max_length} are accepted")
    for char in text:
        category = unicodedata.category(char)
        if category in _NAME_REFUSED:
            raise UsageError(f"{option}: {_show(text)} holds {_NAME_REFUSED[category]} ({_char_name(char)})")
    return text


# ---- identifiers --------------------------------------------------------------------------------------


def is_identifier(value: Any) -> bool:
    """Whether `value` is a valid incident id / backup name (see `identifier`)."""
    return isinstance(value, str) and bool(IDENTIFIER_RE.fullmatch(value)) and ".." not in value


def identifier(value: Any, option: str = "id", *, error: type[UsageError] = UsageError) -> str:
    """An incident id or a backup name: a letter or digit, then letters, digits, '.', '_', '-' (at most 128 in
    all), no '..': it names a folder or a file inside its parent, never a path out of it. Raises `error` (a
    UsageError; IncidentNotFound for the id of an existing incident)."""
    text = _require_text(value, option)
    if not text:
        raise error(f"{option}: is empty (a malformed id); give an id: letters, digits, '.', '_' and '-'")
    if not is_identifier(text):
        raise error(f"{option}: {_show(text)} is malformed: letters, digits, '.', '_' and '-' only, starting "
                         f"with a letter or digit, at most {ID_MAX} characters, no '..' (no '/')")
    return text


# ---- release versions and choices --------------------------------------------------------------------

VERSION_RE = re.compile(r"v[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}", re.ASCII)
PROCEDURES = ("standard", "emergency")
DATABASE_CHOICES = ("auto", "yes", "no")


def check_version(value: Any, option: str = "--to") -> str:
    """`value` when it is vMAJOR.MINOR.PATCH; UsageError naming `option` otherwise."""
    if not isinstance(value, str) or not VERSION_RE.fullmatch(value):
        raise UsageError(f"{option} {_show(value)} is malformed: expected vMAJOR.MINOR.PATCH, e.g. v0.9.0")
    return value


def version_arg(option: str) -> Callable[[str], str]:
    """An argparse ``type=`` for a release version (`check_version` naming `option`)."""
    return arg(check_version, option)


# ---- URLs and ports -----------------------------------------------------------------------------------


def _host(host: str, option: str, shown: str) -> None:
    if host.startswith("["):
        if not host.endswith("]"):
            raise UsageError(f"{option}: {shown} has a malformed IPv6 host {host!r}")
        literal = host[1:-1].split("%", 1)[0]
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise UsageError(f"{option}: {shown} has a malformed IPv6 host {host!r}") from None
        return
    if len(host) > HOST_MAX:
        raise UsageError(f"{option}: {shown}: the host is {len(host)} characters long; at most {HOST_MAX}")
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise UsageError(f"{option}: {shown} has a host that is not a valid name: {host!r}") from None
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > HOST_MAX or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise UsageError(f"{option}: {shown} has a host that is not a valid name or address: {host!r}")


def url(value: Any, option: str = "URL", *, example: str = "http://127.0.0.1:9090") -> str:
    """An http(s) URL with a host (a name, an IPv4 or a bracketed IPv6 address) and, if any, a port 1-65535;
    no spaces or control characters, no query or fragment (it is a base URL)."""
    text = _require_text(value, option)
    if not text.strip():
        raise UsageError(f"{option}: is empty; give a URL such as {example}")
    if len(text) > URL_MAX:
        raise UsageError(f"{option}: is {len(text)} characters long; a URL has at most {URL_MAX}")
    shown = _show(_USERINFO.sub(r"\1***@", text))  # credentials never reach a message
    bad = next((c for c in text if c.isspace() or unicodedata.category(c) in _NAME_REFUSED), None)
    if bad is not None:
        raise UsageError(f"{option}: {shown} holds a space or a control character ({_char_name(bad)})")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{option}: {shown} is not a valid URL ({exc}); use e.g. {example}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UsageError(f"{option}: {shown} is not an http(s) URL; use e.g. {example}")
    hostport = parts.netloc.rpartition("@")[2]
    host = hostport[:hostport.index("]") + 1] if hostport.startswith("[") and "]" in hostport \
        else hostport.partition(":")[0]
    if not host or not parts.hostname:
        raise UsageError(f"{option}: {shown} has no host; use e.g. {example}")
    _host(host, option, shown)
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"{option}: {shown} has port {port}: a port is 1-65535")
    if parts.netloc.endswith(":"):
        raise UsageError(f"{option}: {shown} has an empty port; use e.g. {example}")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise UsageError(f"{option}: {shown} has a query or fragment; give the base URL, e.g. {example}")
    return text


def port(value: Any, option: str, *, span: int = 1) -> int:
    """A TCP port 1-65535 written in ASCII digits; with `span` > 1, the ports value..value+span-1 must all fit."""
    text = _require_text(value, option).strip()
    if not re.fullmatch(r"[0-9]{1,5}", text, re.ASCII):
        raise UsageError(f"{option}: {_show(value)} is not a port number (digits 0-9, 1-65535)")
    number = int(text)
    top = 65535 - (span - 1)
    if not 1 <= number <= top:
        extra = f" (it and the next {span - 1} are used)" if span > 1 else ""
        raise UsageError(f"{option}: {number} is out of range: a port is 1-{top}{extra}")
    return number


def env_port(name: str, default: int, *, span: int = 1, environ: os._Environ | dict | None = None) -> int:
    """A port from environment variable `name` (default when unset); UsageError naming the variable, also when it is
    set but empty (Ansible's env lookup would read that as 0, not as the default)."""
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None:
        return default
    if not raw.strip():
        raise UsageError(f"${name}: is set but empty; unset it (default {default}) or give a port number")
    return port(raw, f"${name}", span=span)


# ---- numbers, durations, times ------------------------------------------------------------------------


def duration(value: Any, option: str, *, positive: bool = True,
             maximum: datetime.timedelta = DURATION_MAX) -> datetime.timedelta:
    """A duration written as the matrix reads them (2h, 90m, 1h30m, 30s), more than 0s when `positive`, at most
    `maximum`; UsageError naming `option` (never an overflow)."""
    text = _require_text(value, option)
    if not text:
        raise UsageError(f"{option}: is empty; use {DURATION_FORMS}")
    if len(text) > 40:
        raise UsageError(f"{option}: {_show(text)} is too long for a duration; use {DURATION_FORMS}")
    try:
        parsed = parse_duration(text)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if positive and parsed <= datetime.timedelta(0):
        raise UsageError(f"{option}: {text!r} must be more than 0s")
    if parsed > maximum:
        raise UsageError(f"{option}: {text!r} is too large: at most {int(maximum.total_seconds() // 3600)}h")
    return parsed


def seconds(value: Any, option: str, *, maximum: datetime.timedelta = DURATION_MAX) -> datetime.timedelta:
    """A whole number of seconds above 0 (JSON/YAML `interval_seconds`), at most `maximum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UsageError(f"{option}: must be a whole number of seconds above 0; got {_show(value)}")
    if value > maximum.total_seconds():
        raise UsageError(f"{option}: {_show(value)} is too large: at most {int(maximum.total_seconds())} seconds")
    return datetime.timedelta(seconds=value)


def number(value: Any, option: str) -> float:
    """A finite number from a document (an int too large for a float is refused, as are NaN and inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{option}: must be a number; got {_show(value)}")
    try:
        return float(value)
    except OverflowError:
        raise UsageError(f"{option}: the number is too large (beyond {sys.float_info.max:g})") from None


def time(value: Any, option: str) -> datetime.datetime:
    """An ISO-8601 time (UTC when no offset is given) between 1970 and 9000, as an aware UTC datetime."""
    if isinstance(value, str) and not value.strip():
        raise UsageError(f"{option}: is empty; use ISO-8601, e.g. 2026-11-28T16:00:00Z")
    if isinstance(value, str) and len(value) > 64:
        raise UsageError(f"{option}: {_show(value)} is too long for a time; use ISO-8601, e.g. 2026-11-28T16:00:00Z")
    try:
        return parse_time(value)
    except (ValueError, OverflowError) as exc:
        raise UsageError(f"{option}: invalid time {_show(value)} ({exc}): use ISO-8601, e.g. 2026-11-28T16:00:00Z") \
            from None


# ---- documents ----------------------------------------------------------------------------------------


def depth(document: Any, limit: int = DOCUMENT_DEPTH) -> int:
    """How deep lists and objects nest in `document` (iteratively; stops counting past `limit`)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    seen = 0
    while stack:
        node, level = stack.pop()
        seen += 1
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def check_document(document: Any, where: str, *, top: type | None = dict, limit: int = DOCUMENT_DEPTH) -> Any:
    """A parsed document: nested at most `limit` deep and, with `top`, of that type at the top level."""
    if top is not None and not isinstance(document, top):
        kind = "an object" if top is dict else top.__name__
        raise UsageError(f"{where}: the top level must be {kind}, not {type(document).__name__}")
    if depth(document, limit) > limit:
        raise UsageError(f"{where}: nested more than {limit} levels deep")
    return document


def parse_json(text: str | bytes, where: str, *, top: type | None = dict, limit: int = DOCUMENT_DEPTH) -> Any:
    """JSON text as a document (see `check_document`); UsageError naming `where` when it is not JSON, nests too
    deep, or holds a number Python refuses to read (more than 4300 digits)."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise UsageError(f"{where}: nested too deeply to read") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and the int-digits limit
        raise UsageError(f"{where}: not valid JSON: {exc}") from None
    return check_document(document, where, top=top, limit=limit)


def _no_alias_loader():
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        """SafeLoader without aliases (`*name`): an alias bomb expands a short file into an enormous document."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not accepted",
                                                  event.start_mark)
            return super().compose_node(parent, index)

    return NoAliasLoader


def parse_yaml(text: str, where: str, *, top: type | None = dict, limit: int = DOCUMENT_DEPTH) -> Any:
    """YAML text as a document: safe types only, no aliases, depth-limited (see `check_document`)."""
    import yaml

    try:
        document = yaml.load(text, Loader=_no_alias_loader())  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise UsageError(f"{where}: nested too deeply to read") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: not valid YAML: {exc}") from None
    except (ValueError, OverflowError) as exc:  # an integer beyond Python's digit limit, a date out of range
        raise UsageError(f"{where}: not valid YAML: {exc}") from None
    return check_document(document, where, top=top, limit=limit)


def load_document(path: str | os.PathLike, where: str, *, top: type | None = dict, yaml_ok: bool = True) -> Any:
    """A JSON file (YAML when `yaml_ok` and the name ends in .yml/.yaml) as a document; UsageError naming `where`
    when it is missing, a folder, unreadable, too large, malformed or nested too deep."""
    source = input_file(path, where)
    try:
        size = source.stat().st_size
        if size > DOCUMENT_BYTES:
            raise UsageError(f"{where}: {source} is {size} bytes; at most {DOCUMENT_BYTES} are read")
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: {source} is not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{where}: {source} cannot be read: {exc.strerror or exc}") from None
    if yaml_ok and source.suffix.lower() in (".yml", ".yaml"):
        return parse_yaml(text, where, top=top)
    return parse_json(text, where, top=top)


# ---- files and folders --------------------------------------------------------------------------------


def path_text(value: Any, option: str, what: str = "a path") -> str:
    """A path as text: not empty, at most `PATH_MAX` characters, no control characters or undecodable bytes."""
    text = _require_text(os.fspath(value) if isinstance(value, os.PathLike) else value, option)
    if not text:
        raise UsageError(f"{option}: is empty; give {what}")
    if len(text) > PATH_MAX:
        raise UsageError(f"{option}: is {len(text)} characters long; a path has at most {PATH_MAX}")
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise UsageError(f"{option}: {_show(text)} holds a control character or an undecodable byte "
                         f"({_char_name(bad)})")
    return text


def directory(value: Any, option: str, *, must_exist: bool = False) -> Path:
    """A folder (created later if need be): refused when it, or a parent, exists and is not a folder."""
    path = Path(path_text(value, option, "a folder"))
    try:
        resolved = path.resolve()
        if resolved.exists() and not resolved.is_dir():
            raise UsageError(f"{option}: {path} is not a folder")
        if must_exist and not resolved.is_dir():
            raise UsageError(f"{option}: {path} does not exist")
        parent = resolved
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise UsageError(f"{option}: {path}: {parent} is not a folder")
    except OSError as exc:
        raise UsageError(f"{option}: {path}: {exc.strerror or exc}") from None
    return resolved


def output_file(value: Any, option: str) -> Path:
    """A file to write: refused when it is a folder, or its folder is missing or is not a folder."""
    path = Path(path_text(value, option, "a file name"))
    try:
        if path.is_dir():
            raise UsageError(f"{option}: {path} is a folder; give a file name")
        folder = path.parent
        if not folder.is_dir():
            raise UsageError(f"{option}: {path}: folder {folder} " +
                             ("is not a folder" if folder.exists() else "does not exist"))
    except OSError as exc:
        raise UsageError(f"{option}: {path}: {exc.strerror or exc}") from None
    return path


def input_file(value: Any, option: str) -> Path:
    """A file to read: refused when missing or a folder."""
    path = Path(path_text(value, option, "a file"))
    try:
        if path.is_dir():
            raise UsageError(f"{option}: {path} is a folder; give a file")
        if path.exists() and not path.is_file():
            raise UsageError(f"{option}: {path} is not a regular file")
        if not path.is_file():
            raise UsageError(f"{option}: {path}: not found")
    except OSError as exc:
        raise UsageError(f"{option}: {path}: {exc.strerror or exc}") from None
    return path


# ---- argparse -----------------------------------------------------------------------------------------


def arg(validator: Callable[..., T], option: str, **kwargs: Any) -> Callable[[str], T]:
    """An argparse ``type=`` callable: `validator(value, option, **kwargs)`; its UsageError reaches `main()`,
    which prints it as ``rollbackctl: OPTION: problem`` (exit 2)."""

    def convert(value: str) -> T:
        return validator(value, option, **kwargs)

    convert.__name__ = getattr(validator, "__name__", "value")
    return convert
