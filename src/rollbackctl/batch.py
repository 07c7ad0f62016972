"""Several phases in one ansible-playbook run, still recorded phase by phase.

Starting ansible-playbook costs seconds (Python, the inventory and its variables, the inputs check), and a
rollback has a dozen phase playbooks: the wrapper runs the phases that preflight's findings already decide
(everything between preflight and collect_logs) as one generated playbook that imports the same phase
playbooks, with the same variables, in the same order.

Between two phase playbooks the generated playbook has a boundary play, on every host:
  1. it stops the run when a host failed or went unreachable in an earlier play (ansible-playbook alone would go
     on with the remaining hosts, where the wrapper stops the rollback at the phase that failed);
  2. it records the time on localhost (`rollbackctl_phase_times`), so that a later phase's variables can name
     the moment an earlier phase of the same run ended (where the logs' attribution starts, for example);
  3. its task named `rollbackctl enter PHASE PLAYBOOK` tells the wrapper, through the event stream, that the
     earlier phases are done and this one starts, so the record is kept as if each phase ran on its own.
Statistics (set_stats) are taken from each task's result, per phase, as the phase's own run would have published
them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .runner import _ExtravarsDumper

ENTER = "rollbackctl enter "
BOUNDARY = "rollbackctl phase "
TIMES_FACT = "rollbackctl_phase_times"
_NAME = re.compile(r"^[a-z_]+$")
_PLAYBOOK = re.compile(r"^[a-z_]+\.yml$")


class Template(str):
    """A value the wrapper writes as a template on purpose (a phase time known only when the run gets there)."""


class _BatchDumper(_ExtravarsDumper):
    """Data stays inert (template-looking strings are tagged !unsafe); only Template values are templates."""


_BatchDumper.add_representer(Template, lambda dumper, value: dumper.represent_str(str(value)))


def phase_time(phase: str, which: str) -> Template:
    """The time this run reached a phase boundary: `started` or `ended` (whole seconds, as records write them)."""
    if not _NAME.match(phase) or which not in ("started", "ended"):
        raise ValueError(f"not a phase time: {phase} {which}")
    return Template(f"{{{{ ((hostvars['localhost'] | default({{}}))['{TIMES_FACT}'] | default({{}}))"
                    f"['{phase}_{which}'] | default('') }}}}")


def latest(values: Iterable[str]) -> str:
    """The latest of record times and run times (ISO strings in one format compare as times); '' when none."""
    values = [value for value in values if value]
    if not values:
        return ""
    if not any(isinstance(value, Template) for value in values):
        return max(values)
    parts = ", ".join(f"({str(value)[3:-3].strip()})" if isinstance(value, Template) else repr(str(value))
                      for value in values)
    return Template(f"{{{{ [{parts}] | select | max | default('') }}}}")


def _boundary(phase: str, playbook: str, previous: str | None) -> dict[str, Any]:
    """The play before one phase playbook; `previous`: the phase of the playbook before it (None: the first)."""
    stamp = {}
    if previous != phase:
        stamp[f"{phase}_started"] = "NOW"
        if previous:
            stamp[f"{previous}_ended"] = "NOW"
    combine = "{" + ", ".join(f"'{key}': __now" for key in stamp) + "}"
    return {
        "name": f"{BOUNDARY}{phase} {playbook}",
        "hosts": "all:localhost",
        "gather_facts": False,
        "any_errors_fatal": True,
        "tasks": [
            {"name": f"rollbackctl: every host came through the plays before {phase} ({playbook})",
             "ansible.builtin.assert": {
                 "that": ["ansible_play_hosts_all | difference(ansible_play_hosts) | length == 0"],
                 "fail_msg": Template("stopped before " + phase + ": {{ ansible_play_hosts_all | difference("
                                      "ansible_play_hosts) | join(', ') }} failed or went unreachable earlier"),
                 "quiet": True},
             "run_once": True},
            {"name": f"{ENTER}{phase} {playbook}",
             "ansible.builtin.set_fact": {
                 TIMES_FACT: Template(f"{{{{ (hostvars['localhost'] | default({{}}))['{TIMES_FACT}'] | default({{}})"
                                      f" | combine({combine}) }}}}")},
             "vars": {"__now": Template("{{ now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ') }}")},
             "delegate_to": "localhost",
             "delegate_facts": True,
             "run_once": True},
        ],
    }


def playbook(steps: Iterable[tuple[str, str, Mapping[str, Any]]], playbooks_dir: str) -> str:
    """The generated playbook: (phase, playbook, its own variables) in order, each behind a boundary play."""
    plays: list[dict[str, Any]] = []
    previous = None
    for phase, name, variables in steps:
        if not _NAME.match(phase) or not _PLAYBOOK.match(name):
            raise ValueError(f"not a phase playbook: {phase} {name}")
        plays.append(_boundary(phase, name, previous))
        entry: dict[str, Any] = {"name": f"{phase}: {name}",
                                 "ansible.builtin.import_playbook": f"{playbooks_dir}/{name}"}
        if variables:
            entry["vars"] = dict(variables)
        plays.append(entry)
        previous = phase
    return "---\n# Generated by rollbackctl for one run (see rollbackctl/batch.py); not a file to edit.\n" + yaml.dump(
        plays, Dumper=_BatchDumper, allow_unicode=True, sort_keys=False, width=10**9)


@dataclass
class PhaseEvents:
    """What one phase's part of the run did, from the event stream."""

    playbook: str = ""
    changed: int = 0
    hosts_changed: set[str] = field(default_factory=set)
    stats: list[dict[str, Any]] = field(default_factory=list)


def entered(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """(phase, playbook) when this event is a boundary's enter task starting."""
    if event.get("event") != "playbook_on_task_start":
        return None
    task = str((event.get("event_data") or {}).get("task") or "")
    if not task.startswith(ENTER):
        return None
    phase, _, name = task[len(ENTER):].partition(" ")
    return phase, name


def fold(events: PhaseEvents, event: Mapping[str, Any]) -> None:
    """Count one task result into its phase: changes and published statistics."""
    kind = event.get("event")
    data = event.get("event_data") or {}
    if kind == "runner_on_ok":
        res = data.get("res") or {}
        if res.get("changed"):
            events.changed += 1
            events.hosts_changed.add(str(data.get("host")))
        stats = res.get("ansible_stats")
        if isinstance(stats, Mapping) and isinstance(stats.get("data"), Mapping):
            events.stats.append(dict(stats["data"]))
