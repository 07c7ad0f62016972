"""AWX's own rules for survey specs, and the survey question a playbook inputs rule calls for.

The rules are AWX 24.6.1's `_validate_spec_data` (awx/api/views/__init__.py) and the survey answer checks of
awx/main/models/mixins.py, as /work/shared/AWX.md lists them; the derivation maps the playbook inputs contract
(playbooks/vars/inputs.yml, checked by chatbot.rollback.playbook_inputs) onto them.
"""

from __future__ import annotations

import re
from re import _parser as re_parser  # the widths a pattern admits (sre_parse before Python 3.11)

from ansible_collections.chatbot.rollback.plugins.module_utils.playbook_inputs import DEFAULT_MAX_LENGTH

TYPES = ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")
TEXT_TYPES = ("text", "textarea", "password")
CHOICE_TYPES = ("multiplechoice", "multiselect")
QUESTION_KEYS = {
    "type",
    "question_name",
    "question_description",
    "variable",
    "required",
    "default",
    "min",
    "max",
    "choices",
    "new_question",
}
VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _choices(question) -> list[str]:
    choices = question["choices"]
    return [c for c in choices.split("\n") if c] if isinstance(choices, str) else list(choices)


def awx_problems(spec) -> list[str]:
    """Every way `spec` breaks AWX's survey rules (empty: AWX accepts it)."""
    problems = []
    if not isinstance(spec, dict):
        return ["the survey spec is not a mapping"]
    for key in ("name", "description"):
        if not isinstance(spec.get(key), str):
            problems.append(f"'{key}' missing or not a string")
    questions = spec.get("spec")
    if not isinstance(questions, list) or not questions:
        return [*problems, "'spec' must be a non-empty list"]
    seen = set()
    for index, q in enumerate(questions):
        where = f"question {index} ({q.get('variable') if isinstance(q, dict) else q!r})"
        if not isinstance(q, dict):
            problems.append(f"{where}: not a mapping")
            continue
        if set(q) - QUESTION_KEYS:
            problems.append(f"{where}: unknown keys {sorted(set(q) - QUESTION_KEYS)}")
        for key in ("type", "question_name", "variable", "required"):
            if key not in q:
                problems.append(f"{where}: '{key}' missing")
        kind, variable = q.get("type"), q.get("variable")
        if kind not in TYPES:
            problems.append(f"{where}: type {kind!r} is not one of {TYPES}")
        if not isinstance(q.get("question_name"), str) or not q.get("question_name"):
            problems.append(f"{where}: question_name must be a non-empty string")
        if not isinstance(variable, str) or not VARIABLE_RE.match(variable):
            problems.append(f"{where}: variable {variable!r} is not a valid variable name")
        elif variable in seen:
            problems.append(f"{where}: variable {variable} duplicated")
        seen.add(variable)
        if not isinstance(q.get("required"), bool):
            problems.append(f"{where}: required must be a boolean")
        low, high = q.get("min"), q.get("max")
        for name, bound in (("min", low), ("max", high)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
                problems.append(f"{where}: {name} must be a number")
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            problems.append(f"{where}: min {low} > max {high}")
        if kind in TEXT_TYPES and any(isinstance(b, float) and not b.is_integer() for b in (low, high) if b):
            problems.append(f"{where}: a length bound must be an integer")
        default = q.get("default")
        if default == "$encrypted$" and kind != "password":
            problems.append(f"{where}: $encrypted$ is only for password questions")
        if kind in CHOICE_TYPES:
            if not isinstance(q.get("choices"), (list, str)) or not _choices(q):
                problems.append(f"{where}: choices must be a non-empty list or newline-separated string")
                continue
            choices = _choices(q)
            if any(not isinstance(c, str) for c in choices):
                problems.append(f"{where}: every choice must be a string")
            if len(set(choices)) != len(choices):
                problems.append(f"{where}: duplicate choices")
            if default not in (None, ""):
                defaults = (
                    [default]
                    if kind == "multiplechoice"
                    else (default.split("\n") if isinstance(default, str) else default)
                )
                if kind == "multiplechoice" and (not isinstance(default, str) or "\n" in default):
                    problems.append(f"{where}: multiplechoice takes at most one default")
                for item in defaults:
                    if item not in choices:
                        problems.append(f"{where}: default {item!r} is not among the choices")
        elif "choices" in q:
            problems.append(f"{where}: choices on a {kind} question")
        if default in (None, "") or kind in CHOICE_TYPES:
            continue
        if kind in TEXT_TYPES:
            if not isinstance(default, str):
                problems.append(f"{where}: default must be a string")
            elif (low is not None and len(default) < low) or (high is not None and len(default) > high):
                problems.append(f"{where}: default length outside min/max")
        elif kind == "integer":
            if isinstance(default, bool) or not isinstance(default, int):
                problems.append(f"{where}: default must be an integer")
            elif (low is not None and default < low) or (high is not None and default > high):
                problems.append(f"{where}: default outside min/max")
        elif kind == "float":
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                problems.append(f"{where}: default must be a number")
            elif (low is not None and default < low) or (high is not None and default > high):
                problems.append(f"{where}: default outside min/max")
    return problems


def expected_question(name: str, rule: dict, required: bool) -> dict | None:
    """The survey question's form for one contract rule (type, required, choices, min, max), or None when AWX has
    no survey type for it (a list of free values: multiselect needs fixed choices)."""
    kind = rule["type"]
    empty_ok = bool(rule.get("empty"))
    if rule.get("choices"):
        return {
            "variable": name,
            "type": "multiplechoice",
            "required": required,
            "choices": [str(c) for c in rule["choices"]],
        }
    if kind in ("int", "float"):
        return {
            "variable": name,
            "type": "integer" if kind == "int" else "float",
            "required": required,
            "min": rule.get("min"),
            "max": rule.get("max"),
        }
    if kind in ("str", "path", "text"):
        question_type = "textarea" if kind == "text" and rule.get("lines") else "text"
        low, high = 0 if empty_ok else 1, rule.get("max_length", DEFAULT_MAX_LENGTH[kind])
        if rule.get("pattern"):  # the lengths the pattern admits: a version is 6 to 15 characters
            shortest, longest = re_parser.parse(rule["pattern"]).getwidth()
            low, high = (low if empty_ok else max(low, shortest)), min(high, longest)
        return {"variable": name, "type": question_type, "required": required, "min": low, "max": high}
    if kind == "text_list":  # NAME:ROLE, NAME:ROLE (the contract splits a string on commas)
        items, length = rule.get("max_items", 50), rule.get("max_length", DEFAULT_MAX_LENGTH["text_list"])
        return {"variable": name, "type": "text", "required": required, "min": 1, "max": items * length + items - 1}
    return None


def question_form(question: dict) -> dict:
    """The part of a survey question that `expected_question` fixes."""
    form = {"variable": question["variable"], "type": question["type"], "required": question["required"]}
    if question["type"] in CHOICE_TYPES:
        form["choices"] = _choices(question)
    else:
        form["min"], form["max"] = question.get("min"), question.get("max")
    return form


def awx_answer_problems(question: dict, value) -> list[str]:
    """How AWX refuses one survey answer (models/mixins.py `_survey_element_validation`): text lengths and number
    bounds from min/max, integers as int, floats as numbers, choices among the choices."""
    kind, low, high = question["type"], question.get("min"), question.get("max")
    if kind in TEXT_TYPES:
        if not isinstance(value, str):
            return ["not a string"]
        if low is not None and len(value) < low:
            return [f"shorter than {low}"]
        if high is not None and len(value) > high:
            return [f"longer than {high}"]
        return []
    if kind in ("integer", "float"):
        if isinstance(value, bool) or not isinstance(value, int if kind == "integer" else (int, float)):
            return [f"not an {kind}"]
        if (low is not None and value < low) or (high is not None and value > high):
            return ["outside min/max"]
        return []
    if kind == "multiplechoice":
        return [] if value in _choices(question) else ["not a choice"]
    if kind == "multiselect":
        ok = isinstance(value, list) and all(v in _choices(question) for v in value)
        return [] if ok else ["not among the choices"]
    return [f"unknown type {kind}"]
