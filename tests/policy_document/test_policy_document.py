"""The typed policy.json: checked against its schema on the way in, unchanged on the way out."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aivault_ops import schema_check
from aivault_ops.canonical_json import canonical_json
from aivault_ops.errors import AivaultError
from aivault_ops.policy_document import (
    POLICY_FORMAT,
    CapabilityPolicy,
    PolicyCapability,
    PolicyConsumer,
    PolicyCredential,
    PolicyDocument,
    PolicyProvider,
    PolicySecretFile,
    SecretLocation,
    check_policy,
)


def _word(first: str, rest: str, max_size: int) -> st.SearchStrategy[str]:
    """Strings matching `[first][rest]{0,max_size}` (cheaper than `st.from_regex`)."""
    return st.builds(str.__add__, st.sampled_from(first), st.text(rest, max_size=max_size))


NAME = _word("a0z", "az09-", 8)
LABEL = st.builds(str.__add__, st.text("ab9", min_size=1, max_size=3), st.sampled_from(["", "-x"]))
HOST = st.builds(".".join, st.lists(LABEL, min_size=1, max_size=3))
HOSTS = st.lists(HOST | HOST.map("*.{}".format), min_size=1, max_size=3, unique=True)
BUNDLE_PATH = st.builds(
    "secrets/{}{}".format,
    st.sampled_from(["", "team/"]),
    st.text("az09._-", min_size=1, max_size=6),
)
SECRET_NAME = _word("A_z", "Az09_", 8)
PLACEHOLDER = _word("a_", "a0_", 8)
HEX64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
PATH_PREFIX = st.builds(str.__add__, st.just("/"), st.text("az09/._-", max_size=10))
HEADER = {"header_name": "authorization", "value_template": "Bearer {{secret}}"}
AUTHS = [
    {"header": HEADER},
    {"query": {"param_name": "key"}},
    {"path": {"prefix_template": "/bot{{secret}}"}},
    {"multi_header": [HEADER, {"header_name": "x-id", "value_template": "{{client_id}}"}]},
    {"multi_query": [{"param_name": "key", "value_template": "{{secret}}"}]},
    {"o_auth2": {"grant_type": "refresh_token", "token_endpoint": "https://a.test/t"}},
    {"o_auth2": {"grant_type": "client_credentials", "token_endpoint": "x", "scopes": ["a"]}},
    {"aws_sig_v4": {"service": "s3", "region": "eu-west-1"}},
    {"hmac": {"algorithm": "sha256", "header_name": "x-sig", "value_template": "{{signature}}"}},
    {"hmac": {"algorithm": "sha512", "header_name": "x", "value_template": "y", "message": "body"}},
    "basic",
    "mtls",
]
RULES = st.fixed_dictionaries(
    {},
    optional={
        "rateLimitPerMinute": st.integers(1, 10**6),
        "maxRequestBodyBytes": st.integers(0, 10**9),
        "maxResponseBodyBytes": st.integers(0, 10**9),
        "timeoutMs": st.integers(1, 3_600_000),
        "responseBlocklist": st.lists(
            st.sampled_from(["$.token", "$.data[*].ssn", "$..pan", "$['a b']", "$[0]"]),
            unique=True,
            max_size=3,
        ),
    },
)
METHODS = st.lists(
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    min_size=1,
    max_size=3,
)


def _credential() -> st.SearchStrategy[dict[str, Any]]:
    location = st.fixed_dictionaries({"file": BUNDLE_PATH, "name": SECRET_NAME})
    return st.fixed_dictionaries(
        {
            "provider": NAME,
            "hosts": HOSTS,
            "auth": st.sampled_from(AUTHS),
            "secrets": st.dictionaries(
                PLACEHOLDER,
                location,
                min_size=1,
                max_size=2,
            ),
            "upstreamPathPrefix": st.just("") | PATH_PREFIX,
        }
    )


def _capability() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "credential": NAME,
            "provider": NAME,
            "source": st.sampled_from(["manifest", "registry"]),
            "methods": METHODS,
            "pathPrefixes": st.lists(PATH_PREFIX, min_size=1, max_size=2),
            "hosts": HOSTS,
            "policy": RULES,
        },
        optional={
            "operations": st.lists(
                st.sampled_from(["DynamoDB_20120810.GetItem", "TrentService.Decrypt"]),
                min_size=1,
                unique=True,
            ),
            "copySourcePrefixes": st.lists(PATH_PREFIX, min_size=1, max_size=2, unique=True),
        },
    )


POLICIES = st.fixed_dictionaries(
    {
        "format": st.just(POLICY_FORMAT),
        "project": NAME,
        "environment": st.none() | st.text(max_size=8),
        "providers": st.dictionaries(
            NAME,
            st.fixed_dictionaries(
                {"source": st.sampled_from(["registry", "custom"]), "hosts": HOSTS}
            ),
            max_size=2,
        ),
        "credentials": st.dictionaries(NAME, _credential(), max_size=2),
        "capabilities": st.dictionaries(
            st.builds("{}/{}".format, NAME, NAME), _capability(), max_size=3
        ),
        "consumers": st.dictionaries(
            NAME,
            st.fixed_dictionaries(
                {"tokenSha256": HEX64, "capabilities": st.lists(st.text(max_size=6), min_size=1)}
            ),
            max_size=2,
        ),
        "secretFiles": st.dictionaries(
            BUNDLE_PATH,
            st.fixed_dictionaries(
                {
                    "sha256": HEX64,
                    "format": st.sampled_from(["yaml", "json", "dotenv", "binary"]),
                    "names": st.lists(SECRET_NAME, min_size=1, max_size=2),
                }
            ),
            max_size=2,
        ),
    }
)


@settings(max_examples=200, deadline=None)
@given(policy=POLICIES)
def test_every_valid_policy_round_trips(policy: dict[str, Any]) -> None:
    assert schema_check.is_valid("policy", policy)
    document = PolicyDocument.from_json(policy)
    assert document.to_json() == policy
    assert canonical_json(document.to_json()) == canonical_json(policy)
    assert PolicyDocument.from_json(document.to_json()) == document


def small_policy() -> dict[str, Any]:
    return copy.deepcopy(_SMALL)


_SMALL: dict[str, Any] = {
    "format": POLICY_FORMAT,
    "project": "acme",
    "environment": "prod",
    "providers": {"my-api": {"source": "custom", "hosts": ["api.example.com"]}},
    "credentials": {
        "my-api": {
            "provider": "my-api",
            "hosts": ["api.example.com"],
            "auth": {"multi_header": [HEADER]},
            "secrets": {"secret": {"file": "secrets/a.sops.yaml", "name": "MY_KEY"}},
            "upstreamPathPrefix": "/base",
        }
    },
    "capabilities": {
        "my-api/users": {
            "credential": "my-api",
            "provider": "my-api",
            "source": "manifest",
            "methods": ["GET", "POST"],
            "pathPrefixes": ["/v1/users"],
            "hosts": ["api.example.com"],
            "policy": {"timeoutMs": 1500, "responseBlocklist": ["$.token"]},
        }
    },
    "consumers": {"agent": {"tokenSha256": "ab" * 32, "capabilities": ["my-api/*"]}},
    "secretFiles": {
        "secrets/a.sops.yaml": {"sha256": "cd" * 32, "format": "yaml", "names": ["MY_KEY"]}
    },
}


def test_from_json_types_every_section() -> None:
    document = PolicyDocument.from_json(small_policy())
    assert document == PolicyDocument(
        project="acme",
        environment="prod",
        providers={"my-api": PolicyProvider("custom", ("api.example.com",))},
        credentials={
            "my-api": PolicyCredential(
                provider="my-api",
                hosts=("api.example.com",),
                auth={"multi_header": [HEADER]},
                secrets={"secret": SecretLocation("secrets/a.sops.yaml", "MY_KEY")},
                upstream_path_prefix="/base",
            )
        },
        capabilities={
            "my-api/users": PolicyCapability(
                credential="my-api",
                provider="my-api",
                source="manifest",
                methods=("GET", "POST"),
                path_prefixes=("/v1/users",),
                hosts=("api.example.com",),
                policy=CapabilityPolicy(timeout_ms=1500, response_blocklist=("$.token",)),
            )
        },
        consumers={"agent": PolicyConsumer("ab" * 32, ("my-api/*",))},
        secret_files={"secrets/a.sops.yaml": PolicySecretFile("cd" * 32, "yaml", ("MY_KEY",))},
    )


def test_the_format_constant_is_the_schemas() -> None:
    schema = json.loads((schema_check.SCHEMA_DIR / "policy.schema.json").read_text())
    assert POLICY_FORMAT == schema["properties"]["format"]["const"] == "aivault-ops/policy@1"
    assert PolicyDocument.from_json(small_policy()).to_json()["format"] == POLICY_FORMAT


def test_capability_policy_types_every_field_of_the_schema() -> None:
    schema = json.loads((schema_check.SCHEMA_DIR / "policy.schema.json").read_text())
    fields = schema["$defs"]["capabilityPolicy"]["properties"]
    every = {"rateLimitPerMinute": 1, "maxRequestBodyBytes": 2, "maxResponseBodyBytes": 3}
    every |= {"timeoutMs": 4, "maxConcurrent": 5, "responseBlocklist": ["$.a"]}
    assert set(every) == set(fields)
    rules = CapabilityPolicy.from_json(every)
    assert rules == CapabilityPolicy(1, 2, 3, 4, 5, ("$.a",))
    assert rules.other == {}
    assert CapabilityPolicy.from_json({}) == CapabilityPolicy()
    assert CapabilityPolicy().to_json() == {}
    assert CapabilityPolicy(response_blocklist=()).to_json() == {"responseBlocklist": []}


def test_capability_policy_keeps_fields_it_does_not_type() -> None:
    data = {"timeoutMs": 5, "futureRule": {"a": [1, 2]}}
    rules = CapabilityPolicy.from_json(data)
    assert (rules.timeout_ms, dict(rules.other)) == (5, {"futureRule": {"a": [1, 2]}})
    assert rules.to_json() == data
    with pytest.raises(TypeError):
        rules.other["futureRule"] = 1  # type: ignore[index]


def test_integers_written_as_floats_are_read_as_ints() -> None:
    policy = small_policy()
    policy["capabilities"]["my-api/users"]["policy"] = {"timeoutMs": 1500.0}
    rules = PolicyDocument.from_json(policy).capabilities["my-api/users"].policy
    assert rules.timeout_ms == 1500
    assert type(rules.timeout_ms) is int


def test_the_document_is_read_only_and_owns_its_values() -> None:
    policy = small_policy()
    document = PolicyDocument.from_json(policy)
    with pytest.raises(TypeError):
        document.capabilities["x"] = document.capabilities["my-api/users"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        document.project = "other"  # type: ignore[misc]
    policy["credentials"]["my-api"]["auth"]["multi_header"][0]["header_name"] = "changed"
    document.to_json()["credentials"]["my-api"]["auth"]["multi_header"].clear()
    assert document.credentials["my-api"].auth == {
        "multi_header": [{"header_name": "authorization", "value_template": "Bearer {{secret}}"}]
    }


def test_a_value_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(AivaultError) as caught:
        PolicyDocument.from_json([small_policy()])
    assert caught.value.message == "policy.json must hold a JSON object"


@pytest.mark.parametrize("value", ["aivault-ops/policy@2", None, 1])
def test_another_format_is_refused_with_a_hint(value: object) -> None:
    policy = small_policy()
    policy["format"] = value
    with pytest.raises(AivaultError) as caught:
        PolicyDocument.from_json(policy)
    assert caught.value.diagnostics() == (
        "policy.json: format must be 'aivault-ops/policy@1'\n"
        "  hint: compile the bundle with an aivault-ops version that writes this format"
    )


def _broken(path: tuple[str, ...], value: object) -> dict[str, Any]:
    policy = small_policy()
    parent = policy
    for step in path[:-1]:
        parent = parent[step]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return policy


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("project",), _DELETE, "document: missing required field 'project'"),
        (("providers",), [], "providers: expected object, got array"),
        (
            ("credentials", "my-api", "upstreamPathPrefix"),
            "base",
            "credentials.my-api.upstreamPathPrefix: invalid format: must be empty or a path"
            " starting with / (no spaces, ? or #)",
        ),
        (
            ("credentials", "my-api", "secrets", "secret", "file"),
            "../etc/passwd",
            "credentials.my-api.secrets.secret.file: invalid format: must be in the"
            " documented format",
        ),
        (
            ("capabilities", "my-api/users", "policy", "rateLimitPerMinute"),
            True,
            "capabilities.my-api/users.policy.rateLimitPerMinute: expected integer, got boolean",
        ),
        (
            ("capabilities", "my-api/users", "policy", "timeOutMs"),
            5,
            "unknown field 'timeOutMs' in capabilities.my-api/users.policy (did you mean"
            " 'timeoutMs'?) (allowed: maxConcurrent, maxRequestBodyBytes,"
            " maxResponseBodyBytes, rateLimitPerMinute, responseBlocklist, timeoutMs)",
        ),
        (
            ("consumers", "agent", "capabilities"),
            [],
            "consumers.agent.capabilities: must not be empty",
        ),
        (
            ("secretFiles", "secrets/a.sops.yaml", "format"),
            "ini",
            'secretFiles.secrets/a.sops.yaml.format: must be one of: "yaml", "json", "dotenv",'
            ' "binary"',
        ),
    ],
)
def test_schema_violations_are_refused_by_path(
    path: tuple[str, ...], value: object, message: str
) -> None:
    with pytest.raises(AivaultError) as caught:
        PolicyDocument.from_json(_broken(path, value))
    assert caught.value.message == f"policy.json: {message}"


def test_more_problems_are_counted() -> None:
    policy = _broken(("consumers", "agent", "tokenSha256"), "secret-token")
    policy["secretFiles"]["secrets/a.sops.yaml"]["names"] = []
    with pytest.raises(AivaultError) as caught:
        check_policy(policy)
    assert caught.value.message.endswith(" (and 1 more problem)")
    assert "secret-token" not in caught.value.message


def test_an_auth_strategy_this_version_does_not_know_is_left_to_the_runtime() -> None:
    """The runtime refuses only that credential (E-AUTH-UNSUPPORTED), not the bundle."""
    policy = _broken(("credentials", "my-api", "auth"), {"kerberos": {"realm": "X"}})
    document = PolicyDocument.from_json(policy)
    assert document.credentials["my-api"].auth == {"kerberos": {"realm": "X"}}
    assert document.to_json() == policy
    for path, value, message in (
        (("auth",), _DELETE, "credentials.my-api: missing required field 'auth'"),
        (("hosts",), [], "credentials.my-api.hosts: must not be empty"),
    ):
        with pytest.raises(AivaultError) as caught:
            PolicyDocument.from_json(_broken(("credentials", "my-api", *path), value))
        assert caught.value.message == f"policy.json: {message}"
