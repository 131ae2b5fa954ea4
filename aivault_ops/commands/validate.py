"""`aivault-ops validate [DIR] [FILES…]`: every check that needs no private key."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.commands._common import add_env_option, display_prefix, find_project_roots

if TYPE_CHECKING:
    from aivault_ops.validation.run import Validation


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check manifests, registry references and secret files",
        description="Validate a policy repo: JSON Schema, cross-references, registry rules and"
        " SOPS file hygiene. Prints path:line:col: CODE: message for every problem.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="DIR|FILE",
        help="a project directory (default ./vault.d or .) or files inside projects; the"
        " whole project of each file is validated, since references cross files",
    )
    add_env_option(parser)
    parser.add_argument("--json", action="store_true", help="print diagnostics as JSON")
    parser.set_defaults(func=from_args)


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_validate`."""
    return run_validate(
        paths=[Path(p) for p in args.paths], environment=args.env, as_json=args.json
    )


def run_validate(*, paths: Sequence[Path], environment: str | None, as_json: bool = False) -> int:
    """Validate the projects of `paths` (none: the default one); exit 0 valid, 1 not."""
    from aivault_ops.diagnostics import Report
    from aivault_ops.validation.run import validate_project

    combined = Report()
    roots = find_project_roots(paths)
    if not roots:
        if as_json:
            sys.stdout.write("[]\n")
        else:
            sys.stdout.write("ok: no policy repo among the given files\n")
        return 0
    for root in roots:
        result = validate_project(root, environment=environment)
        _validate_tests(root, result)
        combined.extend(result.report.rebased(display_prefix(root)))
    if as_json:
        sys.stdout.write(combined.render_json())
    elif combined.ok:
        sys.stdout.write(f"ok: {', '.join(map(str, roots))} valid\n")
    else:
        sys.stdout.write(combined.render_text())
        sys.stderr.write(f"{len(combined)} error(s)\n")
    return 0 if combined.ok else 1


def _validate_tests(root: Path, result: Validation) -> None:
    """The policy test files (`tests/*.yaml`): schema, and names the policy knows."""
    from aivault_ops.compiler import compile_policy
    from aivault_ops.policy_check.cases import policy_test_files, validate_test_files

    if policy_test_files(root):
        document = compile_policy(result.policy) if result.policy is not None else None
        validate_test_files(root, document, result.report)
