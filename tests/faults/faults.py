"""The faults, in the order a rollback meets them (each chain is one incident, struck at each point in turn)."""

from __future__ import annotations

from rollbackctl.phases import NAMES

from .harness import PLAYBOOKS, RESTORE_TASK, Fault, Pause

RELOAD_HANDLER = "Validate the nginx configuration"  # the first handler of "Reload nginx"
RELOAD_APP = "Reload the app on the new release or configuration"
CHANGING = ("maintenance_on", "app_rollback", "db_restore", "maintenance_off")


def _windows(phase: str) -> list[Fault]:
    """Kills of the wrapper inside a phase, where a file is changed but not yet applied."""
    if phase == "maintenance_on":
        return [Fault("wrapper@maintenance-on-reload-window", "kill-wrapper",
                      Pause(phase, "maintenance.yml", "handler_start", RELOAD_HANDLER),
                      "maintenance switch written, nginx not reloaded")]
    if phase == "app_rollback":
        return [Fault("wrapper@switch-reload-window", "kill-wrapper",
                      Pause(phase, "app_rollback.yml", "task_start", RELOAD_APP),
                      "current switched to v0.9.0, pm2 not reloaded")]
    if phase == "maintenance_off":
        return [Fault("wrapper@maintenance-off-reload-window", "kill-wrapper",
                      Pause(phase, "maintenance.yml", "handler_start", RELOAD_HANDLER),
                      "maintenance switch removed, nginx not reloaded")]
    return []


def _kills() -> list[Fault]:
    faults = []
    for phase in NAMES:
        faults.append(Fault(f"wrapper@before-{phase}", "kill-wrapper", Pause(phase),
                            f"SIGKILL of rollbackctl's process group between phases, before {phase}"))
        faults.append(Fault(f"playbook@start-{phase}", "kill-playbook", Pause(phase, PLAYBOOKS[phase][0], "play_start"),
                            f"SIGKILL of ansible-playbook as {phase} begins"))
        faults.extend(_windows(phase))
        if phase in CHANGING:
            faults.append(Fault(f"playbook@end-{phase}", "kill-playbook", Pause(phase, PLAYBOOKS[phase][-1], "stats"),
                                f"SIGKILL of ansible-playbook when {phase}'s work is done, before it is recorded"))
    faults.append(Fault("wrapper@before-finish", "kill-wrapper", Pause("finish"),
                        "SIGKILL of rollbackctl when every phase is done, before the outcome"))
    return faults


KILLS = _kills()

OUTAGES = [
    Fault("nginx-stopped@after-maintenance-on", "stop-nginx", Pause("app_rollback"),
          "nginx stopped right after maintenance mode went on", cause=("refused", "nginx")),
    Fault("pm2-killed@verify-app", "stop-pm2", Pause("verify_app", "verify.yml", "play_start"),
          "the app's pm2 daemon killed as the app is verified", cause=("pm2", "online", "health", "refused")),
    Fault("backup-disk-full@db-restore", "disk-full", Pause("db_restore"),
          "the backup disk is full: the pre-restore snapshot cannot be written", cause=("no space left",)),
    Fault("wrapper@mid-restore", "kill-wrapper", Pause("db_restore", "db_restore.yml", "task_start", RESTORE_TASK),
          "SIGKILL of rollbackctl once the restore has dropped a collection", mid_restore=True),
    Fault("ferretdb-stopped@mid-restore", "stop-ferretdb",
          Pause("db_restore", "db_restore.yml", "task_start", RESTORE_TASK),
          "FerretDB stopped once the restore has dropped a collection", mid_restore=True,
          cause=("cannot reach", "refused", "connection", "mongodb")),
    Fault("playbook@restored-app-not-started", "kill-playbook",
          Pause("db_restore", "db_restore.yml", "task_start", "Start the app from its ecosystem file"),
          "SIGKILL of ansible-playbook after the restore, before the app starts (its results unreported)"),
    Fault("ferretdb-stopped@verify-db", "stop-ferretdb", Pause("verify_db", "verify.yml", "play_start"),
          "FerretDB stopped as the database is verified", cause=("cannot reach", "refused", "connection", "mongodb")),
    Fault("pm2-killed@post-verify", "stop-pm2", Pause("post_verify", "verify.yml", "play_start"),
          "the app's pm2 daemon killed during the post-rollback verification (maintenance already off)",
          cause=("pm2", "online", "health", "refused", "502")),
]
