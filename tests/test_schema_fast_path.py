"""The fast validator (fastjsonschema, `$ref`s inlined) and jsonschema must agree."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aivault_ops import schema_check

VALID = {
    "manifest-capability": {
        "apiVersion": "aivault.dev/v1",
        "kind": "Capability",
        "metadata": {"name": "my-api/users"},
        "spec": {
            "credential": "my-api",
            "allow": {
                "methods": ["GET"],
                "pathPrefixes": ["/v1/users"],
                "hosts": ["a.example.com"],
            },
            "policy": {"rateLimitPerMinute": 60, "responseBlocklist": ["$.data[*].ssn"]},
        },
    },
    "manifest-credential": {
        "apiVersion": "aivault.dev/v1",
        "kind": "Credential",
        "metadata": {"name": "shop"},
        "spec": {
            "provider": "shopify",
            "hosts": ["acme.myshopify.com"],
            "capabilities": ["shopify/admin"],
        },
    },
    "manifest-provider": {
        "apiVersion": "aivault.dev/v1",
        "kind": "Provider",
        "metadata": {"name": "my-api"},
        "spec": {
            "hosts": ["*.example.com"],
            "auth": {"multi_header": [{"header_name": "x-a", "value_template": "{{secret}}"}]},
            "vaultSecrets": {"MY_KEY": "secret"},
        },
    },
    "manifest-consumer": {
        "apiVersion": "aivault.dev/v1",
        "kind": "Consumer",
        "metadata": {"name": "agent"},
        "spec": {"tokenSha256": "ab" * 32, "capabilities": ["my-api/*"]},
    },
    "policy": {
        "format": "aivault-ops/policy@1",
        "project": "fixture",
        "environment": None,
        "providers": {"my-api": {"source": "custom", "hosts": ["a.example.com"]}},
        "credentials": {
            "my-api": {
                "provider": "my-api",
                "hosts": ["a.example.com"],
                "auth": {
                    "header": {"header_name": "authorization", "value_template": "{{secret}}"}
                },
                "secrets": {"secret": {"file": "secrets/a.sops.yaml", "name": "MY_KEY"}},
                "upstreamPathPrefix": "",
            }
        },
        "capabilities": {
            "my-api/users": {
                "credential": "my-api",
                "provider": "my-api",
                "source": "manifest",
                "methods": ["GET", "POST"],
                "pathPrefixes": ["/v1/users"],
                "hosts": ["a.example.com"],
                "policy": {"timeoutMs": 5000, "responseBlocklist": ["$.token"]},
            }
        },
        "consumers": {"agent": {"tokenSha256": "ab" * 32, "capabilities": ["my-api/*"]}},
        "secretFiles": {
            "secrets/a.sops.yaml": {"sha256": "cd" * 32, "format": "yaml", "names": ["MY_KEY"]}
        },
    },
}

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.sampled_from(["", "GET", "x", "/v1", "*", "$.a"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "hosts", "header"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@settings(max_examples=300, deadline=None)
@given(
    schema=st.sampled_from(sorted(VALID)),
    data=st.data(),
    replacement=JSON_VALUES,
    delete=st.booleans(),
)
def test_fast_and_full_validators_agree(
    schema: str, data: st.DataObject, replacement: Any, delete: bool
) -> None:
    instance = copy.deepcopy(VALID[schema])
    path = data.draw(st.sampled_from(_paths(instance)[1:]))
    parent = instance
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    full = list(schema_check.validator(schema).iter_errors(instance))
    assert schema_check.is_valid(schema, instance) == (not full)


def test_the_valid_examples_are_valid() -> None:
    for schema, instance in VALID.items():
        assert schema_check.is_valid(schema, instance)
        assert schema_check.check(schema, instance) == []


def test_inlining_replaces_every_ref_across_files() -> None:
    schemas = schema_check._schemas_by_id()
    inlined = schema_check.inline_refs(f"{schema_check._BASE}policy.schema.json", schemas)
    assert "$ref" not in repr(inlined)
    assert "$defs" not in inlined
    capability = inlined["properties"]["capabilities"]["additionalProperties"]
    host_pattern = capability["properties"]["hosts"]["items"]["pattern"]
    registry = schemas[f"{schema_check._BASE}registry-provider.schema.json"]
    assert host_pattern == registry["$defs"]["host"]["pattern"]


@pytest.mark.parametrize(
    "schema",
    [
        {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {"$defs": {"a": {"type": "string"}}, "$ref": "#/$defs/a", "minLength": 1},
    ],
)
def test_recursive_refs_and_refs_with_siblings_are_not_inlined(schema: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="cannot inline"):
        schema_check.inline_refs("https://x.test/s.json", {"https://x.test/s.json": schema})
