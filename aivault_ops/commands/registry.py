"""`aivault-ops registry lint [FILES…]`: aivault's rules for provider JSON files.

Each file is linted together with the other `*.json` files of its folder,
since provider names and capability ids must be unique across a registry.
With no FILES, the policy repo's own `registry/` folder is linted (DIR as
for every command); `--builtin` lints the registry shipped with the package.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aivault_ops.commands._common import project_dir
from aivault_ops.diagnostics import Diagnostic, Report
from aivault_ops.errors import UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `registry` and its `lint` subcommand."""
    parser = subparsers.add_parser("registry", help="lint provider JSON files (registry rules)")
    verbs = parser.add_subparsers(dest="registry_command", metavar="VERB", required=True)
    lint = verbs.add_parser(
        "lint",
        help="check provider files against the registry schema and aivault's registry rules",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lint.add_argument("files", nargs="*", type=Path, metavar="FILES", help="provider JSON files")
    lint.add_argument(
        "--dir", type=Path, metavar="DIR", help="the policy repo (default: ./vault.d or .)"
    )
    lint.add_argument("--builtin", action="store_true", help="lint the package's built-in registry")
    lint.add_argument("--json", action="store_true", help="machine-readable output")
    lint.set_defaults(
        func=lambda args: lint_registry(
            files=args.files, repo=args.dir, builtin=args.builtin, as_json=args.json
        )
    )


def lint_registry(*, files: Sequence[Path], repo: Path | None, builtin: bool, as_json: bool) -> int:
    """Lint the chosen provider files; print `path:line:col: CODE: message`; exit 0 or 1."""
    from aivault_ops.providers import REGISTRY_DIR

    if builtin and files:
        raise UsageError("give FILES or --builtin, not both")
    if builtin:
        folders = [REGISTRY_DIR]
    elif files:
        folders = _folders(files)
    else:
        folders = [project_dir(repo) / "registry"]
    report = Report()
    count = 0
    for folder in folders:
        paths = sorted(path for path in folder.glob("*.json") if path.is_file())
        count += len(paths)
        report.extend(_lint_folder(paths))
    sys.stdout.write(report.render_json() if as_json else report.render_text())
    if not as_json:
        verdict = "ok" if report.ok else f"{len(report)} problem(s)"
        sys.stderr.write(f"registry lint: {count} file(s), {verdict}\n")
    return 0 if report.ok else 1


def _folders(files: Sequence[Path]) -> list[Path]:
    folders: list[Path] = []
    for file in files:
        if file.suffix != ".json" or not file.is_file():
            raise UsageError(f"{file}: not a provider .json file")
        if file.parent not in folders:
            folders.append(file.parent)
    return folders


def _lint_folder(paths: Sequence[Path]) -> list[Diagnostic]:
    from aivault_ops.registry_files import read_provider_file
    from aivault_ops.registry_lint import ProviderFile, lint

    found: list[Diagnostic] = []
    parsed: list[ProviderFile] = []
    for path in paths:
        read = read_provider_file(path, _display(path))
        if isinstance(read, ProviderFile):
            parsed.append(read)
        else:
            found.append(read)
    return [*found, *lint(parsed)]


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
