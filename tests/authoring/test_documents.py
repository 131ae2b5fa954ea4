"""Manifest documents of the imperative verbs, and their file names."""

from __future__ import annotations

import yaml

from aivault_ops.authoring import documents


def test_capability_file_replaces_the_slash() -> None:
    assert documents.capability_file("my-api/users") == "capabilities/my-api-users.yaml"


def test_capability_document_dedupes_and_upper_cases_methods() -> None:
    doc = documents.capability_document(
        "my-api/users", credential="my-api", methods=["get", "POST", "GET"], path_prefixes=["/v1"]
    )
    assert yaml.safe_load(documents.render(doc)) == {
        "apiVersion": "aivault.dev/v1",
        "kind": "Capability",
        "metadata": {"name": "my-api/users"},
        "spec": {
            "credential": "my-api",
            "allow": {"methods": ["GET", "POST"], "pathPrefixes": ["/v1"]},
        },
    }


def test_credential_document_keeps_only_given_overrides() -> None:
    doc = documents.credential_document("c", provider="p", secret_ref="s.sops.yaml#K")
    assert doc["spec"] == {"provider": "p", "secretRef": "s.sops.yaml#K"}


def test_provider_document_and_overrides() -> None:
    auth = {"query": {"param_name": "key"}}
    provider = documents.provider_document("p", hosts=["a.example"], auth=auth)
    assert provider["spec"] == {"hosts": ["a.example"], "auth": auth}
    assert documents.provider_file("p") == "providers/p.yaml"
    credential = documents.credential_document(
        "c", provider="openai", secret_ref=None, auth="basic", hosts=["b.example"]
    )
    assert credential["spec"] == {"provider": "openai", "auth": "basic", "hosts": ["b.example"]}
    assert documents.credential_file("c") == "credentials/c.yaml"


def test_capability_hosts_are_kept_once() -> None:
    doc = documents.capability_document(
        "p/c", credential="c", methods=["GET"], path_prefixes=["/"], hosts=["h", "h"]
    )
    spec = doc["spec"]
    assert isinstance(spec, dict) and spec["allow"]["hosts"] == ["h"]
