"""A platform to measure: one checkout of the project and the sandbox it provisions (its own folder and ports).

Everything runs through the checkout's own entry points (`python -m rollbackctl.cli` with that checkout's src,
plain `ansible-playbook` with its ansible.cfg), so a baseline checkout is measured with its own code. The
fleet (1 -> 3 -> 8 app hosts behind a gateway) adds a Target with another inventory and base URL; the measures
only use what is here.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .procs import Measured, run_measured

GOOD, BAD = "v0.9.0", "v1.0.0"
AUTHORITY = ("--decided-by", "Dana", "--role", "lead-devops-engineer")  # as tests/faults and tests/sandbox
# Results of these actions run no module on the host (no process): everything else does.
NO_MODULE_ACTIONS = {
    "ansible.builtin.set_fact", "set_fact", "ansible.builtin.debug", "debug", "ansible.builtin.assert", "assert",
    "ansible.builtin.fail", "fail", "ansible.builtin.meta", "meta", "ansible.builtin.set_stats", "set_stats",
    "ansible.builtin.include_tasks", "include_tasks", "ansible.builtin.import_tasks", "ansible.builtin.include_role",
    "include_role", "ansible.builtin.include_vars", "include_vars", "ansible.builtin.add_host", "add_host",
    "ansible.builtin.group_by", "group_by", "ansible.builtin.pause", "pause", "ansible.builtin.validate_argument_spec",
    "validate_argument_spec",
}
TASK_RESULTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable")


class SetupFailed(RuntimeError):
    """Bringing a platform into the state a measure starts from failed (the measure is not taken)."""


@dataclass
class Target:
    name: str  # "before" / "after" (or a fleet size)
    checkout: Path
    sandbox_dir: Path
    port_base: int
    inventory: str = "inventories/local"

    # --- where things are ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port_base}"

    @property
    def state_dir(self) -> Path:
        return self.sandbox_dir.with_name(self.sandbox_dir.name + "-bench")

    @property
    def incidents(self) -> Path:
        return self.state_dir / "incidents"

    @property
    def runs_dir(self) -> Path:
        """ansible-runner's artifacts (rollbackctl.sandbox.Sandbox.runs_dir: beside the sandbox)."""
        return self.sandbox_dir.with_name("." + self.sandbox_dir.name.lstrip(".") + "-runs")

    @property
    def app_root(self) -> Path:
        return self.sandbox_dir / "app" / "opt" / "chatbot-platform"

    @property
    def pm2_home(self) -> Path:
        return self.sandbox_dir / "app" / "pm2"

    def password(self) -> str:
        return (self.sandbox_dir / "secrets" / "synthetic-password").read_text().split()[0]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in list(env):  # nothing of the bench's own checkout leaks into the target's
            if key.startswith(("ROLLBACK", "ANSIBLE_")):
                del env[key]
        env.update({
            "ROLLBACK_SANDBOX_DIR": str(self.sandbox_dir), "ROLLBACK_SANDBOX_PORT_BASE": str(self.port_base),
            "ROLLBACKCTL_INCIDENTS_DIR": str(self.incidents), "ROLLBACKCTL_STATE_DIR": str(self.state_dir / "state"),
            "PYTHONPATH": str(self.checkout / "src"), "ANSIBLE_CONFIG": str(self.checkout / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
        })
        return env

    # --- commands ----------------------------------------------------------------------------

    def rollbackctl(self, *args: str, **kwargs) -> Measured:
        return run_measured([sys.executable, "-m", "rollbackctl.cli", *args], env=self.env(), cwd=str(self.checkout),
                            **kwargs)

    def playbook(self, playbook: str, extravars: dict, **kwargs) -> Measured:
        return run_measured(["ansible-playbook", "-i", self.inventory, f"playbooks/{playbook}", "-e",
                             json.dumps(extravars)], env=self.env(), cwd=str(self.checkout), **kwargs)

    def pm2(self, *args: str, **kwargs) -> Measured:
        return run_measured(["pm2", *args], env={**os.environ, "PM2_HOME": str(self.pm2_home)},
                            cwd=str(self.app_root), **kwargs)

    def shell(self, command: list[str], cwd: Path, **kwargs) -> Measured:
        return run_measured(command, env=dict(os.environ), cwd=str(cwd), **kwargs)

    # --- state -----------------------------------------------------------------------------------

    def health(self, timeout: float = 5.0) -> dict:
        try:
            with urllib.request.urlopen(self.base_url + "/health", timeout=timeout) as response:  # noqa: S310
                return {"http_status": response.status, **json.load(response)}
        except urllib.error.HTTPError as exc:  # 503: the release answers but is not healthy (a schema it lacks)
            try:
                return {"http_status": exc.code, **json.loads(exc.read())}
            except ValueError:
                return {"http_status": exc.code}
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return {"error": str(exc)}

    def maintenance_on(self) -> bool:
        return any((self.sandbox_dir / "nginx" / "conf.d").glob("chatbot-maintenance*"))

    def wait_version(self, version: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health(2.0).get("version") == version.lstrip("v"):
                return True
            time.sleep(0.2)
        return False

    def provision(self, incident: str) -> Measured:
        """`rollbackctl sandbox up` (idempotent: a running sandbox is checked, not rebuilt). A sandbox an earlier
        benchmark left mid-rollback (a failed verification leaves maintenance on, maybe the old data under the good
        release) is brought back by a plain rollback first: `sandbox up` provisions, it does not repair."""
        self.incidents.mkdir(parents=True, exist_ok=True)
        if (self.app_root / "current").is_symlink():
            self.stable(incident)
        result = self.rollbackctl("sandbox", "up", count_processes=False, timeout=1800)
        if not result.ok:
            raise SetupFailed(f"{self.name}: sandbox up failed:\n{result.output}")
        return result

    def stable(self, incident: str) -> None:
        """The good release live, maintenance off: a plain rollback first when a measure left anything else."""
        if not self.maintenance_on() and os.readlink(self.app_root / "current") == f"releases/{GOOD}" \
                and self.wait_version(GOOD, 30):  # a slow answer is not a wrong release
            return
        # A run that failed after the switch leaves current on v0.9.0, whose pre-deploy backup (the default) does
        # not exist: the data to go back to is the backup deploy.yml took before v1.0.0.
        backup = f"pre-deploy-{BAD}"
        chosen = ["--backup", backup] if (self.sandbox_dir / "backups" / f"{backup}.manifest.json").exists() else []
        result = self.rollbackctl("run", "standard", "-i", self.inventory, "--to", GOOD, "--reason",
                                  "bench: reset between measures", "--incident-id", incident, "--break-lock",
                                  *chosen, *AUTHORITY, count_processes=False)
        if not result.ok or not self.wait_version(GOOD):
            raise SetupFailed(f"{self.name}: could not bring the platform back to {GOOD}:\n{result.output}")

    def deploy_bad(self, *, migrate: bool) -> None:
        """Deploy v1.0.0 over v0.9.0 as the tests do: with its backup and migration (deploy.yml), or the code only
        (deploy_release.yml, app_release_migrate false: both releases share schema 1)."""
        if migrate:
            result = self.playbook("deploy.yml", {"deploy_version": BAD}, count_processes=False)
        else:
            result = self.playbook("deploy_release.yml", {"deploy_version": BAD, "app_release_migrate": False},
                                   count_processes=False)
        if not result.ok or not self.wait_version(BAD):
            raise SetupFailed(f"{self.name}: deploying {BAD} failed:\n{result.output}")

    def record(self, incident: str) -> dict:
        try:
            return json.loads((self.incidents / incident / "incident.json").read_text())
        except (OSError, ValueError):
            return {}

    def playbook_runs(self, incident: str) -> dict:
        """ansible-playbook processes (one artifacts folder each) and module tasks of an incident's run."""
        # ansible-runner's artifacts/<ident>, ident = <incident>-<phase>-<playbook>-<time> (orchestrator); rollbackctl
        # keeps them in its state folder (procedures.context), Sandbox in runs_dir. Phases are lower case: another
        # incident whose id extends this one (<incident>-RESET) does not match.
        runs = sorted(p for base in (self.state_dir / "state" / "runs", self.runs_dir)
                      for p in (base / "artifacts").glob(f"{incident}-[a-z]*") if p.is_dir())
        tasks = 0
        for run in runs:
            for path in (run / "job_events").glob("*.json"):
                try:
                    event = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                data = event.get("event_data") or {}
                if event.get("event") in TASK_RESULTS and data.get("task_action") not in NO_MODULE_ACTIONS:
                    tasks += 1
        return {"playbooks": len(runs), "module_tasks": tasks}
