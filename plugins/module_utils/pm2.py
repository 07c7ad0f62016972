"""Reading and driving pm2 from Ansible modules.

Only a whitelist of pm2's per-process fields ever leaves this file: `pm2 jlist` also prints every
environment variable of every process (and of the daemon that spawned it), which can hold secrets.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

# pm2_env fields that are safe to return; everything else (env, args, axm_*) stays here.
SAFE_ENV_FIELDS = (
    "status",
    "restart_time",
    "unstable_restarts",
    "pm_uptime",
    "exec_mode",
    "version",
    "pm_cwd",
    "pm_exec_path",
    "instances",
    "created_at",
)


class Pm2Error(Exception):
    """pm2 failed or printed something that is not a process list."""


@dataclass(frozen=True)
class Pm2:
    """A pm2 installation and home directory (PM2_HOME)."""

    binary: str
    home: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PM2_HOME"] = self.home
        # No colours, no banner, no update check, no telemetry.
        env["PM2_DISCRETE_MODE"] = "true"
        env["NO_COLOR"] = "1"
        env["PM2_PROGRAMMATIC"] = "true"
        return env

    def run(self, *args: str, timeout: int = 120, cwd: str | None = None) -> str:
        try:
            proc = subprocess.run(
                [self.binary, *args],
                env=self.env(),
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise Pm2Error(f"pm2 binary not found: {self.binary}") from exc
        except subprocess.TimeoutExpired as exc:
            raise Pm2Error(f"pm2 {' '.join(args)} did not finish in {timeout}s") from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise Pm2Error(f"pm2 {' '.join(args)} failed (rc={proc.returncode}): {' | '.join(tail)}")
        return proc.stdout

    def daemon_running(self) -> bool:
        """Whether the pm2 daemon of this home runs; asking pm2 itself would start one."""
        try:
            with open(os.path.join(self.home, "pm2.pid"), encoding="ascii") as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return False
        return os.path.exists(f"/proc/{pid}")

    def processes(self) -> list[dict]:
        """The safe summaries of every process; none (and no daemon started) when no daemon runs."""
        if not self.daemon_running():
            return []
        return parse_jlist(self.run("jlist", timeout=60))


def pm2_argument_spec() -> dict:
    """Options every pm2 module takes (documented by the `pm2` doc fragment)."""
    return {
        "name": {"type": "str", "required": True},
        "pm2_home": {"type": "path", "required": True},
        "pm2_binary": {"type": "str", "default": "pm2"},
    }


def pm2_from_module(module) -> Pm2:
    """The Pm2 of a module's pm2_binary (looked up in PATH unless a path) and pm2_home."""
    binary = module.params["pm2_binary"]
    if "/" not in binary:
        binary = module.get_bin_path(binary, required=True)
    return Pm2(binary=binary, home=module.params["pm2_home"])


def parse_jlist(text: str) -> list[dict]:
    """Turn `pm2 jlist` output into a list of safe process summaries."""
    start = text.find("[")
    if start < 0:
        raise Pm2Error("pm2 jlist printed no JSON list")
    try:
        raw = json.JSONDecoder().raw_decode(text[start:])[0]
    except json.JSONDecodeError as exc:
        raise Pm2Error(f"pm2 jlist printed invalid JSON: {exc}") from exc
    result = []
    for proc in raw:
        pm2_env = proc.get("pm2_env") or {}
        summary = {"name": proc.get("name"), "pm_id": proc.get("pm_id"), "pid": proc.get("pid")}
        summary.update({key: pm2_env.get(key) for key in SAFE_ENV_FIELDS})
        monit = proc.get("monit") or {}
        summary["memory"] = monit.get("memory")
        summary["cpu"] = monit.get("cpu")
        result.append(summary)
    return result


def select(processes: list[dict], name: str) -> list[dict]:
    return [p for p in processes if p["name"] == name]


def summarize(instances: list[dict]) -> dict:
    """One line of state for a named app: how many instances, how many online, restarts."""
    statuses = sorted({p["status"] for p in instances})
    return {
        "instances": len(instances),
        "online": sum(1 for p in instances if p["status"] == "online"),
        "statuses": statuses,
        "restarts": sum(int(p.get("restart_time") or 0) for p in instances),
        "unstable_restarts": sum(int(p.get("unstable_restarts") or 0) for p in instances),
        "pids": sorted(p["pid"] for p in instances if p.get("pid")),
        "cwd": sorted({p["pm_cwd"] for p in instances if p.get("pm_cwd")}),
    }


def diff_view(name: str, summary: dict) -> dict:
    """What `--diff` shows of a named app: instances, how many are online, their statuses and pids."""
    return {"app": name, "instances": summary["instances"], "online": summary["online"],
            "statuses": summary["statuses"], "pids": summary["pids"]}


def predicted(action: str | None, summary: dict, expected: int | None = None) -> dict:
    """The summary an action would leave (check mode): new workers have pids nobody knows yet."""
    if action is None:
        return summary
    if action == "delete":
        return {**summary, "instances": 0, "online": 0, "statuses": [], "pids": []}
    if action == "stop":
        return {**summary, "online": 0, "statuses": ["stopped"], "pids": []}
    count = expected or summary["instances"] or 1
    return {**summary, "instances": count, "online": count, "statuses": ["online"], "pids": ["(new)"] * count}


def is_running(instances: list[dict], expected: int | None = None) -> bool:
    online = [p for p in instances if p["status"] == "online"]
    if not online:
        return False
    if expected is not None and len(online) != expected:
        return False
    return len(online) == len(instances)


def plan(state: str, instances: list[dict], expected: int | None = None) -> str | None:
    """The pm2 action that brings the app to `state`, or None when it is there already.

    `reloaded` and `restarted` always act: they are requested because something changed
    (a handler or a release switch), never as a steady state.
    """
    if state == "started":
        if not instances:
            return "start"
        return None if is_running(instances, expected) else "restart"
    if state == "stopped":
        return "stop" if any(p["status"] == "online" for p in instances) else None
    if state == "absent":
        return "delete" if instances else None
    if state == "reloaded":
        return "reload" if instances else "start"
    if state == "restarted":
        return "restart" if instances else "start"
    raise ValueError(f"unknown state {state!r}")


def served_dirs(instances: list[dict], proc: str = "/proc") -> list[str]:
    """The directory each online worker really runs in (its working directory, links resolved), sorted.

    pm2 starts workers through the `current` link, so a worker's working directory is the release it serves;
    a worker whose directory is not where `current` points now still serves the release of before.
    """
    served = set()
    for instance in instances:
        if instance.get("status") != "online" or not instance.get("pid"):
            continue
        try:
            served.add(os.path.realpath(os.readlink(os.path.join(proc, str(instance["pid"]), "cwd"))))
        except OSError:
            served.add("(unreadable)")
    return sorted(served)


def stale_workers(instances: list[dict], serve_dir: str, proc: str = "/proc") -> list[str]:
    """The directories online workers serve that are not `serve_dir` (links resolved); none when all serve it."""
    wanted = os.path.realpath(serve_dir)
    return [served for served in served_dirs(instances, proc) if served != wanted]


def settle_wait(instances: list[dict], observe_s: float, now_ms: float) -> float:
    """Seconds to wait until every worker has been up `observe_s` without a restart (0 when all have).

    pm2's `pm_uptime` is when a worker's current process started (epoch ms; a restart or a reload renews it), so
    a worker up at least `observe_s` has not restarted within the last `observe_s` seconds: one sample proves it.
    Without a usable start time for every worker (not online, or a pm2 that does not say) the whole window is due.
    """
    if observe_s <= 0:
        return 0.0
    started = [p.get("pm_uptime") for p in instances]
    if not instances or any(p.get("status") != "online" for p in instances) or \
            not all(isinstance(t, (int, float)) and 0 < t <= now_ms for t in started):
        return float(observe_s)
    youngest = (now_ms - max(started)) / 1000
    return max(0.0, float(observe_s) - youngest)


def restart_growth(before: dict, after: dict) -> dict:
    """What happened to a named app between two summaries taken some seconds apart.

    `restarts` is the growth of pm2's restart counter, `replaced_pids` the workers that are gone (a worker
    that died and was respawned shows here even when its counter was reset). A healthy app shows neither.
    """
    return {
        "restarts": after["restarts"] - before["restarts"],
        "unstable_restarts": after["unstable_restarts"] - before["unstable_restarts"],
        "replaced_pids": sorted(set(before["pids"]) - set(after["pids"])),
    }
