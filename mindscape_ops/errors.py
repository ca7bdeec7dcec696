"""One error root. Every expected failure is a MindscapeError carrying what went wrong,
what to do about it, and the exit code the contract gives it; the CLI catches it once."""

from __future__ import annotations

# Exit codes fixed by the contract.
EXIT_OK = 0
EXIT_FAILED = 1  # a check, drift or operation failed
EXIT_USAGE = 2  # bad usage or invalid platform.yaml
EXIT_ENVIRONMENT = 3  # Docker engine, database or S3 unreachable


class MindscapeError(Exception):
    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class OperationFailed(MindscapeError):
    exit_code = EXIT_FAILED


class BackupUnreadable(OperationFailed):
    """A stored backup's own bytes failed where they were read (corrupt, or the store could not
    give them): not what they were restored into. A service's restore lets it through as is."""


class UsageError(MindscapeError):
    exit_code = EXIT_USAGE


class EnvironmentUnusable(MindscapeError):
    """The machine cannot do the job: engine, database or S3 unreachable, image missing."""

    exit_code = EXIT_ENVIRONMENT


class ConfigError(UsageError):
    """platform.yaml is invalid. Carries every problem found, already formatted as
    `file:LINE:COL: dotted.path: message`."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        count = len(problems)
        summary = f"{count} problem{'s' if count != 1 else ''} in platform configuration"
        super().__init__(summary, hint)
        self.problems = problems
