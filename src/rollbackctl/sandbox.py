"""The local sandbox: the toolkit's embedded default platform on this machine."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import inputs
from .errors import UsageError
from .runner import PlaybookResult, run_playbook

# Same names and defaults as inventories/local/group_vars/all/sandbox.yml.
DIR_ENV = "ROLLBACK_SANDBOX_DIR"
PORT_ENV = "ROLLBACK_SANDBOX_PORT_BASE"
DEFAULT_PORT_BASE = 18080


@dataclass(frozen=True)
class Sandbox:
    project: Path

    @property
    def inventory(self) -> Path:
        return self.project / "inventories" / "local"

    @property
    def directory(self) -> Path:
        chosen = os.environ.get(DIR_ENV)
        return inputs.directory(chosen, f"${DIR_ENV}") if chosen else (self.project / ".sandbox").resolve()

    @property
    def port_base(self) -> int:
        """$ROLLBACK_SANDBOX_PORT_BASE (the web port; the app and the database use the next two)."""
        return inputs.env_port(PORT_ENV, DEFAULT_PORT_BASE, span=3)

    def check_environment(self) -> None:
        """UsageError naming the variable when $ROLLBACK_SANDBOX_PORT_BASE or $ROLLBACK_SANDBOX_DIR is unusable."""
        if os.environ.get(DIR_ENV) == "":
            raise UsageError(f"${DIR_ENV}: is set but empty; unset it (default .sandbox/) or give a folder")
        _ = self.port_base, self.directory
        runs = self.runs_dir
        if runs.exists() and not runs.is_dir():
            raise UsageError(f"${DIR_ENV}: the sandbox's runs folder {runs} is not a folder")

    @property
    def runs_dir(self) -> Path:
        """ansible-runner's artifacts, beside the sandbox (kept when the sandbox is torn down)."""
        return self.directory.with_name("." + self.directory.name.lstrip(".") + "-runs")

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.port_base}"

    def _run(self, playbook: str, **kwargs) -> PlaybookResult:
        return run_playbook(project=self.project, playbook=playbook, inventory=self.inventory,
                            runs_dir=self.runs_dir, **kwargs)

    def up(self, **kwargs) -> PlaybookResult:
        return self._run("platform.yml", **kwargs)

    def down(self, **kwargs) -> PlaybookResult:
        return self._run("sandbox_down.yml", **kwargs)

    def health(self, timeout: float = 5.0) -> dict:
        """GET /health through nginx; {'error': ...} when it does not answer."""
        try:
            with urllib.request.urlopen(self.web_url + "/health", timeout=timeout) as response:  # noqa: S310
                return {"http_status": response.status, **json.load(response)}
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            try:
                return {"http_status": exc.code, **json.loads(body)}
            except ValueError:
                return {"http_status": exc.code, "error": body[:200]}
        except (urllib.error.URLError, OSError) as exc:
            return {"error": str(getattr(exc, "reason", exc))}
