"""The runtime's HTTP app on aiohttp's low-level server (no framework).

Routes: `POST /aivault/proxy` (envelope), `ANY /v/{credential}/{path}`
(passthrough, streamed), `GET /healthz`, `GET /status`, `GET /metrics`.
Each request takes the active policy once and keeps it to the end, so a
reload never changes a request in flight. An invoke passes each stage once,
in the order of `Runtime._decide` (docs/architecture.md names the module of
each); it is audited exactly once, by `Runtime.invoke`. Errors are JSON
`{"error", "message"}`, never a traceback or a secret.
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
    AUDIT_UNAVAILABLE_CODE,
    CLIENT_CLOSED,
    INTERNAL_ERROR,
    NO_CAPABILITY,
    UNKNOWN_CAPABILITY,
    Ending,
    Invocation,
    RateLimited,
    audit_unavailable,
)
from aivault_ops.runtime.http.request_io import (
    JSON_TYPE,
    json_response,
    method_not_allowed,
    read_body,
    take_token,
)
from aivault_ops.runtime.model import HttpError, InboundRequest, PreparedCall, Refusal
from aivault_ops.runtime.observe.audit import AuditEntry, AuditLog, AuditUnavailable
from aivault_ops.runtime.observe.metrics import CONTENT_TYPE, Metrics
from aivault_ops.runtime.observe.status import DEGRADED, readiness, status_document
from aivault_ops.runtime.policy.active import ActivePolicy
from aivault_ops.runtime.policy.authorized import Authorized
from aivault_ops.runtime.policy.concurrency import ConcurrencyGate
from aivault_ops.runtime.policy.rate_limit import InMemoryRateLimitStore, RateLimiter
from aivault_ops.runtime.response.body import (
    declared_length,
    redacted_stream,
    should_buffer,
    too_large,
    whole_body,
)
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
        rate_limits: RateLimiter | None = None,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    ) -> None:
        self.state = state
        self.upstream = upstream
        self.audit = audit
        self.metrics = metrics
        self.clock = clock
        self.log = log
        self.max_body_bytes = max_body_bytes
        self.rate_limits: RateLimiter = rate_limits or InMemoryRateLimitStore()
        self.body_timeout_s = body_timeout_s
        self.concurrency = ConcurrencyGate()
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
                200,
                status_document(
                    self.state.record,
                    self.clock(),
                    self.audit.health(),
                    self.state.components.snapshot(),
                ),
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
        asked = _invocation(request.method, path, passthrough=passthrough)
        answered: tuple[web.StreamResponse, Ending] | None = None
        try:
            answered = await self._decide(request, asked, passthrough=passthrough)
        except Exception as error:
            self.log("internal_error", error=type(error).__name__)
            answered = self._refusal(INTERNAL_ERROR)
        finally:
            self._in_flight -= 1
            if answered is None:  # cancelled (shutdown): audit now, without waiting
                with contextlib.suppress(AuditUnavailable):
                    self.audit.write(self._entry(asked, Ending(499, asked.sent, CLIENT_CLOSED)))
        return await self._audited(asked, *answered)

    async def _decide(
        self, request: web.BaseRequest, asked: Invocation, *, passthrough: bool
    ) -> tuple[web.StreamResponse, Ending]:
        """The request's stages in order, each result noted in `asked` for the audit line:
        policy, authenticate, authorize (once), read, prepare, concurrency, rate
        limit, audit readiness, send; then the answer, whole or streamed (the
        capability's `maxConcurrent` place is held until it is passed on)."""
        try:
            policy = self.current_policy()
            asked.serial = policy.serial
            token, headers = take_token(request.headers.items())
            asked.consumer = consumer = policy.authenticate(token)
            if passthrough:
                authorized = policy.authorize_passthrough(
                    consumer, str(asked.credential), request.method, asked.path
                )
                asked.capability = authorized.capability.name
                inbound = await self._read_passthrough(request, authorized, asked.path, headers)
            else:
                body = await read_body(request, self.max_body_bytes, self.body_timeout_s)
                capability, inbound = parse_envelope(body)
                asked.capability = capability
                asked.method, asked.path = inbound.method, inbound.raw_path
                authorized = policy.authorize(consumer, capability)
            call = policy.prepare(authorized, inbound)
            asked.credential = call.credential
            place = self.concurrency.enter(call.capability, call.max_concurrent)
        except HttpError as error:  # a refusal
            return self._refusal(error)
        with place:
            try:
                await self.check_rate(call)
                self.ensure_audit_ready()
                call, response, length = await self._open(call)
            except HttpError as error:  # a refusal, an upstream failure, a store unavailable
                return self._refusal(error)
            if not passthrough or should_buffer(call, response, length, BUFFER_BELOW):
                return await self._whole(call, response, length, envelope=not passthrough)
            return await self._stream(request, call, response, asked)

    def ensure_audit_ready(self) -> None:
        """503 unless the audit log can take this request's line.

        Prevents an upstream call without its audit record: checked after every
        policy check and before anything (token endpoint included) is sent.
        """
        try:
            self.audit.ensure_ready()
        except AuditUnavailable as error:
            self.log("audit_unavailable", detail=str(error))
            raise audit_unavailable() from None

    async def _read_passthrough(
        self,
        request: web.BaseRequest,
        authorized: Authorized,
        path: str,
        headers: tuple[tuple[str, str], ...],
    ) -> InboundRequest:
        """The passthrough request at `path` (as authorized): its query, and its body,
        read no further than the capability's `maxRequestBodyBytes`."""
        query = tuple(parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True))
        limit = authorized.capability.max_request_body_bytes
        limit = self.max_body_bytes if limit is None else min(limit, self.max_body_bytes)
        body = await read_body(request, limit, self.body_timeout_s)
        return InboundRequest(request.method, path, query, headers, body)

    async def check_rate(self, call: PreparedCall) -> None:
        """Take a token from the caller's bucket for this capability; 429 when empty.

        Prevents one consumer from running up an upstream bill or quota: the
        capability's `rateLimitPerMinute`, per consumer, checked before
        anything is sent upstream.
        """
        limit = call.rate_limit_per_minute
        if limit is None:
            return
        key = (call.consumer, call.capability)
        verdict = await self.rate_limits.check_async(key, limit, time.time())
        if not verdict.allowed:
            raise RateLimited(limit, call.capability, verdict.retry_after_header())

    async def _open(self, call: PreparedCall) -> tuple[PreparedCall, UpstreamResponse, int | None]:
        """Sign and send (one retry after a 401 if the credential asks): the call as sent,
        the response and its declared length (parsed once, here)."""
        started = time.perf_counter()
        call, response = await send_authorized(self.upstream, call, self.clock)
        self.metrics.upstream_latency(time.perf_counter() - started)
        limit = call.max_response_body_bytes
        length = declared_length(response)
        if limit is not None and length is not None and length > limit:
            await response.aclose()
            raise too_large(limit)
        return call, response, length

    async def _stream(
        self,
        request: web.BaseRequest,
        call: PreparedCall,
        response: UpstreamResponse,
        asked: Invocation,
    ) -> tuple[web.StreamResponse, Ending]:
        """Pass the body on as it arrives (decoded, redacted); bytes written so far are
        counted in `asked.sent`. A failure once the head is gone cuts the stream."""
        try:
            body = redacted_stream(response, call, held_whole=False)
        except UpstreamFailure as failure:
            await response.aclose()
            return self._refusal(failure)
        out = web.StreamResponse(status=response.status_code)
        for name, value in call.response_headers(response.headers.multi_items()):
            out.headers.add(name, value)
        error: HttpError | None = None
        try:
            await out.prepare(request)
            async for chunk in body:
                await out.write(chunk)
                asked.sent += len(chunk)
            await out.write_eof()
        except UpstreamFailure as failure:
            error = failure
        except ConnectionResetError:
            error = CLIENT_CLOSED
        except OSError as failure:
            error = classify_error(failure)
        except Exception as unexpected:  # the head is gone: end the stream, never a 2nd answer
            self.log("internal_error", error=type(unexpected).__name__)
            error = INTERNAL_ERROR
        finally:
            await response.aclose()
        if error is not None and request.transport is not None:
            request.transport.close()
        return out, Ending(response.status_code, asked.sent, error)

    async def _whole(
        self,
        call: PreparedCall,
        response: UpstreamResponse,
        length: int | None,
        *,
        envelope: bool,
    ) -> tuple[web.StreamResponse, Ending]:
        """Read the body whole (filtered, redacted) and answer in one write: as it came
        (a small passthrough body) or wrapped in the JSON envelope."""
        try:
            body = await whole_body(response, call, length)
        except UpstreamFailure as failure:
            return self._refusal(failure)
        headers = call.response_headers(response.headers.multi_items())
        ending = Ending(response.status_code, len(body))
        if envelope:
            payload = envelope_response(response.status_code, headers, body)
            return web.Response(body=payload, content_type=JSON_TYPE), ending
        out = web.Response(status=response.status_code, body=body)
        for name, value in headers:
            out.headers.add(name, value)
        return out, ending

    def _refusal(self, error: HttpError) -> tuple[web.Response, Ending]:
        response = json_response(error.status, error.to_json())
        retry_after: str | None = getattr(error, "retry_after", None)
        if retry_after is not None:  # RateLimited, ConcurrencyLimited, UpstreamBusy
            response.headers["Retry-After"] = retry_after
        if error.status == 408:  # the rest of the body may still be on its way
            response.force_close()
        return response, Ending(error.status, 0, error)

    async def _audited(
        self, asked: Invocation, answer: web.StreamResponse, ending: Ending
    ) -> web.StreamResponse:
        """Count and audit the request. The line is written before a whole answer
        leaves (with other requests in flight it joins their batch: one write per
        loop turn); if it cannot be written, a whole answer becomes a 503."""
        self.metrics.request(self._metric_label(asked.capability), ending.decision)
        entry = self._entry(asked, ending)
        try:
            if self._in_flight > 0:
                await self.audit.write_soon(entry)
            else:
                self.audit.write(entry)
        except AuditUnavailable as error:
            refused = ending.error is not None and ending.error.code == AUDIT_UNAVAILABLE_CODE
            if not refused:  # that refusal was logged already
                self.log("audit_unavailable", detail=str(error))
            if not answer.prepared:
                unavailable = audit_unavailable()
                return json_response(unavailable.status, unavailable.to_json())
        return answer

    def _metric_label(self, capability: str | None) -> str:
        """The capability as a metric label: only names of the active policy, so a
        caller cannot make up label values (unbounded series)."""
        if capability is None:
            return NO_CAPABILITY
        policy = self.state.record.policy
        known = policy is not None and policy.knows_capability(capability)
        return capability if known else UNKNOWN_CAPABILITY

    def _entry(self, asked: Invocation, ending: Ending) -> AuditEntry:
        error = ending.error
        return self.audit.entry(
            consumer=asked.consumer,
            capability=asked.capability,
            credential=asked.credential,
            method=asked.method,
            path=asked.path,
            decision=ending.decision,
            error=error.code if error is not None else None,
            status=ending.status,
            bytes_out=ending.sent,
            duration_ms=round((time.perf_counter() - asked.started) * 1000, 3),
            serial=asked.serial,
        )


def _invocation(method: str, path: str, *, passthrough: bool) -> Invocation:
    """What is known before any stage: the method, the route's path and, in
    passthrough, the credential the path names."""
    started = time.perf_counter()
    if not passthrough:
        return Invocation(method, path, started)
    credential, _, rest = path[len(PASSTHROUGH_PREFIX) :].partition("/")
    return Invocation(method, "/" + rest, started, credential)
