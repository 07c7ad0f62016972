"""The contract of the operator playbooks' extra vars, checked on raw values (the action plugin playbook_inputs).

Every value an operator passes with `-e` (or AWX passes from a survey, or the wrapper from its options) is
checked here before any host is touched: its type, its form (a version, an id, a choice, an absolute path, a
bounded number) and its length. Template text (`{{`, `{%`, `{#`) is refused in every value that is not free
text, since Ansible would evaluate it the moment a task reads the variable. Free text - a reason, a person's
name, a role, a consensus list - may hold anything printable; it is returned so that the action plugin can
publish it as data that is never templated.

A spec maps each variable name to a rule::

    rollback_to: {type: str, pattern: '^v[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}$', hint: vMAJOR.MINOR.PATCH}
    database: {type: str, choices: [auto, "yes", "no"]}
    log_lines: {type: int, min: 1, max: 100000}
    incident_logs_dir: {type: path}
    reason: {type: text, max_length: 2000, lines: true}
    consensus: {type: text_list, max_items: 10, max_length: 200}

Types: str, int, float, bool, path (absolute, no `..`), list (of `elements`, itself a rule), text and
text_list (free text). Options: choices, pattern (Python regex, full match), hint (what the pattern means),
max_length (default 256 for str, 4096 for path), min/max (numbers), empty (null, and for strings "", is allowed:
"not set"), lines (free text may hold line breaks and tabs).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata

TEMPLATE_MARKERS = ("{{", "{%", "{#")
TYPES = ("str", "int", "float", "bool", "path", "list", "text", "text_list")
FREE_TEXT_TYPES = ("text", "text_list")
DEFAULT_MAX_LENGTH = {"str": 256, "path": 4096, "text": 1000, "text_list": 200}
DEFAULT_MAX_ITEMS = 50
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
# Characters a person's words never need: C0/C1 controls (line breaks and tabs only where `lines` allows them),
# and invisible format characters (zero-width, bidi overrides) in names.
_LINE_CONTROLS = {"\n", "\t", "\r"}


class SpecError(Exception):
    """The spec itself is wrong (a bug in playbooks/vars/inputs.yml, not an operator's input)."""


def shown(value, limit: int = 60) -> str:
    """A value as a message shows it: JSON, cut at `limit` characters (huge values stay readable)."""
    try:
        text = json.dumps(value, ensure_ascii=True, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(type(value).__name__)
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} characters)"


def _type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def has_template(value) -> bool:
    """Whether a string anywhere in `value` could be read as a Jinja template."""
    if isinstance(value, str):
        return any(marker in value for marker in TEMPLATE_MARKERS)
    if isinstance(value, dict):
        return any(has_template(k) or has_template(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(has_template(v) for v in value)
    return False


def check_spec(spec: dict) -> None:
    """Refuse a malformed spec (raised as SpecError, so that a bad spec is never mistaken for a bad input)."""
    if not isinstance(spec, dict) or not spec:
        raise SpecError("the inputs spec must be a non-empty mapping of variable names to rules")
    for name, rule in spec.items():
        _check_rule(str(name), rule)


def _check_rule(name: str, rule) -> None:
    if not isinstance(rule, dict) or rule.get("type") not in TYPES:
        raise SpecError(f"inputs spec: {name} needs a type among {', '.join(TYPES)}")
    unknown = set(rule) - {"type", "choices", "pattern", "hint", "max_length", "min", "max", "empty", "lines",
                           "elements", "max_items", "description"}
    if unknown:
        raise SpecError(f"inputs spec: {name} has unknown keys {sorted(unknown)}")
    if "pattern" in rule:
        try:
            re.compile(rule["pattern"])
        except re.error as exc:
            raise SpecError(f"inputs spec: {name} has a bad pattern: {exc}") from exc
    if rule["type"] == "list":
        _check_rule(f"{name}[]", rule.get("elements"))


def _control_problem(text: str, lines: bool, names: bool) -> str | None:
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc" and not (lines and char in _LINE_CONTROLS):
            return f"holds the control character U+{ord(char):04X}"
        if category in ("Cs", "Co", "Cn"):
            return f"holds the unassigned or private character U+{ord(char):04X}"
        if names and category == "Cf":
            return f"holds the invisible character U+{ord(char):04X}"
    return None


def _number(name: str, value, rule: dict, kind: str):
    """An int or float from a number or its decimal text (-e key=value gives text); (value, problem)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, f"must be a number, not a {_type_name(value)}"
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 32:
            return None, f"is not a number: {shown(value)}"
        try:
            value = int(text) if kind == "int" else float(text)
        except ValueError:
            return None, f"is not {'an integer' if kind == 'int' else 'a number'}: {shown(value)}"
    if kind == "int" and isinstance(value, float):
        if not value.is_integer():
            return None, f"must be an integer, not {shown(value)}"
        value = int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"must be a finite number, not {shown(value)}"
    low, high = rule.get("min"), rule.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if low is not None and high is not None else \
            (f"at least {low}" if low is not None else f"at most {high}")
        return None, f"must be {bounds}, not {shown(value)}"
    return value, None


def check_value(name: str, value, rule: dict):
    """(value, problem): the value as the playbooks use it, or a problem naming what is wrong (no name)."""
    kind = rule["type"]
    if rule.get("empty") and (value is None or (value == "" and kind not in ("int", "float"))):
        return value, None  # "not set" (the wrapper passes null where it has no value)
    if kind in ("int", "float"):
        return _number(name, value, rule, kind)
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.strip().lower()], None
        return None, f"must be true or false, not {shown(value)}"
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            return None, f"must be a list, not a {_type_name(value)}"
        if len(value) > rule.get("max_items", DEFAULT_MAX_ITEMS):
            return None, f"holds {len(value)} items, at most {rule.get('max_items', DEFAULT_MAX_ITEMS)} are allowed"
        if not value and not rule.get("empty"):
            return None, "must not be empty"
        result = []
        for index, item in enumerate(value):
            item_value, problem = check_value(f"{name}[{index}]", item, rule["elements"])
            if problem:
                return None, f"item {index} {problem}"
            result.append(item_value)
        return result, None
    if kind == "text_list":
        return _text_list(value, rule)
    # str, path, text
    if choices := rule.get("choices"):
        if isinstance(value, bool) and str(value).lower() in {str(c).lower() for c in choices}:
            pass  # YAML reads yes/no/true as booleans: `-e '{"database": yes}'` means the choice "yes"
        elif not isinstance(value, str):
            return None, f"must be one of {', '.join(map(str, choices))}, not a {_type_name(value)}"
    elif not isinstance(value, str):
        return None, f"must be a string, not a {_type_name(value)} ({shown(value)})"
    text = str(value) if not isinstance(value, bool) else str(value).lower()
    limit = rule.get("max_length", DEFAULT_MAX_LENGTH[kind])
    if len(text) > limit:
        return None, f"is {len(text)} characters long, at most {limit} are allowed"
    if kind == "text":
        return _text(text, rule)
    if text == "":
        return ("", None) if rule.get("empty") else (None, "must not be empty")
    if has_template(text):
        return None, f"holds template text ({shown(text)}): it is not free text and is never templated"
    problem = _control_problem(text, lines=False, names=True)
    if problem:
        return None, problem
    if choices:
        by_text = {str(c).lower(): c for c in choices}
        if text.lower() not in by_text:
            return None, f"must be one of {', '.join(map(str, choices))}, not {shown(value)}"
        return by_text[text.lower()], None
    if kind == "path":
        if not text.startswith("/"):
            return None, f"must be an absolute path, not {shown(text)}"
        if ".." in text.split("/"):
            return None, f"must not climb with '..': {shown(text)}"
        return text, None
    if (pattern := rule.get("pattern")) and not re.fullmatch(pattern, text):
        hint = rule.get("hint")
        return None, f"is malformed: {shown(text)}" + (f" (expected {hint})" if hint else "")
    if ".." in text and rule.get("pattern"):
        return None, f"must not hold '..': {shown(text)}"
    return text, None


def _text(text: str, rule: dict):
    if not text.strip():
        return None, "must not be empty (say why, or who)" if text == "" else "must not be blank"
    problem = _control_problem(text, lines=bool(rule.get("lines")), names=not rule.get("lines"))
    if problem:
        return None, problem
    return text, None


def _text_list(value, rule: dict):
    """A list of names (a comma-separated string is split, as the callback does); each item is free text."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        return None, f"must be a list of text (or text separated by commas), not a {_type_name(value)}"
    limit = rule.get("max_items", DEFAULT_MAX_ITEMS)
    if len(value) > limit:
        return None, f"holds {len(value)} items, at most {limit} are allowed"
    result = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            return None, f"item {index} must be text, not a {_type_name(item)}"
        if len(item) > rule.get("max_length", DEFAULT_MAX_LENGTH["text_list"]):
            return None, f"item {index} is {len(item)} characters long, at most " \
                         f"{rule.get('max_length', DEFAULT_MAX_LENGTH['text_list'])} are allowed"
        item_value, problem = _text(item, {**rule, "lines": False})
        if problem:
            return None, f"item {index} {problem}"
        result.append(item_value.strip())
    return result, None


def validate(spec: dict, values: dict, required=(), reserved=()):
    """Check `values` (name -> raw value, only the variables that are set) against `spec`.

    Returns (free_text, problems): the free-text values by name (as given) and one message per bad
    variable, each starting with the variable's name. `required` names must be set; `reserved` names may
    not be set at all (they are the facts this contract publishes).
    """
    check_spec(spec)
    problems = []
    free = {}
    for name in reserved:
        if name in values:
            problems.append(f"{name} is published by the inputs contract and cannot be passed as an extra var")
    for name in required:
        if name not in values:
            problems.append(f"{name} is required: pass it with -e {name}=...")
    for name, rule in spec.items():
        if name not in values:
            continue
        value, problem = check_value(name, values[name], rule)
        if problem:
            problems.append(f"{name} {problem}")
        elif rule["type"] in FREE_TEXT_TYPES:
            free[name] = value
    return free, problems
