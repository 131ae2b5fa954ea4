"""JSON Schema checks: codes, paths, messages that never echo a string value."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aivault_ops.schema_check import SchemaError, check, schema_problem

TOKEN_SHA = "cfd9d9a12bc4bff68801359a2de4f974ec9d7a54d3deed208728de2fde563d0e"
CONSUMER: dict[str, Any] = {
    "apiVersion": "aivault.dev/v1",
    "kind": "Consumer",
    "metadata": {"name": "agent"},
    "spec": {"tokenSha256": TOKEN_SHA, "capabilities": ["openai/*"]},
}
CAPABILITY: dict[str, Any] = {
    "apiVersion": "aivault.dev/v1",
    "kind": "Capability",
    "metadata": {"name": "my-api/users"},
    "spec": {
        "credential": "my-api",
        "allow": {"methods": ["GET"], "pathPrefixes": ["/v1/users"], "hosts": ["api.example.com"]},
        "policy": {"rateLimitPerMinute": 60, "responseBlocklist": ["$.data[*].ssn", "$.token"]},
    },
}
CREDENTIAL: dict[str, Any] = {
    "apiVersion": "aivault.dev/v1",
    "kind": "Credential",
    "metadata": {"name": "my-api"},
    "spec": {"provider": "my-api", "secretRef": "secrets/x.sops.yaml#MY_KEY"},
}
PROVIDER: dict[str, Any] = {
    "apiVersion": "aivault.dev/v1",
    "kind": "Provider",
    "metadata": {"name": "my-api"},
    "spec": {
        "hosts": ["api.example.com", "*.tenants.example.com"],
        "auth": {"header": {"header_name": "authorization", "value_template": "Bearer {{secret}}"}},
        "vaultSecrets": {"MY_KEY": "secret"},
    },
}
PROJECT: dict[str, Any] = {
    "apiVersion": "aivault.dev/v1",
    "kind": "Project",
    "metadata": {"name": "acme"},
    "spec": {
        "runtimeRecipients": ["age1m0sp3e9uwng8v4q9ap7xyvvntt42fskc4620kc4qy5zz2xp47gpsrnrrsm"],
        "trustedSigningKeys": ["ed25519:" + "A" * 43 + "="],
        "environments": {"prod": {"values": {"host": "x"}}},
    },
}
NAME_HINT = (
    "invalid format: must be lowercase letters, digits and '-', starting with a letter or"
    " digit, at most 63 characters"
)


def _with(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def _without(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


@pytest.mark.parametrize(
    ("schema", "document"),
    [
        ("manifest-consumer", CONSUMER),
        ("manifest-capability", CAPABILITY),
        ("manifest-credential", CREDENTIAL),
        ("manifest-provider", PROVIDER),
        ("manifest-project", PROJECT),
    ],
)
def test_valid_manifests_have_no_errors(schema: str, document: dict[str, Any]) -> None:
    assert check(schema, document) == []


def test_unknown_field_points_at_its_key() -> None:
    errors = check("manifest-consumer", _with(CONSUMER, ("spec", "tokn"), "x"))
    assert errors == [
        SchemaError(
            ("spec", "tokn"),
            "E-SCHEMA-UNKNOWN-FIELD",
            "unknown field 'tokn' in spec (allowed: capabilities, description, tokenSha256)",
            at_key=True,
        )
    ]


def test_every_unknown_field_is_reported() -> None:
    document = _with(_with(CONSUMER, ("zeta",), 1), ("alpha",), 2)
    assert [(e.path, e.code) for e in check("manifest-consumer", document)] == [
        (("alpha",), "E-SCHEMA-UNKNOWN-FIELD"),
        (("zeta",), "E-SCHEMA-UNKNOWN-FIELD"),
    ]


def test_missing_fields_are_named_together() -> None:
    """One message names every missing field (the report drops repeated diagnostics)."""
    errors = check("manifest-consumer", _with(CONSUMER, ("spec",), {}))
    assert set(errors) == {
        SchemaError(
            ("spec",),
            "E-SCHEMA-MISSING-FIELD",
            "spec: missing required fields 'tokenSha256', 'capabilities'",
        )
    }


def test_missing_top_level_field() -> None:
    errors = check("manifest-consumer", _without(CONSUMER, ("spec",)))
    assert errors == [
        SchemaError((), "E-SCHEMA-MISSING-FIELD", "document: missing required field 'spec'")
    ]


def test_type_error_names_expected_and_actual_types() -> None:
    errors = check("manifest-capability", _with(CAPABILITY, ("spec", "allow", "methods"), "GET"))
    assert errors == [
        SchemaError(
            ("spec", "allow", "methods"),
            "E-SCHEMA-TYPE",
            "spec.allow.methods: expected array, got string",
        )
    ]


@pytest.mark.parametrize(
    ("value", "actual"),
    [(True, "boolean"), (1.5, "number"), (None, "null"), ({}, "object"), ([], "array")],
)
def test_json_type_names(value: object, actual: str) -> None:
    errors = check("manifest-capability", _with(CAPABILITY, ("spec", "credential"), value))
    assert [e.message for e in errors] == [f"spec.credential: expected string, got {actual}"]


def test_list_indexes_are_shown_in_brackets() -> None:
    errors = check(
        "manifest-capability", _with(CAPABILITY, ("spec", "allow", "methods"), ["GET", "FETCH"])
    )
    assert errors == [
        SchemaError(
            ("spec", "allow", "methods", 1),
            "E-SCHEMA-INVALID",
            'spec.allow.methods[1]: must be one of: "GET", "HEAD", "POST", "PUT", "PATCH",'
            ' "DELETE", "OPTIONS"',
        )
    ]


def test_pattern_errors_never_echo_the_value() -> None:
    """A token pasted where its sha256 belongs must not be printed back."""
    secret = "avt_live_0123456789abcdef"
    errors = check("manifest-consumer", _with(CONSUMER, ("spec", "tokenSha256"), secret))
    assert errors == [
        SchemaError(
            ("spec", "tokenSha256"),
            "E-SCHEMA-INVALID",
            "spec.tokenSha256: invalid format: must be 64 lowercase hex characters (the sha256"
            " of the token, never the token)",
        )
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("apiVersion",), "Sk_Live Secret/Value"),
        (("metadata", "name"), "Sk_Live Secret/Value"),
        (("spec", "secretRef"), "Sk_Live Secret/Value"),
        (("spec", "provider"), "Sk_Live Secret/Value"),
        (("spec", "hosts"), ["Sk_Live Secret/Value"]),
        (("spec", "auth"), "Sk_Live Secret/Value"),
        (("spec", "description"), {"x": "Sk_Live Secret/Value"}),
    ],
)
def test_no_message_contains_a_string_value(path: tuple[str, ...], value: object) -> None:
    errors = check("manifest-credential", _with(CREDENTIAL, path, value))
    assert errors
    assert all("Sk_Live" not in e.message for e in errors)


def test_name_pattern_has_a_readable_hint() -> None:
    errors = check("manifest-credential", _with(CREDENTIAL, ("metadata", "name"), "My_API"))
    assert errors == [
        SchemaError(("metadata", "name"), "E-SCHEMA-INVALID", f"metadata.name: {NAME_HINT}")
    ]


def test_secret_ref_and_secret_refs_are_exclusive() -> None:
    document = _with(CREDENTIAL, ("spec", "secretRefs"), {"token": "secrets/x.sops.yaml#T"})
    assert check("manifest-credential", document) == [
        SchemaError(
            ("spec",), "E-SCHEMA-INVALID", "spec: use either secretRef or secretRefs, not both"
        )
    ]


def test_auth_with_an_unknown_form_names_it() -> None:
    document = _with(PROVIDER, ("spec", "auth"), {"bearer": {"token": "x"}})
    assert check("manifest-provider", document) == [
        SchemaError(
            ("spec", "auth", "bearer"),
            "E-SCHEMA-UNKNOWN-FIELD",
            "spec.auth: unknown form 'bearer' (one of: aws_sig_v4, header, hmac, multi_header,"
            " multi_query, o_auth2, path, query, or the strings basic / mtls)",
            at_key=True,
        )
    ]


@pytest.mark.parametrize("auth", [{"header": {}, "query": {}}, 42, "bearer"])
def test_auth_that_matches_no_form_gets_a_hint(auth: object) -> None:
    document = _with(PROVIDER, ("spec", "auth"), auth)
    assert check("manifest-provider", document) == [
        SchemaError(
            ("spec", "auth"),
            "E-SCHEMA-INVALID",
            "spec.auth: matches none of the allowed forms (auth is one of: header, query, path,"
            " multi_header, multi_query, o_auth2, aws_sig_v4, hmac with their fields, or the"
            " strings basic / mtls)",
        )
    ]


def test_a_typo_inside_a_form_is_one_error_in_that_form() -> None:
    auth = {"multi_query": [{"param_name": "k", "value_templat": "{{secret}}"}]}
    assert check("manifest-provider", _with(PROVIDER, ("spec", "auth"), auth)) == [
        SchemaError(
            ("spec", "auth", "multi_query", 0, "value_templat"),
            "E-SCHEMA-UNKNOWN-FIELD",
            "unknown field 'value_templat' in spec.auth.multi_query[0] (did you mean"
            " 'value_template'?) (allowed: param_name, value_template)",
            at_key=True,
        )
    ]


@pytest.mark.parametrize("auth", ["basic", "mtls"])
def test_string_auth_strategies(auth: str) -> None:
    assert check("manifest-provider", _with(PROVIDER, ("spec", "auth"), auth)) == []


def test_empty_and_duplicate_lists() -> None:
    empty = check("manifest-consumer", _with(CONSUMER, ("spec", "capabilities"), []))
    assert [e.message for e in empty] == ["spec.capabilities: must not be empty"]
    twice = check("manifest-consumer", _with(CONSUMER, ("spec", "capabilities"), ["a/*", "a/*"]))
    assert [e.message for e in twice] == ["spec.capabilities: has duplicate entries"]


def test_numeric_limits() -> None:
    document = _with(CAPABILITY, ("spec", "policy"), {"timeoutMs": 0, "rateLimitPerMinute": 0})
    assert sorted(e.message for e in check("manifest-capability", document)) == [
        "spec.policy.rateLimitPerMinute: 0 is less than the minimum of 1",
        "spec.policy.timeoutMs: 0 is less than the minimum of 1",
    ]


def test_booleans_are_not_integers() -> None:
    document = _with(CAPABILITY, ("spec", "policy"), {"timeoutMs": True})
    assert [e.message for e in check("manifest-capability", document)] == [
        "spec.policy.timeoutMs: expected integer, got boolean"
    ]


def test_huge_integers_are_checked_not_crashed_on() -> None:
    document = _with(CAPABILITY, ("spec", "policy"), {"timeoutMs": 10**40})
    assert [e.message for e in check("manifest-capability", document)] == [
        f"spec.policy.timeoutMs: {10**40} is greater than the maximum of 3600000"
    ]


def test_most_specific_errors_come_first() -> None:
    document = _with(_with(CAPABILITY, ("extra",), 1), ("spec", "allow", "methods"), ["NOPE"])
    errors = check("manifest-capability", document)
    assert [e.path for e in errors] == [("spec", "allow", "methods", 0), ("extra",)]


def test_project_recipients_must_be_age_or_ssh() -> None:
    document = _with(PROJECT, ("spec", "runtimeRecipients"), ["age1short", "ssh-ed25519 AAAA x"])
    errors = check("manifest-project", document)
    assert [(e.path, e.code) for e in errors] == [
        (("spec", "runtimeRecipients", 0), "E-SCHEMA-INVALID")
    ]


def test_environment_names_follow_the_name_rule() -> None:
    document = _with(PROJECT, ("spec", "environments"), {"Prod": {"values": {}}})
    errors = check("manifest-project", document)
    assert [e.code for e in errors] == ["E-SCHEMA-INVALID"]
    assert all("Prod" not in e.message for e in errors)


def test_capability_name_needs_a_provider_prefix() -> None:
    errors = check("manifest-capability", _with(CAPABILITY, ("metadata", "name"), "users"))
    assert [(e.path, e.code) for e in errors] == [(("metadata", "name"), "E-SCHEMA-INVALID")]
    assert (
        errors[0].message == "metadata.name: invalid format: must be <provider>/<name> in lowercase"
    )


def test_policy_schema_validates_a_minimal_policy_document() -> None:
    errors = check("policy", {})
    assert errors
    assert {e.code for e in errors} <= {
        "E-SCHEMA-MISSING-FIELD",
        "E-SCHEMA-TYPE",
        "E-SCHEMA-INVALID",
        "E-SCHEMA-UNKNOWN-FIELD",
    }


def test_schema_problem_is_one_line_naming_where_and_cut_when_long() -> None:
    signature = {"keyid": "0123456789abcdef", "alg": "ed25519", "sig": "A" * 86 + "=="}
    assert schema_problem("bundle-signatures", [signature]) is None
    bad = [signature, {**signature, "alg": "rsa"}]
    assert schema_problem("bundle-signatures", bad) == "[1].alg: 'ed25519' was expected"
    long_key = [{**signature, "keyid": "k" * 500}]
    problem = schema_problem("bundle-signatures", long_key)
    assert problem is not None and problem.startswith("[0].keyid: 'kkk")
    assert len(problem) == len("[0].keyid: ") + 200 + 1 and problem.endswith("…")
