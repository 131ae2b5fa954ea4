"""Where `check` and `test` take the policy from: a repo (compiled) or a signed bundle."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.commands._common import add_env_option, add_project_dir, project_dir
from aivault_ops.errors import AivaultError, UsageError

if TYPE_CHECKING:
    from aivault_ops.policy_check.decide import OfflinePolicy


def add_source_options(parser: argparse.ArgumentParser, *, project_dir: bool = True) -> None:
    """`[DIR]` (unless the command has its own positionals), `--bundle F --trust PUB…`,
    `--env E`."""
    if project_dir:
        add_project_dir(parser)
    parser.add_argument(
        "--bundle",
        type=Path,
        metavar="F",
        help="decide against this published bundle (verified with --trust) instead of DIR's"
        " compiled policy",
    )
    parser.add_argument(
        "--trust",
        action="extend",
        nargs="+",
        default=[],
        metavar="PUB",
        help="trusted public key for --bundle: 'ed25519:<base64>' or a file holding one",
    )
    add_env_option(parser)


@dataclass(frozen=True)
class PolicySource:
    """The policy to decide against, and where it came from (for messages)."""

    policy: OfflinePolicy
    described: str


def load_source(
    *, repo: Path | None, bundle: Path | None, trust: Sequence[str], environment: str | None
) -> PolicySource:
    """The repo's compiled policy, or the bundle's verified one (no age identity either way)."""
    from aivault_ops.policy_check.decide import OfflinePolicy
    from aivault_ops.policy_document import PolicyDocument

    if bundle is None:
        from aivault_ops.commands._common import compile_checked

        root = project_dir(repo)
        compiled = compile_checked(root, environment)
        return PolicySource(OfflinePolicy(compiled.document), f"{root} (compiled)")
    if not trust:
        raise UsageError("--bundle needs --trust PUB (the key its manifest is signed with)")
    from aivault_ops.bundle.errors import BundleError
    from aivault_ops.bundle.keys import resolve_public_key
    from aivault_ops.bundle.source import read_bundle_file
    from aivault_ops.bundle.verify import verify_bundle

    keys = [resolve_public_key(value) for value in trust]
    try:
        verified = verify_bundle(read_bundle_file(bundle), trusted_keys=keys, now=datetime.now(UTC))
    except BundleError as error:
        raise AivaultError(f"{bundle}: {error.diagnostics()}") from None
    document = PolicyDocument.from_json(verified.policy)
    serial = verified.manifest.serial
    return PolicySource(OfflinePolicy(document), f"{bundle} (serial {serial})")
