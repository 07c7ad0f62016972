"""Role contracts hold: argument specs tell the truth about defaults, entry points and the modules they feed.

- a required option has no default anywhere (so a missing one fails at role validation, naming it);
- a spec default equals the role default; every role default is documented in the main entry point;
- every entry point other than main has its tasks file (tasks_from), and a dispatching main names only
  entry points that exist;
- every value a role allows reaches the module it feeds as a value that module accepts: each module
  parameter whose template reads a role option with choices is rendered for every choice and checked
  against the module's documented choices (validate-modules keeps those equal to its argument_spec);
- each README's inputs are what scripts/role-readme.py generates from the specs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (PROJECT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())
MODULES = PROJECT / "plugins" / "modules"
OWN_PREFIX = "chatbot.rollback."
_TEMPLATE_VAR = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None


def _specs(role: Path) -> dict:
    return _yaml(role / "meta" / "argument_specs.yml")["argument_specs"]


def _defaults(role: Path) -> dict:
    return _yaml(role / "defaults" / "main.yml") or {}


def _module_options(module: str) -> dict:
    text = (MODULES / f"{module}.py").read_text(encoding="utf-8")
    doc = re.search(r'^DOCUMENTATION\s*=\s*r?"""(.*?)"""', text, re.S | re.M)
    assert doc, f"{module} has no DOCUMENTATION"
    return yaml.safe_load(doc.group(1)).get("options", {})


def _tasks(role: Path):
    """Every task of the role's task files, blocks flattened, with the file it is in."""
    def walk(items, where):
        for task in items or []:
            if not isinstance(task, dict):
                continue
            for key in ("block", "rescue", "always"):
                if key in task:
                    yield from walk(task[key], where)
            yield where, task
    for path in sorted((role / "tasks").glob("*.yml")):
        yield from walk(_yaml(path), path.name)


def _module_calls(role: Path):
    """(file, module, params) for every call of one of the collection's own modules."""
    for where, task in _tasks(role):
        for key, params in task.items():
            if key.startswith(OWN_PREFIX) and isinstance(params, dict):
                yield where, key[len(OWN_PREFIX):], params


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_required_options_have_no_default(role):
    defaults = _defaults(role)
    for entry, spec in _specs(role).items():
        for name, option in (spec.get("options") or {}).items():
            if option.get("required"):
                assert "default" not in option, f"{role.name} {entry}: required {name} has a spec default"
                assert name not in defaults, (
                    f"{role.name} {entry}: required {name} has a default in defaults/main.yml, so validation"
                    " passes without it")


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_spec_defaults_are_the_role_defaults(role):
    defaults = _defaults(role)
    for entry, spec in _specs(role).items():
        for name, option in (spec.get("options") or {}).items():
            assert name.startswith(f"{role.name}_"), f"{role.name} {entry}: {name} is not prefixed"
            if "default" in option:
                assert name in defaults, f"{role.name} {entry}: {name} has a spec default but none in defaults/main.yml"
                assert option["default"] == defaults[name], (
                    f"{role.name} {entry}: spec default of {name} is {option['default']!r}, defaults/main.yml"
                    f" says {defaults[name]!r}")
            elif not option.get("required"):
                assert name not in defaults or entry != "main", (
                    f"{role.name}: {name} has a role default that the main spec does not show")
    main = _specs(role).get("main", {}).get("options", {})
    documented = main or {n for s in _specs(role).values() for n in (s.get("options") or {})}
    for name in defaults:
        assert name in documented, f"{role.name}: default {name} is not in the argument specs"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_every_entry_point_has_its_tasks_file(role):
    specs = _specs(role)
    for entry in specs:
        assert (role / "tasks" / f"{entry}.yml").is_file(), f"{role.name}: entry point {entry} has no tasks/{entry}.yml"
    main_tasks = (role / "tasks" / "main.yml").read_text(encoding="utf-8")
    dispatch = re.search(r"argument_specs\[(\w+)\]", main_tasks)
    if dispatch:
        mode = dispatch.group(1)
        choices = specs["main"]["options"][mode]["choices"]
        assert sorted(map(str, choices)) == sorted(e for e in specs if e != "main"), (
            f"{role.name}: the modes of {mode} and the entry points differ")
        for choice in choices:
            for name, option in specs[str(choice)].get("options", {}).items():
                assert name in specs["main"]["options"], f"{role.name}: {choice} option {name} is not in main"
                if not option.get("required"):
                    assert option == specs["main"]["options"][name], (
                        f"{role.name}: {choice} documents {name} differently from main")


def _choice_options(role: Path) -> dict:
    return {name: option["choices"] for spec in _specs(role).values()
            for name, option in (spec.get("options") or {}).items() if option.get("choices")}


def _render(template: str, name: str, value) -> str | None:
    """The parameter rendered with only the role option set; None when it needs anything else."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - not HTML
    try:
        return env.from_string(template).render({name: value})
    except jinja2.exceptions.TemplateError:
        return None


def _choice_walks():
    for role in ROLES:
        choices = _choice_options(role)
        for where, module, params in _module_calls(role):
            options = _module_options(module)
            for param, template in params.items():
                if not isinstance(template, str):
                    continue
                for name, allowed in choices.items():
                    word = re.compile(rf"(?<!\w){name}(?!\w)")
                    if any(word.search(expr) for expr in _TEMPLATE_VAR.findall(template)):
                        yield role, where, module, param, template, name, allowed, options.get(param, {})


WALKS = list(_choice_walks())


def test_choice_walks_cover_the_engine_options():
    walked = {(role.name, name) for role, _w, _m, _p, _t, name, _a, _o in WALKS}
    assert {("db_backup", "db_backup_engine"), ("db_restore", "db_restore_engine")} <= walked


@pytest.mark.parametrize(("role", "where", "module", "param", "template", "name", "allowed", "option"), WALKS,
                         ids=lambda v: v.name if isinstance(v, Path) else None)
def test_every_role_choice_is_accepted_by_the_module_it_feeds(role, where, module, param, template, name, allowed,
                                                              option):
    module_choices = option.get("choices")
    assert option, f"{role.name} {where}: {module} has no option {param}"
    for value in allowed:
        rendered = _render(template, name, value)
        assert rendered is not None, f"{role.name} {where}: {module}.{param} = {template!r} needs more than {name}"
        if module_choices is not None:
            assert rendered in [str(c) for c in module_choices], (
                f"{role.name} allows {name}={value!r}, which reaches {module}.{param} as {rendered!r};"
                f" {module} accepts {module_choices}")


def test_every_role_choice_that_is_not_walked_is_dispatch():
    """A choice option that feeds no module is a mode the role's own tasks branch on (a when: or a file)."""
    walked = {(role.name, name) for role, _w, _m, _p, _t, name, _a, _o in WALKS}
    for role in ROLES:
        text = "\n".join(p.read_text(encoding="utf-8") for p in (role / "tasks").glob("*.yml"))
        for name in _choice_options(role):
            if (role.name, name) not in walked:
                assert name in text, f"{role.name}: {name} has choices but no task reads it"


def test_readme_inputs_are_generated_from_the_specs():
    proc = subprocess.run([sys.executable, str(PROJECT / "scripts" / "role-readme.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_readme_check_fails_on_a_stale_readme(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("role_readme", PROJECT / "scripts" / "role-readme.py")
    role_readme = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(role_readme)
    role = tmp_path / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump({"argument_specs": {"main": {
        "short_description": "demo", "options": {"demo_a": {"type": "str", "required": True, "description": "A."}}}}}))
    (role / "README.md").write_text("# Role `demo`\n\n## Inputs\n\nold\n\n## Behaviour\n\nkept\n")
    monkeypatch.setattr(role_readme, "ROLES", tmp_path)
    assert role_readme.main(["--check"]) == 1
    assert role_readme.main([]) == 0
    text = (role / "README.md").read_text()
    assert "| `demo_a` | str | required | A. |" in text and "kept" in text and "old" not in text
    assert role_readme.main(["--check"]) == 0
