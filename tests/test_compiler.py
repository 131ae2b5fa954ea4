"""The compiler, called directly: each section of policy.json from a hand-made resolved policy."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

import pytest

from aivault_ops import compiler
from aivault_ops.errors import AivaultError
from aivault_ops.manifests.model import SecretRef
from aivault_ops.policy_document import (
    POLICY_FORMAT,
    CapabilityPolicy,
    PolicyCapability,
    PolicyConsumer,
    PolicyCredential,
    PolicyDocument,
    PolicyProvider,
    PolicySecretFile,
    SecretLocation,
)
from aivault_ops.providers import AuthVariant, ProviderSpec
from aivault_ops.resolve.model import (
    ResolvedCapability,
    ResolvedConsumer,
    ResolvedCredential,
    ResolvedPolicy,
    SecretFile,
)

BEARER = {"header": {"header_name": "authorization", "value_template": "Bearer {{secret}}"}}
KEYS = "secrets/keys.sops.yaml"


def _provider(name: str, hosts: tuple[str, ...], source: str = "custom") -> ProviderSpec:
    return ProviderSpec(name, source, AuthVariant(None, BEARER, hosts, {"KEY": "secret"}))


def _file(path: str, bundle_path: str, names: tuple[str, ...]) -> SecretFile:
    return SecretFile(path, bundle_path, "yaml", "ab" * 32, names, ("age1x",))


def resolved(**changes: Any) -> ResolvedPolicy:
    """Two credentials over one SOPS file (of which each uses one name), one capability."""
    policy = ResolvedPolicy(
        project="acme",
        environment="prod",
        providers={
            "my-api": _provider("my-api", ("api.example.com",)),
            "shop": _provider("shop", ("*.myshop.test", "api.shop.test"), "registry"),
        },
        credentials={
            "my-api": ResolvedCredential(
                name="my-api",
                provider="my-api",
                hosts=("api.example.com",),
                auth=BEARER,
                secrets=MappingProxyType({"secret": SecretRef("vault/keys.sops.yaml", "API")}),
                upstream_path_prefix="",
            ),
            "shop": ResolvedCredential(
                name="shop",
                provider="shop",
                hosts=("acme.myshop.test",),
                auth="basic",
                secrets={
                    "username": SecretRef("vault/keys.sops.yaml", "SHOP_USER"),
                    "password": SecretRef("vault/keys.sops.yaml", "SHOP_PASS"),
                },
                upstream_path_prefix="/admin",
            ),
        },
        capabilities={
            "my-api/users": ResolvedCapability(
                name="my-api/users",
                credential="my-api",
                provider="my-api",
                source="manifest",
                methods=("POST", "GET"),
                path_prefixes=("/v1/users", "/v2/users"),
                hosts=("api.example.com",),
                policy=MappingProxyType({"timeoutMs": 1500, "responseBlocklist": ["$.token"]}),
            )
        },
        consumers={"agent": ResolvedConsumer("agent", "cd" * 32, ("my-api/*", "shop/orders"))},
        secret_files={
            "vault/keys.sops.yaml": _file(
                "vault/keys.sops.yaml", KEYS, ("API", "SHOP_PASS", "SHOP_USER", "UNUSED")
            )
        },
    )
    return dataclasses.replace(policy, **changes)


COMPILED = compiler.compile_policy(resolved())


def test_the_compiler_returns_the_typed_document() -> None:
    assert isinstance(COMPILED, PolicyDocument)
    assert (COMPILED.project, COMPILED.environment) == ("acme", "prod")
    assert COMPILED.to_json()["format"] == POLICY_FORMAT == "aivault-ops/policy@1"


def test_providers_keep_their_source_and_every_host() -> None:
    assert COMPILED.providers == {
        "my-api": PolicyProvider("custom", ("api.example.com",)),
        "shop": PolicyProvider("registry", ("*.myshop.test", "api.shop.test")),
    }


def test_credentials_name_their_secrets_by_bundle_path() -> None:
    assert COMPILED.credentials == {
        "my-api": PolicyCredential(
            "my-api", ("api.example.com",), BEARER, {"secret": SecretLocation(KEYS, "API")}, ""
        ),
        "shop": PolicyCredential(
            provider="shop",
            hosts=("acme.myshop.test",),
            auth="basic",
            secrets={
                "password": SecretLocation(KEYS, "SHOP_PASS"),
                "username": SecretLocation(KEYS, "SHOP_USER"),
            },
            upstream_path_prefix="/admin",
        ),
    }


def test_capabilities_sort_methods_and_type_their_policy() -> None:
    assert COMPILED.capabilities == {
        "my-api/users": PolicyCapability(
            credential="my-api",
            provider="my-api",
            source="manifest",
            methods=("GET", "POST"),
            path_prefixes=("/v1/users", "/v2/users"),
            hosts=("api.example.com",),
            policy=CapabilityPolicy(timeout_ms=1500, response_blocklist=("$.token",)),
        )
    }
    assert COMPILED.to_json()["capabilities"]["my-api/users"]["policy"] == {
        "timeoutMs": 1500,
        "responseBlocklist": ["$.token"],
    }


def test_consumers_keep_their_digest_and_globs() -> None:
    assert COMPILED.consumers == {"agent": PolicyConsumer("cd" * 32, ("my-api/*", "shop/orders"))}


def test_secret_files_list_only_the_names_the_policy_uses() -> None:
    assert COMPILED.secret_files == {
        KEYS: PolicySecretFile("ab" * 32, "yaml", ("API", "SHOP_PASS", "SHOP_USER"))
    }


def test_the_json_reads_back_as_the_same_document() -> None:
    assert PolicyDocument.from_json(COMPILED.to_json()) == COMPILED


def test_a_document_the_schema_refuses_is_an_internal_error() -> None:
    broken = resolved(consumers={"agent": ResolvedConsumer("agent", "not-a-digest", ("x",))})
    with pytest.raises(AivaultError) as caught:
        compiler.compile_policy(broken)
    assert caught.value.diagnostics() == (
        "internal error: compiled policy violates policy.schema.json:"
        " consumers.agent.tokenSha256: invalid format: must be 64 lowercase hex characters"
        " (the sha256 of the token, never the token)\n"
        "  hint: please report this with the manifests that produced it"
    )


def test_an_auth_the_schema_refuses_is_caught_at_compile_time() -> None:
    """The runtime leaves `auth` to its strategy; the compiler checks it fully."""
    credential = dataclasses.replace(resolved().credentials["my-api"], auth={"kerberos": {}})
    broken = resolved(credentials={**resolved().credentials, "my-api": credential})
    with pytest.raises(AivaultError) as caught:
        compiler.compile_policy(broken)
    assert caught.value.message.startswith(
        "internal error: compiled policy violates policy.schema.json: credentials.my-api.auth"
    )
