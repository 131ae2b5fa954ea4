"""`invoke CAP` without `--path`: the capability's one path prefix, from the policy repo.

The runtime exposes no capability descriptions to consumers, so the prefix
is read from the local policy repo (`--dir`): a Capability manifest there,
else a registry capability (built-in or the repo's `registry/` folder).
Without a policy repo, or for a capability it does not know, the path is `/`
as before.
"""

from __future__ import annotations

from pathlib import Path

from aivault_ops.commands._common import project_dir
from aivault_ops.errors import UsageError


def path_prefixes(capability: str, root: Path) -> tuple[str, ...] | None:
    """The path prefixes `capability` allows, per the repo at `root` (None: unknown)."""
    from aivault_ops.diagnostics import Report
    from aivault_ops.manifests.loader import PROJECT_FILE, load_project
    from aivault_ops.providers import builtin_registry
    from aivault_ops.validation.private_registry import project_registry

    if not (root / PROJECT_FILE).is_file():
        return None
    report = Report()
    loaded = load_project(root, environment=None, report=report)
    for manifest in loaded.capabilities:
        if manifest.name == capability:
            return manifest.path_prefixes
    provider = project_registry(loaded, builtin_registry(), report).providers.get(
        capability.split("/", 1)[0]
    )
    for spec in provider.capabilities if provider else ():
        if spec.name == capability:
            return spec.path_prefixes
    return None


def only_path_prefix(capability: str, directory: Path | None) -> str:
    """The one path prefix of `capability` (unknown: `/`); a usage error when it has several."""
    prefixes = path_prefixes(capability, project_dir(directory))
    if prefixes is None:
        return "/"
    if len(prefixes) != 1:
        raise UsageError(
            f"no --path given, and {capability} allows several path prefixes"
            f" ({', '.join(prefixes)}): pass --path P"
        )
    return prefixes[0]
