"""Writing new manifests the way the imperative verbs do: checked, never clobbering, atomic.

The new files are first written into a copy of the policy repo and validated
there with the same rules as `validate`; only problems the change adds (not
those the repo already had) refuse it, printed with the repo's real paths.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.atomic_write import replace_file
from aivault_ops.commands._common import display_prefix
from aivault_ops.errors import AivaultError

if TYPE_CHECKING:
    from aivault_ops.validation.run import Validation


def baseline(root: Path) -> Validation:
    """The repo as it is now, validated (its problems are not the new files' fault)."""
    from aivault_ops.validation.run import validate_project

    return validate_project(root)


def refuse_existing(root: Path, files: Mapping[str, str | None], *, replace: bool) -> None:
    """An error naming the first file to write that exists, unless `replace`."""
    if replace:
        return
    for relative, text in files.items():
        if text is not None and (root / relative).exists():
            raise AivaultError(
                f"{display_prefix(root)}{relative} already exists", hint="pass --replace"
            )


def check(root: Path, files: Mapping[str, str | None], before: Validation) -> None:
    """Refuse (printing them) the problems `files` would add to the repo (None: removed)."""
    from aivault_ops.validation.run import validate_project

    with tempfile.TemporaryDirectory(prefix="aivault-ops-check-") as scratch:
        copy = Path(scratch) / "repo"
        shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        for relative, text in files.items():
            target = copy / relative
            if text is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        after = validate_project(copy).report
    known = set(before.report)
    added = [d for d in after if d not in known]
    if not added:
        return
    from aivault_ops.diagnostics import Report

    report = Report()
    report.extend(added)
    for diagnostic in report.rebased(display_prefix(root)):
        sys.stderr.write(f"{diagnostic}\n")
    raise AivaultError(
        f"refusing to write: the change would add {len(added)} problem(s) (listed above)"
    )


def write_atomic(path: Path, text: str) -> None:
    """`text` into `path` through a temporary file renamed over it in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, text.encode(), mode=0o644)


def write_checked(
    root: Path, files: Mapping[str, str | None], *, replace: bool, before: Validation
) -> None:
    """Refuse clobbering and new problems, then write `files` (None: remove that file)
    and say what comes next."""
    refuse_existing(root, files, replace=replace)
    check(root, files, before)
    for relative, text in files.items():
        if text is None:
            (root / relative).unlink(missing_ok=True)
            sys.stdout.write(f"removed {display_prefix(root)}{relative}\n")
            continue
        write_atomic(root / relative, text)
        sys.stdout.write(f"wrote {display_prefix(root)}{relative}\n")
    shown = display_prefix(root).rstrip("/") or "."
    sys.stdout.write(
        f"Next: aivault-ops validate {shown}, then aivault-ops apply {shown} --target …\n"
    )
