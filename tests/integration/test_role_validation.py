"""A missing required role option fails at role validation, naming it, for every entry point and mode.

One ansible-playbook run (check mode, on localhost) includes every role entry point once per required
option, with all other required options given and that one left out; each include sits in a block whose
rescue keeps the failure. Through main, a mode's own spec is checked as well (app_release deploy without
its package directory). The cases come from the argument specs themselves, so a new required option is
covered without touching this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (PROJECT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())

# Values for required options: valid-looking, so that only the missing one can fail validation.
SAMPLE = {"str": "v0.9.0", "path": "/nonexistent/rollback-validation", "int": 1, "bool": False, "dict": {},
          "list": []}


def _cases():
    for role in ROLES:
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        for entry, spec in specs.items():
            options = spec.get("options") or {}
            required = [name for name, option in options.items() if option.get("required")]
            for missing in required:
                given = {name: SAMPLE[options[name].get("type", "str")] for name in required if name != missing}
                yield {"role": role.name, "entry": entry, "missing": missing, "vars": given}
    # Through main: the chosen mode's spec is checked before anything runs.
    yield {"role": "app_release", "entry": "main", "missing": "app_release_package_dir",
           "vars": {"app_release_action": "deploy", "app_release_version": "v1.0.0"}}
    yield {"role": "app_release", "entry": "main", "missing": "app_release_version",
           "vars": {"app_release_action": "rollback"}}
    yield {"role": "db_backup", "entry": "main", "missing": "db_backup_uri",
           "vars": {"db_backup_scope": "database", "db_backup_name": "b1"}}


def _playbook(cases, out: Path) -> list:
    tasks = []
    for i, case in enumerate(cases):
        include = {"name": f"chatbot.rollback.{case['role']}"}
        if case["entry"] != "main":
            include["tasks_from"] = case["entry"]
        tasks.append({
            "name": f"Case {i}",
            "block": [
                {"name": f"Include {case['role']} {case['entry']}", "ansible.builtin.include_role": include,
                 "vars": case["vars"]},
                {"name": "Validation passed", "ansible.builtin.set_fact": {f"case_{i}": "PASSED"}},
            ],
            "rescue": [{"name": "Keep the failure", "ansible.builtin.set_fact": {
                f"case_{i}": "{{ ansible_failed_task.name }} | {{ ansible_failed_result.msg | default('') }}"}}],
        })
    results = "{{ {" + ", ".join(f"'{i}': case_{i}" for i in range(len(cases))) + "} | to_json }}"
    tasks.append({"name": "Write the results", "ansible.builtin.copy": {"content": results, "dest": str(out),
                                                                          "mode": "0600"},
                  "check_mode": False})
    return [{"name": "Role validation", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def test_missing_required_option_fails_at_role_validation_naming_it(tmp_path):
    cases = list(_cases())
    assert len(cases) >= 20
    out = tmp_path / "results.json"
    playbook = tmp_path / "validation.yml"
    playbook.write_text(yaml.safe_dump(_playbook(cases, out), sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        ["ansible-playbook", "--check", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)],
        cwd=PROJECT, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    for i, case in enumerate(cases):
        msg = results[str(i)]
        where = f"{case['role']} {case['entry']} without {case['missing']}"
        assert msg != "PASSED", f"{where}: validation passed"
        task, _, error = msg.partition(" | ")
        assert "argument" in task.lower() and "spec" in task.lower(), f"{where}: failed later, not at validation: {msg}"
        assert f"missing required arguments: {case['missing']}" in error, f"{where}: not named: {msg}"
