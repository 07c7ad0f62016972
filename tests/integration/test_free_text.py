"""People's words stay inert: free text that looks like a template is never templated on the wrapper's path.

A real ansible-playbook run through the wrapper's runner (ansible-runner, extra vars in a 0600 file) whose
tasks use the values the way the project's playbooks do: in a module argument, in set_fact, in set_stats and
in a template. A lookup in a reason would run a command on the controller; the marker file proves it did not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from rollbackctl.runner import extravars_yaml, run_playbook

PROJECT = Path(__file__).resolve().parents[2]


def _payloads(marker: Path) -> list[str]:
    touch = f"{{{{ lookup('ansible.builtin.pipe', 'touch {marker}') }}}}"
    return [
        touch,
        f"messaging 5xx {touch} since 10:02",
        f"{{% set x = lookup('ansible.builtin.pipe', 'touch {marker}') %}}done",
        "{# a comment #} and {{ 7 * 7 }}",
        f"Dana {{{{ query('ansible.builtin.pipe', 'touch {marker}') }}}}",
        "{{ undefined_variable_here }}",
        "ünïcödé {{ '\u202e' }}",
    ]


@pytest.fixture
def playbook(tmp_path) -> Path:
    book = tmp_path / "project" / "playbooks" / "free_text.yml"
    book.parent.mkdir(parents=True)
    (tmp_path / "project" / "ansible.cfg").write_text((PROJECT / "ansible.cfg").read_text())
    book.write_text(yaml.safe_dump([{
        "name": "Use free text the way the playbooks do",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {"name": "Module argument", "ansible.builtin.debug": {"msg": "{{ reason }}"}},
            {"name": "Into a fact", "ansible.builtin.set_fact": {"seen_reason": "{{ reason }}",
                                                                  "seen_nested": "{{ context }}"}},
            {"name": "A template", "ansible.builtin.copy": {
                "content": "{{ reason }}\n{{ context.notes | join(',') }}\n", "dest": "{{ out_file }}",
                "mode": "0600"}},
            {"name": "Publish", "ansible.builtin.set_stats": {"data": {
                "reason": "{{ seen_reason }}", "decided_by": "{{ decided_by }}", "nested": "{{ seen_nested }}",
                "count": "{{ count }}", "flag": "{{ flag }}"}}},
        ],
    }], sort_keys=False))
    return book


def test_template_text_in_extra_vars_is_never_templated(tmp_path, playbook):
    marker = tmp_path / "marker"
    out_file = tmp_path / "out.txt"
    for text in _payloads(marker):
        result = run_playbook(
            project=playbook.parent.parent, playbook="free_text.yml",
            inventory=_inventory(tmp_path), runs_dir=tmp_path / "runs", raise_on_failure=False,
            extravars={"reason": text, "decided_by": text, "context": {"notes": [text, "plain"]},
                       "count": 3, "flag": True, "out_file": str(out_file)})
        assert result.ok, (text, result.failures)
        assert not marker.exists(), f"templated: {text!r}"
        stats = result.custom_stats.get("localhost") or result.custom_stats
        assert stats["reason"] == text and stats["decided_by"] == text
        assert stats["nested"]["notes"] == [text, "plain"]
        assert out_file.read_text() == f"{text}\n{text},plain\n"


def _inventory(tmp_path: Path) -> Path:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return inventory


@pytest.mark.parametrize("value", [
    "plain", "", "yes", "on", "null", "1.0", "007", "2024-05-01", "a: b", "- x", "#x", "'q'", '"dq"',
    "{{ x }}", "{%x%}", "{#", "line\nbreak {{ y }}", "tab\t{{z}}", "ünï {{ c }}", 12, 1.5, True, None,
    ["{{ a }}", 1], {"k": "{{ b }}", "n": {"m": "{% c %}"}},
])
def test_extravars_yaml_round_trips_every_value(value):
    """Loaded back as Ansible loads it, every value equals the original (types kept, text unchanged)."""
    from ansible.parsing.yaml.loader import AnsibleLoader

    text = extravars_yaml({"v": value})
    loaded = yaml.load(text, Loader=AnsibleLoader)["v"]  # noqa: S506 - Ansible's own loader
    assert loaded == value
    assert value is None or isinstance(loaded, type(value))
    if isinstance(value, str) and "{" in value and any(m in value for m in ("{{", "{%", "{#")):
        assert "!unsafe" in text
