"""A thin layer over ansible-runner: run one playbook, return what happened.

Results come from ansible-runner's status, rc, stats and events, never from parsing stdout.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

from .errors import PlaybookFailed
from .files import write_atomic


@dataclass
class PlaybookResult:
    playbook: str
    status: str
    rc: int | None  # None: ansible-playbook was killed by a signal
    stats: dict[str, dict[str, int]]
    artifacts_dir: str
    failures: list[dict[str, Any]] = field(default_factory=list)
    custom_stats: dict[str, Any] = field(default_factory=dict)  # what the playbook published with set_stats

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    def hosts_with(self, key: str) -> list[str]:
        return sorted(host for host, count in self.stats.get(key, {}).items() if count)

    @property
    def changed_hosts(self) -> list[str]:
        return self.hosts_with("changed")

    @property
    def changed_count(self) -> int:
        return sum(self.stats.get("changed", {}).values())

    def why(self) -> str:
        """Why the run failed: its failed tasks, or how ansible-playbook ended when no task reported a failure
        (killed by a signal: ansible-runner then has no exit code)."""
        if self.failures:
            return "; ".join(f"{f['host']}: {f['task']}: {f['msg']}" for f in self.failures[:3])
        if self.ok:
            return self.status
        if self.rc is None or self.rc < 0:
            return (f"ansible-playbook was killed before it reported a failed task (ansible-runner status "
                    f"{self.status}, no exit code)")
        return f"ansible-playbook exited with code {self.rc} without reporting a failed task (status {self.status})"


_TEMPLATE_MARKS = ("{{", "{%", "{#")


class _ExtravarsDumper(yaml.SafeDumper):
    """YAML for `-e @file` in which every string that could be read as a template is tagged `!unsafe`."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if any(mark in value for mark in _TEMPLATE_MARKS):
        return dumper.represent_scalar("!unsafe", value, style="'")
    return dumper.represent_str(value)


_ExtravarsDumper.add_representer(str, _represent_str)


def extravars_yaml(extravars: dict[str, Any]) -> str:
    """The extra vars as YAML where people's words stay inert data.

    Reasons, names and anything else a person or an alert wrote reach tasks through extra vars, and Ansible
    templates a value when a task uses it: a reason holding a lookup would run a command on the controller.
    Tagged `!unsafe` (what AWX does with survey answers), such a value is never templated, on any task that
    reads it. Only strings holding a template delimiter are tagged; every other value keeps its type.
    """
    return yaml.dump(extravars, Dumper=_ExtravarsDumper, allow_unicode=True, sort_keys=False, width=10**9)


def _failure(event: dict[str, Any]) -> dict[str, Any] | None:
    if event.get("event") not in ("runner_on_failed", "runner_on_unreachable"):
        return None
    data = event.get("event_data", {})
    if data.get("ignore_errors"):
        return None
    res = data.get("res") or {}
    return {"host": data.get("host"), "task": data.get("task"), "msg": str(res.get("msg", ""))[:2000]}


def _scrub_command_artifact(artifact_dir: Path) -> None:
    """ansible-runner saves the whole process environment in artifacts/<ident>/command; keep the command only."""
    path = artifact_dir / "command"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and "env" in data:
        data["env"] = {key: "<not recorded>" for key in data["env"]}
        write_atomic(path, json.dumps(data), mode=0o600)


def run_playbook(
    *,
    project: Path,
    playbook: str,
    inventory: str | Path,
    extravars: dict[str, Any] | None = None,
    check: bool = False,
    ident: str | None = None,
    runs_dir: str | Path | None = None,
    envvars: dict[str, str] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    raise_on_failure: bool = True,
    cancel_callback: Callable[[], bool] | None = None,
) -> PlaybookResult:
    """Run `playbooks/<playbook>` of `project` against `inventory` with ansible-runner."""
    runs_dir = Path(runs_dir) if runs_dir else Path(tempfile.gettempdir()) / "rollbackctl-runs"
    runs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    failures: list[dict[str, Any]] = []
    custom_stats: dict[str, Any] = {}

    def handler(event: dict[str, Any]) -> bool:
        failure = _failure(event)
        if failure:
            failures.append(failure)
        if event.get("event") == "playbook_on_stats":
            custom_stats.update(event.get("event_data", {}).get("artifact_data") or {})
        if on_event:
            on_event(event)
        return True  # keep the event in the artifacts

    # ROLLBACKCTL_WRAPPER_PID arms the wrapper_guard callback: ansible-runner starts ansible-playbook in a
    # session of its own that ignores SIGHUP, so without the guard a playbook outlives a killed wrapper.
    env = {"ANSIBLE_CONFIG": str(project / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ROLLBACKCTL_WRAPPER_PID": str(os.getpid())}
    env.update(envvars or {})
    # Extra vars may carry secrets. With suppress_env_files, ansible-runner would put them on the
    # command line (saved in artifacts/<ident>/command); a 0600 file passed with -e @file keeps them out.
    # The file is YAML: free text that looks like a template is tagged !unsafe (extravars_yaml).
    vars_file = runs_dir / f".extravars-{uuid.uuid4().hex}.yml"
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(extravars_yaml(extravars or {}))
    try:
        runner = ansible_runner.run(
            private_data_dir=str(runs_dir),
            project_dir=str(project),
            playbook=str(project / "playbooks" / playbook),
            inventory=str(Path(inventory).resolve()),
            cmdline=f"-e @{vars_file}" + (" --check" if check else ""),
            envvars=env,
            ident=ident,
            quiet=True,
            suppress_env_files=True,
            event_handler=handler,
            **({"cancel_callback": cancel_callback} if cancel_callback else {}),
        )
    finally:
        vars_file.unlink(missing_ok=True)
    _scrub_command_artifact(Path(runner.config.artifact_dir))
    result = PlaybookResult(
        playbook=playbook,
        status=runner.status,
        rc=runner.rc,
        stats=runner.stats or {},
        artifacts_dir=str(runner.config.artifact_dir),
        failures=failures,
        custom_stats=custom_stats,
    )
    if raise_on_failure and not result.ok:
        raise PlaybookFailed(f"{playbook} failed: {result.why()}", result)
    return result
