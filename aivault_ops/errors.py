"""The one root exception and its family.

Every error a user can cause is an `AivaultError`; `main` renders its
`diagnostics()` and exits 1 (or 2 for `UsageError`). Messages never contain
secret values: callers pass names and paths, never plaintext.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aivault_ops.diagnostics import Report


class AivaultError(Exception):
    """An expected failure with a message meant for the user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """What failed, where, and (when known) what to do about it."""
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(AivaultError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


class ValidationFailed(AivaultError):
    """A policy repo has errors; `report` holds every diagnostic."""

    def __init__(self, message: str, *, report: Report) -> None:
        super().__init__(message)
        self.report = report
