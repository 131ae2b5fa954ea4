"""One loaded bundle, compiled for the request path.

`ActivePolicy.build` runs once per verified bundle: it parses the policy,
renders every auth template, precomputes injected values, header rules and
redaction patterns, and resolves consumer grants. The object is immutable
afterwards, so the process side can swap policies atomically while
in-flight requests finish on the one they started with. Per request it
authenticates the consumer, authorizes it once (`Authorized`) and prepares
the upstream request: dictionary lookups, the §9 checks and tuple
concatenation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from aivault_ops.errors import AivaultError
from aivault_ops.policy_document import PolicyDocument
from aivault_ops.runtime.auth.base import AuthServices
from aivault_ops.runtime.auth.credential import (
    CredentialRuntime,
    build_credential,
    needed,
)
from aivault_ops.runtime.model import InboundRequest, PreparedCall, Refusal, UpstreamRequest
from aivault_ops.runtime.policy.authorized import Authorized
from aivault_ops.runtime.policy.capability import Capability, parse_capabilities
from aivault_ops.runtime.policy.checks.body import check_body_size
from aivault_ops.runtime.policy.checks.method import check_method
from aivault_ops.runtime.policy.checks.method_override import check_body_override
from aivault_ops.runtime.policy.checks.operations import check_operation_headers
from aivault_ops.runtime.policy.checks.path import check_prefix, longest_match, parse_path
from aivault_ops.runtime.policy.consumers import ConsumerIndex
from aivault_ops.runtime.policy.shared_values import ValueTable, fresh_number, fresh_text
from aivault_ops.secret import Secret
from aivault_ops.suggest import did_you_mean

UPSTREAM_PORT = 443
SUGGEST_AMONG_AT_MOST = 2000


def _expires_at(manifest: Mapping[str, Any]) -> datetime | None:
    raw = manifest.get("expiresAt")
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        raise AivaultError("bundle manifest: expiresAt is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise AivaultError("bundle manifest: expiresAt needs a time zone")
    return parsed


def _by_credential(
    credentials: Iterable[str], capabilities: Iterable[Capability]
) -> dict[str, tuple[Capability, ...]]:
    """Each credential's capabilities, in capability order."""
    grouped: dict[str, list[Capability]] = {name: [] for name in credentials}
    for capability in capabilities:
        if capability.credential in grouped:
            grouped[capability.credential].append(capability)
    return {name: tuple(caps) for name, caps in grouped.items()}


class ActivePolicy:
    """An immutable, request-ready policy (one per loaded bundle)."""

    def __init__(
        self,
        *,
        manifest: Mapping[str, Any],
        keyid: str,
        providers: int,
        credentials: Mapping[str, CredentialRuntime],
        capabilities: Mapping[str, Capability],
        consumers: ConsumerIndex,
    ) -> None:
        serial = manifest.get("serial")
        if not isinstance(serial, int) or isinstance(serial, bool):
            raise AivaultError("bundle manifest: serial must be an integer")
        self.serial: int = fresh_number(serial)
        self.revision: str = fresh_text(str(manifest.get("revision", "")))
        environment = manifest.get("environment")
        self.environment: str | None = None if environment is None else fresh_text(str(environment))
        self.expires_at: datetime | None = _expires_at(manifest)
        self.keyid: str = fresh_text(keyid)
        self._providers = providers
        self._credentials = dict(credentials)
        self._capabilities = dict(capabilities)
        self._consumers = consumers
        self._by_credential = _by_credential(self._credentials, self._capabilities.values())

    @staticmethod
    def needed_secrets(policy: PolicyDocument) -> set[tuple[str, str]]:
        """{(bundle file path, secret name)} the runtime must decrypt for this policy.

        Only credentials whose auth strategy this runtime implements are
        counted: secrets of unsupported strategies are never decrypted.
        """
        wanted: set[tuple[str, str]] = set()
        for spec in policy.credentials.values():
            if needed(spec):
                wanted.update((where.file, where.name) for where in spec.secrets.values())
        return wanted

    @classmethod
    def build(
        cls,
        *,
        manifest: Mapping[str, Any],
        policy: PolicyDocument,
        keyid: str,
        secrets: Mapping[tuple[str, str], Secret],
        services: AuthServices | None = None,
    ) -> ActivePolicy:
        """Compile a verified, schema-checked policy; raises `AivaultError` when a
        capability names a credential or a host the policy does not give it.

        A credential whose auth cannot be prepared does not fail the build: it
        is refused per request (see `problems()`). `services` gives the
        per-request strategies (o_auth2, mtls) their I/O. Nothing of `policy`
        is kept: every value is copied through one `ValueTable`.
        """
        table = ValueTable()
        credentials = {
            table.text(name): build_credential(
                table.text(name), spec, table.texts(spec.hosts), secrets, services, table
            )
            for name, spec in sorted(policy.credentials.items())
        }
        capabilities = parse_capabilities(policy.capabilities, credentials, table)
        consumers = ConsumerIndex.build(policy.consumers, capabilities)
        return cls(
            manifest=manifest,
            keyid=keyid,
            providers=len(policy.providers),
            credentials=credentials,
            capabilities=capabilities,
            consumers=consumers,
        )

    def __repr__(self) -> str:
        return f"ActivePolicy(serial={self.serial}, revision={self.revision!r})"

    def is_expired(self, now: datetime) -> bool:
        """Whether the bundle's `expiresAt` has passed (no expiry: never)."""
        return self.expires_at is not None and now >= self.expires_at

    def problems(self) -> list[str]:
        """One line per unavailable credential (names and reasons, never values)."""
        return [
            f"credential {name!r}: {runtime.unavailable.code}: {runtime.unavailable.message}"
            for name, runtime in sorted(self._credentials.items())
            if runtime.unavailable is not None
        ]

    def counts(self) -> dict[str, int]:
        """Numbers of providers, credentials, capabilities and consumers, for /status."""
        return {
            "providers": self._providers,
            "credentials": len(self._credentials),
            "capabilities": len(self._capabilities),
            "consumers": len(self._consumers),
        }

    def knows_capability(self, name: str) -> bool:
        """Whether `name` is a capability of this policy."""
        return name in self._capabilities

    def authenticate(self, token: str | None) -> str:
        """The consumer presenting `token`; Refusal 401 E-UNAUTHENTICATED otherwise."""
        return self._consumers.authenticate(token)

    def authorize(self, consumer: str, capability: str) -> Authorized:
        """The consumer's authorization for the capability it named (the envelope).

        Refuses an unknown capability (404) or one the consumer was not granted (403).
        """
        cap = self._capabilities.get(capability)
        if cap is None:
            hint = self._granted_like(consumer, capability)
            raise Refusal(404, "E-CAPABILITY-UNKNOWN", f"no capability named {capability!r}{hint}")
        if not self._consumers.is_granted(consumer, capability):
            raise Refusal(
                403,
                "E-FORBIDDEN",
                f"consumer {consumer!r} is not granted capability {capability!r}",
            )
        return Authorized(consumer, cap, self._credentials[cap.credential])

    def _granted_like(self, consumer: str, capability: str) -> str:
        """A "did you mean" among the capabilities this consumer is granted only (so a
        caller learns no other names); skipped for very large policies (an error path
        must stay cheap)."""
        if len(self._capabilities) > SUGGEST_AMONG_AT_MOST or len(capability) > 200:
            return ""
        granted = (
            name for name in self._capabilities if self._consumers.is_granted(consumer, name)
        )
        return did_you_mean(capability, granted)

    def authorize_passthrough(
        self, consumer: str, credential: str, method: str, raw_path: str
    ) -> Authorized:
        """The consumer's authorization for `/v/{credential}{raw_path}`: the capability of
        the credential, granted to the consumer, that allows this method and path (longest
        prefix first, then name).

        Refuses an unknown credential (404), every traversal rule (the path is
        parsed here, once, and carried on), a path no capability covers (404),
        a path covered only by capabilities not granted (403), and a method none
        of the covering, granted capabilities allows (405).
        """
        runtime = self._credentials.get(credential)
        if runtime is None:
            raise Refusal(404, "E-CREDENTIAL-UNKNOWN", f"no credential named {credential!r}")
        path = parse_path(raw_path)
        covering = [
            (length, cap)
            for cap in self._by_credential[credential]
            if (length := longest_match(cap.prefixes, path.decoded)) >= 0
        ]
        if not covering:
            raise Refusal(
                404,
                "E-NO-CAPABILITY",
                f"no capability of credential {credential!r} covers this path",
            )
        capability = self._pick(covering, method, consumer, credential)
        return Authorized(consumer, capability, runtime, path)

    def _pick(
        self, covering: list[tuple[int, Capability]], method: str, consumer: str, cred: str
    ) -> Capability:
        covering = [(n, c) for n, c in covering if self._consumers.is_granted(consumer, c.name)]
        if not covering:
            raise Refusal(
                403, "E-FORBIDDEN", f"consumer {consumer!r} has no capability for this path"
            )
        allowing = [(n, c) for n, c in covering if method in c.methods]
        if not allowing:
            methods = sorted({m for _, c in covering for m in c.methods})
            raise Refusal(
                405,
                "E-METHOD-NOT-ALLOWED",
                f"no capability of credential {cred!r} allows this method here"
                f" (allowed: {', '.join(methods)})",
            )
        return min(allowing, key=lambda item: (-item[0], item[1].name))[1]

    def prepare(self, authorized: Authorized, request: InboundRequest) -> PreparedCall:
        """Apply every §9 request rule to an authorized request and build the upstream request.

        The credential must be usable, then method, path (parsed here unless
        authorization parsed it already) and its `;name=` parameters, headers
        (operation headers only with listed values), query, body size and method
        overrides in the body.
        """
        cap, credential = authorized.capability, authorized.credential
        injection = credential.require()
        check_method(cap.methods, request.method, capability=cap.name)
        path = authorized.path or parse_path(request.raw_path)
        if path.raw != request.raw_path:
            raise ValueError("prepare: the request is not the one whose path was authorized")
        check_prefix(cap.prefixes, path, capability=cap.name)
        credential.query_policy.check_path(path.raw)
        headers = credential.header_policy.sanitize(
            request.headers, passthrough=authorized.passthrough
        )
        check_operation_headers(cap.operation_rules, headers, host=cap.host, capability=cap.name)
        query = credential.query_policy.check(request.query)
        check_body_size(cap.max_request_body_bytes, len(request.body), capability=cap.name)
        check_body_override(headers, request.body)
        upstream = UpstreamRequest(
            method=request.method,
            host=cap.host,
            port=UPSTREAM_PORT,
            path=credential.path_prefix + path.raw,
            query=query + injection.query,
            headers=(*headers, *injection.headers),
            body=request.body,
            timeout_s=cap.timeout_s,
            tls=injection.client_tls,
        )
        return PreparedCall(
            consumer=authorized.consumer,
            capability=cap.name,
            credential=cap.credential,
            upstream=upstream,
            max_response_body_bytes=cap.max_response_body_bytes,
            rate_limit_per_minute=cap.rate_limit_per_minute,
            max_concurrent=cap.max_concurrent,
            response_blocklist=cap.response_blocklist,
            redactor=credential.redactor,
            header_filter=credential.header_filter,
            auth=injection.request_auth,
        )
