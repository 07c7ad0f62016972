"""Who may decide a rollback: the rollback plan's "Rollback Decision Authority".

The plan says::

    The following individuals have the authority to make a rollback decision:
    - Primary: Lead DevOps Engineer
    - Secondary: Technical Project Manager
    - Tertiary: CTO
    In the absence of the above individuals, a consensus of at least two senior engineers is required
    to initiate a rollback.

`check_authority()` applies exactly that rule to the person deciding (`decided_by`, `role`) and to the
people agreeing with the decision (`consensus`, entries written ``NAME:ROLE``). It returns an
`Authority` record for the incident, or raises `AuthorityRefused` (exit code 4) saying what is missing.
A malformed consensus entry is a `UsageError` (exit code 2).

People are judged by their canonical names (`inputs.person_name`: NFKC, whitespace collapsed; a name
holding a control or invisible character is a `UsageError`) and counted by `inputs.person_key` (the
canonical name case-folded): one person written twice, in another Unicode normal form, another case or
with other spacing, is one person, never the second engineer of a consensus.

Roles are compared after normalisation (case, spaces, hyphens and underscores do not matter) and a few
obvious aliases are accepted (``lead-devops``, ``tpm``, ``cto``, ``senior``...). Any other role, such as
``engineer`` or ``qa_engineer`` (the plan's "Roles and Responsibilities During Rollback" are duties
during the rollback, not decision authority), is recognised as "not an authority": it is kept as given
(normalised) and the refusal names it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import AuthorityRefused, UsageError
from .inputs import person_key, person_name, plain_value

LEAD_DEVOPS = "lead_devops_engineer"
TPM = "technical_project_manager"
CTO = "cto"
SENIOR = "senior_engineer"

#: The three roles that may decide alone, with their rank in the plan (the basis of the decision).
AUTHORITY_BASIS: dict[str, str] = {LEAD_DEVOPS: "primary", TPM: "secondary", CTO: "tertiary"}

#: How many distinct senior engineers a consensus needs.
CONSENSUS_MINIMUM = 2

#: Display names as the plan writes them.
ROLE_TITLES: dict[str, str] = {
    LEAD_DEVOPS: "Lead DevOps Engineer",
    TPM: "Technical Project Manager",
    CTO: "CTO",
    SENIOR: "senior engineer",
}

_ALIASES: dict[str, str] = {
    # Primary
    "lead_devops_engineer": LEAD_DEVOPS,
    "lead_devops": LEAD_DEVOPS,
    "devops_lead": LEAD_DEVOPS,
    "lead_devops_eng": LEAD_DEVOPS,
    # Secondary
    "technical_project_manager": TPM,
    "tpm": TPM,
    "technical_pm": TPM,
    "tech_project_manager": TPM,
    "tech_pm": TPM,
    # Tertiary
    "cto": CTO,
    "chief_technology_officer": CTO,
    "chief_technical_officer": CTO,
    # Consensus only
    "senior_engineer": SENIOR,
    "senior": SENIOR,
    "sr_engineer": SENIOR,
    "senior_eng": SENIOR,
    "senior_software_engineer": SENIOR,
}

ROLE_HELP = (
    "role of the person deciding: lead-devops-engineer (Primary; alias lead-devops), "
    "technical-project-manager (Secondary; alias tpm), cto (Tertiary), or senior-engineer (alias senior; "
    "needs a consensus of at least two distinct senior engineers, see --consensus NAME:ROLE). "
    "Case, spaces, hyphens and underscores do not matter; any other role has no authority to decide."
)

PLAN_AUTHORITY = (
    "The following individuals have the authority to make a rollback decision: "
    "Primary: Lead DevOps Engineer; Secondary: Technical Project Manager; Tertiary: CTO"
)
PLAN_CONSENSUS = (
    "In the absence of the above individuals, a consensus of at least two senior engineers is required "
    "to initiate a rollback."
)
MISSING = (
    "needs the Lead DevOps Engineer, the Technical Project Manager or the CTO, "
    "or a consensus of at least two distinct senior engineers"
)

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalize_role(role: str) -> str:
    """Return the canonical role for `role`, or its normalised form when it is not a known role.

    >>> normalize_role("Lead-DevOps"), normalize_role(" TPM "), normalize_role("QA Engineer")
    ('lead_devops_engineer', 'technical_project_manager', 'qa_engineer')
    """
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", role or "").casefold())
    key = _SEPARATORS.sub("_", text.strip()).strip("_")
    return _ALIASES.get(key, key)


def is_authority_role(role: str) -> bool:
    """True when `role` (any spelling) may decide a rollback alone."""
    return normalize_role(role) in AUTHORITY_BASIS


@dataclass(frozen=True)
class Approver:
    """One person in the consensus: a name and a canonical (or normalised unknown) role."""

    name: str
    role: str

    @property
    def key(self) -> str:
        """The identity used to count people: the canonical name case-folded (`inputs.person_key`)."""
        return person_key(self.name)

    def to_dict(self) -> dict[str, str]:
        """``{"name": ..., "role": ...}``."""
        return {"name": self.name, "role": self.role}


@dataclass(frozen=True)
class Authority:
    """A granted rollback decision, as recorded in the incident.

    `basis` is ``primary``, ``secondary`` or ``tertiary`` (the rank of the role that decided or
    approved) or ``consensus`` (two or more distinct senior engineers). `approved_by` lists the names
    on which the decision rests.
    """

    decided_by: str
    role: str
    basis: str
    consensus: tuple[Approver, ...] = ()
    approved_by: tuple[str, ...] = ()
    explanation: str = field(default="")

    def to_dict(self) -> dict:
        """A JSON-ready dict: decided_by, role, basis, consensus [{name, role}], approved_by, explanation."""
        return {
            "decided_by": self.decided_by,
            "role": self.role,
            "basis": self.basis,
            "consensus": [approver.to_dict() for approver in self.consensus],
            "approved_by": list(self.approved_by),
            "explanation": self.explanation,
        }


def parse_consensus_entry(entry: str) -> Approver:
    """Parse one ``NAME:ROLE`` entry; raise UsageError naming the entry when it is malformed."""
    raw_name, colon, role = (entry or "").partition(":")
    name, role = raw_name.strip(), role.strip()
    if not colon:
        raise UsageError(f"consensus entry {entry!r} has no colon: write it NAME:ROLE, e.g. alice:senior-engineer")
    if not name:
        raise UsageError(f"consensus entry {entry!r} has an empty name: write it NAME:ROLE, e.g. alice:senior-engineer")
    if not normalize_role(role):
        raise UsageError(f"consensus entry {entry!r} has an empty role: write it NAME:ROLE, e.g. alice:senior-engineer")
    where = f"consensus entry {entry[:60]!r}"
    plain_value(role, f"{where}: role", what="a role", max_length=100)
    return Approver(name=person_name(raw_name, f"{where}: name"), role=normalize_role(role))


def consensus_entry(value: str, option: str = "--consensus") -> str:
    """An argparse ``type=`` for ``--consensus NAME:ROLE``: the entry with its canonical name (UsageError naming
    the option when it is malformed)."""
    try:
        approver = parse_consensus_entry(value)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}") from None
    return f"{approver.name}:{approver.role}"


def parse_consensus(entries: Iterable[str]) -> tuple[Approver, ...]:
    """Parse every ``NAME:ROLE`` entry and reject one person listed with two different roles."""
    approvers = tuple(parse_consensus_entry(entry) for entry in entries or ())
    _reject_conflicting_roles(approvers)
    return approvers


def _reject_conflicting_roles(people: Iterable[Approver]) -> None:
    roles: dict[str, Approver] = {}
    for person in people:
        seen = roles.setdefault(person.key, person)
        if seen.role != person.role:
            raise UsageError(
                f"{person.name!r} is given two roles ({seen.role} and {person.role}); "
                "give each person once, with one role"
            )


def _distinct(people: Iterable[Approver]) -> list[Approver]:
    """The people, each counted once (first spelling kept), in order."""
    seen: dict[str, Approver] = {}
    for person in people:
        seen.setdefault(person.key, person)
    return list(seen.values())


def _granted_by_role(decider: Approver, consensus: tuple[Approver, ...]) -> Authority | None:
    """The decider holds an authority role, or the highest-ranked authority in the consensus approves."""
    if decider.role in AUTHORITY_BASIS:
        basis = AUTHORITY_BASIS[decider.role]
        explanation = (
            f"{decider.name} is the {ROLE_TITLES[decider.role]}, the plan's {basis.capitalize()} rollback "
            f"decision authority (\"{PLAN_AUTHORITY}\")."
        )
        return Authority(decider.name, decider.role, basis, consensus, (decider.name,), explanation)
    rank = list(AUTHORITY_BASIS)
    ranked = sorted((p for p in consensus if p.role in AUTHORITY_BASIS), key=lambda p: rank.index(p.role))
    if not ranked:
        return None
    approver = ranked[0]
    basis = AUTHORITY_BASIS[approver.role]
    explanation = (
        f"Decided by {decider.name} and approved by {approver.name}, the {ROLE_TITLES[approver.role]}, the plan's "
        f"{basis.capitalize()} rollback decision authority (\"{PLAN_AUTHORITY}\")."
    )
    return Authority(decider.name, decider.role, basis, consensus, (approver.name,), explanation)


def _seniors(decider: Approver, consensus: tuple[Approver, ...]) -> list[Approver]:
    return _distinct(p for p in (decider, *consensus) if p.role == SENIOR)


def _refusal(decider: Approver, consensus: tuple[Approver, ...], seniors: list[Approver]) -> AuthorityRefused:
    """Build the refusal: who asked, in which role, and what exactly is missing."""
    who = f"{decider.name} ({decider.role or 'no role given'})"
    if not seniors:
        got = "got no senior engineer"
    else:
        got = f"got one senior engineer: {seniors[0].name}"
        repeats = [p.name for p in (decider, *consensus) if p.role == SENIOR and p.key == seniors[0].key]
        if len(repeats) > 1:
            got += f" (listed {len(repeats)} times; the same person counts once)"
    others = [p for p in _distinct(consensus) if p.role not in AUTHORITY_BASIS and p.role != SENIOR]
    if others:
        got += "; not counted: " + ", ".join(f"{p.name} ({p.role})" for p in others)
    missing = f"{MISSING}; {got}"
    message = f"rollback refused for {who}: the plan's Rollback Decision Authority {missing}"
    return AuthorityRefused(message, decided_by=decider.name, role=decider.role, missing=missing)


def check_authority(decided_by: str, role: str, consensus: Iterable[str] = ()) -> Authority:
    """Apply the plan's Rollback Decision Authority; return the grant or raise.

    `decided_by` is the person deciding, `role` their role (any accepted spelling), `consensus` the other
    people agreeing, each ``NAME:ROLE``. Granted when the decider is the Lead DevOps Engineer (basis
    ``primary``), the Technical Project Manager (``secondary``) or the CTO (``tertiary``); else when a
    consensus entry holds one of those roles (that basis, approved by that person); else when at least two
    distinct senior engineers (the decider included if senior; names compared case-insensitively) agree
    (basis ``consensus``).

    Raises UsageError (exit 2) for a malformed consensus entry or one person given two roles, and
    AuthorityRefused (exit 4) otherwise, naming who asked, the role given and what is missing.
    """
    approvers = parse_consensus(consensus)
    decider = Approver(name=(decided_by or "").strip(), role=normalize_role(role))
    if decider.name:
        decider = Approver(name=person_name(decided_by, "--decided-by"), role=decider.role)
    else:
        missing = f"{MISSING}; got no name for the person deciding"
        raise AuthorityRefused(
            f"rollback refused: nobody is named as deciding (role {decider.role or 'not given'}); the plan's Rollback "
            f"Decision Authority {missing}",
            decided_by="", role=decider.role, missing=missing,
        )
    _reject_conflicting_roles((decider, *approvers))
    granted = _granted_by_role(decider, approvers)
    if granted:
        return granted
    seniors = _seniors(decider, approvers)
    if len(seniors) >= CONSENSUS_MINIMUM:
        names = tuple(p.name for p in seniors)
        explanation = (
            f"Consensus of {len(seniors)} distinct senior engineers ({', '.join(names)}): \"{PLAN_CONSENSUS}\""
        )
        return Authority(decider.name, decider.role, "consensus", approvers, names, explanation)
    raise _refusal(decider, approvers, seniors)
