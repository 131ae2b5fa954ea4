"""`aivault-ops test [DIR]`: run the repo's policy tests (`tests/*.yaml`) against its policy.

Each case is decided by the runtime's own code (see `aivault-ops check`)
on DIR's compiled policy, or on a published bundle with `--bundle F
--trust PUB`. Failures print as `path:line:col: E-TEST-FAILED: …`, then a
summary line `N passed, N failed`; exit 1 on any failure or problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from aivault_ops.commands._common import display_prefix
from aivault_ops.commands._policy_source import add_source_options, load_source


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "test",
        help="run the policy tests in DIR/tests/ (expected allow/deny per request)",
        description="Run every case of DIR/tests/*.yaml (kind: PolicyTest) against DIR's"
        " compiled policy, or a published bundle. Exit 0: all passed, 1: a failure or a"
        " problem in the test files.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="DIR|FILE",
        help="a project directory (default ./vault.d or .) or files inside projects (the"
        " pre-commit hook passes changed files): each project is tested as a whole",
    )
    add_source_options(parser, project_dir=False)
    parser.add_argument("--json", action="store_true", help="print every case's result as JSON")
    parser.set_defaults(func=from_args)


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_tests`."""
    return run_tests(
        paths=args.paths,
        bundle=args.bundle,
        trust=args.trust,
        environment=args.env,
        as_json=args.json,
    )


def run_tests(
    *,
    paths: Sequence[Path] = (),
    bundle: Path | None = None,
    trust: Sequence[str] = (),
    environment: str | None = None,
    as_json: bool = False,
) -> int:
    """Run the cases of each project of `paths`; exit 0 when every one passed and the test
    files had no problem, else 1."""
    from aivault_ops.commands._common import find_project_roots

    roots = find_project_roots(paths)
    if not roots:
        sys.stdout.write("ok: no policy repo among the given files\n")
        return 0
    codes = [_run_project(root, bundle, trust, environment, as_json) for root in roots]
    return max(codes)


def _run_project(
    root: Path, bundle: Path | None, trust: Sequence[str], environment: str | None, as_json: bool
) -> int:
    from aivault_ops.diagnostics import Report
    from aivault_ops.policy_check.cases import check_names, load_cases
    from aivault_ops.policy_check.suite import run_cases

    source = load_source(repo=root, bundle=bundle, trust=trust, environment=environment)
    report = Report()
    cases = check_names(load_cases(root, report), source.policy.document, report)
    outcomes = run_cases(source.policy, cases)
    failed = [o for o in outcomes if not o.passed]
    prefix = display_prefix(root)
    problems = report.rebased(prefix)
    if as_json:
        document = {
            "policy": source.described,
            "passed": len(outcomes) - len(failed),
            "failed": len(failed),
            "problems": [p.to_json() for p in problems],
            "cases": [o.to_json() for o in outcomes],
        }
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        failures = Report()
        failures.extend(o.diagnostic() for o in failed)
        for diagnostic in [*problems, *failures.rebased(prefix)]:
            sys.stdout.write(f"{diagnostic}\n")
        summary = f"{len(outcomes) - len(failed)} passed, {len(failed)} failed"
        errors = f", {len(problems)} error(s) in the test files" if problems else ""
        sys.stdout.write(f"{summary}{errors}\n")
    return 1 if failed or problems else 0
