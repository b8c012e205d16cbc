"""Typed errors raised by the library. The CLI turns them into one line on stderr and an exit code.

Exit codes (documented in README and ``callqa --help``):
0 everything processed; 3 finished but some files failed; 2 usage or configuration error caught
before any work; 1 unexpected error.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_SOME_FAILED = 3


class CallQAError(Exception):
    """Base class of every error callqa raises on purpose."""

    exit_code = EXIT_UNEXPECTED


class UsageError(CallQAError):
    """Bad options, paths or configuration, found before any work is done."""

    exit_code = EXIT_USAGE


class ManifestError(UsageError):
    """The --manifest CSV is missing, unreadable or lacks required columns."""


class LocatedError(UsageError):
    """An input file failed validation; ``problems`` holds one ``FILE:LINE: path: message`` line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class RubricError(LocatedError):
    """A rubric failed validation."""


class ConfigError(LocatedError):
    """The --config file failed validation."""


class ModelError(UsageError):
    """The ASR model could not be loaded (missing folder, or a download needed offline)."""


class DatabaseError(UsageError):
    """The DuckDB file cannot be opened, is locked by another writer, or has an unknown schema."""


class ReadOnlyError(UsageError):
    """A statement given to ``callqa sql`` would modify the database."""


class QueryTimeout(UsageError):
    """A ``callqa sql`` query ran past ``--timeout`` and was stopped."""


class NotFoundError(UsageError):
    """A call, agent or rubric asked for does not exist in the database."""


class AudioError(CallQAError):
    """One recording cannot be decoded; the batch records it as failed and goes on."""


class TranscriptionError(CallQAError):
    """The ASR raised on one recording; the batch records it as failed and goes on."""
