"""`plan --explain`: the decisions that flip, from test cases and from probes."""

from __future__ import annotations

import copy
from typing import Any

from support.bundles import policy

from aivault_ops.policy_check.decide import Ask
from aivault_ops.policy_check.explain import changed_capabilities, explain, probes, render_text
from aivault_ops.policy_document import PolicyDocument


def document(
    change: dict[str, Any] | None = None, grants: list[str] | None = None
) -> PolicyDocument:
    data = policy()
    data["capabilities"]["my-api/users"].update(change or {})
    if grants is not None:
        data["consumers"]["bystander"]["capabilities"] = grants
    return PolicyDocument.from_json(copy.deepcopy(data))


def lines(before: PolicyDocument | None, after: PolicyDocument, cases: list[Ask] = []) -> list[str]:  # noqa: B006
    return [flip.line() for flip in explain(before, after, cases)]


def test_an_added_method_flips_the_probes_of_that_method() -> None:
    after = document({"methods": ["DELETE", "GET", "POST"]})
    assert lines(document(), after) == [
        "consumer agent: DELETE /v1/users on my-api/users: deny -> allow"
        " (was E-METHOD-NOT-ALLOWED)",
    ]


def test_a_test_case_flip_is_listed_with_its_origin() -> None:
    case = Ask("agent", "DELETE", "/v1/users/7", capability="my-api/users")
    flips = explain(document(), document({"methods": ["DELETE", "GET", "POST"]}), [case])
    assert next((f.origin, f.before.verdict, f.after.verdict) for f in flips) == (
        "test",
        "deny",
        "allow",
    )
    assert flips[0].to_json()["request"] == "DELETE /v1/users/7 on my-api/users"


def test_a_removed_prefix_and_a_new_grant_both_show() -> None:
    before = document({"pathPrefixes": ["/v1/items", "/v1/users"]})
    after = document(grants=["my-api/users"])
    assert lines(before, after) == [
        "consumer agent: GET /v1/items on my-api/users: allow -> deny (now E-PATH-NOT-ALLOWED)",
        "consumer agent: POST /v1/items on my-api/users: allow -> deny (now E-PATH-NOT-ALLOWED)",
        "consumer bystander: GET /v1/users on my-api/users: deny -> allow (was E-FORBIDDEN)",
        "consumer bystander: POST /v1/users on my-api/users: deny -> allow (was E-FORBIDDEN)",
    ]


def test_nothing_changed_nothing_flips() -> None:
    assert changed_capabilities(document(), document()) == set()
    assert render_text([]) == "Decisions: no tested or probed request changes its verdict\n"


def test_against_nothing_published_every_allowed_probe_flips() -> None:
    flips = explain(None, document())
    assert {f.before.code for f in flips} == {"E-NO-POLICY"}
    assert render_text(flips).startswith(
        f"Decisions that change ({len(flips)}):\n  consumer agent: GET /v1/users"
    )


def test_probes_cover_methods_prefixes_a_sibling_and_a_method_not_allowed() -> None:
    after = document({"pathPrefixes": ["/v1/users", "/v2/"]})
    asked = [(a.method, a.path) for a in probes(None, after, "my-api/users")]
    assert asked == [
        ("GET", "/v1/users"), ("POST", "/v1/users"), ("GET", "/v2/aivault-probe"),
        ("POST", "/v2/aivault-probe"), ("GET", "/v1/aivault-probe"), ("GET", "/aivault-probe"),
        ("DELETE", "/v1/users"),
    ]  # fmt: skip


def test_the_text_stops_at_a_limit_and_says_how_many_more() -> None:
    flips = explain(None, document({"pathPrefixes": ["/a", "/b", "/c"]}))
    text = render_text(flips, limit=2).splitlines()
    assert len(text) == 4
    assert text[-1] == f"  … and {len(flips) - 2} more (--json lists every one)"
