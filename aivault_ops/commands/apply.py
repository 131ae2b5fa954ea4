"""`aivault-ops apply [DIR] --target T --signing-key K`: plan, then publish atomically."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aivault_ops.commands._common import (
    add_env_option,
    add_expires_in,
    add_project_dir,
    add_trust_option,
    compile_checked,
    expires_at,
    project_dir,
    trusted_keys,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="validate, compile with the next serial, show the plan, publish atomically",
        description="Publish bundle-<serial>.tar.gz into TARGET with serial = newest + 1."
        " Nothing is published when the plan is empty (unless --expires-in or --always).",
    )
    add_project_dir(parser)
    parser.add_argument("--target", required=True, type=Path, metavar="T", help="bundle directory")
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
    from aivault_ops.build import git_revision, sign_bundle
    from aivault_ops.bundle import load_signing_key, newest_bundle, publish_bundle, target_lock
    from aivault_ops.commands.plan import write_plan_text
    from aivault_ops.publishing import read_base

    root = project_dir(args.project_dir)
    signing_key = load_signing_key(args.signing_key)
    compiled = compile_checked(root, args.env)
    args.target.mkdir(parents=True, exist_ok=True)
    keys = [signing_key.public_key, *trusted_keys(args, compiled)]
    with target_lock(args.target):
        base = read_base(args.target, keys)
        changes = plan.diff_policies(base.policy if base else None, compiled.policy)
        write_plan_text(base, changes)
        newest = newest_bundle(args.target)
        serial = (newest[0] if newest else 0) + 1
        if not (changes or args.expires_in or args.always):
            sys.stdout.write("Nothing to publish.\n")
            return 0
        if args.dry_run:
            sys.stdout.write(f"Dry run: would publish bundle-{serial}.tar.gz\n")
            return 0
        revision = args.revision or git_revision(root)
        data = sign_bundle(
            compiled,
            serial=serial,
            revision=revision,
            expires_at=expires_at(args),
            signing_key=signing_key,
        )
        path = publish_bundle(args.target, data, serial)
    sys.stdout.write(f"Published {path} (serial {serial}, revision {revision})\n")
    return 0
