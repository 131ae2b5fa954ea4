"""The loaded policy keeps nothing from the decoded policy JSON (nor from the typed
document made of it) and shares equal values."""

from __future__ import annotations

import gc
import json
from typing import Any

from aivault_ops.policy_document import PolicyDocument
from aivault_ops.runtime.policy.active import ActivePolicy
from aivault_ops.runtime.policy.shared_values import ValueTable, fresh_number, fresh_text
from aivault_ops.secret import Secret

FILE = "secrets/main.sops.yaml"
BEARER = {"header": {"header_name": "authorization", "value_template": "Bearer {{secret}}"}}


def _credential(key: str) -> dict[str, Any]:
    return {
        "provider": "custom",
        "hosts": ["api.example.com", "eu.example.com"],
        "auth": BEARER,
        "secrets": {"secret": {"file": FILE, "name": key}},
        "upstreamPathPrefix": "/base",
    }


def _capability(credential: str, prefix: str) -> dict[str, Any]:
    return {
        "credential": credential,
        "provider": "custom",
        "source": "manifest",
        "methods": ["GET", "POST"],
        "pathPrefixes": [prefix, "/v2/shared"],
        "hosts": ["api.example.com"],
        "policy": {
            "timeoutMs": 5000,
            "maxRequestBodyBytes": 100000,
            "maxResponseBodyBytes": 200000,
            "rateLimitPerMinute": 6000,
            "responseBlocklist": ["$.secret"],
        },
    }


def policy_json() -> str:
    """Serialized like a bundle's policy.json, so `json.loads` makes every object."""
    policy = {
        "format": "aivault-ops/policy@1",
        "project": "acme",
        "environment": "prod",
        "providers": {"custom": {"source": "custom", "hosts": ["api.example.com"]}},
        "credentials": {"one": _credential("KEY_ONE"), "two": _credential("KEY_TWO")},
        "capabilities": {
            f"{cred}/cap-{index}": _capability(cred, f"/v1/res-{index}")
            for cred in ("one", "two")
            for index in range(3)
        },
        "consumers": {"agent": {"tokenSha256": "ab" * 32, "capabilities": ["one/*", "two/cap-1"]}},
        "secretFiles": {},
    }
    return json.dumps(policy)


SECRETS = {(FILE, "KEY_ONE"): Secret("sk-one-0123456789"), (FILE, "KEY_TWO"): Secret("sk-two-0123")}
MANIFEST_JSON = '{"serial": 70000, "revision": "abc123", "environment": "prod"}'


def _decoded_objects(value: Any, found: dict[int, Any]) -> dict[int, Any]:
    found[id(value)] = value
    if isinstance(value, dict):
        for key, item in value.items():
            found[id(key)] = key
            _decoded_objects(item, found)
    elif isinstance(value, list):
        for item in value:
            _decoded_objects(item, found)
    return found


def _reachable(root: object) -> list[object]:
    seen: dict[int, object] = {}
    stack = [root]
    while stack:
        current = stack.pop()
        if id(current) in seen or isinstance(current, type):
            continue
        seen[id(current)] = current
        if type(current).__name__ in ("module", "function", "builtin_function_or_method"):
            continue
        stack.extend(gc.get_referents(current))
    return list(seen.values())


def _shared_by_interpreter(value: object) -> bool:
    """Objects CPython shares itself (None, booleans, small ints, 0-1 character strings,
    the empty tuple)."""
    if value is None or isinstance(value, bool) or value == ():
        return True
    if isinstance(value, int):
        return -5 <= value <= 256
    return isinstance(value, str) and len(value) <= 1


def test_the_policy_keeps_no_object_of_the_decoded_json() -> None:
    """A kept JSON string would pin its allocator arena, and with it the whole document;
    so would an object of the typed document built from it."""
    policy, manifest = json.loads(policy_json()), json.loads(MANIFEST_JSON)
    document = PolicyDocument.from_json(policy)
    built = ActivePolicy.build(manifest=manifest, policy=document, keyid="k" * 16, secrets=SECRETS)
    decoded = _decoded_objects(manifest, _decoded_objects(policy, {}))
    decoded.update((id(value), value) for value in _reachable(document))
    kept = [
        value
        for value in _reachable(built)
        if id(value) in decoded
        and decoded[id(value)] is value
        and not _shared_by_interpreter(value)
    ]
    assert kept == []
    assert built.counts()["capabilities"] == 6


def test_equal_values_are_one_object_across_capabilities() -> None:
    built = ActivePolicy.build(
        manifest=json.loads(MANIFEST_JSON),
        policy=PolicyDocument.from_json(json.loads(policy_json())),
        keyid="k" * 16,
        secrets=SECRETS,
    )
    caps = list(built._capabilities.values())
    for attribute in ("methods", "host", "timeout_s", "max_request_body_bytes"):
        assert len({id(getattr(cap, attribute)) for cap in caps}) == 1, attribute
    assert len({id(cap.response_blocklist) for cap in caps}) == 1
    assert caps[0].prefixes[1] is caps[1].prefixes[1]
    assert caps[0].prefixes[0] is not caps[1].prefixes[0]
    one, two = built._credentials["one"], built._credentials["two"]
    assert one.header_policy is two.header_policy
    assert one.header_filter is two.header_filter
    assert one.redactor is not two.redactor


def test_fresh_copies_are_equal_new_objects() -> None:
    text = "".join(["api-", "0/cap-7"])
    number = int("70000")
    assert fresh_text(text) == text
    assert fresh_text(text) is not text
    assert fresh_text("\ud800 lone surrogate") == "\ud800 lone surrogate"
    assert fresh_number(number) == number
    assert fresh_number(number) is not number


def test_a_table_returns_one_copy_per_value() -> None:
    table = ValueTable()
    first = table.text("".join(["GE", "T"]))
    assert table.text("".join(["G", "ET"])) is first
    assert table.texts(["GET", "POST"]) is table.texts(("GET", "POST"))
    assert table.share(frozenset({"a", "b"})) is table.share(frozenset({"b", "a"}))
    assert table.share(1.0) is not table.share(1)
    built = [table.get("key", object) for _ in range(2)]
    assert built[0] is built[1]
