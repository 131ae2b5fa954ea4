"""`aivault-ops keys signing|age|public`: create a key, or print a key's public half."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keys` with its `signing` and `age` subcommands."""
    parser = subparsers.add_parser("keys", help="generate a bundle signing key or an age identity")
    kinds = parser.add_subparsers(dest="key_kind", metavar="KIND")
    kinds.required = True
    signing = kinds.add_parser("signing", help="an Ed25519 bundle signing key (for CI)")
    signing.add_argument("--out", required=True, type=Path, help="private key file (mode 0600)")
    _common(signing)
    signing.set_defaults(func=run_signing)
    age = kinds.add_parser("age", help="an age identity (for runtimes)")
    age.add_argument("--out", type=Path, help="identity file (mode 0600); default: stdout")
    _common(age)
    age.set_defaults(func=run_age)
    public = kinds.add_parser(
        "public", help="print the public half of a signing key or an age identity file"
    )
    public.add_argument("file", type=Path, metavar="FILE", help="a key written by `keys`/`init`")
    public.set_defaults(func=run_public)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run_signing(args: argparse.Namespace) -> int:
    """Write a new signing key; print its public key (stdout) and keyid."""
    from aivault_ops.bundle.keys import SigningKey, save_signing_key

    key = SigningKey.generate()
    save_signing_key(key, args.out, overwrite=args.force)
    public = key.public_key
    if args.json:
        _print_json({"publicKey": str(public), "keyid": public.keyid, "keyFile": str(args.out)})
    else:
        sys.stdout.write(f"{public}\n")
        sys.stderr.write(f"wrote signing key {args.out} (mode 0600), keyid {public.keyid}\n")
    return 0


def run_age(args: argparse.Namespace) -> int:
    """Create an age identity like `age-keygen`; print its recipient."""
    from pyrage import x25519

    from aivault_ops.bundle.keys import write_private_file

    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    text = age_identity_file(str(identity), recipient, datetime.now(UTC))
    if args.out is not None:
        write_private_file(args.out, text.encode("ascii"), overwrite=args.force)
    if args.json:
        out_file = None if args.out is None else str(args.out)
        result = {"recipient": recipient, "identityFile": out_file}
        _print_json(result if args.out is not None else {**result, "identity": str(identity)})
    elif args.out is not None:
        sys.stdout.write(f"{recipient}\n")
        sys.stderr.write(f"wrote age identity {args.out} (mode 0600)\n")
    else:
        sys.stdout.write(text)
        sys.stderr.write(f"Public key: {recipient}\n")
    return 0


def run_public(args: argparse.Namespace) -> int:
    """Print `ed25519:<base64>` for a signing key, or the age recipient(s) of an identity file."""
    from aivault_ops.bundle.keys import public_half

    for line in public_half(args.file):
        sys.stdout.write(f"{line}\n")
    return 0


def age_identity_file(identity: str, recipient: str, created: datetime) -> str:
    """The identity file text `age-keygen` writes (comments, then the key)."""
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"# created: {stamp}\n# public key: {recipient}\n{identity}\n"


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
