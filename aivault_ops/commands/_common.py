"""Options and path rules shared by several commands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.errors import UsageError, ValidationFailed

if TYPE_CHECKING:
    from aivault_ops.bundle import PublicKey
    from aivault_ops.compiled_project import CompiledProject

DEFAULT_PROJECT_DIR = Path("vault.d")


def add_env_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        metavar="E",
        help="environment whose values render *.yaml.j2 manifests (spec.environments)",
    )


def add_project_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "project_dir",
        nargs="?",
        metavar="DIR",
        type=Path,
        help="the policy repo (default: ./vault.d when it exists, else .)",
    )


def project_dir(given: Path | None) -> Path:
    """DIR defaults to ./vault.d when it exists, else the current directory."""
    if given is not None:
        if not given.is_dir():
            raise UsageError(f"{given}: not a directory")
        return given
    return DEFAULT_PROJECT_DIR if DEFAULT_PROJECT_DIR.is_dir() else Path()


def find_project_roots(paths: Sequence[Path]) -> list[Path]:
    """Project directories for the given dirs/files; files pick their nearest project.

    A file in no policy repo is skipped: the pre-commit hook passes every
    changed YAML/JSON file of the repository, and most are not policy files.
    """
    if not paths:
        return [project_dir(None)]
    roots: list[Path] = []
    for path in paths:
        root = path if path.is_dir() else _enclosing_project(path)
        if root is not None and root not in roots:
            roots.append(root)
    return roots


def _enclosing_project(file: Path) -> Path | None:
    from aivault_ops.manifests.loader import PROJECT_FILE

    if not file.exists():
        raise UsageError(f"{file}: no such file or directory")
    for parent in file.resolve().parents:
        if (parent / PROJECT_FILE).is_file():
            return Path(os.path.relpath(parent))
    return None


def display_prefix(root: Path) -> str:
    """How a project's files are shown: relative to the current directory."""
    relative = os.path.relpath(root)
    return "" if relative == "." else f"{Path(relative).as_posix()}/"


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90m`, `12h`, `30d`, `2w`, `3600s` (a positive whole number and one unit)."""
    number, unit = text[:-1], text[-1:]
    if unit not in _DURATION_UNITS or not number.isdigit() or int(number) <= 0:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a positive number with s, m, h, d or w (e.g. 30d)"
        )
    return timedelta(seconds=int(number) * _DURATION_UNITS[unit])


def add_expires_in(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expires-in",
        type=parse_duration,
        metavar="DURATION",
        help="set expiresAt this long from now (e.g. 30d); runtimes refuse an expired bundle",
    )


def expires_at(expires_in: timedelta | None) -> datetime | None:
    """`expiresAt` for `--expires-in` (None: the bundle never expires)."""
    return None if expires_in is None else datetime.now(UTC).replace(microsecond=0) + expires_in


def compile_checked(root: Path, environment: str | None) -> CompiledProject:
    """Validate and compile; on errors print the diagnostics and re-raise."""
    from aivault_ops.compiled_project import compile_project

    try:
        return compile_project(root, environment=environment)
    except ValidationFailed as failure:
        for diagnostic in failure.report.rebased(display_prefix(root)):
            sys.stdout.write(f"{diagnostic}\n")
        raise


def add_target_option(parser: argparse.ArgumentParser) -> None:
    """`--target T` (a bundle directory or `oci://HOST[:PORT]/REPO[:TAG]`) and `--plain-http`."""
    parser.add_argument(
        "--target",
        required=True,
        type=_target,
        metavar="T",
        help="bundle directory, or oci://HOST[:PORT]/REPO[:TAG] (moving tag; default latest)",
    )
    add_plain_http_option(parser)


def add_plain_http_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plain-http",
        action="store_true",
        help="talk plain HTTP to an OCI registry on a loopback address (tests, local mirrors)",
    )


def _target(text: str) -> object:
    from aivault_ops.errors import AivaultError
    from aivault_ops.targets import parse_target

    try:
        return parse_target(text)
    except AivaultError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def add_trust_option(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--trust",
        required=required,
        action="extend",
        nargs="+",
        default=[],
        metavar="PUB",
        help="trusted public key: 'ed25519:<base64>' or a file holding one (repeatable)",
    )


def trusted_keys(trust: Sequence[str], compiled: CompiledProject | None = None) -> list[PublicKey]:
    """Keys from --trust plus the project's spec.trustedSigningKeys."""
    from aivault_ops.bundle import PublicKey, resolve_public_key

    keys = [resolve_public_key(value) for value in trust]
    project = compiled.validation.loaded.project if compiled else None
    if project is not None:
        keys.extend(PublicKey.parse(text) for text in project.trusted_signing_keys)
    return keys
