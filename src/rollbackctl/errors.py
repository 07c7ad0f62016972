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
