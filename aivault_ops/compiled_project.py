"""A policy repo on disk, compiled: the I/O edge around the pure compiler.

`compile_project` validates the repo, turns the resolved policy into
`policy.json` (`compiler.py`, pure) and reads the secret files (as committed,
byte for byte, re-checking the digests recorded during validation);
`sign_bundle` hands the result to `bundle.build_bundle`, which packs and
signs; `git_revision` is the revision a bundle records.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aivault_ops.bundle import SigningKey, build_bundle
from aivault_ops.canonical_json import canonical_json
from aivault_ops.compiler import compile_policy
from aivault_ops.errors import AivaultError, ValidationFailed
from aivault_ops.policy_document import PolicyDocument
from aivault_ops.resolve.model import ResolvedPolicy
from aivault_ops.validation.run import Validation, validate_project

UNVERSIONED = "unversioned"


@dataclass(frozen=True)
class CompiledProject:
    """A valid project's policy document and the secret files it needs."""

    validation: Validation
    document: PolicyDocument
    secret_files: dict[str, bytes]  # bundle path -> bytes

    @property
    def policy(self) -> dict[str, Any]:
        """The document as JSON data: what `policy.json` holds."""
        return self.document.to_json()


def compile_project(root: Path, *, environment: str | None) -> CompiledProject:
    """Validate and compile; raise `ValidationFailed` (report attached) on any error."""
    validation = validate_project(root, environment=environment)
    if validation.policy is None:
        raise ValidationFailed(
            f"{len(validation.report)} validation error(s)", report=validation.report
        )
    document = compile_policy(validation.policy)
    return CompiledProject(validation, document, _read_secret_files(root, validation.policy))


def _read_secret_files(root: Path, policy: ResolvedPolicy) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for relative, file in policy.secret_files.items():
        data = (root / relative).read_bytes()
        if hashlib.sha256(data).hexdigest() != file.sha256:
            raise AivaultError(f"{relative}: changed while compiling; run the command again")
        files[file.bundle_path] = data
    return files


def sign_bundle(
    compiled: CompiledProject,
    *,
    serial: int,
    revision: str,
    expires_at: datetime | None,
    signing_key: SigningKey,
) -> bytes:
    """The deterministic, signed tar.gz for this compiled project."""
    return build_bundle(
        policy_json=canonical_json(compiled.document.to_json()),
        secret_files=compiled.secret_files,
        serial=serial,
        revision=revision,
        environment=compiled.document.environment,
        expires_at=expires_at,
        signing_key=signing_key,
    )


def git_revision(root: Path) -> str:
    """HEAD's commit of the repo holding `root` (`+dirty` if the project has changes)."""
    head = _git(root, "rev-parse", "HEAD")
    if head is None:
        return UNVERSIONED
    status = _git(root, "status", "--porcelain", "--", ".")
    return f"{head}+dirty" if status else head


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None
