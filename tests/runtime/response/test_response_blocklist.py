"""`responseBlocklist` through a real runtime: nested JSON, compressed JSON, non-JSON refused.

A capability with a blocklist never streams: the body is held (within
`maxResponseBodyBytes`), decoded, filtered, then the injected secrets are
redacted. Anything that cannot be filtered is a 502, never passed on.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from support.bundles import HOST, BundleFactory, policy
from support.response_runtime import (
    Served,
    audit_lines,
    envelope,
    passthrough,
    refusal,
    runtime_fixture,
    upstream_fixture,
)
from support.scripted_upstream import nested_document

from aivault_ops.errors import AivaultError
from aivault_ops.policy_document import CapabilityPolicy, PolicyCapability, PolicyDocument
from aivault_ops.runtime.auth.credential import CredentialRuntime
from aivault_ops.runtime.policy.capability import parse_capability
from aivault_ops.runtime.response.blocklist import Blocklist

BLOCKLIST = ["$.data[*].ssn", "$.token", "$..pan"]
LIMITS = {"responseBlocklist": BLOCKLIST, "maxResponseBodyBytes": 65536}


upstream = upstream_fixture()
runtime = runtime_fixture("blocklist", LIMITS)


def expected() -> dict[str, Any]:
    document = nested_document("key=[REDACTED]")
    for item in document["data"]:
        item["ssn"] = "[REDACTED]"
    document["data"][1]["card"]["pan"] = "[REDACTED]"
    document["token"] = "[REDACTED]"
    return document


@pytest.mark.parametrize("stream", ["0", "1"])
@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate", "br"])
def test_nested_json_is_filtered_in_passthrough(
    runtime: Served, encoding: str, stream: str
) -> None:
    response = passthrough(runtime, f"json?enc={encoding}&stream={stream}")
    assert response.status_code == 200, response.text
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == str(len(response.content))
    assert json.loads(response.content) == expected()


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_nested_json_is_filtered_in_the_envelope(runtime: Served, encoding: str) -> None:
    answer = envelope(runtime, f"json?enc={encoding}&stream=1")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert "content-encoding" not in {name.lower() for name in document["headers"]}
    assert json.loads(document["body"]) == expected()


@pytest.mark.parametrize("route", ["html", "notjson"])
def test_a_body_that_is_not_json_is_refused_never_passed_unfiltered(
    runtime: Served, route: str
) -> None:
    messages = {
        "html": "the upstream response is not JSON, and this capability redacts JSON paths",
        "notjson": "the upstream response is not valid JSON",
    }
    for response in (passthrough(runtime, route), envelope(runtime, route)):
        assert refusal(response, 502, "E-RESPONSE-NOT-JSON") == messages[route]
        line = audit_lines(runtime.root)[-1]
        assert (line["decision"], line["error"], line["status"]) == (
            "error",
            "E-RESPONSE-NOT-JSON",
            502,
        )


def test_an_undecodable_json_body_is_refused(runtime: Served) -> None:
    refusal(passthrough(runtime, "json?enc=compress"), 502, "E-RESPONSE-ENCODING")
    refusal(passthrough(runtime, "json?enc=x-gzip"), 502, "E-RESPONSE-ENCODING")


def test_the_body_limit_applies_before_filtering(runtime: Served) -> None:
    response = passthrough(runtime, "bomb?enc=gzip&mib=1")
    message = refusal(response, 502, "E-RESPONSE-TOO-LARGE")
    assert message == "the upstream response exceeds the limit of 65536 bytes"


def test_a_bad_blocklist_path_fails_the_load_and_the_old_bundle_keeps_serving(
    runtime: Served, factory: BundleFactory
) -> None:
    factory.publish(runtime.root / "bundles", 2, limits={"responseBlocklist": ["$[-1]"]})
    status = runtime.runtime.wait_error("bundle-2")
    assert status["serial"] == 1
    assert status["lastError"].endswith(
        "E-BUNDLE-POLICY: policy.json: capabilities.my-api/users.policy.responseBlocklist[0]:"
        " invalid format: must be a JSON path such as $.data[*].ssn or $.token"
    )
    assert passthrough(runtime, "json").json() == expected()


HOSTS = (HOST,)


class _Credential:
    name = "c"
    hosts = HOSTS


def _parse(rules: CapabilityPolicy) -> Any:
    credentials = cast("dict[str, CredentialRuntime]", {"c": _Credential()})
    spec = PolicyCapability("c", "custom", "manifest", ("GET",), ("/",), HOSTS, rules)
    return parse_capability("cap", spec, credentials)


def test_the_blocklist_is_compiled_once_when_the_policy_loads() -> None:
    compiled = _parse(CapabilityPolicy(response_blocklist=("$.a",))).response_blocklist
    assert compiled == Blocklist.compile(["$.a"])
    assert _parse(CapabilityPolicy()).response_blocklist is None
    assert _parse(CapabilityPolicy(response_blocklist=())).response_blocklist is None


def test_a_path_the_blocklist_parser_refuses_fails_the_policy() -> None:
    with pytest.raises(AivaultError) as caught:
        _parse(CapabilityPolicy(response_blocklist=("$.a", "a")))
    assert caught.value.message == (
        "policy: capability 'cap' responseBlocklist path 'a' must start with '$'"
    )


_WHERE = "policy.json: capabilities.my-api/users.policy.responseBlocklist"


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (
            ["$.a", "a"],
            f"{_WHERE}[1]: invalid format: must be a JSON path such as $.data[*].ssn or $.token",
        ),
        ("$.a", f"{_WHERE}: expected array, got string"),
        ([1], f"{_WHERE}[0]: expected string, got integer"),
    ],
)
def test_a_bad_blocklist_fails_the_policy(paths: Any, message: str) -> None:
    with pytest.raises(AivaultError) as caught:
        PolicyDocument.from_json(policy(limits={"responseBlocklist": paths}))
    assert caught.value.message == message
