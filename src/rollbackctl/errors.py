"""One exception hierarchy and one set of exit codes for the wrapper.

Every error the wrapper raises is a `RollbackctlError`; its `exit_code` is an `ExitCode`. The command
line prints the message and exits with that code, and every command's ``--help`` lists the codes it
may return (`rollbackctl.cli.common.exit_codes_epilog`), so the numbers live here only.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The process exit codes of `rollbackctl`, each with its general meaning (``description``)."""

    description: str

    def __new__(cls, value: int, description: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    OK = 0, "success"
    ERROR = 1, "error (message on stderr)"
    USAGE = 2, "usage error, or the project (playbooks, roles) was not found"
    PHASE_FAILED = 3, "a playbook or phase failed (the failing host, task and message are printed)"
    REFUSED = 4, "refused: no rollback authority under the plan"
    LOCKED = 5, "locked: another rollback holds the environment"
    TRIGGER_FIRED = 6, "triggers: at least one rollback trigger fired"
    METRICS_UNREADABLE = 7, "triggers: the metrics source is unreadable"
    INTERRUPTED = 130, "interrupted"


class RollbackctlError(Exception):
    """Base of every error the wrapper raises; the CLI prints it and exits with `exit_code`."""

    exit_code: ExitCode = ExitCode.ERROR


class ProjectNotFound(RollbackctlError):
    """The playbooks/roles tree could not be located."""

    exit_code = ExitCode.USAGE


class UsageError(RollbackctlError):
    """A bad command-line value or input file; the message names the value and what is accepted."""

    exit_code = ExitCode.USAGE


class IncidentNotFound(UsageError):
    """No record for the incident id the user gave (or the id is malformed)."""


class IncidentExists(UsageError, FileExistsError):
    """An incident id that already has a record: a record is never overwritten (also a FileExistsError)."""


class ProcedureNotAvailable(UsageError):
    """The emergency procedure is not part of this release."""


class RecordInvalid(RollbackctlError):
    """An incident record does not match its JSON Schema (the message names the field)."""


class RecordUnreadable(RecordInvalid):
    """An incident record so far from its schema that no report can be made of it; `problems` says where."""

    def __init__(self, problems: list[str]):
        super().__init__("the incident record does not match its schema: " + "; ".join(problems[:3]))
        self.problems = problems


class PlaybookFailed(RollbackctlError):
    """A playbook run ended in failure; carries the runner result."""

    exit_code = ExitCode.PHASE_FAILED

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class RunInterrupted(RollbackctlError):
    """SIGTERM/SIGINT stopped a rollback mid-phase; the phase is recorded as interrupted."""

    exit_code = ExitCode.INTERRUPTED


class AuthorityRefused(RollbackctlError):
    """The person deciding the rollback has no authority under the plan's Rollback Decision Authority."""

    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, decided_by: str = "", role: str = "", missing: str = ""):
        super().__init__(message)
        self.decided_by = decided_by
        self.role = role
        self.missing = missing


class LockHeld(RollbackctlError):
    """Another rollback holds the environment's lock (or its holder cannot be checked from this host)."""

    exit_code = ExitCode.LOCKED

    def __init__(self, message: str, holder=None, lock_file=None):
        super().__init__(message)
        self.holder = holder
        self.lock_file = lock_file


class LockStale(LockHeld):
    """The environment's lock belongs to a process that is gone, or its lock file is unusable."""


class MetricsUnavailable(RollbackctlError):
    """The metrics source could not be read, or data is missing under the `fail` policy."""

    exit_code = ExitCode.METRICS_UNREADABLE


class MissingDataFails(MetricsUnavailable):
    """Missing data would decide a trigger under the `fail` policy (evaluate names every such trigger)."""


class PrometheusQueryError(MetricsUnavailable):
    """A transient failure of one Prometheus query (connection, timeout, HTTP 5xx, bad answer): retried."""


class PrometheusQueryRejected(MetricsUnavailable):
    """Prometheus refused the query itself (HTTP 400 bad_data): retrying cannot help."""


class TicketError(RollbackctlError):
    """The issue tracker refused a request or could not be reached (recorded, never fatal to the rollback)."""
