"""Capabilities: manifests, registry auto-provisioning, narrowing, alternatives, wildcards.

The resolver is pure: these tests load real manifests from a temporary project
but hand it a `SecretIndex` built in memory (no SOPS file is read).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.loader import load_project
from aivault_ops.manifests.model import SecretRef
from aivault_ops.providers import REGISTRY_DIR, builtin_registry
from aivault_ops.resolve.model import ResolvedPolicy, SecretFile
from aivault_ops.resolve.policy import resolve
from aivault_ops.resolve.secret_index import SecretIndex

RECIPIENT = "age1m0sp3e9uwng8v4q9ap7xyvvntt42fskc4620kc4qy5zz2xp47gpsrnrrsm"
PROJECT = f"""\
apiVersion: aivault.dev/v1
kind: Project
metadata: {{name: unit}}
spec:
  runtimeRecipients: [{RECIPIENT}]
"""
OPENAI_DEFAULT = [
    "openai/assistants",
    "openai/batch",
    "openai/chat-completions",
    "openai/embeddings",
    "openai/files",
    "openai/fine-tuning",
    "openai/image-generation",
    "openai/models",
    "openai/moderation",
    "openai/realtime",
    "openai/responses",
    "openai/speech",
    "openai/transcription",
    "openai/translation",
    "openai/uploads",
    "openai/vector-stores",
    "openai/videos",
]


def _index(files: dict[str, tuple[str, ...]]) -> SecretIndex:
    return SecretIndex(
        {
            path: SecretFile(path, path, "yaml", "0" * 64, names, (RECIPIENT,))
            for path, names in files.items()
        }
    )


def _credential(name: str, spec: str) -> str:
    return (
        f"apiVersion: aivault.dev/v1\nkind: Credential\nmetadata: {{name: {name}}}\nspec: {spec}\n"
    )


def _resolve(
    tmp_path: Path, manifests: str, secrets: dict[str, tuple[str, ...]]
) -> tuple[ResolvedPolicy | None, list[str]]:
    (tmp_path / "aivault-ops.yaml").write_text(PROJECT)
    (tmp_path / "manifests.yaml").write_text(manifests)
    report = Report()
    loaded = load_project(tmp_path, environment=None, report=report)
    policy = resolve(loaded, builtin_registry(), _index(secrets), report)
    return policy, [str(d) for d in report]


def _registry_capabilities(provider: str) -> list[dict[str, object]]:
    data = json.loads((REGISTRY_DIR / f"{provider}.json").read_text(encoding="utf-8"))
    capabilities: list[dict[str, object]] = data["capabilities"]
    return capabilities


def test_registry_credential_without_manifests_gets_every_default_capability(
    tmp_path: Path,
) -> None:
    policy, problems = _resolve(
        tmp_path,
        _credential("openai", "{provider: openai}"),
        {"secrets/openai.sops.yaml": ("OPENAI_API_KEY",)},
    )
    assert problems == []
    assert policy is not None
    assert sorted(policy.capabilities) == OPENAI_DEFAULT
    chat = policy.capabilities["openai/chat-completions"]
    assert (chat.credential, chat.provider, chat.source, chat.hosts) == (
        "openai",
        "openai",
        "registry",
        ("api.openai.com",),
    )
    registry_chat = next(
        c for c in _registry_capabilities("openai") if c["id"] == "openai/chat-completions"
    )
    allow = registry_chat["allow"]
    assert isinstance(allow, dict)
    assert chat.methods == tuple(sorted(allow["methods"]))
    assert chat.path_prefixes == tuple(allow["pathPrefixes"])
    assert dict(chat.policy) == {}
    credential = policy.credentials["openai"]
    assert dict(credential.secrets) == {
        "secret": SecretRef("secrets/openai.sops.yaml", "OPENAI_API_KEY")
    }
    assert credential.upstream_path_prefix == ""


@pytest.mark.parametrize(("provider", "count"), [("github", 9), ("slack", 21), ("trello", 17)])
def test_every_registry_capability_is_provisioned(
    tmp_path: Path, provider: str, count: int
) -> None:
    secret_names = tuple(builtin_registry().providers[provider].default.vault_secrets)
    policy, problems = _resolve(
        tmp_path,
        _credential(provider, f"{{provider: {provider}}}"),
        {"secrets/all.sops.yaml": secret_names},
    )
    assert problems == []
    assert policy is not None
    expected = sorted(str(c["id"]) for c in _registry_capabilities(provider))
    assert sorted(policy.capabilities) == expected
    assert len(expected) == count


def test_narrowing_keeps_only_the_listed_capabilities(tmp_path: Path) -> None:
    policy, problems = _resolve(
        tmp_path,
        _credential("openai", "{provider: openai, capabilities: [openai/models, openai/batch]}"),
        {"secrets/openai.sops.yaml": ("OPENAI_API_KEY",)},
    )
    assert problems == []
    assert policy is not None
    assert sorted(policy.capabilities) == ["openai/batch", "openai/models"]


def test_narrowing_to_an_unknown_capability_lists_the_available_ones(tmp_path: Path) -> None:
    _, problems = _resolve(
        tmp_path,
        _credential("github", "{provider: github, capabilities: [github/wiki]}"),
        {"secrets/gh.sops.yaml": ("GITHUB_TOKEN",)},
    )
    names = ", ".join(sorted(str(c["id"]) for c in _registry_capabilities("github")))
    assert problems == [
        f"manifests.yaml:4:41: E-CAPABILITY-UNKNOWN: 'github/wiki' is not a capability of this"
        f" credential's provider (available: {names})"
    ]


def test_capability_manifests_replace_auto_provisioning(tmp_path: Path) -> None:
    manifests = _credential("openai", "{provider: openai}") + (
        "---\napiVersion: aivault.dev/v1\nkind: Capability\nmetadata: {name: openai/chat-only}\n"
        "spec:\n  credential: openai\n  allow: {methods: [POST], pathPrefixes: [/v1/chat]}\n"
        "  policy: {rateLimitPerMinute: 5, timeoutMs: 1000, maxConcurrent: 4}\n"
    )
    policy, problems = _resolve(
        tmp_path, manifests, {"secrets/openai.sops.yaml": ("OPENAI_API_KEY",)}
    )
    assert problems == []
    assert policy is not None
    assert list(policy.capabilities) == ["openai/chat-only"]
    chat = policy.capabilities["openai/chat-only"]
    assert (chat.source, chat.methods, chat.path_prefixes, chat.hosts) == (
        "manifest",
        ("POST",),
        ("/v1/chat",),
        ("api.openai.com",),
    )
    assert dict(chat.policy) == {"rateLimitPerMinute": 5, "timeoutMs": 1000, "maxConcurrent": 4}


def test_a_manifest_with_a_registry_name_takes_precedence(tmp_path: Path) -> None:
    manifests = _credential("openai", "{provider: openai, capabilities: [openai/models]}") + (
        "---\napiVersion: aivault.dev/v1\nkind: Capability\nmetadata: {name: openai/models}\n"
        "spec:\n  credential: openai\n  allow: {methods: [GET], pathPrefixes: [/v1/models/gpt]}\n"
    )
    policy, problems = _resolve(
        tmp_path, manifests, {"secrets/openai.sops.yaml": ("OPENAI_API_KEY",)}
    )
    assert problems == []
    assert policy is not None
    models = policy.capabilities["openai/models"]
    assert (models.source, models.path_prefixes) == ("manifest", ("/v1/models/gpt",))


def test_the_codex_oauth_alternative_serves_only_its_capabilities(tmp_path: Path) -> None:
    policy, problems = _resolve(
        tmp_path,
        _credential("codex", "{provider: openai, alternative: codex-oauth}"),
        {"secrets/codex.sops.yaml": ("CODEX_OAUTH_JSON",)},
    )
    assert problems == []
    assert policy is not None
    assert sorted(policy.capabilities) == ["openai/codex-realtime", "openai/codex-responses"]
    assert {c.hosts for c in policy.capabilities.values()} == {("chatgpt.com",)}
    credential = policy.credentials["codex"]
    assert credential.hosts == ("chatgpt.com",)
    assert credential.upstream_path_prefix == "/backend-api/codex"
    assert dict(credential.secrets) == {
        "oauth": SecretRef("secrets/codex.sops.yaml", "CODEX_OAUTH_JSON")
    }
    assert credential.auth == {
        "multi_header": [
            {"header_name": "authorization", "value_template": "Bearer {{access_token}}"},
            {"header_name": "ChatGPT-Account-Id", "value_template": "{{account_id}}"},
        ]
    }


def test_the_codex_usage_alternative(tmp_path: Path) -> None:
    policy, problems = _resolve(
        tmp_path,
        _credential("usage", "{provider: openai, alternative: codex-oauth-usage}"),
        {"secrets/codex.sops.yaml": ("CODEX_OAUTH_JSON",)},
    )
    assert problems == []
    assert policy is not None
    assert list(policy.capabilities) == ["openai/codex-usage"]
    assert policy.credentials["usage"].upstream_path_prefix == "/backend-api"


def test_default_and_alternative_credentials_live_side_by_side(tmp_path: Path) -> None:
    manifests = (
        _credential("openai", "{provider: openai}")
        + "---\n"
        + _credential("codex", "{provider: openai, alternative: codex-oauth}")
    )
    policy, problems = _resolve(
        tmp_path,
        manifests,
        {"secrets/a.sops.yaml": ("OPENAI_API_KEY", "CODEX_OAUTH_JSON")},
    )
    assert problems == []
    assert policy is not None
    assert sorted(policy.capabilities) == sorted(
        [*OPENAI_DEFAULT, "openai/codex-realtime", "openai/codex-responses"]
    )
    assert policy.capabilities["openai/codex-responses"].credential == "codex"
    assert policy.capabilities["openai/models"].credential == "openai"


def test_a_capability_shared_with_an_alternative_stays_with_the_default(tmp_path: Path) -> None:
    policy, problems = _resolve(
        tmp_path,
        _credential("fal", "{provider: fal}"),
        {"secrets/fal.sops.yaml": ("FAL_KEY",)},
    )
    assert problems == []
    assert policy is not None
    assert list(policy.capabilities) == ["fal/image-to-3d"]


def test_a_wildcard_provider_host_is_bound_to_the_credential_tenant(tmp_path: Path) -> None:
    policy, problems = _resolve(
        tmp_path,
        _credential("shop", "{provider: shopify, hosts: [acme.myshopify.com]}"),
        {"secrets/shop.sops.yaml": ("SHOPIFY_ACCESS_TOKEN",)},
    )
    assert problems == []
    assert policy is not None
    assert policy.capabilities["shopify/admin"].hosts == ("acme.myshopify.com",)
    assert policy.credentials["shop"].hosts == ("acme.myshopify.com",)


def test_a_registry_capability_matching_two_tenant_hosts_is_ambiguous(tmp_path: Path) -> None:
    """One upstream host per capability: two tenants in one credential would leave the
    second unreachable, so validation names both and says what to do."""
    _, problems = _resolve(
        tmp_path,
        _credential(
            "shop", "{provider: shopify, hosts: [acme.myshopify.com, acme-eu.myshopify.com]}"
        ),
        {"secrets/shop.sops.yaml": ("SHOPIFY_ACCESS_TOKEN",)},
    )
    assert problems == [
        "manifests.yaml:3:18: E-HOST-AMBIGUOUS: registry capability 'shopify/admin' would reach"
        " 2 hosts of credential 'shop' (acme.myshopify.com, acme-eu.myshopify.com); use one"
        " credential per host (tenant) or narrow spec.capabilities"
    ]


def test_a_capability_manifest_may_narrow_to_one_concrete_host(tmp_path: Path) -> None:
    manifests = _credential(
        "shop", "{provider: shopify, hosts: [acme.myshopify.com, acme-eu.myshopify.com]}"
    ) + (
        "---\napiVersion: aivault.dev/v1\nkind: Capability\nmetadata: {name: shopify/orders-eu}\n"
        "spec:\n  credential: shop\n  allow:\n    methods: [GET]\n"
        "    pathPrefixes: [/admin/api/2024-01/orders]\n    hosts: [acme-eu.myshopify.com]\n"
    )
    policy, problems = _resolve(
        tmp_path, manifests, {"secrets/shop.sops.yaml": ("SHOPIFY_ACCESS_TOKEN",)}
    )
    assert problems == []
    assert policy is not None
    assert list(policy.capabilities) == ["shopify/orders-eu"]
    assert policy.capabilities["shopify/orders-eu"].hosts == ("acme-eu.myshopify.com",)


def test_a_capability_host_pattern_picks_the_credential_host_it_matches(tmp_path: Path) -> None:
    manifests = _credential("shop", "{provider: shopify, hosts: [acme.myshopify.com]}") + (
        "---\napiVersion: aivault.dev/v1\nkind: Capability\nmetadata: {name: shopify/all}\n"
        "spec:\n  credential: shop\n  allow:\n    methods: [GET]\n"
        "    pathPrefixes: [/admin/]\n    hosts: ['*.myshopify.com']\n"
    )
    policy, problems = _resolve(
        tmp_path, manifests, {"secrets/shop.sops.yaml": ("SHOPIFY_ACCESS_TOKEN",)}
    )
    assert problems == []
    assert policy is not None
    assert policy.capabilities["shopify/all"].hosts == ("acme.myshopify.com",)


def test_a_capability_host_pattern_matching_no_credential_host_is_refused(
    tmp_path: Path,
) -> None:
    manifests = _credential("shop", "{provider: shopify, hosts: [acme.myshopify.com]}") + (
        "---\napiVersion: aivault.dev/v1\nkind: Capability\nmetadata: {name: shopify/all}\n"
        "spec:\n  credential: shop\n  allow:\n    methods: [GET]\n"
        "    pathPrefixes: [/admin/]\n    hosts: ['*.shopify.com']\n"
    )
    _, problems = _resolve(
        tmp_path, manifests, {"secrets/shop.sops.yaml": ("SHOPIFY_ACCESS_TOKEN",)}
    )
    assert problems == [
        "manifests.yaml:14:13: E-HOST-OUTSIDE-PROVIDER: host '*.shopify.com' is not a host of"
        " credential 'shop' (acme.myshopify.com)"
    ]


def test_a_capability_without_hosts_on_a_two_host_credential_is_ambiguous(
    tmp_path: Path,
) -> None:
    manifests = _credential(
        "shop", "{provider: shopify, hosts: [acme.myshopify.com, acme-eu.myshopify.com]}"
    ) + (
        "---\napiVersion: aivault.dev/v1\nkind: Capability\nmetadata: {name: shopify/all}\n"
        "spec:\n  credential: shop\n  allow:\n    methods: [GET]\n"
        "    pathPrefixes: [/admin/]\n"
    )
    _, problems = _resolve(
        tmp_path, manifests, {"secrets/shop.sops.yaml": ("SHOPIFY_ACCESS_TOKEN",)}
    )
    assert problems == [
        "manifests.yaml:8:18: E-HOST-AMBIGUOUS: capability 'shopify/all' would reach 2 hosts of"
        " credential 'shop' (acme.myshopify.com, acme-eu.myshopify.com); a capability has one"
        " upstream host: name it in spec.allow.hosts"
    ]


def test_no_policy_when_anything_is_wrong(tmp_path: Path) -> None:
    policy, problems = _resolve(
        tmp_path, _credential("openai", "{provider: openai}"), {"secrets/x.sops.yaml": ()}
    )
    assert policy is None
    assert problems == [
        "manifests.yaml:4:18: E-SECRET-NOT-FOUND: no SOPS file in the project holds"
        " OPENAI_API_KEY; add it with `aivault-ops secrets set OPENAI_API_KEY` or set"
        " spec.secretRef"
    ]


def test_the_policy_keeps_only_used_providers_and_secret_files(tmp_path: Path) -> None:
    policy, problems = _resolve(
        tmp_path,
        _credential("gh", "{provider: github}"),
        {"secrets/gh.sops.yaml": ("GITHUB_TOKEN",), "secrets/unused.sops.yaml": ("OTHER",)},
    )
    assert problems == []
    assert policy is not None
    assert list(policy.providers) == ["github"]
    assert list(policy.secret_files) == ["secrets/gh.sops.yaml"]
    assert (policy.project, policy.environment) == ("unit", None)
