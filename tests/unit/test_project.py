"""Static properties of the project: module docs render, roles are documented, CLI helps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rollbackctl.cli import main


def _modules(project):
    return sorted(p.stem for p in (project / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def _ansible_doc(project, kind, name):
    """ansible-doc of one of the collection's plugins, by FQCN, from the checkout (its ansible.cfg)."""
    env = {"ANSIBLE_CONFIG": str(project / "ansible.cfg"),
           "PATH": "/usr/local/bin:/usr/bin:/bin:" + str(Path(sys.executable).parent)}
    return subprocess.run(["ansible-doc", "-t", kind, f"chatbot.rollback.{name}"], cwd=project, capture_output=True,
                          text=True, check=False, env=env)


def test_every_module_renders_with_ansible_doc(project):
    modules = _modules(project)
    assert modules
    for module in modules:
        proc = _ansible_doc(project, "module", module)
        assert proc.returncode == 0, proc.stderr
        assert "EXAMPLES" in proc.stdout and "RETURN VALUES" in proc.stdout, module


@pytest.mark.parametrize(("kind", "name"), [("callback", "rollback_record"), ("filter", "rollback_redact")])
def test_plugins_render_with_ansible_doc(project, kind, name):
    proc = _ansible_doc(project, kind, name)
    assert proc.returncode == 0, proc.stderr
    assert name in proc.stdout and "Unable to parse" not in proc.stderr


def test_every_role_has_argument_specs_readme_and_prefixed_defaults(project):
    roles = sorted(p for p in (project / "roles").iterdir() if p.is_dir())
    assert roles
    for role in roles:
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        options = {name: option for entry in specs.values() for name, option in entry.get("options", {}).items()}
        assert (role / "README.md").is_file(), f"{role.name} has no README.md"
        defaults_file = role / "defaults" / "main.yml"
        defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
        for name in defaults or {}:
            assert name.startswith(f"{role.name}_"), f"{role.name}: {name} is not prefixed"
            assert name in options, f"{role.name}: {name} is missing from argument_specs"


def test_cli_help_lists_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "exit codes" in capsys.readouterr().out


def test_cli_rejects_unknown_sandbox_action(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sandbox", "sideways"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
