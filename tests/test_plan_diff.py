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


def test_removed_unchanged_and_changed_objects() -> None:
    old = {"providers": {"gone": {"hosts": ["a"]}, "same": {"hosts": ["b"]}, "moved": {"n": 1}}}
    new = {"providers": {"same": {"hosts": ["b"]}, "moved": {"n": 2}}}
    assert diff_policies(old, new) == [
        Change("-", "provider", "gone"),
        Change("~", "provider", "moved", (FieldChange("n", 1, 2),)),
    ]


def test_nested_fields_are_flattened_and_named_as_in_manifests() -> None:
    old = {"capabilities": {"c": {"methods": ["GET"], "policy": {}, "hosts": ["a.example"]}}}
    new = {
        "capabilities": {
            "c": {
                "methods": ["GET", "POST"],
                "policy": {"timeoutMs": 5000, "rateLimit": {"perMinute": 60}},
                "hosts": ["a.example"],
            }
        }
    }
    (change,) = diff_policies(old, new)
    assert [f.field for f in change.fields] == [
        "allow.methods",
        "policy.rateLimit.perMinute",
        "policy.timeoutMs",
    ]
    assert render_text([change]) == (
        "~ capability c: allow.methods [GET] → [GET, POST];"
        " policy.rateLimit.perMinute (unset) → 60; policy.timeoutMs (unset) → 5000\n"
        "Plan: 0 to add, 1 to change, 0 to remove.\n"
    )


def test_values_are_shown_short_digests_cut_in_field_order() -> None:
    digest = "0123456789abcdef" * 4
    old = {"secretFiles": {"s": {"sha256": digest, "format": "yaml", "names": ["A"], "x": True}}}
    new = {"secretFiles": {"s": {"sha256": "f" * 64, "format": "json", "names": [], "x": None}}}
    (change,) = diff_policies(old, new)
    assert render_text([change]).splitlines()[0] == (
        "~ secret s: format yaml → json; names [A] → [];"
        " content 0123456789ab… → ffffffffffff…; x true → (unset)"
    )
    fields = render_json([change], base={"bundle": "bundle-1.tar.gz"})
    assert fields["base"] == {"bundle": "bundle-1.tar.gz"}
    assert fields["changes"][0]["fields"][2] == {"field": "content", "old": digest, "new": "f" * 64}
