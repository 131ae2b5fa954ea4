"""Manifest documents for the imperative verbs, and the files they go in."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

API_VERSION = "aivault.dev/v1"


def _document(kind: str, name: str, spec: dict[str, object]) -> dict[str, object]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def provider_document(
    name: str, *, hosts: Sequence[str], auth: dict[str, object] | str
) -> dict[str, object]:
    """A custom Provider: its hosts and how the secret is injected."""
    return _document("Provider", name, {"hosts": list(hosts), "auth": auth})


def credential_document(
    name: str,
    *,
    provider: str,
    secret_ref: str | None,
    auth: dict[str, object] | str | None = None,
    hosts: Sequence[str] = (),
) -> dict[str, object]:
    """A Credential; `auth`/`hosts` only where they override a registry provider's."""
    spec: dict[str, object] = {"provider": provider}
    if secret_ref is not None:
        spec["secretRef"] = secret_ref
    if auth is not None:
        spec["auth"] = auth
    if hosts:
        spec["hosts"] = list(hosts)
    return _document("Credential", name, spec)


def capability_document(
    name: str,
    *,
    credential: str,
    methods: Sequence[str],
    path_prefixes: Sequence[str],
    hosts: Sequence[str] = (),
    operations: Sequence[str] = (),
    copy_source_prefixes: Sequence[str] = (),
) -> dict[str, object]:
    """A Capability: methods, path prefixes and (optionally) hosts of one credential, and
    the `X-Amz-Target` operations and copy sources it allows."""
    allow: dict[str, object] = {
        "methods": list(dict.fromkeys(method.upper() for method in methods)),
        "pathPrefixes": list(dict.fromkeys(path_prefixes)),
    }
    if hosts:
        allow["hosts"] = list(dict.fromkeys(hosts))
    if operations:
        allow["operations"] = list(dict.fromkeys(operations))
    if copy_source_prefixes:
        allow["copySourcePrefixes"] = list(dict.fromkeys(copy_source_prefixes))
    return _document("Capability", name, {"credential": credential, "allow": allow})


def capability_file(name: str) -> str:
    """`my-api/users` → `capabilities/my-api-users.yaml`."""
    return f"capabilities/{name.replace('/', '-')}.yaml"


def credential_file(name: str) -> str:
    return f"credentials/{name}.yaml"


def provider_file(name: str) -> str:
    return f"providers/{name}.yaml"


def render(document: dict[str, object]) -> str:
    """The YAML text of one manifest, keys in the order built."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)
