"""`aivault-ops verify BUNDLE --trust PUB…`: check a bundle as a runtime would."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aivault_ops.commands._common import add_plain_http_option
from aivault_ops.errors import AivaultError

if TYPE_CHECKING:
    from aivault_ops.bundle.keys import PublicKey
    from aivault_ops.bundle.verify import VerifiedBundle


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `verify` subcommand."""
    parser = subparsers.add_parser("verify", help="verify a bundle's signature, digests and format")
    parser.add_argument(
        "bundle", metavar="BUNDLE", help="a bundle-<serial>.tar.gz, or oci://HOST/REPO:TAG"
    )
    add_plain_http_option(parser)
    parser.add_argument(
        "--trust",
        required=True,
        action="extend",
        nargs="+",
        metavar="PUB",
        help="trusted public key: 'ed25519:<base64>' or a file holding one (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=from_args)


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_verify`."""
    return run_verify(
        bundle=args.bundle, trust=args.trust, as_json=args.json, plain_http=args.plain_http
    )


def run_verify(
    *, bundle: str | Path, trust: Sequence[str], as_json: bool = False, plain_http: bool = False
) -> int:
    """Verify one bundle with the same functions the runtime uses (signature, digests,
    expiry, the policy's schema); exit 0 or 1."""
    from aivault_ops.bundle.errors import BundleError
    from aivault_ops.bundle.verify import verify_bundle
    from aivault_ops.runtime.bundles.loader import read_policy

    trusted = _trusted_keys(trust)
    try:
        data = _read(bundle, plain_http=plain_http)
        verified = verify_bundle(data, trusted_keys=trusted, now=datetime.now(UTC))
        read_policy(verified)  # the runtime refuses a policy it cannot read: so does verify
    except BundleError as error:
        if as_json:
            _print_json(
                {
                    "bundle": str(bundle),
                    "ok": False,
                    "error": error.code,
                    "message": error.message,
                }
            )
        raise AivaultError(f"{bundle}: {error.diagnostics()}") from None
    summary = _summary(bundle, verified)
    if as_json:
        _print_json(summary)
    else:
        sys.stdout.write(_human(summary))
    return 0


def _read(bundle: str | Path, *, plain_http: bool) -> bytes:
    """A bundle file's bytes, or an OCI artifact's layer (digest-checked)."""
    import os

    from aivault_ops.bundle.source import read_bundle_file
    from aivault_ops.oci.reference import is_oci, parse_reference
    from aivault_ops.oci.repository import open_repository

    if isinstance(bundle, Path) or not is_oci(bundle):
        return read_bundle_file(Path(bundle))
    reference = parse_reference(bundle, what="BUNDLE")
    repository = open_repository(reference, plain_http=plain_http, environ=os.environ)
    try:
        return repository.pull(reference.digest or reference.tag or "latest").data
    finally:
        repository.client.close()


def _trusted_keys(values: Sequence[str]) -> list[PublicKey]:
    from aivault_ops.bundle.keys import resolve_public_key

    return [resolve_public_key(value) for value in values]


def _summary(path: str | Path, verified: VerifiedBundle) -> dict[str, Any]:
    manifest = verified.manifest
    expires = manifest.to_json().get("expiresAt")
    return {
        "bundle": str(path),
        "ok": True,
        "serial": manifest.serial,
        "revision": manifest.revision,
        "environment": manifest.environment,
        "keyid": verified.keyid,
        "expiresAt": expires,
        "fileCount": len(manifest.files),
    }


def _human(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['bundle']}: OK",
        f"  serial:      {summary['serial']}",
        f"  revision:    {summary['revision']}",
        f"  environment: {summary['environment'] or '-'}",
        f"  keyid:       {summary['keyid']}",
        f"  expiresAt:   {summary['expiresAt'] or 'never'}",
        f"  files:       {summary['fileCount']}",
    ]
    return "\n".join(lines) + "\n"


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
