"""`scaffold_files`: the manifests `init` writes, as data."""

from __future__ import annotations

import re

import yaml

from aivault_ops.scaffold import ScaffoldInput, scaffold_files

RECIPIENT = "age1" + "q" * 58
TOKEN_SHA = "ab" * 32


def documents(files: dict[str, str]) -> dict[str, dict[str, object]]:
    return {path: yaml.safe_load(text) for path, text in files.items()}


def test_every_kind_is_written_once_for_the_given_project_and_recipient() -> None:
    parsed = documents(scaffold_files(ScaffoldInput("acme", RECIPIENT, None, TOKEN_SHA)))
    kinds = {path: doc.get("kind") for path, doc in parsed.items()}
    assert kinds == {
        "aivault-ops.yaml": "Project",
        ".sops.yaml": None,
        "providers/example-api.yaml": "Provider",
        "credentials/example-api.yaml": "Credential",
        "capabilities/example-api.yaml": "Capability",
        "consumers/agent.yaml": "Consumer",
    }
    project = parsed["aivault-ops.yaml"]
    assert project["metadata"] == {"name": "acme"}
    assert project["spec"] == {"runtimeRecipients": [RECIPIENT]}
    assert parsed["consumers/agent.yaml"]["spec"]["tokenSha256"] == TOKEN_SHA


def test_the_signing_key_is_trusted_only_when_given() -> None:
    public = "ed25519:" + "A" * 43 + "="
    parsed = documents(scaffold_files(ScaffoldInput("acme", RECIPIENT, public, TOKEN_SHA)))
    assert parsed["aivault-ops.yaml"]["spec"]["trustedSigningKeys"] == [public]


def test_the_sops_rule_covers_the_example_secret_and_encrypts_to_the_recipient() -> None:
    files = scaffold_files(ScaffoldInput("acme", RECIPIENT, None, TOKEN_SHA))
    [rule] = yaml.safe_load(files[".sops.yaml"])["creation_rules"]
    assert rule["age"] == RECIPIENT
    credential = yaml.safe_load(files["credentials/example-api.yaml"])
    secret_file = credential["spec"]["secretRef"].split("#")[0]
    assert re.search(rule["path_regex"], secret_file)
    assert not re.search(rule["path_regex"], "providers/example-api.yaml")
