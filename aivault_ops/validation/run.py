"""The whole validation pipeline for one project directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.loader import LoadedProject, load_project
from aivault_ops.providers import Registry, builtin_registry
from aivault_ops.resolve.model import ResolvedPolicy
from aivault_ops.resolve.policy import resolve
from aivault_ops.validation.private_registry import project_registry
from aivault_ops.validation.secret_files import index_secret_files


@dataclass(frozen=True)
class Validation:
    """What validating a project produced: the loaded files, the policy (if valid), problems."""

    loaded: LoadedProject
    policy: ResolvedPolicy | None
    report: Report


def validate_project(
    root: Path, *, environment: str | None = None, registry: Registry | None = None
) -> Validation:
    """Load, check secret files and resolve; collect every problem in one report."""
    report = Report()
    loaded = load_project(root, environment=environment, report=report)
    secrets = index_secret_files(loaded, report)
    registry = project_registry(loaded, registry or builtin_registry(), report)
    policy = resolve(loaded, registry, secrets, report)
    return Validation(loaded, policy, report)
