"""The resolved policy: every reference checked, every default filled in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aivault_ops.manifests.model import SecretRef
from aivault_ops.providers import ProviderSpec


@dataclass(frozen=True)
class SecretFile:
    """A SOPS file as the compiler sees it, without any private key."""

    path: str  # project-relative
    bundle_path: str  # its entry name inside the bundle (always under secrets/)
    format: str
    sha256: str
    names: tuple[str, ...]
    recipients: tuple[str, ...]
    unencrypted_names: tuple[str, ...] = ()  # kept in plaintext by the file's own rules
    unencrypted_rule: str | None = None  # e.g. "unencrypted_suffix"
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> mapping keys


@dataclass(frozen=True)
class ResolvedCredential:
    name: str
    provider: str
    hosts: tuple[str, ...]
    auth: Any
    secrets: Mapping[str, SecretRef]  # placeholder -> where the value lives
    upstream_path_prefix: str


@dataclass(frozen=True)
class ResolvedCapability:
    name: str
    credential: str
    provider: str
    source: str  # "manifest" | "registry"
    methods: tuple[str, ...]
    path_prefixes: tuple[str, ...]
    hosts: tuple[str, ...]
    policy: Mapping[str, Any]
    operations: tuple[str, ...] = ()  # allowed X-Amz-Target values
    copy_source_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedConsumer:
    name: str
    token_sha256: str
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class ResolvedPolicy:
    project: str
    environment: str | None
    providers: Mapping[str, ProviderSpec]  # only those used by a credential
    credentials: Mapping[str, ResolvedCredential]
    capabilities: Mapping[str, ResolvedCapability]
    consumers: Mapping[str, ResolvedConsumer]
    secret_files: Mapping[str, SecretFile]  # project-relative path -> file, only those used
