"""Per-package branch coverage gate, run after pytest (`scripts/test.sh`).

Reads the coverage data pytest-cov left in `.coverage` (already combined
across the xdist workers) with coverage's Python API and prints one row per
package: every directory of the package that has an `__init__.py`, its own
modules only (a subpackage is its own row), the top-level modules under the
package's own name. The percentage counts statements and branches together,
as `coverage report --branch` does. Exit 1, naming them, when any package is
below the threshold; exit 2 when there is no coverage data to read.

    python scripts/coverage_by_package.py [--data-file .coverage] [--fail-under 90]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import coverage
from coverage.exceptions import NoDataError

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class PackageCoverage:
    """Statement and branch counts summed over one package's own modules."""

    name: str
    statements: int = 0
    covered_statements: int = 0
    branches: int = 0
    covered_branches: int = 0

    @property
    def percent(self) -> float:
        total = self.statements + self.branches
        covered = self.covered_statements + self.covered_branches
        return 100.0 if total == 0 else 100.0 * covered / total


def package_of(module: Path, package_dir: Path) -> str:
    """`aivault_ops/runtime/policy/rate_limit.py` → `aivault_ops.runtime.policy`.

    A directory without an `__init__.py` belongs to its nearest package.
    """
    directory = module.parent
    while directory != package_dir and not (directory / "__init__.py").is_file():
        directory = directory.parent
    parts = directory.relative_to(package_dir.parent).parts
    return ".".join(parts)


def modules_of(package_dir: Path) -> list[Path]:
    """Every `.py` file of the package (caches left out), sorted."""
    return sorted(p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts)


def measure(data_file: Path, package_dir: Path) -> list[PackageCoverage]:
    """One `PackageCoverage` per package, sorted by name; modules never run count as missed."""
    modules = modules_of(package_dir)
    cov = coverage.Coverage(data_file=str(data_file))
    cov.load()
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "coverage.json"
        cov.json_report(morfs=[str(p) for p in modules], outfile=str(report))
        files = json.loads(report.read_text(encoding="utf-8"))["files"]
    by_path = {Path(name).resolve(): entry["summary"] for name, entry in files.items()}
    packages: dict[str, PackageCoverage] = {}
    for module in modules:
        name = package_of(module, package_dir)
        row = packages.setdefault(name, PackageCoverage(name))
        summary = by_path.get(module.resolve())
        if summary is None:  # nothing to measure (an empty __init__.py)
            continue
        row.statements += summary["num_statements"]
        row.covered_statements += summary["covered_lines"]
        row.branches += summary.get("num_branches", 0)
        row.covered_branches += summary.get("covered_branches", 0)
    return [packages[name] for name in sorted(packages)]


def render(rows: Iterable[PackageCoverage], fail_under: float) -> str:
    """The table, one package per line, the short ones marked."""
    rows = list(rows)
    width = max([len("package"), *(len(row.name) for row in rows)])
    lines = [f"{'package':<{width}}  {'stmts':>6}  {'miss':>5}  {'branch':>6}  {'bmiss':>5}  cover"]
    for row in rows:
        missed = row.statements - row.covered_statements
        missed_branches = row.branches - row.covered_branches
        mark = f"  < {fail_under:g}%" if row.percent < fail_under else ""
        lines.append(
            f"{row.name:<{width}}  {row.statements:>6}  {missed:>5}"
            f"  {row.branches:>6}  {missed_branches:>5}  {row.percent:5.1f}%{mark}"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-file", type=Path, default=ROOT / ".coverage")
    parser.add_argument("--package-dir", type=Path, default=ROOT / "aivault_ops")
    parser.add_argument("--fail-under", type=float, default=90.0, metavar="PERCENT")
    args = parser.parse_args(argv)
    if not args.data_file.is_file():
        sys.stderr.write(f"{args.data_file}: no coverage data (run pytest with --cov first)\n")
        return 2
    try:
        rows = measure(args.data_file, args.package_dir.resolve())
    except NoDataError as error:
        sys.stderr.write(f"{args.data_file}: {error}\n")
        return 2
    sys.stdout.write(render(rows, args.fail_under))
    short = [row for row in rows if row.percent < args.fail_under]
    if short:
        listed = ", ".join(f"{row.name} ({row.percent:.1f}%)" for row in short)
        sys.stdout.write(f"FAIL: below {args.fail_under:g}% branch coverage: {listed}\n")
        return 1
    sys.stdout.write(f"ok: every package at or above {args.fail_under:g}% branch coverage\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
