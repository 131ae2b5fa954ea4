"""ActivePolicy: build, consumers, grants, passthrough routing and every §9 request rule."""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
from datetime import UTC, datetime
from typing import Any

import pytest

from aivault_ops.errors import AivaultError
from aivault_ops.policy_document import PolicyDocument
from aivault_ops.runtime.model import InboundRequest, PreparedCall, Refusal
from aivault_ops.runtime.policy import consumers as consumers_module
from aivault_ops.runtime.policy.active import ActivePolicy
from aivault_ops.runtime.upstream.client import request_target
from aivault_ops.secret import Secret

CANARY = "canary-SECRET-7f3a9c2e41d8"
TOKEN = "consumer-token-agent"
OTHER_TOKEN = "consumer-token-reader"
FILE = "secrets/main.sops.yaml"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def credential(auth: Any, secrets: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "provider": extra.pop("provider", "custom"),
        "hosts": extra.pop("hosts", ["api.example.com"]),
        "auth": auth,
        "secrets": {name: {"file": FILE, "name": key} for name, key in secrets.items()},
        "upstreamPathPrefix": extra.pop("upstreamPathPrefix", ""),
    }


def capability(cred: str, methods: list[str], prefixes: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "credential": cred,
        "provider": "custom",
        "source": "manifest",
        "methods": methods,
        "pathPrefixes": prefixes,
        "hosts": extra.pop("hosts", ["api.example.com"]),
        "policy": extra.pop("policy", {}),
    }


def make_policy() -> dict[str, Any]:
    bearer = {"header": {"header_name": "authorization", "value_template": "Bearer {{secret}}"}}
    return {
        "format": "aivault-ops/policy@1",
        "project": "acme",
        "environment": "prod",
        "providers": {"custom": {"source": "custom", "hosts": ["api.example.com"]}},
        "credentials": {
            "api": credential(bearer, {"secret": "API_KEY"}, upstreamPathPrefix="/base/"),
            "gemini": credential({"query": {"param_name": "key"}}, {"secret": "GEMINI_KEY"}),
            "telegram": credential(
                {"path": {"prefix_template": "/bot{{secret}}"}}, {"secret": "TG_TOKEN"}
            ),
            "mailgun": credential("basic", {"password": "MG_KEY"}, provider="mailgun"),
            "google": credential({"kerberos": {"realm": "X"}}, {"secret": "GOOGLE_OAUTH"}),
            "short": credential(bearer, {"secret": "SHORT"}),
            "missing": credential(bearer, {"secret": "NOT_LOADED"}),
        },
        "capabilities": {
            "api/users": capability(
                "api",
                ["GET", "POST"],
                ["/v1/users"],
                policy={"maxRequestBodyBytes": 100, "timeoutMs": 1500, "rateLimitPerMinute": 60},
            ),
            "api/users-admin": capability("api", ["DELETE"], ["/v1/users/admin"]),
            "api/all": capability("api", ["GET"], ["/v1"]),
            "gemini/models": capability("gemini", ["GET"], ["/v1beta/models"]),
            "telegram/send": capability("telegram", ["POST"], ["/sendMessage"]),
            "mailgun/sending": capability("mailgun", ["POST"], ["/v3/"]),
            "google/cal": capability("google", ["GET"], ["/calendar"]),
            "short/x": capability("short", ["GET"], ["/x"]),
            "missing/x": capability("missing", ["GET"], ["/x"]),
        },
        "consumers": {
            "agent": {"tokenSha256": sha(TOKEN), "capabilities": ["*"]},
            "reader": {"tokenSha256": sha(OTHER_TOKEN), "capabilities": ["api/all", "gemini/*"]},
        },
        "secretFiles": {},
    }


SECRETS = {
    (FILE, "API_KEY"): Secret(CANARY),
    (FILE, "GEMINI_KEY"): Secret(CANARY + "-gemini"),
    (FILE, "TG_TOKEN"): Secret("123456:" + CANARY),
    (FILE, "MG_KEY"): Secret("key-" + CANARY),
    (FILE, "GOOGLE_OAUTH"): Secret('{"refresh_token": "' + CANARY + '"}'),
    (FILE, "SHORT"): Secret("abc"),
}
MANIFEST = {"serial": 7, "revision": "abc123", "environment": "prod"}


def build(policy: dict[str, Any] | None = None, **manifest: Any) -> ActivePolicy:
    return ActivePolicy.build(
        manifest={**MANIFEST, **manifest},
        policy=PolicyDocument.from_json(policy or make_policy()),
        keyid="0123456789abcdef",
        secrets=SECRETS,
    )


POLICY = build()


def request(
    path: str = "/v1/users/7",
    method: str = "GET",
    headers: tuple[tuple[str, str], ...] = (),
    query: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> InboundRequest:
    return InboundRequest(method, path, query, headers, body)


def prepare(
    consumer: str,
    capability: str,
    inbound: InboundRequest,
    *,
    passthrough: bool,
    policy: ActivePolicy = POLICY,
) -> PreparedCall:
    """Authorize as the route would (the envelope names the capability; passthrough finds
    it by the credential, method and path, and must find this one), then prepare."""
    authorized = policy.authorize(consumer, capability)
    if passthrough:
        credential = authorized.capability.credential
        authorized = policy.authorize_passthrough(
            consumer, credential, inbound.method, inbound.raw_path
        )
        assert authorized.capability.name == capability
    return policy.prepare(authorized, inbound)


def refusal(call: Any, *args: Any, **kwargs: Any) -> Refusal:
    with pytest.raises(Refusal) as caught:
        call(*args, **kwargs)
    return caught.value


# --- build ---------------------------------------------------------------------------------


def test_needed_secrets_skip_unsupported_strategies() -> None:
    assert ActivePolicy.needed_secrets(PolicyDocument.from_json(make_policy())) == {
        (FILE, "API_KEY"),
        (FILE, "GEMINI_KEY"),
        (FILE, "TG_TOKEN"),
        (FILE, "MG_KEY"),
        (FILE, "SHORT"),
        (FILE, "NOT_LOADED"),
    }


def test_build_reads_the_manifest_and_counts() -> None:
    policy = build(expiresAt="2030-01-01T00:00:00Z")
    assert (policy.serial, policy.revision, policy.environment, policy.keyid) == (
        7,
        "abc123",
        "prod",
        "0123456789abcdef",
    )
    assert policy.expires_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert policy.is_expired(datetime(2030, 1, 1, tzinfo=UTC))
    assert not policy.is_expired(datetime(2029, 12, 31, tzinfo=UTC))
    assert not POLICY.is_expired(datetime(2999, 1, 1, tzinfo=UTC))
    assert POLICY.counts() == {"providers": 1, "credentials": 7, "capabilities": 9, "consumers": 2}
    assert repr(POLICY) == "ActivePolicy(serial=7, revision='abc123')"


def test_one_bad_credential_does_not_take_the_bundle_down() -> None:
    assert POLICY.problems() == [
        "credential 'google': E-AUTH-UNSUPPORTED: credential 'google' uses an auth strategy"
        " this runtime does not support",
        f"credential 'missing': E-CREDENTIAL-UNAVAILABLE: secret 'NOT_LOADED' from {FILE}"
        " was not loaded",
        "credential 'short': E-CREDENTIAL-UNAVAILABLE: secret variable 'secret' is shorter"
        " than 8 characters and cannot be redacted reliably from responses",
    ]
    unsupported = refusal(prepare, "agent", "google/cal", request("/calendar"), passthrough=False)
    assert (unsupported.status, unsupported.code) == (501, "E-AUTH-UNSUPPORTED")
    assert unsupported.message == "credential 'google' is unavailable"
    unavailable = refusal(prepare, "agent", "short/x", request("/x"), passthrough=False)
    assert (unavailable.status, unavailable.code) == (503, "E-CREDENTIAL-UNAVAILABLE")
    prepare("agent", "api/users", request(), passthrough=False)


def _broken(mutate: Any) -> dict[str, Any]:
    policy = make_policy()
    mutate(policy)
    return policy


@pytest.mark.parametrize(
    ("policy", "manifest", "message"),
    [
        (
            _broken(lambda p: p.update(format="x")),
            {},
            "policy.json: format must be 'aivault-ops/policy@1'",
        ),
        (
            _broken(lambda p: p.update(credentials=[])),
            {},
            "policy.json: credentials: expected object, got array",
        ),
        (
            _broken(lambda p: p["capabilities"]["api/users"].update(credential="nope")),
            {},
            "policy: capability 'api/users' must name a known credential",
        ),
        (
            _broken(lambda p: p["capabilities"]["api/users"].update(hosts=["evil.example.net"])),
            {},
            "policy: capability 'api/users' host 'evil.example.net' is not a concrete host of"
            " its credential",
        ),
        (
            _broken(lambda p: p["credentials"]["api"].update(hosts=["*.example.com"])),
            {},
            "policy: capability 'api/all' host 'api.example.com' is not a concrete host of"
            " its credential",
        ),
        (
            _broken(lambda p: p["consumers"]["agent"].update(tokenSha256="ABC")),
            {},
            "policy.json: consumers.agent.tokenSha256: invalid format: must be 64 lowercase hex"
            " characters (the sha256 of the token, never the token)",
        ),
        (
            _broken(lambda p: p["capabilities"]["api/users"].update(methods=["get"])),
            {},
            "policy.json: capabilities.api/users.methods[0]: must be one of: "
            '"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"',
        ),
        (
            _broken(lambda p: p["capabilities"]["api/users"].update(pathPrefixes=["v1"])),
            {},
            "policy.json: capabilities.api/users.pathPrefixes[0]: invalid format: must be a path"
            " starting with / (no spaces, ? or #)",
        ),
        (make_policy(), {"serial": "7"}, "bundle manifest: serial must be an integer"),
        (
            make_policy(),
            {"expiresAt": "soon"},
            "bundle manifest: expiresAt is not an RFC 3339 time",
        ),
        (
            make_policy(),
            {"expiresAt": "2030-01-01T00:00:00"},
            "bundle manifest: expiresAt needs a time zone",
        ),
    ],
)
def test_malformed_policies_fail_the_build(
    policy: dict[str, Any], manifest: dict[str, Any], message: str
) -> None:
    with pytest.raises(AivaultError) as caught:
        build(policy, **manifest)
    assert caught.value.message == message


# --- consumers -----------------------------------------------------------------------------


def test_authenticate_maps_token_to_consumer() -> None:
    assert POLICY.authenticate(TOKEN) == "agent"
    assert POLICY.authenticate(OTHER_TOKEN) == "reader"


@pytest.mark.parametrize(
    "token", [None, "", "wrong", TOKEN + " ", TOKEN.upper(), sha(TOKEN), " " + TOKEN]
)
def test_unknown_or_missing_tokens_are_refused_with_401(token: str | None) -> None:
    caught = refusal(POLICY.authenticate, token)
    assert (caught.status, caught.code) == (401, "E-UNAUTHENTICATED")
    assert caught.message == (
        "a valid consumer token is required (Authorization: Bearer or X-Aivault-Token)"
    )


def test_authenticate_compares_every_digest_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(consumers_module.hmac, "compare_digest", counting)
    for token in (TOKEN, OTHER_TOKEN, "wrong"):
        calls.clear()
        if token == "wrong":
            refusal(POLICY.authenticate, token)
        else:
            POLICY.authenticate(token)
        assert sorted(calls) == sorted(bytes.fromhex(sha(t)) for t in (TOKEN, OTHER_TOKEN))


def test_grants_are_case_sensitive_globs() -> None:
    POLICY.authorize("reader", "api/all")
    POLICY.authorize("reader", "gemini/models")
    for cap in ("api/users", "telegram/send"):
        caught = refusal(POLICY.authorize, "reader", cap)
        assert (caught.status, caught.code) == (403, "E-FORBIDDEN")
        assert caught.message == f"consumer 'reader' is not granted capability {cap!r}"
    policy = make_policy()
    policy["consumers"]["reader"]["capabilities"] = ["API/*", "gemini/model"]
    upper = build(policy)
    assert refusal(upper.authorize, "reader", "api/all").code == "E-FORBIDDEN"
    assert refusal(upper.authorize, "reader", "gemini/models").code == "E-FORBIDDEN"


def test_unknown_capability_and_unknown_consumer_fail_closed() -> None:
    caught = refusal(POLICY.authorize, "agent", "api/nope")
    assert (caught.status, caught.code, caught.message) == (
        404,
        "E-CAPABILITY-UNKNOWN",
        "no capability named 'api/nope'",
    )
    assert refusal(POLICY.authorize, "ghost", "api/all").code == "E-FORBIDDEN"


def test_an_unknown_capability_suggests_only_names_the_consumer_is_granted() -> None:
    assert refusal(POLICY.authorize, "agent", "api/user").message == (
        "no capability named 'api/user' (did you mean 'api/users'?)"
    )
    reader = refusal(POLICY.authorize, "reader", "api/user")  # not granted api/users
    assert reader.message == "no capability named 'api/user'"


def test_prepare_needs_an_authorization_an_ungranted_consumer_cannot_get() -> None:
    # Fail closed by type: prepare takes an `Authorized`, never a consumer and a name.
    assert list(inspect.signature(ActivePolicy.prepare).parameters) == [
        "self",
        "authorized",
        "request",
    ]
    caught = refusal(prepare, "reader", "api/users", request(), passthrough=False)
    assert caught.code == "E-FORBIDDEN"
    caught = refusal(POLICY.authorize_passthrough, "reader", "telegram", "POST", "/sendMessage")
    assert caught.code == "E-FORBIDDEN"


def test_an_authorization_names_who_may_use_what() -> None:
    authorized = POLICY.authorize("reader", "api/all")
    assert (authorized.consumer, authorized.capability.name, authorized.credential.name) == (
        "reader",
        "api/all",
        "api",
    )
    assert (authorized.path, authorized.passthrough) == (None, False)
    assert repr(authorized) == "Authorized(consumer='reader', capability='api/all')"


def test_passthrough_parses_the_path_once_and_prepare_keeps_to_it() -> None:
    authorized = POLICY.authorize_passthrough("agent", "api", "GET", "/v1/users/%37")
    assert authorized.path is not None
    assert (authorized.path.raw, authorized.path.decoded) == ("/v1/users/%37", b"/v1/users/7")
    assert authorized.passthrough
    call = POLICY.prepare(authorized, request("/v1/users/%37"))
    assert call.upstream.path == "/base/v1/users/%37"
    with pytest.raises(ValueError, match="not the one whose path was authorized"):
        POLICY.prepare(authorized, request("/v1/users/admin"))


# --- passthrough routing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v1/users/7", "api/users"),
        ("POST", "/v1/users", "api/users"),
        ("GET", "/v1/other", "api/all"),
        ("DELETE", "/v1/users/admin/3", "api/users-admin"),
        ("GET", "/v1/users/admin/3", "api/users"),
    ],
)
def test_passthrough_picks_the_longest_prefix_that_allows_the_method(
    method: str, path: str, expected: str
) -> None:
    authorized = POLICY.authorize_passthrough("agent", "api", method, path)
    assert authorized.capability.name == expected


def test_passthrough_can_consider_only_granted_capabilities() -> None:
    authorized = POLICY.authorize_passthrough("reader", "api", "GET", "/v1/users/7")
    assert authorized.capability.name == "api/all"
    caught = refusal(POLICY.authorize_passthrough, "reader", "telegram", "POST", "/sendMessage")
    assert (caught.status, caught.code) == (403, "E-FORBIDDEN")


def test_passthrough_refusals() -> None:
    unknown = refusal(POLICY.authorize_passthrough, "agent", "nope", "GET", "/v1")
    assert (unknown.status, unknown.code) == (404, "E-CREDENTIAL-UNKNOWN")
    uncovered = refusal(POLICY.authorize_passthrough, "agent", "api", "GET", "/v2/users")
    assert (uncovered.status, uncovered.code) == (404, "E-NO-CAPABILITY")
    assert refusal(POLICY.authorize_passthrough, "agent", "api", "GET", "/v1x").code == (
        "E-NO-CAPABILITY"
    )
    method = refusal(POLICY.authorize_passthrough, "agent", "api", "PUT", "/v1/users/7")
    assert (method.status, method.code, method.message) == (
        405,
        "E-METHOD-NOT-ALLOWED",
        "no capability of credential 'api' allows this method here (allowed: GET, POST)",
    )
    traversal = refusal(
        POLICY.authorize_passthrough, "agent", "api", "GET", "/v1/users/../../admin"
    )
    assert traversal.code == "E-PATH-TRAVERSAL"


# --- prepare: the upstream request ---------------------------------------------------------


def test_prepare_builds_the_upstream_request_from_policy() -> None:
    call = prepare(
        "agent",
        "api/users",
        request(
            "/v1/users/7",
            "POST",
            headers=(
                ("Accept", "application/json"),
                ("Host", "evil.example.net"),
                ("Content-Length", "999"),
                ("Connection", "keep-alive"),
            ),
            query=(("page", "2"), ("q", "a b&c")),
            body=b'{"a":1}',
        ),
        passthrough=True,
    )
    upstream = call.upstream
    assert (call.consumer, call.capability, call.credential) == ("agent", "api/users", "api")
    assert (upstream.method, upstream.host, upstream.port) == ("POST", "api.example.com", 443)
    assert upstream.path == "/base/v1/users/7"
    assert upstream.headers == (
        ("Accept", "application/json"),
        ("authorization", Secret(f"Bearer {CANARY}")),
    )
    assert upstream.query == (("page", "2"), ("q", "a b&c"))
    assert upstream.body == b'{"a":1}'
    assert upstream.timeout_s == 1.5
    assert (call.rate_limit_per_minute, call.max_response_body_bytes) == (60, None)
    assert request_target(upstream) == "/base/v1/users/7?page=2&q=a%20b%26c"


def test_query_strategy_appends_the_key_and_refuses_a_caller_key() -> None:
    call = prepare(
        "agent", "gemini/models", request("/v1beta/models", query=(("a", "1"),)), passthrough=False
    )
    assert call.upstream.query == (("a", "1"), ("key", Secret(CANARY + "-gemini")))
    assert call.upstream.headers == ()
    caught = refusal(
        prepare,
        "agent",
        "gemini/models",
        request("/v1beta/models", query=(("KEY", "mine"),)),
        passthrough=False,
    )
    assert (caught.status, caught.code) == (403, "E-QUERY-FORBIDDEN")


def test_path_strategy_prefixes_the_upstream_path() -> None:
    call = prepare("agent", "telegram/send", request("/sendMessage", "POST"), passthrough=False)
    assert call.upstream.path == Secret(f"/bot123456:{CANARY}/sendMessage")


def test_basic_strategy_for_mailgun() -> None:
    call = prepare(
        "agent", "mailgun/sending", request("/v3/example.com/messages", "POST"), passthrough=False
    )
    expected = base64.b64encode(f"api:key-{CANARY}".encode()).decode()
    assert call.upstream.headers == (("Authorization", Secret(f"Basic {expected}")),)


# --- prepare: one named regression test per §9 rule ---------------------------------------


def test_rule_method_allow_list() -> None:
    caught = refusal(prepare, "agent", "api/users", request(method="DELETE"), passthrough=False)
    assert (caught.status, caught.code) == (405, "E-METHOD-NOT-ALLOWED")


@pytest.mark.parametrize("path", ["/v1/usersX", "/v1/users-admin", "/v2/users", "/"])
def test_rule_segment_boundary_prefix(path: str) -> None:
    caught = refusal(prepare, "agent", "api/users", request(path), passthrough=False)
    assert (caught.status, caught.code) == (403, "E-PATH-NOT-ALLOWED")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/../admin",
        "/v1/users/%2e%2e/admin",
        "/v1/users%2f..%2fadmin",
        "/v1/users/%5c..",
        "/v1/users/%252e%252e/admin",
        "/v1/users/%00",
        "/v1/users/%0d%0a",
        "/v1/users//7",
    ],
)
def test_rule_traversal_after_percent_decoding(path: str) -> None:
    caught = refusal(prepare, "agent", "api/users", request(path), passthrough=True)
    assert (caught.status, caught.code) == (400, "E-PATH-TRAVERSAL")


def test_rule_host_and_scheme_only_from_policy() -> None:
    call = prepare(
        "agent",
        "api/users",
        request(headers=(("Host", "169.254.169.254"),)),
        passthrough=True,
    )
    assert call.upstream.host == "api.example.com"
    assert request_target(call.upstream).startswith("/base/v1/users")
    assert ("Host", "169.254.169.254") not in call.upstream.headers
    caught = refusal(
        prepare,
        "agent",
        "api/users",
        request(headers=(("X-Forwarded-Host", "evil"),)),
        passthrough=True,
    )
    assert (caught.status, caught.code) == (403, "E-HEADER-FORBIDDEN")


@pytest.mark.parametrize(
    "name", ["Authorization", "proxy-authorization", "Cookie", "X-API-KEY", "x-aivault-token"]
)
@pytest.mark.parametrize("passthrough", [True, False])
def test_rule_caller_auth_class_headers_refused(name: str, passthrough: bool) -> None:
    caught = refusal(
        prepare,
        "agent",
        "api/users",
        request(headers=((name, "Bearer " + TOKEN),)),
        passthrough=passthrough,
    )
    assert (caught.status, caught.code) == (403, "E-HEADER-FORBIDDEN")


def test_rule_injected_header_name_refused_for_custom_names() -> None:
    policy = make_policy()
    policy["credentials"]["api"]["auth"] = {
        "header": {"header_name": "X-Custom-Key", "value_template": "{{secret}}"}
    }
    custom = build(policy)
    caught = refusal(
        prepare,
        "agent",
        "api/users",
        request(headers=(("x-custom-KEY", "mine"),)),
        passthrough=True,
        policy=custom,
    )
    assert caught.code == "E-HEADER-FORBIDDEN"


def test_rule_hop_by_hop_headers_dropped() -> None:
    call = prepare(
        "agent",
        "api/users",
        request(
            headers=(
                ("Connection", "X-Drop"),
                ("X-Drop", "1"),
                ("Transfer-Encoding", "chunked"),
                ("Upgrade", "h2c"),
                ("TE", "trailers"),
                ("Keep-Alive", "5"),
                ("X-Keep", "1"),
            )
        ),
        passthrough=True,
    )
    assert [name for name, _ in call.upstream.headers] == ["X-Keep", "authorization"]


def test_rule_crlf_in_header_refused() -> None:
    caught = refusal(
        prepare,
        "agent",
        "api/users",
        request(headers=(("X-Test", "a\r\nAuthorization: Bearer x"),)),
        passthrough=True,
    )
    assert (caught.status, caught.code) == (400, "E-HEADER-INVALID")


def test_rule_body_override_is_judged_with_the_headers_that_are_sent() -> None:
    # A Content-Type named in Connection is dropped, so the upstream reads the body
    # as a form: judged as the JSON the caller claimed, `_method` would slip past.
    headers = (("Connection", "content-type"), ("Content-Type", "application/json"))
    inbound = request("/v1/users", "POST", headers=headers, body=b"_method=DELETE")
    caught = refusal(prepare, "agent", "api/users", inbound, passthrough=False)
    assert (caught.status, caught.code) == (403, "E-BODY-FORBIDDEN")


def test_rule_request_body_limit() -> None:
    caught = refusal(
        prepare,
        "agent",
        "api/users",
        request(method="POST", body=b"x" * 101),
        passthrough=False,
    )
    assert (caught.status, caught.code) == (413, "E-BODY-TOO-LARGE")
    prepare("agent", "api/users", request(method="POST", body=b"x" * 100), passthrough=False)


def test_rule_response_headers_and_body_are_sanitized() -> None:
    call = prepare("agent", "api/users", request(), passthrough=False)
    headers = call.response_headers(
        [("Set-Cookie", "a=b"), ("X-Echo", f"Bearer {CANARY}"), ("Content-Type", "text/plain")]
    )
    assert headers == [("X-Echo", "Bearer [REDACTED]"), ("Content-Type", "text/plain")]
    stream = call.body_redactor()
    body = stream.feed(b'{"echo": "Bearer ' + CANARY[:5].encode())
    body += stream.feed(CANARY[5:].encode() + b'"}') + stream.flush()
    assert body == b'{"echo": "Bearer [REDACTED]"}'


# --- canary --------------------------------------------------------------------------------


def _spellings(value: str) -> list[str]:
    raw = value.encode()
    return [value, base64.b64encode(raw).decode().rstrip("="), CANARY[4:20]]


def test_canary_never_appears_in_refusals_reprs_or_problems() -> None:
    texts: list[str] = [repr(POLICY), str(POLICY.counts()), *POLICY.problems()]
    calls: list[PreparedCall] = [
        prepare("agent", cap, request(path, method), passthrough=False)
        for cap, path, method in [
            ("api/users", "/v1/users", "GET"),
            ("gemini/models", "/v1beta/models", "GET"),
            ("telegram/send", "/sendMessage", "POST"),
            ("mailgun/sending", "/v3/x", "POST"),
        ]
    ]
    texts += [repr(call) for call in calls] + [str(call) for call in calls]
    texts += [repr(call.upstream) for call in calls] + [repr(call.redactor) for call in calls]
    attempts = [
        ("agent", "api/users", request(method="PATCH")),
        ("agent", "api/users", request("/v1/users/%2e%2e")),
        ("agent", "api/users", request("/v2")),
        ("agent", "api/users", request(headers=(("Authorization", "x"),))),
        ("agent", "gemini/models", request("/v1beta/models", query=(("key", "x"),))),
        ("agent", "api/users", request(method="POST", body=b"x" * 1000)),
        ("agent", "google/cal", request("/calendar")),
        ("agent", "short/x", request("/x")),
        ("reader", "api/users", request()),
        ("agent", "api/none", request()),
    ]
    for consumer, cap, inbound in attempts:
        caught = refusal(prepare, consumer, cap, inbound, passthrough=False)
        texts += [
            caught.message,
            caught.diagnostics(),
            str(caught),
            repr(caught),
            str(caught.to_json()),
        ]
    for text in texts:
        for spelling in _spellings(CANARY):
            assert spelling not in text
