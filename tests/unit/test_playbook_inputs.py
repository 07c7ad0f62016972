"""The playbooks' inputs contract (module_utils/playbook_inputs.py, playbooks/vars/inputs.yml), in process.

Every rule of the real spec against many values: a value is either accepted in the form the playbooks use, or
refused with a message naming the variable - never an exception. Free text is accepted verbatim, template text
included; every other value refuses template text. And no playbook or role reads free text from the raw
variable: only from the fact the contract publishes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.chatbot.rollback.plugins.module_utils.playbook_inputs import (
    FREE_TEXT_TYPES,
    SpecError,
    check_spec,
    has_template,
    validate,
)
from hypothesis import given, settings
from hypothesis import strategies as st

PROJECT = Path(__file__).resolve().parents[2]
CONTRACT = yaml.safe_load((PROJECT / "playbooks" / "vars" / "inputs.yml").read_text())
SPEC = CONTRACT["playbook_inputs_spec"]
PLAYBOOKS = CONTRACT["playbook_inputs_playbooks"]
FREE = sorted(name for name, rule in SPEC.items() if rule["type"] in FREE_TEXT_TYPES)
NOT_FREE = sorted(set(SPEC) - set(FREE))

# A valid value of every variable, as an operator would pass it.
VALID = {
    "rollback_to": "v0.9.0", "rollback_from": "v1.0.0", "deploy_version": "v1.0.0", "rehearsal_bad_version": "v1.0.0",
    "package_versions": ["v0.9.0", "v1.0.0"], "verify_expected_version": "0.9.0", "incident_id": "INC-2026.12_01",
    "backup": "pre-deploy-v1.0.0", "database": "auto", "maintenance_state": "on", "verify_scope": "db",
    "notify_event": "rollback_started", "procedure": "standard", "verify_expected_schema": "2",
    "verify_observe_s": 1.5, "log_lines": "2000", "verify_log_since": "2026-01-31T12:00:00Z",
    "verify_log_attributed_before": "2026-01-31T12:01:00+00:00",
    "incident_logs_dir": "/srv/incidents/INC-1/logs",
    "rollback_incidents_dir": "/var/lib/rollback/incidents",
    "verify_backup_manifest": "/srv/backups/pre-deploy-v1.0.0.manifest.json",
    "reason": "messaging returns 5xx\nsince 10:02", "decided_by": "Dana Ops",
    "acknowledged_by": "Quinn QA", "decided_by_role": "lead-devops-engineer",
    "authority": "lead-devops-engineer (role)", "consensus": ["alice:senior-engineer", "bob:senior-engineer"],
    "roles_text": "Rollback Coordinator: Dana Ops (+1 555 0100)", "retry_eta": "not before 2026-12-02T20:00:00Z",
}
TEMPLATE = "{{ lookup('ansible.builtin.pipe', 'touch /tmp/never') }}"


def test_the_spec_is_well_formed_and_every_playbook_names_known_variables():
    check_spec(SPEC)
    assert set(VALID) == set(SPEC), "a variable of the spec has no valid example here"
    for name, entry in PLAYBOOKS.items():
        assert set(entry["required"]) <= set(entry["takes"]), name
        assert set(entry["takes"]) <= set(SPEC), (name, set(entry["takes"]) - set(SPEC))
    with pytest.raises(SpecError):
        check_spec({"x": {"type": "nope"}})


def test_valid_values_pass_and_free_text_is_returned_verbatim():
    free, problems = validate(SPEC, VALID, required=["rollback_to"])
    assert problems == []
    assert set(free) == set(FREE)
    assert free["reason"] == VALID["reason"]


@pytest.mark.parametrize("name", NOT_FREE)
@pytest.mark.parametrize("bad", [
    "", "../../etc/passwd", "a" * 100_000, TEMPLATE, "{% set x = 1 %}", "{# c #}", {"k": "v"}, ["x"] * 3,
    "bell\x07", "zero\u200bwidth", True, None, -1, 10 ** 30, float("nan"),
])
def test_every_bad_value_of_every_other_variable_is_refused_by_name(name, bad):
    if bad in ("", None) and SPEC[name].get("empty"):
        return  # "not set" for this one
    if SPEC[name]["type"] == "bool":
        return
    _, problems = validate(SPEC, {name: bad})
    accepted = not problems
    if accepted:  # only values that really fit the rule may pass (a number that is in range, a choice)
        assert not has_template(bad) and bad not in ("", None) and not isinstance(bad, dict), (name, bad)
        assert SPEC[name]["type"] in ("int", "float"), (name, bad)
    else:
        assert len(problems) == 1 and problems[0].startswith(f"{name} "), problems
        assert len(problems[0]) < 500, "a huge value is not echoed whole"


@pytest.mark.parametrize("name", FREE)
@pytest.mark.parametrize("text", [TEMPLATE, "{% for x in range(9**9) %}{% endfor %}", "{{ 7 * 7 }} {# #}", "ünï ☃"])
def test_free_text_holds_template_text_as_data(name, text):
    value = [f"alice {text}:senior-engineer"] if SPEC[name]["type"] == "text_list" else text
    free, problems = validate(SPEC, {name: value})
    assert problems == []
    assert free[name] == value


@pytest.mark.parametrize("name", FREE)
@pytest.mark.parametrize("bad", ["", "   ", "a" * 100_000, "bell\x07", "\x1b[31mred", {"k": "v"}, 7])
def test_bad_free_text_is_refused_by_name(name, bad):
    value = [bad] if SPEC[name]["type"] == "text_list" and isinstance(bad, str) else bad
    _, problems = validate(SPEC, {name: value})
    assert len(problems) == 1 and problems[0].startswith(f"{name} "), (name, bad, problems)


def test_names_refuse_invisible_characters_but_reasons_may_break_lines():
    assert validate(SPEC, {"decided_by": "Da\u200bna"})[1]
    assert validate(SPEC, {"decided_by": "Dana\nOps"})[1]
    assert not validate(SPEC, {"reason": "line one\nline two\ttab"})[1]


def test_required_missing_and_the_published_fact_are_refused_by_name():
    _, problems = validate(SPEC, {"rollback_free_text": {"reason": TEMPLATE}}, required=["rollback_to"],
                           reserved=["rollback_free_text"])
    assert any(p.startswith("rollback_free_text ") for p in problems)
    assert any(p.startswith("rollback_to is required") for p in problems)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(SPEC)), value=st.one_of(
    st.text(max_size=300), st.integers(), st.floats(), st.booleans(), st.none(),
    st.lists(st.text(max_size=20), max_size=5), st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)))
def test_any_value_is_accepted_in_form_or_refused_by_name_never_an_exception(name, value):
    _, problems = validate(SPEC, {name: value})
    if problems:
        assert len(problems) == 1 and problems[0].startswith(f"{name} ")
    elif SPEC[name]["type"] not in FREE_TEXT_TYPES:
        assert not has_template(value), (name, value)
        if isinstance(value, str) and SPEC[name].get("pattern") and value:
            assert re.fullmatch(SPEC[name]["pattern"], value)


FREE_TEXT_READ = re.compile(r"\{\{[^}]*\b(" + "|".join(FREE) + r")\b[^}]*\}\}")


def test_no_playbook_or_role_reads_free_text_from_the_raw_variable():
    """Free text is read from the contract's fact (rollback_free_text.<name>), never as the extra var itself."""
    offenders = []
    files = [*(PROJECT / "playbooks").rglob("*.yml"), *(PROJECT / "roles").rglob("*.yml"),
             *(PROJECT / "roles").rglob("*.j2")]
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in FREE_TEXT_READ.finditer(line):
                expression = match.group(0)
                bare = re.sub(r"rollback_free_text\.\w+|\.\w+|\[\s*'[^']*'\s*\]|\b\w+_(reason|decided_by|authority)\b",
                              "", expression)
                if re.search(r"(?<![\w.])(" + "|".join(FREE) + r")\b", bare):
                    offenders.append(f"{path.relative_to(PROJECT)}:{number}: {expression}")
    assert offenders == []


def test_every_operator_playbook_imports_the_contract_first():
    for name in PLAYBOOKS:
        plays = yaml.safe_load((PROJECT / "playbooks" / f"{name}.yml").read_text())
        first = plays[0]
        assert first.get("ansible.builtin.import_playbook") == "inputs.yml", name
        assert first["vars"]["playbook_inputs_for"] == name


@pytest.mark.parametrize("database", ["auto", "yes", "no"])
def test_the_contract_accepts_every_extra_var_the_wrapper_passes(tmp_path, database):
    """rollbackctl runs the same playbooks: whatever it passes for each phase must pass the contract."""
    from rollbackctl import phases
    from rollbackctl.orchestrator import steps_for
    from rollbackctl.record import IncidentRecord

    authority = {"decided_by": "Dana Ops", "role": "lead-devops-engineer", "basis": "primary", "consensus": [],
                 "approved_by": [], "explanation": "the Lead DevOps Engineer decides"}
    record = IncidentRecord.create(tmp_path, "20261202T010000Z-rollback-v0.9.0", inventory="inventories/local",
                                   reason=f"messaging 5xx {TEMPLATE}", to_version="v0.9.0", authority=authority,
                                   database=database)
    record.data["from_version"] = "v1.0.0"
    record.data["database"].update({"backup_name": "pre-deploy-v1.0.0", "target_schema": None})
    for name in phases.NAMES:
        for step in steps_for(name, record):
            _, problems = validate(SPEC, step.extravars, required=PLAYBOOKS[step.playbook[:-4]]["required"])
            assert problems == [], (name, step.playbook, problems)
