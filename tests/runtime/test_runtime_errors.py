"""One error hierarchy: every runtime error carries its status, code and audit verdict."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import aivault_ops.runtime
from aivault_ops.errors import AivaultError, CodedError
from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.runtime.auth.oauth2.flow import OAuth2Error
from aivault_ops.runtime.errors import (
    ConcurrencyLimited,
    Failure,
    HttpError,
    Refusal,
    UpstreamBusy,
    UpstreamFailure,
    UpstreamForbidden,
)
from aivault_ops.runtime.http.client import RuntimeRefused
from aivault_ops.runtime.http.outcomes import (
    CLIENT_CLOSED,
    INTERNAL_ERROR,
    Ending,
    RateLimited,
    audit_unavailable,
)
from aivault_ops.runtime.response.blocklist import ResponseRefused
from aivault_ops.runtime.upstream.client import AddressRefused, classify_error


def every_subclass(root: type[HttpError]) -> set[type[HttpError]]:
    for module in pkgutil.walk_packages(aivault_ops.runtime.__path__, "aivault_ops.runtime."):
        importlib.import_module(module.name)
    found: set[type[HttpError]] = set()
    pending = [root]
    while pending:
        for child in pending.pop().__subclasses__():
            found.add(child)
            pending.append(child)
    return found


def test_every_runtime_error_has_a_verdict_and_is_under_the_root() -> None:
    classes = every_subclass(HttpError)
    assert {Refusal, Failure, UpstreamFailure, OAuth2Error, AuthUnavailable} <= classes
    for cls in classes:
        assert cls.verdict in ("deny", "error"), cls
        assert issubclass(cls, CodedError) and issubclass(cls, AivaultError)


@pytest.mark.parametrize(
    ("error", "status", "code", "expected"),
    [
        (Refusal(403, "E-FORBIDDEN", "m"), 403, "E-FORBIDDEN", "deny"),
        (RateLimited(2, "a/b", "30"), 429, "E-RATE-LIMITED", "deny"),
        (AuthUnavailable("m"), 503, "E-CREDENTIAL-UNAVAILABLE", "deny"),
        (AuthUnavailable("m", status=501, code="E-AUTH-UNSUPPORTED"), 501, "E-AUTH-UNSUPPORTED",
         "deny"),
        (UpstreamForbidden("m"), 403, "E-UPSTREAM-FORBIDDEN", "deny"),
        (UpstreamFailure(502, "E-UPSTREAM-RESET", "m"), 502, "E-UPSTREAM-RESET", "error"),
        (OAuth2Error("credential 'c': the token endpoint is unreachable"), 502, "E-OAUTH2-TOKEN",
         "error"),
        (ResponseRefused("E-RESPONSE-NOT-JSON", "m"), 502, "E-RESPONSE-NOT-JSON", "error"),
        (INTERNAL_ERROR, 500, "E-INTERNAL", "error"),
        (CLIENT_CLOSED, 499, "E-CLIENT-CLOSED", "error"),
        (audit_unavailable(), 503, "E-AUDIT-UNAVAILABLE", "error"),
        (ConcurrencyLimited(4, "a/b"), 503, "E-CONCURRENCY-LIMIT", "deny"),
        (UpstreamBusy("m"), 503, "E-UPSTREAM-BUSY", "error"),
    ],
)  # fmt: skip
def test_status_code_and_verdict_are_carried_explicitly(
    error: HttpError, status: int, code: str, expected: str
) -> None:
    assert (error.status, error.code, error.verdict) == (status, code, expected)
    assert Ending(error.status, 0, error).decision == expected
    assert error.to_json() == {"error": code, "message": error.message}
    assert error.diagnostics() == f"{code}: {error.message}"


def test_an_upstream_answer_is_allowed() -> None:
    assert Ending(200, 17).decision == "allow"


def test_a_forbidden_upstream_address_is_a_denial_every_other_transport_error_a_failure() -> None:
    forbidden = classify_error(AddressRefused("loopback"))
    assert (type(forbidden), forbidden.code, forbidden.verdict) == (
        UpstreamForbidden,
        "E-UPSTREAM-FORBIDDEN",
        "deny",
    )
    reset = classify_error(ConnectionResetError())
    assert (reset.code, reset.verdict) == ("E-UPSTREAM-RESET", "error")


def test_the_cli_client_renders_a_runtime_error_as_code_and_message() -> None:
    refused = RuntimeRefused(403, "E-FORBIDDEN", "consumer 'x' is not granted capability 'y'")
    assert isinstance(refused, CodedError)
    assert refused.diagnostics() == "E-FORBIDDEN: consumer 'x' is not granted capability 'y'"
