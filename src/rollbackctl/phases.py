"""The phases of a rollback, as the plan names them: Appendix C estimates and Appendix A checklist items.

One table, used by the wrapper (which runs one phase at a time), the callback plugin (which sees
`rollback_phase` on the plays of playbooks/rollback.yml) and the reports.
"""

from __future__ import annotations

from dataclasses import dataclass

# The plan's Appendix A, in its order.
CHECKLIST = (
    "Rollback decision made and communicated",
    "Maintenance mode enabled",
    "Application code rolled back",
    "Application status verified",
    "Database rolled back (if necessary)",
    "Database status verified",
    "Maintenance mode disabled",
    "Post-rollback verification completed",
    "Stakeholders notified",
    "Incident report initiated",
)
CHECK_INCIDENT_REPORT = CHECKLIST[9]

# The plan's Appendix C total.
TOTAL_ESTIMATE = {"label": "Total estimated time", "min_minutes": 60, "max_minutes": 120}


@dataclass(frozen=True)
class Estimate:
    label: str
    min_minutes: float
    max_minutes: float

    def to_dict(self) -> dict:
        return {"label": self.label, "min_minutes": self.min_minutes, "max_minutes": self.max_minutes}


@dataclass(frozen=True)
class Phase:
    name: str
    title: str
    estimate: Estimate | None = None
    checklist: str | None = None
    verifies: bool = False  # a verification phase (not run in check mode: nothing it would measure changed)
    needs_rollback: bool = False  # skipped when the platform already runs the target (nothing to roll back)


STANDARD = (
    Phase("preflight", "Preflight checks (read-only)"),
    Phase("announce", "Announce the rollback", Estimate("Decision and communication", 15, 15), CHECKLIST[0],
          needs_rollback=True),
    Phase("maintenance_on", "Enable maintenance mode", Estimate("Enable maintenance mode", 5, 5), CHECKLIST[1],
          needs_rollback=True),
    Phase("app_rollback", "Roll back the application code", Estimate("Application code rollback", 10, 15),
          CHECKLIST[2]),
    Phase("verify_app", "Verify the application", Estimate("Application verification", 10, 10), CHECKLIST[3],
          verifies=True),
    Phase("db_restore", "Roll back the database (if necessary)", Estimate("Database rollback", 15, 30), CHECKLIST[4]),
    Phase("verify_db", "Verify the database", Estimate("Database verification", 10, 10), CHECKLIST[5],
          verifies=True),
    Phase("maintenance_off", "Verify through the bypass, then disable maintenance mode",
          Estimate("Disable maintenance mode", 5, 5), CHECKLIST[6]),
    Phase("post_verify", "Post-rollback verification", Estimate("Post-rollback verification", 15, 30), CHECKLIST[7],
          verifies=True),
    Phase("notify_done", "Notify the stakeholders of the completion", None, CHECKLIST[8], needs_rollback=True),
    Phase("collect_logs", "Collect the logs of the failed deployment"),
)

BY_NAME = {phase.name: phase for phase in STANDARD}
NAMES = tuple(phase.name for phase in STANDARD)


def get(name: str) -> Phase:
    return BY_NAME[name]
