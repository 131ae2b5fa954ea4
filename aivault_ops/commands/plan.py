"""`aivault-ops plan [DIR] --target T`: what apply would change (exit 0 none, 2 changes)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.commands._common import (
    add_env_option,
    add_project_dir,
    add_target_option,
    add_trust_option,
    compile_checked,
    project_dir,
    trusted_keys,
)

if TYPE_CHECKING:
    from aivault_ops.compiled_project import CompiledProject
    from aivault_ops.oci.reference import OciReference
    from aivault_ops.plan import Change
    from aivault_ops.policy_check.explain import Flip
    from aivault_ops.published_bundles import PublishedBase, TargetState

EXIT_CHANGES = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show what apply would change against the newest bundle in a target",
        description="Compare the project with the newest bundle in TARGET. Exit 0: no"
        " changes, 2: changes, 1: error.",
    )
    add_project_dir(parser)
    add_target_option(parser)
    add_env_option(parser)
    add_trust_option(parser, required=False)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also list the decisions that flip (the repo's test cases and probes of every"
        " changed capability): 'consumer c: DELETE /x on cap: deny -> allow'",
    )
    parser.set_defaults(func=from_args)


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_plan`."""
    return run_plan(
        repo=args.project_dir,
        target=args.target,
        plain_http=args.plain_http,
        environment=args.env,
        trust=args.trust,
        as_json=args.json,
        explain=args.explain,
    )


def run_plan(
    *,
    repo: Path | None,
    target: Path | OciReference,
    environment: str | None,
    trust: Sequence[str] = (),
    as_json: bool = False,
    plain_http: bool = False,
    explain: bool = False,
) -> int:
    """Print what `apply` would change in `target`; exit 0 none, 2 changes."""
    from aivault_ops import plan
    from aivault_ops.published_bundles import read_target
    from aivault_ops.targets import open_target

    root = project_dir(repo)
    compiled = compile_checked(root, environment)
    with open_target(target, plain_http=plain_http, environ=os.environ) as opened:
        state = read_target(opened.source, trusted_keys(trust, compiled))
    base = state.base
    changes = plan.diff_policies(base.policy if base else None, compiled.policy)
    if as_json:
        document = plan.render_json(changes, base=base.describe() if base else None)
        if state.unverifiable:
            document["unverifiable"] = [
                {"bundle": path.name, "reason": reason} for path, reason in state.unverifiable
            ]
        if explain:
            document["explain"] = [flip.to_json() for flip in _flips(root, base, compiled)]
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        write_plan_text(state, changes)
        if explain:
            from aivault_ops.policy_check.explain import render_text

            sys.stdout.write(render_text(_flips(root, base, compiled)))
    return EXIT_CHANGES if changes or state.unverifiable else 0


def write_plan_text(state: TargetState, changes: list[Change]) -> None:
    """The human plan: what it compares against, then one line per change."""
    from aivault_ops import plan

    base = state.base
    for path, reason in state.unverifiable:
        sys.stderr.write(
            f"warning: {path.name} does not verify with the trusted keys ({reason}); it is not"
            " compared against, and apply publishes a bundle above it\n"
        )
    if base is None:
        nothing = "nothing verified" if state.unverifiable else "nothing"
        sys.stdout.write(f"Comparing against: {nothing} published yet\n")
    else:
        sys.stdout.write(f"Comparing against: {base.path.name} (revision {base.revision})\n")
        if base.unverified_reason:
            sys.stderr.write(
                f"warning: the newest bundle could not be verified ({base.unverified_reason});"
                " comparing against its unverified content\n"
            )
    sys.stdout.write(plan.render_text(changes))


def _flips(root: Path, base: PublishedBase | None, compiled: CompiledProject) -> list[Flip]:
    """`--explain`: the decisions that flip from the published policy to the repo's."""
    from aivault_ops.diagnostics import Report
    from aivault_ops.policy_check.cases import load_cases
    from aivault_ops.policy_check.explain import explain
    from aivault_ops.policy_document import PolicyDocument

    before = PolicyDocument.from_json(base.policy) if base is not None else None
    cases = [case.ask for case in load_cases(root, Report())]
    return explain(before, compiled.document, cases)
