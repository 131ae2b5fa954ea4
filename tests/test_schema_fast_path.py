"""The fast validator (fastjsonschema) and jsonschema must agree on every instance."""

from __future__ import annotations

import copy
from typing import Any

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
