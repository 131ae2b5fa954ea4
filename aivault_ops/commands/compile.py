"""`aivault-ops compile [DIR] --out F --signing-key K`: build one signed bundle."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from aivault_ops.commands._common import (
    add_env_option,
    add_expires_in,
    add_project_dir,
    compile_checked,
    expires_at,
    project_dir,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "compile",
        help="build a signed, deterministic policy bundle",
        description="Validate the project and write a signed bundle (deterministic tar.gz).",
    )
    add_project_dir(parser)
    parser.add_argument("--out", required=True, type=Path, metavar="F", help="bundle file to write")
    parser.add_argument(
        "--signing-key", required=True, type=Path, metavar="K", help="Ed25519 private key (PEM)"
    )
    add_env_option(parser)
    parser.add_argument(
        "--serial", type=int, default=1, metavar="N", help="bundle serial (default 1)"
    )
    parser.add_argument(
        "--revision", metavar="R", help="revision recorded in the bundle (default: git HEAD)"
    )
    add_expires_in(parser)
    parser.set_defaults(func=from_args)


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_compile`."""
    return run_compile(
        repo=args.project_dir,
        out=args.out,
        signing_key=args.signing_key,
        environment=args.env,
        serial=args.serial,
        revision=args.revision,
        expires_in=args.expires_in,
    )


def run_compile(
    *,
    repo: Path | None,
    out: Path,
    signing_key: Path,
    environment: str | None,
    serial: int,
    revision: str | None = None,
    expires_in: timedelta | None = None,
) -> int:
    """Validate the repo (None: the default one) and write one signed bundle to `out`."""
    from aivault_ops.bundle import load_signing_key
    from aivault_ops.compiled_project import git_revision, sign_bundle
    from aivault_ops.errors import UsageError

    if serial < 1:
        raise UsageError("--serial must be a positive integer")
    root = project_dir(repo)
    key = load_signing_key(signing_key)
    compiled = compile_checked(root, environment)
    data = sign_bundle(
        compiled,
        serial=serial,
        revision=revision or git_revision(root),
        expires_at=expires_at(expires_in),
        signing_key=key,
    )
    out.write_bytes(data)
    sys.stdout.write(f"wrote {out} (serial {serial}, {len(data)} bytes)\n")
    return 0
