"""Loading a policy repo: discovery, SOPS files kept apart, typed manifests, templates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.discovery import discover
from aivault_ops.manifests.loader import LoadedProject, load_project
from aivault_ops.manifests.model import SecretRef

BASE = Path(__file__).resolve().parent.parent / "fixtures" / "base"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(BASE, root)
    return root


def _load(root: Path, environment: str | None = None) -> tuple[LoadedProject, list[str]]:
    report = Report()
    loaded = load_project(root, environment=environment, report=report)
    return loaded, [str(d) for d in report]


def test_discovery_sorts_manifests_and_secret_files(project: Path) -> None:
    (project / "README.md").write_text("# not a manifest\n")
    (project / "extra.yml").write_text("")
    (project / "secrets/notes.txt").write_text("x\n")
    (project / ".git").mkdir()
    (project / ".git/config.yaml").write_text("hidden: true\n")
    (project / ".hidden.yaml").write_text("hidden: true\n")
    files = discover(project)
    assert files.yaml_files == (
        "aivault-ops.yaml",
        "capabilities/internal-api.yaml",
        "consumers/agent.yaml",
        "credentials/internal-api.yaml",
        "credentials/openai.yaml",
        "extra.yml",
        "providers/internal-api.yaml",
    )
    assert files.secret_dir_files == (
        "secrets/internal.sops.yaml",
        "secrets/notes.txt",
        "secrets/openai.sops.yaml",
    )


def test_symlinked_directories_are_not_followed(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.yaml").write_text("a: 1\n")
    (project / "linked").symlink_to(outside, target_is_directory=True)
    assert "linked/x.yaml" not in discover(project).yaml_files


def test_the_base_project_loads_into_typed_manifests(project: Path) -> None:
    loaded, problems = _load(project)
    assert problems == []
    assert loaded.project is not None
    assert loaded.project.name == "fixture"
    assert loaded.project.runtime_recipients == (
        "age1m0sp3e9uwng8v4q9ap7xyvvntt42fskc4620kc4qy5zz2xp47gpsrnrrsm",
    )
    assert dict(loaded.project.environments["prod"]) == {"shop_host": "acme.myshopify.com"}
    assert [p.name for p in loaded.providers] == ["internal-api"]
    internal, openai = loaded.credentials
    assert dict(internal.secret_refs) == {
        None: SecretRef("secrets/internal.sops.yaml", "INTERNAL_API_KEY")
    }
    assert (internal.provider, internal.hosts, internal.capabilities) == ("internal-api", (), None)
    assert openai.capabilities == ("openai/chat-completions", "openai/models")
    assert dict(openai.secret_refs) == {}
    (capability,) = loaded.capabilities
    assert (capability.name, capability.methods, capability.hosts) == (
        "internal-api/users",
        ("GET", "POST"),
        ("api.internal.example.com",),
    )
    assert capability.policy["responseBlocklist"] == ["$.data[*].ssn", "$.token"]
    (consumer,) = loaded.consumers
    assert consumer.capabilities == ("internal-api/*", "openai/chat-completions")
    assert loaded.sops_yaml_files == ()  # files under secrets/ are never manifests


def test_manifests_remember_where_they_came_from(project: Path) -> None:
    loaded, _ = _load(project)
    capability = loaded.capabilities[0]
    assert str(capability.source.at("spec", "allow", "hosts", 0)) == (
        "capabilities/internal-api.yaml:10:13"
    )
    assert str(capability.source.at_key("spec", "policy")) == "capabilities/internal-api.yaml:11:3"


def test_sops_files_anywhere_are_kept_out_of_the_manifests(project: Path) -> None:
    shutil.copy(project / "secrets/openai.sops.yaml", project / "providers/stray.sops.yaml")
    loaded, problems = _load(project)
    assert problems == []
    assert "providers/stray.sops.yaml" in loaded.sops_yaml_files
    assert [p.name for p in loaded.providers] == ["internal-api"]


def test_a_sops_key_that_is_not_a_mapping_does_not_make_a_sops_file(project: Path) -> None:
    (project / "odd.yaml").write_text("sops: yes\n")
    loaded, problems = _load(project)
    assert "odd.yaml" not in loaded.sops_yaml_files
    assert problems == ["odd.yaml:1:1: E-API-VERSION: apiVersion must be 'aivault.dev/v1'"]


def test_a_bad_document_is_skipped_and_its_neighbours_load(project: Path) -> None:
    (project / "consumers/more.yaml").write_text(
        "apiVersion: aivault.dev/v1\nkind: Consumer\nmetadata: {name: bad}\nspec: {}\n"
        "---\n"
        "apiVersion: aivault.dev/v1\nkind: Consumer\nmetadata: {name: good}\n"
        "spec: {tokenSha256: " + "a" * 64 + ", capabilities: [openai/models]}\n"
    )
    loaded, problems = _load(project)
    assert [c.name for c in loaded.consumers] == ["agent", "good"]
    assert problems == [
        "consumers/more.yaml:4:7: E-SCHEMA-MISSING-FIELD: spec: missing required fields"
        " 'tokenSha256', 'capabilities'",
    ]


def test_a_syntax_error_skips_the_whole_file(project: Path) -> None:
    text = (project / "credentials/openai.yaml").read_text()
    (project / "credentials/openai.yaml").write_text(text + "---\n[unclosed\n")
    loaded, problems = _load(project)
    assert [c.name for c in loaded.credentials] == ["internal-api"]
    assert problems == [
        "credentials/openai.yaml:10:1: E-YAML-SYNTAX: invalid YAML: while parsing a flow"
        " sequence, did not find expected ',' or ']'"
    ]


def test_every_schema_error_of_a_document_is_reported(project: Path) -> None:
    (project / "consumers/agent.yaml").write_text(
        "apiVersion: aivault.dev/v1\nkind: Consumer\nmetadata: {name: Agent, team: x}\n"
        "spec:\n  tokenSha256: 12\n  capabilities: []\n"
    )
    loaded, problems = _load(project)
    assert loaded.consumers == ()
    assert problems == [
        "consumers/agent.yaml:3:18: E-SCHEMA-INVALID: metadata.name: invalid format: must be"
        " lowercase letters, digits and '-', starting with a letter or digit, at most 63"
        " characters",
        "consumers/agent.yaml:3:25: E-SCHEMA-UNKNOWN-FIELD: unknown field 'team' in metadata"
        " (allowed: annotations, labels, name)",
        "consumers/agent.yaml:5:16: E-SCHEMA-TYPE: spec.tokenSha256: expected string, got integer",
        "consumers/agent.yaml:6:17: E-SCHEMA-INVALID: spec.capabilities: must not be empty",
    ]


def test_templates_are_rendered_with_the_environment_values(project: Path) -> None:
    (project / "credentials/shop.yaml.j2").write_text(
        "apiVersion: aivault.dev/v1\nkind: Credential\nmetadata:\n  name: shop-{{ environment }}\n"
        "spec:\n  provider: shopify\n  hosts: [{{ shop_host }}]\n"
    )
    loaded, problems = _load(project, "staging")
    assert problems == []
    assert loaded.environment == "staging"
    shop = loaded.credentials[-1]
    assert (shop.name, shop.hosts) == ("shop-staging", ("acme-staging.myshopify.com",))
    assert str(shop.source.at("spec", "hosts", 0)) == "credentials/shop.yaml.j2:7:11"


def test_templates_see_the_project_even_when_it_sorts_after_them(project: Path) -> None:
    (project / "a.yml.j2").write_text(
        "apiVersion: aivault.dev/v1\nkind: Credential\nmetadata: {name: shop}\n"
        "spec: {provider: shopify, hosts: ['{{ shop_host }}']}\n"
    )
    loaded, problems = _load(project, "prod")
    assert problems == []
    shop = next(c for c in loaded.credentials if c.name == "shop")
    assert shop.hosts == ("acme.myshopify.com",)


def test_plain_yaml_is_never_rendered(project: Path) -> None:
    (project / "consumers/agent.yaml").write_text(
        (project / "consumers/agent.yaml").read_text().replace("agent", "agent-{{ x }}", 1)
    )
    _, problems = _load(project, "prod")
    assert problems == [
        "consumers/agent.yaml:4:9: E-SCHEMA-INVALID: metadata.name: invalid format: must be"
        " lowercase letters, digits and '-', starting with a letter or digit, at most 63"
        " characters"
    ]


def test_unknown_environment_lists_the_known_ones(project: Path) -> None:
    _, problems = _load(project, "qa")
    assert [p.split(": ", 2)[1:] for p in problems] == [
        [
            "E-ENV-UNKNOWN",
            "environment 'qa' is not defined in spec.environments (known: prod, staging)",
        ]
    ]


def test_unknown_environment_without_any_defined(project: Path) -> None:
    text = (project / "aivault-ops.yaml").read_text()
    (project / "aivault-ops.yaml").write_text(text.split("  environments:")[0])
    _, problems = _load(project, "prod")
    assert problems == [
        "aivault-ops.yaml:7:3: E-ENV-UNKNOWN: environment 'prod' is not defined in"
        " spec.environments (known: none defined)"
    ]


def test_without_a_project_templates_only_see_the_environment_name(project: Path) -> None:
    (project / "aivault-ops.yaml").unlink()
    (project / "credentials/shop.yaml.j2").write_text(
        "apiVersion: aivault.dev/v1\nkind: Credential\nmetadata: {name: shop-{{ environment }}}\n"
        "spec: {provider: shopify, hosts: ['{{ shop_host }}']}\n"
    )
    loaded, problems = _load(project, "prod")
    assert loaded.project is None
    assert problems == [
        "credentials/shop.yaml.j2:4:1: E-TEMPLATE: 'shop_host' is undefined (define it in the"
        " Project's environments.<env>.values and pass --env)"
    ]


def test_unreadable_text_is_reported_and_the_rest_loads(project: Path) -> None:
    (project / "credentials/bad.yaml").write_bytes(b"\xff\xfe\x00k")
    (project / "credentials/bad.yaml.j2").write_bytes(b"name: \xe9\n")
    loaded, problems = _load(project)
    assert problems == [
        "credentials/bad.yaml:1:1: E-FILE-READ: file is not UTF-8 text",
        "credentials/bad.yaml.j2:1:1: E-FILE-READ: file is not UTF-8 text",
    ]
    assert len(loaded.credentials) == 2


def test_a_directory_named_like_a_manifest_is_not_read(project: Path) -> None:
    (project / "odd.yaml").mkdir()
    _, problems = _load(project)
    assert problems == []
