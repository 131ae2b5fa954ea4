"""The one root exception and its family.

Every error a user can cause is an `AivaultError`; `main` renders its
`diagnostics()` and exits 1 (or 2 for `UsageError`). A `CodedError` also
carries a stable code, the one way a code is carried: the bundle library's
errors and the runtime's (`runtime/errors.py`, which add an HTTP status and
an audit verdict). Messages never contain secret values: callers pass names
and paths, never plaintext.
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


class CodedError(AivaultError):
    """An expected failure with a stable, documented error code users can search for.

    The code is a class attribute where one class means one code (the bundle
    library's errors), or set per instance (the runtime's HTTP errors).
    `diagnostics()` renders `E-CODE: message`.
    """

    code: str = "E-UNKNOWN"

    def diagnostics(self) -> str:
        """`E-CODE: message`, plus the hint when there is one."""
        return f"{self.code}: {super().diagnostics()}"


class UsageError(AivaultError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


class ValidationFailed(AivaultError):
    """A policy repo has errors; `report` holds every diagnostic."""

    def __init__(self, message: str, *, report: Report) -> None:
        super().__init__(message)
        self.report = report
