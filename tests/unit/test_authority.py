"""The plan's Rollback Decision Authority: who may decide a rollback, and what a refusal says."""

from __future__ import annotations

import dataclasses

import pytest

from rollbackctl.authority import (
    ROLE_HELP,
    Approver,
    Authority,
    check_authority,
    is_authority_role,
    normalize_role,
    parse_consensus_entry,
)
from rollbackctl.errors import AuthorityRefused, RollbackctlError, UsageError

MISSING = (
    "needs the Lead DevOps Engineer, the Technical Project Manager or the CTO, "
    "or a consensus of at least two distinct senior engineers"
)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("lead_devops_engineer", "lead_devops_engineer"),
        ("Lead DevOps Engineer", "lead_devops_engineer"),
        ("lead-devops", "lead_devops_engineer"),
        ("  LEAD__DEVOPS  ", "lead_devops_engineer"),
        ("technical-project-manager", "technical_project_manager"),
        ("TPM", "technical_project_manager"),
        ("cto", "cto"),
        ("Chief Technology Officer", "cto"),
        ("senior-engineer", "senior_engineer"),
        ("Senior", "senior_engineer"),
        ("QA Engineer", "qa_engineer"),
        ("engineer", "engineer"),
    ],
)
def test_roles_are_normalised_and_aliases_accepted(given, canonical):
    assert normalize_role(given) == canonical


@pytest.mark.parametrize(
    ("role", "basis"),
    [("lead-devops-engineer", "primary"), ("tpm", "secondary"), ("Technical Project Manager", "secondary"),
     ("CTO", "tertiary")],
)
def test_each_authority_role_decides_alone(role, basis):
    authority = check_authority("  Dana  ", role, [])
    assert authority.basis == basis
    assert authority.decided_by == "Dana"
    assert authority.approved_by == ("Dana",)
    assert is_authority_role(role)
    assert "Primary: Lead DevOps Engineer" in authority.explanation


def test_to_dict_shape():
    authority = check_authority("dana", "Lead DevOps", ["erin:senior engineer"])
    assert authority.to_dict() == {
        "decided_by": "dana",
        "role": "lead_devops_engineer",
        "basis": "primary",
        "consensus": [{"name": "erin", "role": "senior_engineer"}],
        "approved_by": ["dana"],
        "explanation": authority.explanation,
    }
    assert authority.explanation.endswith(".")
    with pytest.raises(dataclasses.FrozenInstanceError):
        authority.basis = "consensus"  # type: ignore[misc]


def test_two_distinct_senior_engineers_make_a_consensus():
    authority = check_authority("alice", "senior engineer", ["Bob:SENIOR-ENGINEER"])
    assert authority.basis == "consensus"
    assert authority.approved_by == ("alice", "Bob")
    assert authority.consensus == (Approver("Bob", "senior_engineer"),)
    assert "a consensus of at least two senior engineers is required" in authority.explanation


def test_consensus_without_the_decider_being_senior():
    authority = check_authority("frank", "engineer", ["alice:senior", "bob:senior"])
    assert authority.basis == "consensus"
    assert authority.approved_by == ("alice", "bob")
    assert authority.role == "engineer"


def test_same_senior_twice_counts_once_and_is_refused():
    with pytest.raises(AuthorityRefused) as refused:
        check_authority("alice", "senior_engineer", [" ALICE :senior engineer", "alice:senior"])
    message = str(refused.value)
    assert MISSING in message
    assert "got one senior engineer: alice" in message
    assert "same person counts once" in message


def test_one_senior_engineer_is_refused_with_the_exact_reason():
    with pytest.raises(AuthorityRefused) as refused:
        check_authority("alice", "senior-engineer", [])
    error = refused.value
    assert error.exit_code == 4
    assert isinstance(error, RollbackctlError)
    assert str(error) == (
        "rollback refused for alice (senior_engineer): the plan's Rollback Decision Authority " + MISSING
        + "; got one senior engineer: alice"
    )
    assert (error.decided_by, error.role) == ("alice", "senior_engineer")
    assert error.missing.endswith("got one senior engineer: alice")


@pytest.mark.parametrize("role", ["engineer", "qa_engineer", "Database Administrator", "rollback coordinator", ""])
def test_non_authority_role_is_refused_naming_the_role(role):
    with pytest.raises(AuthorityRefused) as refused:
        check_authority("zoe", role, ["yan:qa engineer"])
    message = str(refused.value)
    assert "zoe" in message
    assert (normalize_role(role) or "no role given") in message
    assert "got no senior engineer" in message
    assert "not counted: yan (qa_engineer)" in message


def test_empty_decider_is_refused():
    with pytest.raises(AuthorityRefused, match="nobody is named as deciding"):
        check_authority("   ", "cto", [])


@pytest.mark.parametrize(
    ("entry", "problem"),
    [("alice", "has no colon"), (":senior", "has an empty name"), ("  :cto", "has an empty name"),
     ("alice:", "has an empty role"), ("alice: - ", "has an empty role")],
)
def test_malformed_consensus_entry_is_a_usage_error(entry, problem):
    with pytest.raises(UsageError, match=problem) as error:
        check_authority("bob", "senior", [entry])
    assert error.value.exit_code == 2
    assert repr(entry) in str(error.value)


def test_one_person_with_two_roles_is_a_usage_error():
    with pytest.raises(UsageError, match="two roles"):
        check_authority("alice", "senior", ["Alice:cto"])


@pytest.mark.parametrize(
    ("entry", "basis"),
    [("Carol:lead-devops", "primary"), ("carol:tpm", "secondary"), ("carol:CTO", "tertiary")],
)
def test_an_authority_in_the_consensus_grants(entry, basis):
    authority = check_authority("bob", "engineer", ["dave:senior", entry])
    assert authority.basis == basis
    assert authority.approved_by == (entry.split(":")[0],)
    assert f"approved by {entry.split(':')[0]}" in authority.explanation


def test_highest_ranked_authority_in_the_consensus_is_the_basis():
    authority = check_authority("bob", "senior", ["carol:cto", "dan:tpm"])
    assert (authority.basis, authority.approved_by) == ("secondary", ("dan",))


def test_parse_consensus_entry_keeps_the_name_and_normalises_the_role():
    assert parse_consensus_entry(" Mary Ann : Senior Engineer ") == Approver("Mary Ann", "senior_engineer")


def test_role_help_lists_every_role():
    for word in ("lead-devops-engineer", "technical-project-manager", "tpm", "cto", "senior-engineer", "NAME:ROLE"):
        assert word in ROLE_HELP


def test_authority_is_a_record_not_a_flag():
    assert isinstance(check_authority("x", "cto"), Authority)
