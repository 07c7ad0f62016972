"""The roster: the plan's six roles during a rollback with their Appendix B contacts, and the decision authority."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from rollbackctl.authority import check_authority
from rollbackctl.errors import AuthorityRefused, ExitCode, UsageError
from rollbackctl.roster import ROLES, check_decision_authority, load_roster, parse_roster, roles_line

PROJECT = Path(__file__).resolve().parents[2]
LOCAL = PROJECT / "inventories" / "local"


def _roster() -> dict:
    return copy.deepcopy(yaml.safe_load((LOCAL / "group_vars" / "all" / "roster.yml").read_text())["rollback_roster"])


def test_the_local_inventory_names_a_person_and_two_contacts_for_each_of_the_six_roles():
    roster = load_roster(LOCAL)
    assert [a.role for a in roster.assignments] == list(ROLES)
    assert [a.title for a in roster.assignments] == [
        "Rollback Coordinator",
        "Application Engineer",
        "Database Administrator",
        "Infrastructure Engineer",
        "QA Engineer",
        "Communications Lead",
    ]
    assert all(a.name and a.primary and a.secondary for a in roster.assignments)
    assert roster.source.endswith("roster.yml")
    assert roster.authority == ()


def test_roles_are_matched_whatever_their_spelling_and_kept_in_the_plans_order():
    data = _roster()
    data["roles"].reverse()
    data["roles"][0]["role"] = "communications-lead"
    data["roles"][1]["role"] = "qa"
    roster = parse_roster(data)
    assert [a.role for a in roster.assignments] == list(ROLES)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["roles"][0].update(role="Release Manager"), "unknown role 'Release Manager'"),
        (lambda d: d["roles"][1].update(name="  "), "the Application Engineer has no person (name)"),
        (lambda d: d["roles"][1].pop("name"), "the Application Engineer has no person (name)"),
        (lambda d: d["roles"][2].pop("primary"), "the Database Administrator has no primary contact"),
        (lambda d: d["roles"][2].update(secondary=""), "the Database Administrator has no secondary contact"),
        (
            lambda d: d["roles"].append({**d["roles"][4], "role": "qa_engineer", "name": "Other"}),
            "roles[6] ('qa_engineer'): duplicate: the QA Engineer is already given at rollback_roster.roles[4]",
        ),
        (lambda d: d["roles"].pop(3), "no person for Infrastructure Engineer"),
        (lambda d: d["roles"][0].update(phone="1"), "unknown field(s) phone"),
        (lambda d: d["roles"][0].update(name="Dana\u200bOps"), "invisible"),
        (lambda d: d.update(roles=[]), "one entry per role"),
        (lambda d: d.update(extra=1), "unknown key(s) extra"),
        (lambda d: d.update(decision_authority=[{"name": "X", "role": "qa"}]), "not a decision authority role"),
    ],
)
def test_a_bad_roster_is_a_usage_error_naming_the_problem(change, message):
    data = _roster()
    change(data)
    with pytest.raises(UsageError, match=None) as caught:
        parse_roster(data)
    assert message in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_bad_roster_in_the_inventory_names_its_file(tmp_path):
    folder = tmp_path / "group_vars" / "all"
    folder.mkdir(parents=True)
    data = _roster()
    data["roles"][0]["role"] = "boss"
    (folder / "roster.yml").write_text(yaml.safe_dump({"rollback_roster": data}))
    with pytest.raises(UsageError, match=r"roster\.yml: rollback_roster\.roles\[0\].*unknown role 'boss'"):
        load_roster(tmp_path)


def test_two_rosters_in_one_inventory_are_refused_and_none_is_none(tmp_path):
    assert load_roster(tmp_path) is None
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    for name in ("a.yml", "b.yml"):
        (tmp_path / "group_vars" / "all" / name).write_text(yaml.safe_dump({"rollback_roster": _roster()}))
    with pytest.raises(UsageError, match="defined twice"):
        load_roster(tmp_path)


def test_a_roster_file_overrides_the_inventory(tmp_path):
    data = _roster()
    data["roles"][0]["name"] = "Someone Else"
    path = tmp_path / "roster.yml"
    path.write_text(yaml.safe_dump(data))
    assert load_roster(LOCAL, path).assignments[0].name == "Someone Else"
    with pytest.raises(UsageError, match="--roster"):
        load_roster(LOCAL, tmp_path / "missing.yml")


def test_names_are_inert_text_in_the_announcement_line():
    data = _roster()
    data["roles"][0]["name"] = "{{ lookup('pipe', 'id') }}"
    roster = parse_roster(data)
    line = roles_line(roster.to_dict()["roles"])
    assert line.startswith("Rollback Coordinator: {{ lookup('pipe', 'id') }} (+1 555 0100); Application Engineer:")


def _with_authority() -> object:
    data = _roster()
    data["decision_authority"] = [
        {"name": "Dana Ops", "role": "lead-devops"},
        {"name": "Tom Lee", "role": "tpm"},
        {"name": "Sam", "role": "senior"},
        {"name": "Sue", "role": "senior-engineer"},
    ]
    return parse_roster(data, "roster.yml")


def test_without_a_decision_authority_in_the_roster_the_plans_rule_alone_decides():
    granted = check_authority("Anyone", "cto")
    assert check_decision_authority(parse_roster(_roster()), granted) is granted
    assert check_decision_authority(None, granted) is granted


def test_the_decider_must_be_listed_with_the_role_they_decide_in():
    roster = _with_authority()
    granted = check_decision_authority(roster, check_authority("dana  OPS", "Lead DevOps Engineer"))
    assert granted.basis == "primary"
    assert granted.explanation.endswith(" dana OPS: listed in the roster's decision authority (roster.yml).")
    with pytest.raises(
        AuthorityRefused,
        match=r"Mallory is not in the roster's decision authority as Lead DevOps "
        r"Engineer .the roster lists Dana Ops as Lead DevOps Engineer",
    ) as caught:
        check_decision_authority(roster, check_authority("Mallory", "lead-devops"))
    assert caught.value.exit_code == ExitCode.REFUSED
    with pytest.raises(AuthorityRefused, match="Tom Lee is not in the roster's decision authority as CTO"):
        check_decision_authority(roster, check_authority("Tom Lee", "cto"))


def test_a_consensus_must_rest_on_listed_senior_engineers():
    roster = _with_authority()
    ok = check_authority("Sam", "senior", ["Sue:senior"])
    assert check_decision_authority(roster, ok).basis == "consensus"
    with pytest.raises(AuthorityRefused, match="Eve is not in the roster's decision authority as senior engineer"):
        check_decision_authority(roster, check_authority("Sam", "senior", ["Eve:senior"]))
    approved = check_authority("Quinn QA", "qa", ["Tom Lee:tpm"])  # approved by the listed TPM
    assert check_decision_authority(roster, approved).approved_by == ("Tom Lee",)
