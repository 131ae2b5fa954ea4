"""`aivault-ops apply [DIR] --target T --signing-key K`: plan, then publish atomically."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.commands._common import (
    add_env_option,
    add_expires_in,
    add_project_dir,
    add_target_option,
    add_trust_option,
    compile_checked,
    expires_at,
    project_dir,
    trusted_keys,
)

if TYPE_CHECKING:
    from aivault_ops.build import CompiledProject
    from aivault_ops.bundle import PublicKey, SigningKey


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="validate, compile with the next serial, show the plan, publish atomically",
        description="Publish bundle-<serial>.tar.gz into TARGET with serial = newest + 1."
        " Nothing is published when the plan is empty (unless --expires-in or --always).",
    )
    add_project_dir(parser)
    add_target_option(parser)
    parser.add_argument(
        "--signing-key", required=True, type=Path, metavar="K", help="Ed25519 private key (PEM)"
    )
    add_env_option(parser)
    add_expires_in(parser)
    add_trust_option(parser, required=False)
    parser.add_argument("--revision", metavar="R", help="revision to record (default: git HEAD)")
    parser.add_argument("--dry-run", action="store_true", help="show the plan, publish nothing")
    parser.add_argument("--always", action="store_true", help="publish even without changes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aivault_ops import plan
    from aivault_ops.bundle import load_signing_key
    from aivault_ops.commands.plan import write_plan_text
    from aivault_ops.publishing import read_target
    from aivault_ops.targets import open_target

    root = project_dir(args.project_dir)
    signing_key = load_signing_key(args.signing_key)
    compiled = compile_checked(root, args.env)
    project_keys = _project_keys(compiled)
    _check_signer_trusted(signing_key.public_key, project_keys, args.signing_key)
    keys = [signing_key.public_key, *trusted_keys(args, compiled)]
    with (
        open_target(args.target, plain_http=args.plain_http, environ=os.environ) as target,
        contextlib.nullcontext() if args.dry_run else target.lock(),  # a dry run writes nothing
    ):
        state = read_target(target.source, keys)
        changes = plan.diff_policies(state.base.policy if state.base else None, compiled.policy)
        write_plan_text(state, changes)
        serial = state.next_serial
        if not (changes or state.unverifiable or args.expires_in or args.always):
            sys.stdout.write("Nothing to publish.\n")
            return 0
        if args.dry_run:
            sys.stdout.write(f"Dry run: would publish {target.name_for(serial)}\n")
            return 0
        revision, data = _signed(args, root, compiled, serial, signing_key, project_keys)
        path = target.publish(data, serial=serial, revision=revision, environment=args.env)
    sys.stdout.write(f"Published {path} (serial {serial}, revision {revision})\n")
    return 0


def _project_keys(compiled: CompiledProject) -> list[PublicKey]:
    from aivault_ops.bundle import PublicKey

    project = compiled.validation.loaded.project
    return [PublicKey.parse(text) for text in project.trusted_signing_keys] if project else []


def _check_signer_trusted(signer: PublicKey, project_keys: list[PublicKey], key_file: Path) -> None:
    """Refuse a signing key the Project does not trust, before anything is written.

    Prevents publishing a bundle every runtime trusting the Project's keys
    refuses, which a later plan would then mistake for the running policy.
    """
    from aivault_ops.bundle.errors import SigningKeyNotTrusted

    if project_keys and signer not in project_keys:
        raise SigningKeyNotTrusted(
            f"{key_file}: signing key {signer.keyid} is not in the Project's"
            " spec.trustedSigningKeys; runtimes that trust those keys would refuse the bundle",
            hint=f"sign with a trusted key, or add `{signer}` to spec.trustedSigningKeys"
            f" (`aivault-ops keys public {key_file}` prints it)",
        )


def _signed(
    args: argparse.Namespace,
    root: Path,
    compiled: CompiledProject,
    serial: int,
    signing_key: SigningKey,
    project_keys: list[PublicKey],
) -> tuple[str, bytes]:
    """(revision, signed bundle), verified with the Project's keys before it is published."""
    from datetime import UTC, datetime

    from aivault_ops.build import git_revision, sign_bundle
    from aivault_ops.bundle import verify_bundle

    revision = args.revision or git_revision(root)
    data = sign_bundle(
        compiled,
        serial=serial,
        revision=revision,
        expires_at=expires_at(args),
        signing_key=signing_key,
    )
    if project_keys:
        verify_bundle(data, trusted_keys=project_keys, now=datetime.now(UTC))
    return revision, data
