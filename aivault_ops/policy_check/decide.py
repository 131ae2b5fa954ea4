"""One request, decided by the runtime's own code: allow, or the refusal it would answer.

`OfflinePolicy.decide` runs exactly the stages `Runtime._decide` runs before
anything is sent: for a named capability the envelope is written and parsed
by the runtime's parser, then `authorize`; for a credential and a path
(passthrough) `authorize_passthrough`, which picks the capability (longest
prefix, then name); then `prepare`, every request rule. The consumer is
taken as authenticated (its token is never needed). Rate limits, the audit
log and the upstream are not policy: an allowed request may still meet
them at run time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

from aivault_ops.policy_check.stand_in import decision_policy
from aivault_ops.policy_document import PolicyDocument
from aivault_ops.runtime.errors import HttpError
from aivault_ops.runtime.http.envelope import parse_envelope
from aivault_ops.runtime.model import InboundRequest, PreparedCall
from aivault_ops.runtime.policy.active import ActivePolicy
from aivault_ops.runtime.policy.authorized import Authorized
from aivault_ops.runtime.policy.checks.path import parse_path

Verdict = Literal["allow", "deny"]
NAMED = "named by the caller"
LONGEST_PREFIX = "longest matching prefix among the credential's granted capabilities"


@dataclass(frozen=True)
class Ask:
    """A request to decide: `capability` (envelope) or `credential` (passthrough)."""

    consumer: str
    method: str
    path: str  # may carry ?query
    capability: str | None = None
    credential: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """`GET /v1/x on cap` or `GET /v1/x via credential cred`."""
        on = f"on {self.capability}" if self.capability else f"via credential {self.credential}"
        return f"{self.method} {self.path} {on}"


@dataclass(frozen=True)
class Decision:
    """The verdict and what decided it (names only, never a value)."""

    verdict: Verdict
    status: int
    code: str | None = None
    message: str | None = None
    capability: str | None = None
    picked: str | None = None
    prefix: str | None = None
    credential: str | None = None
    host: str | None = None
    injected_headers: tuple[str, ...] = ()
    injected_query: tuple[str, ...] = ()
    injects_path_prefix: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"

    def summary(self) -> str:
        """`allow` or `deny (E-CODE: message)`."""
        return "allow" if self.allowed else f"deny ({self.code}: {self.message})"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"decision": self.verdict, "status": self.status}
        if not self.allowed:
            data.update(error=self.code, message=self.message)
        for key, value in (
            ("capability", self.capability),
            ("capabilityPickedBy", self.picked),
            ("prefix", self.prefix),
            ("credential", self.credential),
            ("host", self.host),
        ):
            if value is not None:
                data[key] = value
        if self.allowed:
            data["injectedHeaderNames"] = list(self.injected_headers)
            data["injectedQueryNames"] = list(self.injected_query)
            data["injectsPathPrefix"] = self.injects_path_prefix
        return data


def split_path(path: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(`/v1/x`, decoded query pairs) from `/v1/x?y=z`, as the server splits them."""
    raw, _, query = path.partition("?")
    return raw, tuple(parse_qsl(query, keep_blank_values=True))


def envelope_bytes(ask: Ask) -> bytes:
    """The `POST /aivault/proxy` body a caller would send for `ask`."""
    raw, query = split_path(ask.path)
    grouped: dict[str, list[str]] = {}
    for name, value in query:
        grouped.setdefault(name, []).append(value)
    request: dict[str, Any] = {"method": ask.method, "path": raw}
    if grouped:
        request["query"] = grouped
    if ask.headers:
        request["headers"] = dict(ask.headers)
    return json.dumps({"capability": ask.capability, "request": request}).encode()


def _matched_prefix(authorized: Authorized, call: PreparedCall, raw_path: str) -> str | None:
    decoded = (authorized.path or parse_path(raw_path)).decoded
    matching = [p for p in authorized.capability.prefixes if p.matches(decoded)]
    return max(matching, key=lambda p: p.length).text if matching else None


class OfflinePolicy:
    """A compiled policy ready to decide requests, with the names it knows."""

    def __init__(self, document: PolicyDocument) -> None:
        self.document = document
        self.active: ActivePolicy = decision_policy(document)

    def consumer_for_digest(self, token_sha256: str) -> str | None:
        """The consumer whose token has this sha256 (hex), if any."""
        wanted = token_sha256.strip().lower()
        for name, spec in sorted(self.document.consumers.items()):
            if spec.token_sha256 == wanted:
                return name
        return None

    def names(self, what: str) -> Iterable[str]:
        """Known `consumers`, `capabilities` or `credentials`."""
        section: dict[str, Any] = dict(getattr(self.document, what))
        return sorted(section)

    def decide(self, ask: Ask) -> Decision:
        """What the runtime answers `ask` (before rate limits and the upstream)."""
        authorized: Authorized | None = None
        if ask.consumer not in self.document.consumers:
            return Decision("deny", 401, "E-UNAUTHENTICATED", f"no consumer named {ask.consumer!r}")
        try:
            if ask.capability is not None:
                capability, inbound = parse_envelope(envelope_bytes(ask))
                authorized = self.active.authorize(ask.consumer, capability)
            else:
                raw, query = split_path(ask.path)
                authorized = self.active.authorize_passthrough(
                    ask.consumer, str(ask.credential), ask.method, raw
                )
                inbound = InboundRequest(ask.method, raw, query, ask.headers, b"")
            call = self.active.prepare(authorized, inbound)
        except HttpError as refusal:
            return self._refused(ask, refusal, authorized)
        injection = authorized.credential.require()
        return Decision(
            verdict="allow",
            status=200,
            capability=call.capability,
            picked=NAMED if ask.capability is not None else LONGEST_PREFIX,
            prefix=_matched_prefix(authorized, call, inbound.raw_path),
            credential=call.credential,
            host=call.upstream.host,
            injected_headers=tuple(sorted(injection.header_names())),
            injected_query=tuple(sorted(injection.query_names())),
            injects_path_prefix=bool(authorized.credential.path_prefix),
        )

    def _refused(self, ask: Ask, refusal: HttpError, authorized: Authorized | None) -> Decision:
        capability = authorized.capability if authorized else None
        return Decision(
            verdict="deny",
            status=refusal.status,
            code=refusal.code,
            message=refusal.message,
            capability=capability.name if capability else None,
            picked=None if capability is None else (NAMED if ask.capability else LONGEST_PREFIX),
            credential=capability.credential if capability else ask.credential,
            host=capability.host if capability else None,
        )
