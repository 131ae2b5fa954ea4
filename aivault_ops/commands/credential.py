"""`aivault-ops credential create|list|delete`: aivault's imperative verbs over manifests.

`create` writes `credentials/ID.yaml` (and `providers/P.yaml` for a custom
provider), checked with the rules of `validate`; nothing reaches a runtime
until `validate` and `apply`. No command prints a secret value.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.authoring.auth_flags import AuthFlags
from aivault_ops.commands._auth_options import add_auth_options, auth_flags
from aivault_ops.commands._common import project_dir
from aivault_ops.commands._manifest_admin import add_dir_option, add_list_and_delete
from aivault_ops.errors import UsageError

if TYPE_CHECKING:
    from aivault_ops.validation.run import Validation


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `credential` and its subcommands."""
    parser = subparsers.add_parser(
        "credential",
        help="create, list and delete Credential manifests (aivault's verbs)",
        description="Imperative verbs that write manifests; validate and apply publish them.",
    )
    commands = parser.add_subparsers(dest="credential_command", metavar="SUBCOMMAND")
    commands.required = True
    _add_create(commands)
    add_list_and_delete(commands, "Credential")


def _add_create(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "create",
        help="write credentials/ID.yaml (and providers/P.yaml for a custom provider)",
        description="Write a Credential manifest, and a Provider manifest when P is not a"
        " registry provider (built-in or the repo's registry/ folder).",
    )
    parser.add_argument("id", metavar="ID")
    parser.add_argument("--provider", required=True, metavar="P")
    parser.add_argument(
        "--secret-ref",
        metavar="REF",
        help="FILE#KEY, a secret name, or vault:secret:NAME (a name must be held by exactly"
        " one SOPS file of the repo)",
    )
    add_auth_options(parser)
    parser.add_argument("--host", action="append", default=[], metavar="H", help="repeatable")
    parser.add_argument("--replace", action="store_true", help="overwrite existing files")
    add_dir_option(parser)
    parser.set_defaults(func=create_from_args)


def create_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_create`."""
    flags = auth_flags(args)
    return run_create(
        name=args.id,
        provider=args.provider,
        secret_ref=args.secret_ref,
        auth=args.auth,
        flags=flags,
        hosts=args.host,
        replace=args.replace,
        directory=args.dir,
    )


def run_create(
    *,
    name: str,
    provider: str,
    secret_ref: str | None = None,
    auth: str | None = None,
    flags: AuthFlags | None = None,
    hosts: Sequence[str] = (),
    replace: bool = False,
    directory: Path | None = None,
) -> int:
    """Write the Credential (and, for a custom provider, the Provider) manifest."""
    from aivault_ops.authoring import documents
    from aivault_ops.authoring.auth_flags import auth_from_flags
    from aivault_ops.commands._manifest_writer import baseline, write_checked

    root = project_dir(directory)
    flags = flags or AuthFlags()
    if auth is None and flags != AuthFlags():
        raise UsageError("strategy flags need --auth STRATEGY")
    auth_value = None if auth is None else auth_from_flags(auth, flags)
    before = baseline(root)
    ref = _located_ref(root, secret_ref)
    files: dict[str, str] = {}
    if provider in _registry_providers(before):
        credential = documents.credential_document(
            name, provider=provider, secret_ref=ref, auth=auth_value, hosts=hosts
        )
    else:
        if auth_value is not None or hosts:
            if auth_value is None or not hosts:
                raise UsageError(
                    f"{provider} is no registry provider: a custom provider needs --auth and --host"
                )
            document = documents.provider_document(provider, hosts=hosts, auth=auth_value)
            text = documents.render(document)
            path = root / documents.provider_file(provider)
            if not (path.is_file() and path.read_text(encoding="utf-8") == text):
                files[documents.provider_file(provider)] = text
        elif not any(p.name == provider for p in before.loaded.providers):
            raise UsageError(
                f"{provider} is no registry provider and the repo has no Provider {provider}:"
                " pass --auth STRATEGY and --host H to create it"
            )
        credential = documents.credential_document(name, provider=provider, secret_ref=ref)
    files[documents.credential_file(name)] = documents.render(credential)
    write_checked(root, files, replace=replace, before=before)
    return 0


def _registry_providers(before: Validation) -> set[str]:
    from aivault_ops.diagnostics import Report
    from aivault_ops.providers import builtin_registry
    from aivault_ops.validation.private_registry import project_registry

    return set(project_registry(before.loaded, builtin_registry(), Report()).providers)


def _located_ref(root: Path, text: str | None) -> str | None:
    """`--secret-ref` as `FILE#KEY` relative to the repo (a name: its one holder)."""
    if text is None:
        return None
    from aivault_ops.authoring.secret_ref import locate, parse_secret_ref

    ref = parse_secret_ref(text)
    if ref.file is not None:
        return ref.render()
    from aivault_ops.sops.discover import all_metadata

    metas, failed = all_metadata(root)
    for message in failed:
        sys.stderr.write(f"aivault-ops: warning: {message}\n")
    holders: dict[str, list[str]] = {}
    for meta in metas:
        relative = Path(meta.path).relative_to(root).as_posix()
        for secret_name in meta.secret_names:
            holders.setdefault(secret_name, []).append(relative)
    return locate(ref, holders).render()
