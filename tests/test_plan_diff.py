from __future__ import annotations

from aivault_ops.plan import Change, FieldChange, diff_policies, render_json, render_text

TOKEN_A, TOKEN_B = "a" * 64, "b" * 64


def test_token_hash_changes_are_named_not_shown() -> None:
    old = {"consumers": {"x": {"tokenSha256": TOKEN_A, "capabilities": ["c/*"]}}}
    new = {"consumers": {"x": {"tokenSha256": TOKEN_B, "capabilities": ["c/*"]}}}
    changes = diff_policies(old, new)
    assert changes == [
        Change("~", "consumer", "x", (FieldChange("tokenSha256", TOKEN_A, TOKEN_B),))
    ]
    assert render_text(changes).splitlines()[0] == "~ consumer x: tokenSha256 changed"
    assert render_json(changes, base=None)["changes"][0]["fields"] == [
        {"field": "tokenSha256", "changed": True}
    ]


def test_auth_is_compared_as_one_field() -> None:
    old = {
        "credentials": {
            "c": {"auth": {"header": {"header_name": "a", "value_template": "{{secret}}"}}}
        }
    }
    new = {"credentials": {"c": {"auth": "basic"}}}
    (change,) = diff_policies(old, new)
    assert [f.field for f in change.fields] == ["auth"]


def test_sections_come_in_pipeline_order() -> None:
    new = {
        "consumers": {"z": {}},
        "capabilities": {"p/c": {}},
        "credentials": {"c": {}},
        "providers": {"p": {}},
        "secretFiles": {"secrets/s.sops.yaml": {}},
    }
    assert [c.kind for c in diff_policies(None, new)] == [
        "provider",
        "credential",
        "capability",
        "consumer",
        "secret",
    ]


def test_empty_plan() -> None:
    assert render_text([]) == "No changes.\n"
