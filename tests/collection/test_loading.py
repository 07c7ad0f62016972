"""The collection chatbot.rollback loads the same way from every runner.

One short playbook (playbooks/smoke.yml: a role, a module with collection module_utils, the filter and the
record callback) runs from a checkout with its ansible.cfg, under ansible-runner on a private data dir laid out
as AWX lays it out (project copied without .git, no ANSIBLE_CONFIG, inventory script, `!unsafe` extra vars),
and from the collection installed out of its `ansible-galaxy collection build` artifact into a directory
outside the checkout. Each run fails the test on "Skipping callback plugin", an unresolved module or role, or a
missing incident record. (Molecule, the fourth way, is tests/molecule.)
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import ansible_runner
import pytest
import yaml

from rollbackctl.record import validate

SMOKE = Path(__file__).parent / "playbooks" / "smoke.yml"
PASSWORD = "Sm0ke-pw-9931"
# What ansible prints when content does not load; each must be absent from every run's output.
NOT_LOADED = ("Skipping callback plugin", "unable to load", "couldn't resolve module", "could not be found",
              "the role 'chatbot.rollback", "ERROR!", "[ERROR]")
# Copied into the AWX-shaped project, as AWX leaves them out of a synced project or they are local state.
NOT_IN_PROJECT = (".git", ".sandbox", ".sandbox-runs", "incidents", "__pycache__", ".ruff_cache", ".pytest_cache",
                  ".ansible", "*.egg-info")


def _inventory(root: Path) -> dict:
    release_root = root / "platform"
    release_root.mkdir(exist_ok=True)
    return {"all": {
        "children": {"app": {"hosts": {"localhost": {}}}, "db": {"hosts": {"localhost": {}}}},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "chatbot_root": str(release_root),
                 "chatbot_mongodb_uri": f"mongodb://chatbot:{PASSWORD}@127.0.0.1:1/chatbot-platform",
                 "smoke_db_password": PASSWORD}}}


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment without any ANSIBLE_* setting (no ANSIBLE_CONFIG: each runner finds its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "ROLLBACKCTL_"))}
    env.update(ANSIBLE_NOCOLOR="1", **extra)
    return env


def assert_loaded(output: str, incidents: Path, incident_id: str) -> dict:
    for sign in NOT_LOADED:
        assert sign not in output, f"{sign!r} in the output:\n{output[-3000:]}"
    path = incidents / incident_id / "incident.json"
    assert path.is_file(), f"the rollback_record callback wrote no record at {path}:\n{output[-3000:]}"
    record = json.loads(path.read_text())
    validate(record)
    assert record["writer"] == "callback" and record["incident_id"] == incident_id
    assert record["phases"][0]["name"] == "preflight" and record["phases"][0]["status"] == "ok"
    for file in (incidents / incident_id).rglob("*"):
        assert PASSWORD not in file.read_text(errors="replace"), f"the database password is in {file}"
    return record


def _playbook(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(["ansible-playbook", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def test_from_a_checkout_with_its_ansible_cfg(project, tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump(_inventory(tmp_path)))
    incidents = tmp_path / "incidents"
    env = _environment(ROLLBACKCTL_INCIDENTS_DIR=str(incidents))
    output = _playbook(["-i", str(inventory), str(SMOKE.relative_to(project)), "-e", "rollback_to=v0.9.0",
                        "-e", "incident_id=checkout-1"], project, env)
    assert_loaded(output, incidents, "checkout-1")


def test_a_rollback_whose_every_task_is_skipped_leaves_no_record(project, tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump(_inventory(tmp_path)))
    incidents = tmp_path / "incidents"
    env = _environment(ROLLBACKCTL_INCIDENTS_DIR=str(incidents))
    skipped = SMOKE.parent / "skipped.yml"
    output = _playbook(["-i", str(inventory), str(skipped.relative_to(project)), "-e", "rollback_to=v0.9.0",
                        "-e", "incident_id=skipped-1"], project, env)
    assert "no task of a rollback phase ran; no incident record written" in output, output[-3000:]
    assert not list(incidents.glob("*/incident.json")), list(incidents.rglob("*"))


def _awx_private_data_dir(project: Path, root: Path, extravars: dict[str, str]) -> Path:
    """A private data dir as AWX builds it (awx/main/tasks/jobs.py): see ../shared facts and AWX.md."""
    pdd = root / "awx_1_pdd"
    shutil.copytree(project, pdd / "project", symlinks=True, ignore=shutil.ignore_patterns(*NOT_IN_PROJECT))
    (pdd / "inventory").mkdir()
    script = pdd / "inventory" / "hosts"
    inventory = _inventory(root)["all"]
    exported = {"all": {"children": ["app", "db", "ungrouped"], "vars": inventory["vars"]},
                "app": {"hosts": ["localhost"]}, "db": {"hosts": ["localhost"]},
                "_meta": {"hostvars": {"localhost": {}}}}
    script.write_text(f"#!{sys.executable}\nimport json\nprint(json.dumps({exported!r}))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (pdd / "env").mkdir()
    # Every survey/launch string is dumped with the !unsafe tag; the meta vars come after them.
    unsafe = "\n".join(f"{key}: !unsafe {json.dumps(value)}" for key, value in extravars.items())
    (pdd / "env" / "extravars").write_text(f"{unsafe}\nawx_job_id: 1\nawx_user_name: admin\n"
                                           "awx_job_template_name: smoke\ntower_job_id: 1\n")
    (pdd / "env" / "settings").write_text(yaml.safe_dump({"job_timeout": 0, "suppress_ansible_output": True,
                                                          "suppress_output_file": True}))
    return pdd


def test_under_ansible_runner_on_an_awx_shaped_private_data_dir(project, tmp_path):
    incidents = tmp_path / "incidents"
    marker = tmp_path / "templated"
    # a survey answer with Jinja in it stays text (AWX's !unsafe)
    reason = "{{ lookup('ansible.builtin.pipe', 'touch " + str(marker) + "') }}"
    pdd = _awx_private_data_dir(project, tmp_path, {"rollback_to": "v0.9.0", "incident_id": "awx-1", "reason": reason})
    assert not (pdd / "project" / ".git").exists() and (pdd / "project" / ".collections").is_dir()
    lines: list[str] = []
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith(("ANSIBLE_", "ROLLBACKCTL_"))}
    try:
        runner = ansible_runner.run(
            private_data_dir=str(pdd), playbook="tests/collection/playbooks/smoke.yml", ident="1", quiet=True,
            cmdline="-u root", envvars={"JOB_ID": "1", "AWX_HOST": "https://awx.invalid", "INVENTORY_ID": "1",
                                        "ROLLBACKCTL_INCIDENTS_DIR": str(incidents)},
            event_handler=lambda event: lines.append(event.get("stdout", "")) or True)
    finally:
        os.environ.update(saved)
    output = "\n".join(lines)
    assert runner.status == "successful" and runner.rc == 0, output[-4000:]
    assert "ANSIBLE_CALLBACK_PLUGINS" in runner.config.env, "ansible-runner no longer sets ANSIBLE_CALLBACK_PLUGINS"
    record = assert_loaded(output, incidents, "awx-1")
    assert record["reason"] == reason
    assert not marker.exists(), "a survey answer was templated"


@pytest.fixture(scope="module")
def installed_collection(project, tmp_path_factory) -> Path:
    """The collection built from the checkout and installed from its artifact, outside the checkout."""
    root = tmp_path_factory.mktemp("installed")
    subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(root)], cwd=project, check=True,
                   capture_output=True, env=_environment())
    artifact = next(root.glob("chatbot-rollback-*.tar.gz"))
    subprocess.run(["ansible-galaxy", "collection", "install", "--force", str(artifact), "-p",
                    str(root / "collections")], cwd=root, check=True, capture_output=True, env=_environment())
    installed = root / "collections" / "ansible_collections" / "chatbot" / "rollback"
    assert (installed / "MANIFEST.json").is_file()
    return installed


def test_from_the_installed_collection_artifact(installed_collection, tmp_path):
    collections = installed_collection.parents[2]
    for left_out in ("src", ".collections", "inventories", "fixtures", "pyproject.toml", "ansible.cfg"):
        assert not (installed_collection / left_out).exists(), f"{left_out} is in the collection artifact"
    assert sorted(p.name for p in (installed_collection / "tests").iterdir()) == ["sanity"]
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(SMOKE, work / "smoke.yml")
    inventory = work / "hosts.yml"
    inventory.write_text(yaml.safe_dump(_inventory(tmp_path)))
    incidents = tmp_path / "incidents"
    env = _environment(ANSIBLE_COLLECTIONS_PATH=str(collections), ROLLBACKCTL_INCIDENTS_DIR=str(incidents),
                       ANSIBLE_CALLBACKS_ENABLED="chatbot.rollback.rollback_record")
    output = _playbook(["-i", str(inventory), "smoke.yml", "-e", "rollback_to=v0.9.0", "-e", "incident_id=installed-1"],
                       work, env)
    assert_loaded(output, incidents, "installed-1")
    # Every playbook of the collection resolves (modules, roles, filters) by its FQCN.
    playbooks = sorted(p.stem for p in (installed_collection / "playbooks").glob("*.yml"))
    assert "rollback" in playbooks and "preflight" in playbooks
    for name in playbooks:
        _playbook(["-i", str(inventory), f"chatbot.rollback.{name}", "--syntax-check"], work, env)


def test_the_inputs_contract_loads_from_the_installed_collection(installed_collection, tmp_path):
    """playbooks/inputs.yml by FQCN, with its action plugin, module_utils and vars file from the artifact: a bad
    input is refused by name (exit 2) and a lookup in free text runs nothing."""
    collections = installed_collection.parents[2]
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump(_inventory(tmp_path)))
    marker = tmp_path / "marker"
    extra = {"playbook_inputs_for": "preflight", "rollback_to": "v1",
             "reason": f"{{{{ lookup('ansible.builtin.pipe', 'touch {marker}') }}}}"}
    command = ["ansible-playbook", "-i", str(inventory), "chatbot.rollback.inputs", "-e", json.dumps(extra)]
    proc = subprocess.run(command, cwd=tmp_path, env=_environment(ANSIBLE_COLLECTIONS_PATH=str(collections)),
                          capture_output=True, text=True, check=False, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-3000:]
    assert "rollback_to is malformed" in output and "Traceback" not in output
    assert not marker.exists()
