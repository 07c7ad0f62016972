"""One exception hierarchy for the wrapper."""


class RollbackctlError(Exception):
    """Base of every error the wrapper raises; the CLI prints it and exits non-zero."""

    exit_code = 1


class ProjectNotFound(RollbackctlError):
    """The playbooks/roles tree could not be located."""

    exit_code = 2


class PlaybookFailed(RollbackctlError):
    """A playbook run ended in failure; carries the runner result."""

    exit_code = 3

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class UsageError(RollbackctlError):
    """A bad command-line value or input file; the message names the value and what is accepted."""

    exit_code = 2


class AuthorityRefused(RollbackctlError):
    """The person deciding the rollback has no authority under the plan's Rollback Decision Authority."""

    exit_code = 4

    def __init__(self, message: str, decided_by: str = "", role: str = "", missing: str = ""):
        super().__init__(message)
        self.decided_by = decided_by
        self.role = role
        self.missing = missing


class LockHeld(RollbackctlError):
    """Another rollback holds the environment's lock (or its holder cannot be checked from this host)."""

    exit_code = 5

    def __init__(self, message: str, holder=None, lock_file=None):
        super().__init__(message)
        self.holder = holder
        self.lock_file = lock_file


class LockStale(LockHeld):
    """The environment's lock belongs to a process that is gone (or the lock file is corrupt)."""

    exit_code = 5
