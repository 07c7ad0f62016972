"""Who does what during a rollback: the plan's "Roles and Responsibilities" and its Appendix B contacts.

The roster lives in the inventory as ``rollback_roster`` (``group_vars/all/roster.yml``), one entry per row
of Appendix B, plus, optionally, the people who hold the plan's Rollback Decision Authority::

    rollback_roster:
      roles:
        - role: Rollback Coordinator
          name: Dana Ops
          primary: "+1 555 0100"       # Appendix B "Primary Contact" (phone)
          secondary: dana@example.com  # Appendix B "Secondary Contact" (email)
        - ...                          # the six roles, each once
      decision_authority:              # optional: who may be named by --decided-by/--consensus
        - {name: Dana Ops, role: lead-devops-engineer}
        - {name: Tom Lee, role: technical-project-manager}

`parse_roster()` checks it (pure: no file, no Ansible) and returns a `Roster`, or raises `UsageError`
(exit code 2) naming the entry at fault: an unknown role, a role given twice, a role without a person or a
contact, a missing role. `load_roster()` finds it in an inventory's ``group_vars/all`` (or reads a file given
with ``--roster``). Names and contacts are data: they are never templated (the announcement receives them
as free text, tagged ``!unsafe`` by the runner).

`check_decision_authority()` holds a granted `authority.Authority` to the roster when the roster lists the
decision authority: every person the decision rests on must be listed there with that role.
"""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import inputs
from .authority import AUTHORITY_BASIS, ROLE_TITLES, SENIOR, Authority, normalize_role
from .errors import AuthorityRefused, UsageError

#: The plan's six roles during a rollback, in the plan's order: key -> (title, responsibilities).
ROLES: dict[str, tuple[str, str]] = {
    "rollback_coordinator": ("Rollback Coordinator", "Overall coordination, decision making, communication"),
    "application_engineer": ("Application Engineer", "Application code rollback, verification"),
    "database_administrator": ("Database Administrator", "Database rollback, data integrity checks"),
    "infrastructure_engineer": ("Infrastructure Engineer", "Server configuration, load balancers, networking"),
    "qa_engineer": ("QA Engineer", "Verification testing, functionality checks"),
    "communications_lead": ("Communications Lead", "Stakeholder updates, status page management"),
}
_ALIASES = {
    "coordinator": "rollback_coordinator",
    "app_engineer": "application_engineer",
    "dba": "database_administrator",
    "database_admin": "database_administrator",
    "infra_engineer": "infrastructure_engineer",
    "qa": "qa_engineer",
    "comms_lead": "communications_lead",
    "communications": "communications_lead",
}
#: The inventory variable holding the roster.
VARIABLE = "rollback_roster"
CONTACT_MAX = 200
_SEPARATORS = re.compile(r"[\s_\-]+")
_FIELDS = ("role", "name", "primary", "secondary")


def role_key(role: Any) -> str:
    """The canonical key of one of the six roles (any case, spaces, hyphens), or its normalised form if unknown."""
    text = unicodedata.normalize("NFKC", str(role or "")).casefold()
    key = _SEPARATORS.sub("_", text.strip()).strip("_")
    return _ALIASES.get(key, key)


@dataclass(frozen=True)
class Assignment:
    """One row of Appendix B: a role, the person holding it, their primary and secondary contact."""

    role: str
    name: str
    primary: str
    secondary: str

    @property
    def title(self) -> str:
        return ROLES[self.role][0]

    def to_dict(self) -> dict[str, str]:
        return {
            "role": self.role,
            "title": self.title,
            "name": self.name,
            "primary": self.primary,
            "secondary": self.secondary,
        }


@dataclass(frozen=True)
class Roster:
    """The six assignments in the plan's order and the decision authority (name, canonical role) if given."""

    assignments: tuple[Assignment, ...]
    authority: tuple[tuple[str, str], ...] = ()
    source: str | None = None

    def people(self) -> list[str]:
        """Everyone who holds a role, each once (first spelling), in role order."""
        seen: dict[str, str] = {}
        for entry in self.assignments:
            seen.setdefault(inputs.person_key(entry.name), entry.name)
        return list(seen.values())

    def roles_of(self, name: str) -> list[str]:
        key = inputs.person_key(name)
        return [a.role for a in self.assignments if inputs.person_key(a.name) == key]

    def to_dict(self) -> dict[str, Any]:
        """The record's ``people`` section (without acknowledgements)."""
        return {
            "source": self.source,
            "roles": [a.to_dict() for a in self.assignments],
            "decision_authority": [{"name": n, "role": r} for n, r in self.authority],
        }


def _where(index: int, entry: Any) -> str:
    role = entry.get("role") if isinstance(entry, Mapping) else None
    return f"rollback_roster.roles[{index}]" + (f" ({str(role)[:60]!r})" if role else "")


def _contact(entry: Mapping, field: str, where: str, title: str) -> str:
    value = entry.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        what = "primary contact (phone)" if field == "primary" else "secondary contact (email)"
        raise UsageError(f"{where}: the {title} has no {what}; Appendix B gives each role two contacts")
    return inputs.plain_value(str(value), f"{where}: {field}", what="a contact", max_length=CONTACT_MAX).strip()


def _assignment(index: int, entry: Any) -> Assignment:
    where = _where(index, entry)
    if not isinstance(entry, Mapping):
        raise UsageError(f"{where}: must be a mapping with role, name, primary and secondary")
    unknown = sorted(str(k) for k in entry if k not in _FIELDS)
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {', '.join(unknown)}; accepted: {', '.join(_FIELDS)}")
    role = role_key(entry.get("role"))
    if not role:
        raise UsageError(f"{where}: has no role; give one of: {', '.join(t for t, _ in ROLES.values())}")
    if role not in ROLES:
        raise UsageError(
            f"{where}: unknown role {str(entry.get('role'))[:60]!r}; the plan's roles are: "
            f"{', '.join(t for t, _ in ROLES.values())}"
        )
    title = ROLES[role][0]
    name = entry.get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        raise UsageError(f"{where}: the {title} has no person (name); name who holds the role")
    name = inputs.person_name(str(name), f"{where}: name")
    return Assignment(role, name, _contact(entry, "primary", where, title), _contact(entry, "secondary", where, title))


def _authority(entries: Any) -> tuple[tuple[str, str], ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise UsageError("rollback_roster.decision_authority: must be a list of {name, role}")
    result: list[tuple[str, str]] = []
    for index, entry in enumerate(entries):
        where = f"rollback_roster.decision_authority[{index}]"
        if not isinstance(entry, Mapping) or not entry.get("name") or not entry.get("role"):
            raise UsageError(
                f"{where}: needs a name and a role (lead-devops-engineer, technical-project-manager, "
                "cto or senior-engineer)"
            )
        name = inputs.person_name(str(entry["name"]), f"{where}: name")
        role = normalize_role(str(entry["role"]))
        if role not in AUTHORITY_BASIS and role != SENIOR:
            raise UsageError(
                f"{where}: {str(entry['role'])[:60]!r} is not a decision authority role; accepted: "
                "lead-devops-engineer, technical-project-manager, cto, senior-engineer"
            )
        pair = (name, role)
        if any(inputs.person_key(n) == inputs.person_key(name) and r == role for n, r in result):
            raise UsageError(f"{where}: {name} is listed twice as {ROLE_TITLES[role]}")
        result.append(pair)
    return tuple(result)


def parse_roster(data: Any, source: str | None = None) -> Roster:
    """Check a ``rollback_roster`` value; the `Roster`, or UsageError naming the first problem."""
    if not isinstance(data, Mapping):
        raise UsageError("rollback_roster: must be a mapping with 'roles' (and optionally 'decision_authority')")
    unknown = sorted(str(k) for k in data if k not in ("roles", "decision_authority"))
    if unknown:
        raise UsageError(f"rollback_roster: unknown key(s) {', '.join(unknown)}; accepted: roles, decision_authority")
    entries = data.get("roles")
    if not isinstance(entries, list) or not entries:
        raise UsageError(
            "rollback_roster.roles: must be a list with one entry per role of the plan "
            f"({', '.join(t for t, _ in ROLES.values())})"
        )
    found: dict[str, tuple[int, Assignment]] = {}
    for index, entry in enumerate(entries):
        assignment = _assignment(index, entry)
        if assignment.role in found:
            first = found[assignment.role][0]
            raise UsageError(
                f"{_where(index, entry)}: duplicate: the {assignment.title} is already given at "
                f"rollback_roster.roles[{first}]; give each role once"
            )
        found[assignment.role] = (index, assignment)
    missing = [ROLES[key][0] for key in ROLES if key not in found]
    if missing:
        raise UsageError(
            f"rollback_roster.roles: no person for {', '.join(missing)}; the plan names one for each of its six roles"
        )
    ordered = tuple(found[key][1] for key in ROLES)
    return Roster(ordered, _authority(data.get("decision_authority")), source)


# ---- where the roster is ---------------------------------------------------------------------------------


def _group_vars_files(inventory: Path) -> list[Path]:
    folder = inventory if inventory.is_dir() else inventory.parent
    group_vars = folder / "group_vars"
    files = [group_vars / f"all{ext}" for ext in (".yml", ".yaml")]
    directory = group_vars / "all"
    if directory.is_dir():
        files += sorted(p for p in directory.iterdir() if p.suffix in (".yml", ".yaml"))
    return [p for p in files if p.is_file()]


def _read(path: Path, where: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    if text.lstrip().startswith("$ANSIBLE_VAULT"):
        return None  # an encrypted vars file is not where the roster lives
    return inputs.parse_yaml(text, where, top=None)


def load_roster(
    inventory: str | os.PathLike | None = None, roster_file: str | os.PathLike | None = None
) -> Roster | None:
    """The roster of `roster_file` (a YAML/JSON file holding ``rollback_roster:``, or the value itself), else
    the ``rollback_roster`` of `inventory`'s ``group_vars/all``; None when there is none.

    UsageError when the roster is invalid, or the inventory defines it in two files.
    """
    if roster_file is not None:
        path = inputs.input_file(os.fspath(roster_file), "--roster")
        document = _read(path, f"--roster {str(path)[:200]}")
        value = document.get(VARIABLE, document) if isinstance(document, Mapping) else document
        try:
            return parse_roster(value, str(path))
        except UsageError as exc:
            raise UsageError(f"--roster {str(path)[:200]}: {exc}") from None
    if inventory is None:
        return None
    found: list[tuple[Path, Any]] = []
    for path in _group_vars_files(Path(inventory)):
        document = _read(path, str(path))
        if isinstance(document, Mapping) and VARIABLE in document:
            found.append((path, document[VARIABLE]))
    if not found:
        return None
    if len(found) > 1:
        raise UsageError(
            f"{VARIABLE} is defined twice in the inventory ({found[0][0]} and {found[1][0]}); keep one roster"
        )
    path, value = found[0]
    try:
        return parse_roster(value, str(path))
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None


# ---- the decision authority ----------------------------------------------------------------------------


def check_decision_authority(roster: Roster | None, granted: Authority) -> Authority:
    """`granted` when the roster gives no decision authority, or lists every person the decision rests on with
    the role they decided in; AuthorityRefused (exit 4) naming the person otherwise."""
    if roster is None or not roster.authority:
        return granted
    roles = {inputs.person_key(granted.decided_by): granted.role}
    roles.update({inputs.person_key(p.name): p.role for p in granted.consensus})
    listed = {(inputs.person_key(n), r) for n, r in roster.authority}
    for name in granted.approved_by:
        role = roles.get(inputs.person_key(name), "")
        if (inputs.person_key(name), role) not in listed:
            title = ROLE_TITLES.get(role, role or "no role")
            holders = [n for n, r in roster.authority if r == role]
            known = (
                f"the roster lists {', '.join(holders)} as {title}"
                if holders
                else f"the roster lists nobody as {title}"
            )
            missing = f"{name} is not in the roster's decision authority as {title}"
            raise AuthorityRefused(
                f"rollback refused: {missing} ({known}; roster {roster.source or '?'})",
                decided_by=granted.decided_by,
                role=granted.role,
                missing=missing,
            )
    note = f" {', '.join(granted.approved_by)}: listed in the roster's decision authority ({roster.source or '?'})."
    return dataclasses.replace(granted, explanation=granted.explanation + note)


# ---- text for people ---------------------------------------------------------------------------------------


def roles_line(roles: Iterable[Mapping[str, Any]]) -> str:
    """``Rollback Coordinator: Dana Ops (+1 555 0100); ...`` for the announcement (plain text, never templated)."""
    return "; ".join(f"{r['title']}: {r['name']} ({r['primary']})" for r in roles)
