"""The runtime's HTTP app on aiohttp's low-level server (no framework).

Routes: `POST /aivault/proxy` (envelope), `ANY /v/{credential}/{path}`
(passthrough, streamed), `GET /healthz`, `GET /status`, `GET /metrics`.
Each request takes the active policy once and keeps it to the end, so a
reload never changes a request in flight. Every invoke decision is audited;
errors are JSON `{"error", "message"}`, never a traceback or a secret.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Final
from urllib.parse import parse_qsl

from aiohttp import web

from aivault_ops.runtime.auth.request_auth import send_authorized
from aivault_ops.runtime.bundles.state import RuntimeState
from aivault_ops.runtime.http.connections import DEFAULT_BODY_TIMEOUT_S
from aivault_ops.runtime.http.envelope import envelope_response, parse_envelope
from aivault_ops.runtime.http.outcomes import (
    AUDIT_UNAVAILABLE,
    CLIENT_CLOSED,
    INTERNAL_ERROR,
    NO_CAPABILITY,
    UNKNOWN_CAPABILITY,
    Decision,
    RateLimited,
    verdict,
)
from aivault_ops.runtime.http.request_io import (
    JSON_TYPE,
    json_response,
    method_not_allowed,
    read_body,
    strip_hop_by_hop,
    take_token,
)
from aivault_ops.runtime.model import HttpError, InboundRequest, PreparedCall, Refusal
from aivault_ops.runtime.observe.audit import AuditEntry, AuditLog, AuditUnavailable
from aivault_ops.runtime.observe.metrics import CONTENT_TYPE, Metrics
from aivault_ops.runtime.observe.status import DEGRADED, readiness, status_document
from aivault_ops.runtime.policy.active import ActivePolicy
from aivault_ops.runtime.policy.rate_limit import InMemoryRateLimitStore, RateLimitStore
from aivault_ops.runtime.response.body import redacted_stream, should_buffer, too_large, whole_body
from aivault_ops.runtime.upstream.client import (
    UpstreamClient,
    UpstreamFailure,
    UpstreamResponse,
    classify_error,
)

Log = Callable[..., None]
DEFAULT_MAX_BODY: Final = 16 * 1024 * 1024
PASSTHROUGH_PREFIX: Final = "/v/"
BUFFER_BELOW: Final = 64 * 1024


class Runtime:
    """The request handler; all I/O objects are injected."""

    def __init__(
        self,
        *,
        state: RuntimeState,
        upstream: UpstreamClient,
        audit: AuditLog,
        metrics: Metrics,
        clock: Callable[[], datetime],
        log: Log,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        rate_limits: RateLimitStore | None = None,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    ) -> None:
        self.state = state
        self.upstream = upstream
        self.audit = audit
        self.metrics = metrics
        self.clock = clock
        self.log = log
        self.max_body_bytes = max_body_bytes
        self.rate_limits = rate_limits or InMemoryRateLimitStore()
        self.body_timeout_s = body_timeout_s
        self._in_flight = 0

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Route one request; unexpected errors become a bare 500 (type name logged only)."""
        path = request.raw_path.partition("?")[0]
        try:
            if path.startswith(PASSTHROUGH_PREFIX):
                return await self.invoke(request, path, passthrough=True)
            if path == "/aivault/proxy":
                if request.method != "POST":
                    return method_not_allowed("POST")
                return await self.invoke(request, path, passthrough=False)
            return self.admin(request, path)
        except Exception as error:
            self.log("internal_error", error=type(error).__name__)
            return json_response(500, INTERNAL_ERROR.to_json())

    def admin(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        """`/healthz`, `/status`, `/metrics`."""
        routes: dict[str, Callable[[], web.StreamResponse]] = {
            "/healthz": lambda: json_response(200, {"ok": True}),
            "/status": lambda: json_response(
                200, status_document(self.state.record, self.clock(), self.audit.health())
            ),
            "/metrics": self._metrics,
        }
        if path not in routes:
            return json_response(404, {"error": "E-NOT-FOUND", "message": "no such route"})
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed("GET")
        return routes[path]()

    def _metrics(self) -> web.StreamResponse:
        policy = self.state.record.policy
        text = self.metrics.render(policy.serial if policy else None, self.audit.health())
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    def current_policy(self) -> ActivePolicy:
        """The active policy, or a 503 refusal: none loaded, or expired (fail closed)."""
        record = self.state.record
        if record.policy is None:
            raise Refusal(503, "E-NO-POLICY", "no valid policy bundle is loaded")
        if readiness(record, self.clock()) == DEGRADED:
            raise Refusal(503, "E-POLICY-EXPIRED", "the active policy bundle has expired")
        return record.policy

    async def invoke(
        self, request: web.BaseRequest, path: str, *, passthrough: bool
    ) -> web.StreamResponse:
        """Check, send and answer one invoke; exactly one audit record whatever happens.

        Every way out of `_decide` (an answer, a refusal, an unexpected error,
        a cancellation) passes through the one `finally` that audits it.
        """
        self._in_flight += 1
        decision = Decision(request.method, path, time.perf_counter())
        answer: web.StreamResponse | None = None
        try:
            answer = await self._decide(request, path, decision, passthrough=passthrough)
        except Exception as error:
            self.log("internal_error", error=type(error).__name__)
            answer = self._refusal(decision, INTERNAL_ERROR)
        finally:
            self._in_flight -= 1
            if answer is None:  # cancelled (shutdown): audit now, without waiting
                decision.answered(499, decision.sent, CLIENT_CLOSED)
                with contextlib.suppress(AuditUnavailable):
                    self.audit.write(self._entry(decision))
        return await self._audited(decision, answer)

    async def _decide(
        self, request: web.BaseRequest, path: str, decision: Decision, *, passthrough: bool
    ) -> web.StreamResponse:
        if passthrough:
            credential, _, rest = path[len(PASSTHROUGH_PREFIX) :].partition("/")
            decision.credential, decision.path = credential, "/" + rest
        try:
            policy = self.current_policy()
            decision.serial = policy.serial
            token, headers = take_token(request.headers.items())
            decision.consumer = policy.authenticate(token)
            if passthrough:
                call = await self._prepare_passthrough(request, policy, decision, headers)
            else:
                call = await self._prepare_envelope(request, policy, decision)
            decision.credential = call.credential
            self.check_rate(call)
            self.ensure_audit_ready()
            call, response = await self._open(call)
        except HttpError as error:
            return self._refusal(decision, error)
        if not passthrough or should_buffer(call, response, BUFFER_BELOW):
            return await self._whole(call, response, decision, envelope=not passthrough)
        return await self._stream(request, call, response, decision)

    def ensure_audit_ready(self) -> None:
        """503 unless the audit log can take this request's line.

        Prevents an upstream call without its audit record: checked after every
        policy check and before anything (token endpoint included) is sent.
        """
        try:
            self.audit.ensure_ready()
        except AuditUnavailable as error:
            self.log("audit_unavailable", detail=str(error))
            raise AUDIT_UNAVAILABLE from None

    async def _prepare_passthrough(
        self,
        request: web.BaseRequest,
        policy: ActivePolicy,
        decision: Decision,
        headers: tuple[tuple[str, str], ...],
    ) -> PreparedCall:
        credential, upstream_path = str(decision.credential), decision.path
        consumer = _known(decision.consumer)
        capability = policy.capability_for_passthrough(
            credential, request.method, upstream_path, consumer=consumer
        )
        decision.capability = capability
        policy.authorize(consumer, capability)
        query = tuple(parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True))
        body = await read_body(request, self._body_limit(policy, capability), self.body_timeout_s)
        inbound = InboundRequest(
            request.method, upstream_path, query, strip_hop_by_hop(headers), body
        )
        return policy.prepare(consumer, capability, inbound, passthrough=True)

    async def _prepare_envelope(
        self, request: web.BaseRequest, policy: ActivePolicy, decision: Decision
    ) -> PreparedCall:
        body = await read_body(request, self.max_body_bytes, self.body_timeout_s)
        capability, inbound = parse_envelope(body)
        decision.capability = capability
        decision.method, decision.path = inbound.method, inbound.raw_path.partition("?")[0]
        policy.authorize(_known(decision.consumer), capability)
        return policy.prepare(_known(decision.consumer), capability, inbound, passthrough=False)

    def check_rate(self, call: PreparedCall) -> None:
        """Take a token from the caller's bucket for this capability; 429 when empty.

        Prevents one consumer from running up an upstream bill or quota: the
        capability's `rateLimitPerMinute`, per consumer, checked before
        anything is sent upstream.
        """
        limit = call.rate_limit_per_minute
        if limit is None:
            return
        verdict = self.rate_limits.check((call.consumer, call.capability), limit, time.time())
        if not verdict.allowed:
            raise RateLimited(limit, call.capability, verdict.retry_after_header())

    def _body_limit(self, policy: ActivePolicy, capability: str) -> int:
        """Read no more of a caller's body than the capability's `maxRequestBodyBytes`."""
        limit = policy.max_request_body_bytes(capability)
        return self.max_body_bytes if limit is None else min(limit, self.max_body_bytes)

    async def _open(self, call: PreparedCall) -> tuple[PreparedCall, UpstreamResponse]:
        """Sign and send (one retry after a 401 if the credential asks); the call as sent."""
        started = time.perf_counter()
        call, response = await send_authorized(self.upstream, call, self.clock)
        self.metrics.upstream_latency(time.perf_counter() - started)
        limit = call.max_response_body_bytes
        length = response.headers.get("content-length", "")
        if limit is not None and length.isdigit() and int(length) > limit:
            await response.aclose()
            raise too_large(limit)
        return call, response

    async def _stream(
        self,
        request: web.BaseRequest,
        call: PreparedCall,
        response: UpstreamResponse,
        decision: Decision,
    ) -> web.StreamResponse:
        try:
            body = redacted_stream(response, call, held_whole=False)
        except UpstreamFailure as failure:
            await response.aclose()
            return self._refusal(decision, failure)
        out = web.StreamResponse(status=response.status_code)
        for name, value in call.response_headers(response.headers.multi_items()):
            out.headers.add(name, value)
        decision.answered(response.status_code, 0)
        try:
            await out.prepare(request)
            async for chunk in body:
                await out.write(chunk)
                decision.sent += len(chunk)
            await out.write_eof()
        except UpstreamFailure as failure:
            decision.error = failure
        except ConnectionResetError:
            decision.error = CLIENT_CLOSED
        except OSError as failure:
            decision.error = classify_error(failure)
        except Exception as error:  # the head is gone: end the stream, never a 2nd answer
            self.log("internal_error", error=type(error).__name__)
            decision.error = INTERNAL_ERROR
        finally:
            await response.aclose()
        if decision.error is not None and request.transport is not None:
            request.transport.close()
        return out

    async def _whole(
        self, call: PreparedCall, response: UpstreamResponse, decision: Decision, *, envelope: bool
    ) -> web.StreamResponse:
        """Read the body whole (filtered, redacted) and answer in one write: as it came
        (a small passthrough body) or wrapped in the JSON envelope."""
        try:
            body = await whole_body(response, call)
        except UpstreamFailure as failure:
            return self._refusal(decision, failure)
        headers = call.response_headers(response.headers.multi_items())
        decision.answered(response.status_code, len(body))
        if envelope:
            payload = envelope_response(response.status_code, headers, body)
            return web.Response(body=payload, content_type=JSON_TYPE)
        out = web.Response(status=response.status_code, body=body)
        for name, value in headers:
            out.headers.add(name, value)
        return out

    def _refusal(self, decision: Decision, error: HttpError) -> web.Response:
        decision.answered(error.status, 0, error)
        response = json_response(error.status, error.to_json())
        if isinstance(error, RateLimited):
            response.headers["Retry-After"] = error.retry_after
        if error.status == 408:  # the rest of the body may still be on its way
            response.force_close()
        return response

    async def _audited(self, decision: Decision, answer: web.StreamResponse) -> web.StreamResponse:
        """Count and audit the decision. The line is written before a whole answer
        leaves (with other requests in flight it joins their batch: one write per
        loop turn); if it cannot be written, a whole answer becomes a 503."""
        self.metrics.request(self._metric_label(decision.capability), verdict(decision.error))
        entry = self._entry(decision)
        try:
            if self._in_flight > 0:
                await self.audit.write_soon(entry)
            else:
                self.audit.write(entry)
        except AuditUnavailable as error:
            if decision.error is not AUDIT_UNAVAILABLE:  # that refusal was logged already
                self.log("audit_unavailable", detail=str(error))
            if not answer.prepared:
                return json_response(AUDIT_UNAVAILABLE.status, AUDIT_UNAVAILABLE.to_json())
        return answer

    def _metric_label(self, capability: str | None) -> str:
        """The capability as a metric label: only names of the active policy, so a
        caller cannot make up label values (unbounded series)."""
        if capability is None:
            return NO_CAPABILITY
        policy = self.state.record.policy
        known = policy is not None and policy.knows_capability(capability)
        return capability if known else UNKNOWN_CAPABILITY

    def _entry(self, decision: Decision) -> AuditEntry:
        error = decision.error
        return self.audit.entry(
            consumer=decision.consumer,
            capability=decision.capability,
            credential=decision.credential,
            method=decision.method,
            path=decision.path,
            decision=verdict(error),
            error=error.code if error is not None else None,
            status=decision.status,
            bytes_out=decision.sent,
            duration_ms=round((time.perf_counter() - decision.started) * 1000, 3),
            serial=decision.serial,
        )


def _known(consumer: str | None) -> str:
    if consumer is None:
        raise Refusal(401, "E-UNAUTHENTICATED", "no consumer token")
    return consumer
