"""`aivault-ops init [DIR]`: a new policy repo that validates out of the box."""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
import shlex
import sys
from pathlib import Path

from aivault_ops.errors import UsageError
from aivault_ops.scaffold import PLACEHOLDER_VALUE

EXAMPLE_SECRET_NAME = "EXAMPLE_API_KEY"  # noqa: S105 - a name, not a value
_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "init",
        help="scaffold a new policy repo",
        description="Create a policy repo (Project, .sops.yaml, an example provider,"
        " credential, capability, consumer and secret). Keys go outside the repo.",
    )
    parser.add_argument("directory", nargs="?", type=Path, default=Path("vault.d"), metavar="DIR")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--identity-out", type=Path, metavar="F", help="write a new runtime age identity here"
    )
    who.add_argument("--recipient", metavar="AGE1…", help="use an existing runtime age recipient")
    parser.add_argument(
        "--signing-key-out", type=Path, metavar="F", help="also write a new Ed25519 signing key"
    )
    parser.add_argument("--name", help="project name (default: the directory's parent name)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace existing key files (never a non-empty repo directory)",
    )
    parser.set_defaults(func=from_args)


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_init`."""
    return run_init(
        directory=args.directory,
        identity_out=args.identity_out,
        recipient=args.recipient,
        signing_key_out=args.signing_key_out,
        name=args.name,
        force=args.force,
    )


def run_init(
    *,
    directory: Path,
    identity_out: Path | None = None,
    recipient: str | None = None,
    signing_key_out: Path | None = None,
    name: str | None = None,
    force: bool = False,
) -> int:
    """Write a new policy repo to `directory`, with a new identity (`identity_out`) or
    an existing `recipient` (exactly one of them), and optionally a signing key."""
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory}: directory is not empty")
    for key_path in (identity_out, signing_key_out):
        if key_path is not None and _inside(key_path, directory):
            raise UsageError(f"{key_path}: keys must be written outside the policy repo")
    if identity_out is not None and recipient is None:
        recipient = _new_identity(identity_out, force)
    elif recipient is None or identity_out is not None:
        raise UsageError("pass exactly one of --identity-out and --recipient")
    elif not _RECIPIENT.match(recipient):
        raise UsageError(f"--recipient: not an age X25519 recipient: {recipient}")
    signing_public = _signing_key(signing_key_out, force)
    token = f"avt_{secrets.token_urlsafe(32)}"
    token_sha = hashlib.sha256(token.encode()).hexdigest()
    _write_repo(directory, name or _default_name(directory), recipient, signing_public, token_sha)
    recorded = _record_identity(identity_out)
    _report(directory, recipient, signing_public, token)
    _next_steps(directory, recorded)
    return 0


def _record_identity(identity_out: Path | None) -> Path | None:
    """Record the new identity in the per-user config, so `secrets` finds it without flags."""
    if identity_out is None:
        return None
    from aivault_ops.user_config import record_identity_file

    return record_identity_file(identity_out)


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def _new_identity(identity_out: Path, force: bool) -> str:
    """Write a new age identity to `identity_out`; its recipient."""
    from datetime import UTC, datetime

    from pyrage import x25519

    from aivault_ops.bundle.keys import write_private_file
    from aivault_ops.commands.keys import age_identity_file

    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    text = age_identity_file(str(identity), recipient, datetime.now(UTC))
    write_private_file(identity_out, text.encode("ascii"), overwrite=force)
    return recipient


def _signing_key(out: Path | None, force: bool) -> str | None:
    if out is None:
        return None
    from aivault_ops.bundle import SigningKey, save_signing_key

    key = SigningKey.generate()
    save_signing_key(key, out, overwrite=force)
    return str(key.public_key)


def _write_repo(
    target: Path, name: str, recipient: str, signing: str | None, token_sha: str
) -> None:
    from aivault_ops import sops
    from aivault_ops.scaffold import ScaffoldInput, scaffold_files

    files = scaffold_files(ScaffoldInput(name, recipient, signing, token_sha))
    for relative, content in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    secret_file = target / "secrets" / "example-api.sops.yaml"
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    config = sops.SopsConfig.load(target / ".sops.yaml")
    sops.set_value(secret_file, EXAMPLE_SECRET_NAME, PLACEHOLDER_VALUE, config, None)


def _default_name(target: Path) -> str:
    parent = target.resolve().parent.name.lower()
    cleaned = re.sub(r"[^a-z0-9-]+", "-", parent).strip("-")[:63]
    return cleaned or "policy"


def _report(target: Path, recipient: str, signing: str | None, token: str) -> None:
    out = sys.stdout.write
    out(f"Created policy repo {target}\n")
    out(f"Runtime age recipient: {recipient}\n")
    if signing:
        out(f"Signing public key (trust it in runtimes): {signing}\n")
    out(f"Consumer 'agent' token (shown once, store it now): {token}\n")


def _next_steps(target: Path, recorded_in: Path | None) -> None:
    """Commands that work when pasted into the shell `init` ran in."""
    out = sys.stdout.write
    where = shlex.quote(str(target))
    if recorded_in is not None:
        out(f"Identity file recorded in {recorded_in} (secrets commands find it there)\n")
        out("Next: set the real secret (value from stdin, never echoed), then validate:\n")
    else:
        out(
            "Next: set the real secret (the identity of that recipient must be in"
            " SOPS_AGE_KEY_FILE), then validate:\n"
        )
    out(f"  (cd {where} && aivault-ops secrets set {EXAMPLE_SECRET_NAME})\n")
    out(f"  aivault-ops validate {where}\n")
