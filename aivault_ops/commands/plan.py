"""`aivault-ops plan [DIR] --target T`: what apply would change (exit 0 none, 2 changes)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.commands._common import (
    add_env_option,
    add_project_dir,
    add_trust_option,
    compile_checked,
    project_dir,
    trusted_keys,
)

if TYPE_CHECKING:
    from aivault_ops.plan import Change
    from aivault_ops.publishing import PublishedBase

EXIT_CHANGES = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show what apply would change against the newest bundle in a target",
        description="Compare the project with the newest bundle in TARGET. Exit 0: no"
        " changes, 2: changes, 1: error.",
    )
    add_project_dir(parser)
    parser.add_argument("--target", required=True, type=Path, metavar="T", help="bundle directory")
    add_env_option(parser)
    add_trust_option(parser, required=False)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aivault_ops import plan
    from aivault_ops.publishing import read_base

    root = project_dir(args.project_dir)
    compiled = compile_checked(root, args.env)
    base = read_base(args.target, trusted_keys(args, compiled))
    changes = plan.diff_policies(base.policy if base else None, compiled.policy)
    if args.json:
        document = plan.render_json(changes, base=base.describe() if base else None)
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        write_plan_text(base, changes)
    return EXIT_CHANGES if changes else 0


def write_plan_text(base: PublishedBase | None, changes: list[Change]) -> None:
    """The human plan: what it compares against, then one line per change."""
    from aivault_ops import plan

    if base is None:
        sys.stdout.write("Comparing against: nothing published yet\n")
    else:
        sys.stdout.write(f"Comparing against: {base.path.name} (revision {base.revision})\n")
        if base.unverified_reason:
            sys.stderr.write(
                f"warning: the newest bundle could not be verified ({base.unverified_reason});"
                " comparing against its unverified content\n"
            )
    sys.stdout.write(plan.render_text(changes))
