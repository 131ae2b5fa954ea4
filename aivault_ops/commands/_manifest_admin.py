"""`credential|capability list` and `delete`: the manifests of one kind, and removing one.

`delete` removes the manifest's file, refusing (unless `--force`) while other
manifests still refer to it: a Capability naming the Credential, or a
Consumer grant that matches only the Capability being deleted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.commands._common import display_prefix, project_dir
from aivault_ops.errors import AivaultError

if TYPE_CHECKING:
    from aivault_ops.manifests.loader import LoadedProject
    from aivault_ops.manifests.model import CapabilityManifest, CredentialManifest


def add_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="the policy repo (default: ./vault.d when it exists, else .)",
    )


def add_list_and_delete(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], kind: str
) -> None:
    """`list` and `delete ID` for `kind` ("Credential" or "Capability")."""
    listing = commands.add_parser("list", help=f"{kind} manifests: name, provider, file")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    add_dir_option(listing)
    listing.set_defaults(
        func=lambda args: run_list(kind=kind, directory=args.dir, as_json=args.json)
    )
    delete = commands.add_parser("delete", help=f"remove a {kind} manifest's file")
    delete.add_argument("id", metavar="ID")
    delete.add_argument(
        "--force", action="store_true", help="delete even while other manifests refer to it"
    )
    add_dir_option(delete)
    delete.set_defaults(
        func=lambda args: run_delete(kind=kind, name=args.id, force=args.force, directory=args.dir)
    )


def _load(root: Path) -> LoadedProject:
    from aivault_ops.diagnostics import Report
    from aivault_ops.manifests.loader import load_project

    return load_project(root, environment=None, report=Report())


def _manifests(loaded: LoadedProject, kind: str) -> list[CredentialManifest | CapabilityManifest]:
    return [*(loaded.credentials if kind == "Credential" else loaded.capabilities)]


def _provider(manifest: CredentialManifest | CapabilityManifest) -> str:
    provider = getattr(manifest, "provider", None)
    return provider if isinstance(provider, str) else manifest.name.split("/", 1)[0]


def run_list(*, kind: str, directory: Path | None = None, as_json: bool = False) -> int:
    """Name, provider and file of every `kind` manifest of the repo."""
    root = project_dir(directory)
    prefix = display_prefix(root)
    rows = [
        {"name": m.name, "provider": _provider(m), "file": prefix + m.source.path}
        for m in sorted(_manifests(_load(root), kind), key=lambda m: m.name)
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif not rows:
        sys.stdout.write(f"no {kind} manifests in {prefix or './'}\n")
    else:
        for row in rows:
            sys.stdout.write(f"{row['name']}\t{row['provider']}\t{row['file']}\n")
    return 0


def run_delete(*, kind: str, name: str, force: bool = False, directory: Path | None = None) -> int:
    """Remove the file of the `kind` manifest `name` (refused while it is referred to)."""
    from aivault_ops.suggest import did_you_mean

    root = project_dir(directory)
    prefix = display_prefix(root)
    loaded = _load(root)
    found = [m for m in _manifests(loaded, kind) if m.name == name]
    if not found:
        known = [m.name for m in _manifests(loaded, kind)]
        raise AivaultError(
            f"no {kind} named {name} in {prefix or './'}" + did_you_mean(name, known)
        )
    path = found[0].source.path
    if len(found) > 1 or _others_in(loaded, path, name):
        raise AivaultError(
            f"{prefix}{path} holds other manifests too; edit it by hand",
        )
    users = _referrers(loaded, kind, name)
    if users and not force:
        raise AivaultError(
            f"{kind} {name} is still referred to by: "
            + "; ".join(f"{prefix}{user}" for user in users),
            hint="change those first, or pass --force",
        )
    (root / path).unlink()
    sys.stdout.write(f"deleted {prefix}{path}\n")
    shown = prefix.rstrip("/") or "."
    sys.stdout.write(f"Next: aivault-ops validate {shown}, then aivault-ops apply\n")
    return 0


def _others_in(loaded: LoadedProject, path: str, name: str) -> bool:
    groups = (
        loaded.providers,
        loaded.credentials,
        loaded.capabilities,
        loaded.consumers,
        loaded.projects,
    )
    return any(m.source.path == path and m.name != name for group in groups for m in group)


def _referrers(loaded: LoadedProject, kind: str, name: str) -> list[str]:
    """`file (what)` for each manifest that would break without `name`."""
    from aivault_ops.resolve.consumers import grant_matches

    if kind == "Credential":
        return [
            f"{c.source.path} (Capability {c.name})"
            for c in loaded.capabilities
            if c.credential == name
        ]
    others = [c.name for c in loaded.capabilities if c.name != name]
    return [
        f"{consumer.source.path} (Consumer {consumer.name} grants {grant})"
        for consumer in loaded.consumers
        for grant in consumer.capabilities
        if grant_matches(grant, name) and not any(grant_matches(grant, o) for o in others)
    ]
