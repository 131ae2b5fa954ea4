"""`aivault-ops capabilities list|describe`: from the project, a bundle or the registry."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aivault_ops.commands._common import (
    add_env_option,
    add_project_dir,
    add_trust_option,
    compile_checked,
    project_dir,
    trusted_keys,
)
from aivault_ops.errors import AivaultError, UsageError
from aivault_ops.suggest import did_you_mean


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("capabilities", help="list or describe capabilities")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every capability, one per line")
    _sources(listing)
    listing.set_defaults(func=list_from_args)
    describe = actions.add_parser("describe", help="one capability in full")
    describe.add_argument("capability", metavar="CAP")
    _sources(describe)
    describe.set_defaults(func=describe_from_args)


def _sources(parser: argparse.ArgumentParser) -> None:
    add_project_dir(parser)
    add_env_option(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--registry", action="store_true", help="the built-in registry")
    source.add_argument("--bundle", type=Path, metavar="F", help="a verified bundle")
    add_trust_option(parser, required=False)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@dataclass(frozen=True)
class Source:
    """Where capabilities are read from: the built-in registry, a bundle, or a project."""

    repo: Path | None = None  # None: ./vault.d when it exists, else .
    environment: str | None = None
    registry: bool = False
    bundle: Path | None = None  # read only after verification with `trust`
    trust: Sequence[str] = ()


def _source(args: argparse.Namespace) -> Source:
    return Source(
        repo=args.project_dir,
        environment=args.env,
        registry=args.registry,
        bundle=args.bundle,
        trust=args.trust,
    )


def list_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_list`."""
    return run_list(source=_source(args), as_json=args.json)


def describe_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_describe`."""
    return run_describe(name=args.capability, source=_source(args), as_json=args.json)


def run_list(*, source: Source, as_json: bool = False) -> int:
    """Every capability of `source`, one per line (or JSON)."""
    capabilities = _capabilities(source)
    if as_json:
        _print_json(capabilities)
        return 0
    for name, cap in capabilities.items():
        prefixes = ", ".join(cap["pathPrefixes"])
        owner = cap.get("credential") or cap["provider"]
        sys.stdout.write(f"{name}  [{owner}]  {','.join(cap['methods'])} {prefixes}\n")
    return 0


def run_describe(*, name: str, source: Source, as_json: bool = False) -> int:
    """One capability of `source` in full; an unknown name is an error with suggestions."""
    capabilities = _capabilities(source)
    cap = capabilities.get(name)
    if cap is None:
        raise AivaultError(
            f"no capability '{name}'{did_you_mean(name, capabilities)}",
            hint="see `aivault-ops capabilities list` (or --registry for the built-in ones)",
        )
    if as_json:
        _print_json({name: cap})
    else:
        sys.stdout.write(f"capability: {name}\n")
        for key, value in cap.items():
            sys.stdout.write(f"  {key}: {_text(value)}\n")
    return 0


def _capabilities(source: Source) -> dict[str, dict[str, Any]]:
    if source.registry:
        return _from_registry()
    if source.bundle is not None:
        return _with_auth(_bundle_policy(source.bundle, source.trust))
    root = project_dir(source.repo)
    return _with_auth(compile_checked(root, source.environment).policy)


def _from_registry() -> dict[str, dict[str, Any]]:
    from aivault_ops.providers import builtin_registry

    result: dict[str, dict[str, Any]] = {}
    for provider in builtin_registry().providers.values():
        for cap in provider.capabilities:
            result[cap.name] = {
                "provider": provider.name,
                "methods": list(cap.methods),
                "pathPrefixes": list(cap.path_prefixes),
                "hosts": list(cap.hosts),
                "secretNames": sorted(provider.default.vault_secrets),
            }
    return dict(sorted(result.items()))


def _bundle_policy(bundle: Path, trust: Sequence[str]) -> Mapping[str, Any]:
    from datetime import UTC, datetime

    from aivault_ops.bundle import read_bundle_file, verify_bundle

    if not trust:
        raise UsageError("--bundle needs --trust PUB (bundles are only read after verification)")
    data = read_bundle_file(bundle)
    verified = verify_bundle(data, trusted_keys=trusted_keys(trust), now=datetime.now(UTC))
    return verified.policy


def _with_auth(policy: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Capabilities of a compiled policy, with their credential's auth and secret names."""
    result = {}
    for name, cap in policy["capabilities"].items():
        credential = policy["credentials"][cap["credential"]]
        auth = credential["auth"]
        result[name] = {
            **cap,
            "auth": auth if isinstance(auth, str) else next(iter(auth)),
            "secrets": sorted(f"{s['file']}#{s['name']}" for s in credential["secrets"].values()),
        }
    return result


def _text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True) if value else "(none)"
    return str(value)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
