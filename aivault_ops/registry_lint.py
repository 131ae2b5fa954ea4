"""aivault's rules for provider JSON files, as pure checks over parsed files.

The same rules hold for the built-in `registry/` shipped with the package
and for a policy repo's own `registry/` directory:

- the file validates against `schemas/registry-provider.schema.json` and
  its `$schema` names that schema (`./schemas/…` or `../schemas/…`);
- the file is named `<provider>.json`; a provider is defined once;
- every `hosts`, `allow.hosts`, `allow.methods` and `allow.pathPrefixes` list
  is non-empty, sorted, and free of duplicates;
- capabilities are sorted by id, ids are unique across all files, and each
  capability's `provider` is the file's provider;
- each auth (default and alternatives) names exactly one strategy;
- every host can be a public upstream, and a wildcard is a leading `*.`
  before at least two labels (as for Provider manifests).

`aivault_ops/commands/registry.py` reads the files; this module only judges.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from aivault_ops import schema_check
from aivault_ops.diagnostics import Diagnostic, Location
from aivault_ops.manifests.yaml_positions import JsonPath, Positions
from aivault_ops.resolve.auth_config import HMAC_ALGORITHMS
from aivault_ops.resolve.public_hosts import host_rule_broken

SCHEMA_REFS = frozenset(
    {"./schemas/registry-provider.schema.json", "../schemas/registry-provider.schema.json"}
)
SORTED_LISTS = ("hosts", "methods", "pathPrefixes")


@dataclass(frozen=True)
class ProviderFile:
    """One parsed provider file: its display path, data and value positions."""

    path: str
    data: Any
    positions: Positions

    def at(self, path: JsonPath, code: str, message: str) -> Diagnostic:
        """A diagnostic at the value `path` points to."""
        line, column = self.positions.of(path)
        return Diagnostic(Location(self.path, line, column), code, message)


def lint(files: Sequence[ProviderFile]) -> list[Diagnostic]:
    """Every rule broken by `files`, sorted by file and position."""
    found: list[Diagnostic] = []
    for file in files:
        schema_errors = schema_check.check("registry-provider", file.data)
        found += [file.at(e.path, e.code, e.message) for e in schema_errors]
        if isinstance(file.data, dict):
            found += _file_rules(file)
    found += _across_files(files)
    return sorted(set(found))


def _file_rules(file: ProviderFile) -> Iterator[Diagnostic]:
    data = file.data
    if data.get("$schema") not in SCHEMA_REFS:
        yield file.at(
            ("$schema",),
            "E-REGISTRY-SCHEMA-REF",
            "$schema must be ./schemas/registry-provider.schema.json"
            " (or ../schemas/… from a registry/ folder next to schemas/)",
        )
    provider = data.get("provider")
    expected = f"{provider}.json"
    if isinstance(provider, str) and PurePosixPath(file.path).name != expected:
        yield file.at(
            ("provider",), "E-REGISTRY-FILE-NAME", f"provider {provider!r} belongs in {expected}"
        )
    yield from _sorted_list(file, ("hosts",))
    for index, alternative in enumerate(_list(data.get("credentialAlternatives"))):
        yield from _sorted_list(file, ("credentialAlternatives", index, "hosts"))
        yield from _one_strategy(file, ("credentialAlternatives", index, "auth"), alternative)
    yield from _one_strategy(file, ("auth",), data)
    yield from _capabilities(file, provider)


def _capabilities(file: ProviderFile, provider: Any) -> Iterator[Diagnostic]:
    capabilities = _list(file.data.get("capabilities"))
    ids = [c.get("id") for c in capabilities if isinstance(c, dict)]
    textual = [i for i in ids if isinstance(i, str)]
    if textual != sorted(textual):
        yield file.at(("capabilities",), "E-REGISTRY-UNSORTED", "capabilities must be sorted by id")
    for index, capability in enumerate(capabilities):
        if not isinstance(capability, dict):
            continue
        if capability.get("provider") != provider:
            yield file.at(
                ("capabilities", index, "provider"),
                "E-REGISTRY-CAPABILITY-PROVIDER",
                f"capability {capability.get('id')!r} must name provider {provider!r}",
            )
        for key in SORTED_LISTS:
            yield from _sorted_list(file, ("capabilities", index, "allow", key))


def _sorted_list(file: ProviderFile, path: JsonPath) -> Iterator[Diagnostic]:
    value = _get(file.data, path)
    if not isinstance(value, list):
        return
    name = ".".join(str(part) for part in path)
    if not value:
        yield file.at(path, "E-REGISTRY-EMPTY", f"{name} must not be empty")
    elif len(set(map(str, value))) != len(value):
        yield file.at(path, "E-REGISTRY-DUPLICATE", f"{name} lists a value twice")
    elif [str(v) for v in value] != sorted(str(v) for v in value):
        yield file.at(path, "E-REGISTRY-UNSORTED", f"{name} must be sorted")
    if path[-1] == "hosts":
        yield from _host_rules(file, path, value)


def _host_rules(file: ProviderFile, path: JsonPath, hosts: list[Any]) -> Iterator[Diagnostic]:
    for index, host in enumerate(hosts):
        if not isinstance(host, str):
            continue
        broken = host_rule_broken(host)
        if broken is not None:
            yield file.at((*path, index), *broken)


def _one_strategy(file: ProviderFile, path: JsonPath, holder: Any) -> Iterator[Diagnostic]:
    if not isinstance(holder, dict) or "auth" not in holder:
        return
    auth = holder["auth"]
    if isinstance(auth, dict) and isinstance(auth.get("hmac"), dict):
        algorithm = auth["hmac"].get("algorithm")
        if algorithm not in HMAC_ALGORITHMS:
            yield file.at(
                (*path, "hmac", "algorithm"),
                "E-AUTH-ALGORITHM",
                f"hmac algorithm {algorithm!r} is not supported; use sha256 or sha512 (lower case)",
            )
    if isinstance(auth, str) or (isinstance(auth, dict) and len(auth) == 1):
        return
    yield file.at(path, "E-REGISTRY-AUTH", "auth must name exactly one strategy")


def _across_files(files: Sequence[ProviderFile]) -> Iterator[Diagnostic]:
    providers: dict[str, str] = {}
    capability_ids: dict[str, str] = {}
    for file in files:
        data = file.data if isinstance(file.data, dict) else {}
        provider = data.get("provider")
        if isinstance(provider, str):
            if provider in providers:
                yield file.at(
                    ("provider",),
                    "E-REGISTRY-DUPLICATE-PROVIDER",
                    f"provider {provider!r} is already defined in {providers[provider]}",
                )
            providers.setdefault(provider, file.path)
        for index, capability in enumerate(_list(data.get("capabilities"))):
            cap_id = capability.get("id") if isinstance(capability, dict) else None
            if not isinstance(cap_id, str):
                continue
            if cap_id in capability_ids:
                yield file.at(
                    ("capabilities", index, "id"),
                    "E-REGISTRY-DUPLICATE-CAPABILITY",
                    f"capability id {cap_id!r} is already defined in {capability_ids[cap_id]}",
                )
            capability_ids.setdefault(cap_id, file.path)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _get(data: Any, path: JsonPath) -> Any:
    for part in path:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and part < len(data) else None
        else:
            data = data.get(part) if isinstance(data, dict) else None
    return data
