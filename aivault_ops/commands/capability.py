"""`aivault-ops capability create|list|delete`: aivault's imperative verbs over manifests.

Not `capabilities` (plural), which lists and describes what a repo or the
registry offers. `create` writes `capabilities/<ID with / as ->.yaml`,
checked with the rules of `validate`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from aivault_ops.commands._common import project_dir
from aivault_ops.commands._manifest_admin import add_dir_option, add_list_and_delete
from aivault_ops.errors import UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `capability` and its subcommands."""
    parser = subparsers.add_parser(
        "capability",
        help="create, list and delete Capability manifests (aivault's verbs)",
        description="Imperative verbs that write manifests; validate and apply publish them.",
    )
    commands = parser.add_subparsers(dest="capability_command", metavar="SUBCOMMAND")
    commands.required = True
    _add_create(commands)
    add_list_and_delete(commands, "Capability")


def _add_create(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "create",
        help="write capabilities/<ID, / as ->.yaml",
        description="Write a Capability manifest: methods, path prefixes and hosts one"
        " credential may be used for.",
    )
    parser.add_argument("id", metavar="ID", help="PROVIDER/NAME, e.g. my-api/users")
    parser.add_argument("--provider", metavar="P", help="checked against the credential's provider")
    parser.add_argument("--credential", required=True, metavar="C")
    parser.add_argument("--method", action="append", required=True, metavar="M", help="repeatable")
    parser.add_argument(
        "--path", action="append", required=True, metavar="PREFIX", help="repeatable"
    )
    parser.add_argument(
        "--host", action="append", default=[], metavar="H", help="repeatable (default: all)"
    )
    parser.add_argument(
        "--operation", action="append", default=[], metavar="TARGET",
        help="an allowed X-Amz-Target value, e.g. DynamoDB_20120810.GetItem (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--copy-source", action="append", default=[], metavar="PREFIX",
        help="an allowed x-amz-copy-source prefix, e.g. /my-bucket/incoming/ (repeatable)",
    )  # fmt: skip
    parser.add_argument("--replace", action="store_true", help="overwrite an existing file")
    add_dir_option(parser)
    parser.set_defaults(func=create_from_args)


def create_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_create`."""
    return run_create(
        name=args.id,
        provider=args.provider,
        credential=args.credential,
        methods=args.method,
        path_prefixes=args.path,
        hosts=args.host,
        replace=args.replace,
        directory=args.dir,
        operations=args.operation,
        copy_source_prefixes=args.copy_source,
    )


def run_create(
    *,
    name: str,
    credential: str,
    methods: Sequence[str],
    path_prefixes: Sequence[str],
    provider: str | None = None,
    hosts: Sequence[str] = (),
    replace: bool = False,
    directory: Path | None = None,
    operations: Sequence[str] = (),
    copy_source_prefixes: Sequence[str] = (),
) -> int:
    """Write one Capability manifest."""
    from aivault_ops.authoring import documents
    from aivault_ops.commands._manifest_writer import baseline, write_checked

    root = project_dir(directory)
    before = baseline(root)
    if provider is not None:
        for manifest in before.loaded.credentials:
            if manifest.name == credential and manifest.provider != provider:
                raise UsageError(
                    f"--provider {provider}: credential {credential} is for {manifest.provider}"
                    f" ({manifest.source.path})"
                )
        if name.partition("/")[0] != provider:
            raise UsageError(f"{name}: a capability of {provider} is named {provider}/NAME")
    document = documents.capability_document(
        name,
        credential=credential,
        methods=methods,
        path_prefixes=path_prefixes,
        hosts=hosts,
        operations=operations,
        copy_source_prefixes=copy_source_prefixes,
    )
    files = {documents.capability_file(name): documents.render(document)}
    write_checked(root, files, replace=replace, before=before)
    return 0
