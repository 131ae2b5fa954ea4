"""Which SOPS files a `secrets` command works on, and one action over several files."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.errors import AivaultError

if TYPE_CHECKING:
    from aivault_ops.sops import SopsConfig


def set_target(name: str) -> Path:
    """The file `secrets set NAME` writes when no --file is given.

    The one file below the current directory that holds `name`, else the file
    a Credential's `secretRef` names, else the default file for `name`, as long
    as a creation rule in `.sops.yaml` covers it.
    """
    from aivault_ops.sops.discover import default_file, unique_holder

    existing = unique_holder(name, Path())
    if existing is not None:
        return existing
    base = _repo_base()
    target = _declared_file(name, base) or base / default_file(name)
    config = config_for(target)
    if config is None or config.rule_for(target) is None:
        raise AivaultError(
            f"no SOPS file below the current directory holds {name}, and no creation rule "
            f"in .sops.yaml covers the default {target}",
            hint="pass --file F",
        )
    return target


def _repo_base() -> Path:
    """Where new secret files go: here, or `./vault.d` when only it is a policy repo.

    From the directory `validate` runs in (the parent of `vault.d`), the
    `secrets set NAME` its messages suggest then works as pasted.
    """
    from aivault_ops.manifests.loader import PROJECT_FILE
    from aivault_ops.manifests.secret_refs import project_root

    default_repo = Path("vault.d")
    if project_root(Path.cwd()) is None and (default_repo / PROJECT_FILE).is_file():
        return default_repo
    return Path()


def config_for(target: Path) -> SopsConfig | None:
    """`.sops.yaml` above the current directory, as sops finds it, else above `target`."""
    from aivault_ops.sops import SopsConfig

    return SopsConfig.find(Path.cwd()) or SopsConfig.find(target.parent)


def _declared_file(name: str, base: Path) -> Path | None:
    """The file a Credential's `secretRef` names for `name`, when exactly one does."""
    from aivault_ops.manifests.secret_refs import declared_files

    files = declared_files(name, base)
    if len(files) > 1:
        listed = ", ".join(str(path) for path in files)
        raise AivaultError(
            f"the manifests name more than one file for {name}: {listed}", hint="pass --file F"
        )
    return files[0] if files else None


def target_files(given: Sequence[Path]) -> list[Path]:
    """The files given, else every SOPS file below the current directory (none: an error)."""
    from aivault_ops.sops.discover import candidate_files

    files = list(given) or list(candidate_files(Path()))
    if not files:
        raise AivaultError("no SOPS files found below the current directory")
    return files


def each_file(
    files: list[Path], action: Callable[[Path], dict[str, object]]
) -> tuple[list[dict[str, object]], int]:
    """`action` on each file: (its results, how many failed); failures are printed,
    with a progress line on a terminal."""
    from aivault_ops.sops import SopsError

    results, failures = [], 0
    progress = sys.stderr.isatty() and len(files) > 1
    for index, path in enumerate(files, start=1):
        if progress:
            sys.stderr.write(f"\r\x1b[K[{index}/{len(files)}] {path}")
            sys.stderr.flush()
        try:
            results.append(action(path))
        except SopsError as error:
            failures += 1
            sys.stderr.write(
                ("\n" if progress else "") + f"aivault-ops: error: {error.diagnostics()}\n"
            )
    if progress:
        sys.stderr.write("\r\x1b[K")
    return results, failures
