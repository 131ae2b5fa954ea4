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
    signing.set_defaults(func=signing_from_args)
    age = kinds.add_parser("age", help="an age identity (for runtimes)")
    age.add_argument("--out", type=Path, help="identity file (mode 0600); default: stdout")
    _common(age)
    age.set_defaults(func=age_from_args)
    public = kinds.add_parser(
        "public", help="print the public half of a signing key or an age identity file"
    )
    public.add_argument("file", type=Path, metavar="FILE", help="a key written by `keys`/`init`")
    public.set_defaults(func=public_from_args)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def signing_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_signing`."""
    return run_signing(out=args.out, force=args.force, as_json=args.json)


def age_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_age`."""
    return run_age(out=args.out, force=args.force, as_json=args.json)


def public_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_public`."""
    return run_public(file=args.file)


def run_signing(*, out: Path, force: bool = False, as_json: bool = False) -> int:
    """Write a new signing key; print its public key (stdout) and keyid."""
    from aivault_ops.bundle.keys import SigningKey, save_signing_key

    key = SigningKey.generate()
    save_signing_key(key, out, overwrite=force)
    public = key.public_key
    if as_json:
        _print_json({"publicKey": str(public), "keyid": public.keyid, "keyFile": str(out)})
    else:
        sys.stdout.write(f"{public}\n")
        sys.stderr.write(f"wrote signing key {out} (mode 0600), keyid {public.keyid}\n")
    return 0


def run_age(*, out: Path | None, force: bool = False, as_json: bool = False) -> int:
    """Create an age identity like `age-keygen`; print its recipient (`out` None: stdout)."""
    from pyrage import x25519

    from aivault_ops.bundle.keys import write_private_file

    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    text = age_identity_file(str(identity), recipient, datetime.now(UTC))
    if out is not None:
        write_private_file(out, text.encode("ascii"), overwrite=force)
    if as_json:
        out_file = None if out is None else str(out)
        result = {"recipient": recipient, "identityFile": out_file}
        _print_json(result if out is not None else {**result, "identity": str(identity)})
    elif out is not None:
        sys.stdout.write(f"{recipient}\n")
        sys.stderr.write(f"wrote age identity {out} (mode 0600)\n")
    else:
        sys.stdout.write(text)
        sys.stderr.write(f"Public key: {recipient}\n")
    return 0


def run_public(*, file: Path) -> int:
    """Print `ed25519:<base64>` for a signing key, or the age recipient(s) of an identity file."""
    from aivault_ops.bundle.keys import public_half

    for line in public_half(file):
        sys.stdout.write(f"{line}\n")
    return 0


def age_identity_file(identity: str, recipient: str, created: datetime) -> str:
    """The identity file text `age-keygen` writes (comments, then the key)."""
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"# created: {stamp}\n# public key: {recipient}\n{identity}\n"


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
