"""`aivault-ops apply [DIR] --target T --signing-key K`: plan, then publish atomically."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
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
    from aivault_ops.bundle import PublicKey, SigningKey
    from aivault_ops.compiled_project import CompiledProject
    from aivault_ops.oci.reference import OciReference


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
    parser.set_defaults(func=from_args)


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_apply`."""
    return run_apply(
        repo=args.project_dir,
        target=args.target,
        plain_http=args.plain_http,
        signing_key=args.signing_key,
        environment=args.env,
        expires_in=args.expires_in,
        trust=args.trust,
        revision=args.revision,
        dry_run=args.dry_run,
        always=args.always,
    )


def run_apply(
    *,
    repo: Path | None,
    target: Path | OciReference,
    signing_key: Path,
    environment: str | None,
    expires_in: timedelta | None = None,
    trust: Sequence[str] = (),
    revision: str | None = None,
    dry_run: bool = False,
    always: bool = False,
    plain_http: bool = False,
) -> int:
    """Plan against `target`, then publish the next bundle there (unless nothing changed)."""
    from aivault_ops import plan
    from aivault_ops.bundle import load_signing_key
    from aivault_ops.commands.plan import write_plan_text
    from aivault_ops.compiled_project import git_revision
    from aivault_ops.published_bundles import read_target
    from aivault_ops.targets import open_target

    root = project_dir(repo)
    key = load_signing_key(signing_key)
    compiled = compile_checked(root, environment)
    project_keys = _project_keys(compiled)
    _check_signer_trusted(key.public_key, project_keys, signing_key)
    keys = [key.public_key, *trusted_keys(trust, compiled)]
    with (
        open_target(target, plain_http=plain_http, environ=os.environ) as opened,
        contextlib.nullcontext() if dry_run else opened.lock(),  # a dry run writes nothing
    ):
        state = read_target(opened.source, keys)
        changes = plan.diff_policies(state.base.policy if state.base else None, compiled.policy)
        write_plan_text(state, changes)
        serial = state.next_serial
        if not (changes or state.unverifiable or expires_in or always):
            sys.stdout.write("Nothing to publish.\n")
            return 0
        if dry_run:
            sys.stdout.write(f"Dry run: would publish {opened.name_for(serial)}\n")
            return 0
        recorded = revision or git_revision(root)
        data = _signed(compiled, serial, key, project_keys, recorded, expires_at(expires_in))
        path = opened.publish(data, serial=serial, revision=recorded, environment=environment)
    sys.stdout.write(f"Published {path} (serial {serial}, revision {recorded})\n")
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
    compiled: CompiledProject,
    serial: int,
    signing_key: SigningKey,
    project_keys: list[PublicKey],
    revision: str,
    expires: datetime | None,
) -> bytes:
    """The signed bundle, verified with the Project's keys before it is published."""
    from aivault_ops.bundle import verify_bundle
    from aivault_ops.compiled_project import sign_bundle

    data = sign_bundle(
        compiled,
        serial=serial,
        revision=revision,
        expires_at=expires,
        signing_key=signing_key,
    )
    if project_keys:
        verify_bundle(data, trusted_keys=project_keys, now=datetime.now(UTC))
    return data
