"""Where compile time goes: cProfile of one validate + compile + sign of a generated repo.

Same repo shape as `benchmarks/compile.py` (its generator); the table lists
functions by own time (tottime) and a few by cumulative time.

    python -m benchmarks.compile_profile [--smoke]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aivault_ops.bundle import SigningKey
from benchmarks import compile as compile_bench

_MARKERS = ("site-packages/", "lib/python3.11/", "/work/main/")


@dataclass(frozen=True)
class CompileProfile:
    """Total seconds under the profiler and (function, own s, cumulative s) rows."""

    capabilities: int
    total_s: float
    by_own: list[tuple[str, float, float]]
    by_cumulative: list[tuple[str, float, float]]


def _label(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    for marker in _MARKERS:
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return f"{function} ({filename}:{line})"


def measure(capabilities: int, secret_files: int) -> CompileProfile:
    """Generate the repo, then profile one compile + sign."""
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory(prefix="aivault-bench-") as tmp:
        root = Path(tmp)
        compile_bench.generate(root, capabilities, secret_files)
        profiler = cProfile.Profile()
        profiler.runcall(compile_bench.compile_and_sign, root, key)
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    rows = [(_label(k), v[2], v[3]) for k, v in raw.items()]
    ours = [r for r in rows if "aivault_ops/" in r[0]]
    return CompileProfile(
        capabilities=capabilities,
        total_s=stats.total_tt,  # type: ignore[attr-defined]
        by_own=sorted(rows, key=lambda r: -r[1])[:12],
        by_cumulative=sorted(ours, key=lambda r: -r[2])[:14],
    )


def render(result: CompileProfile) -> str:
    """Two Markdown tables."""
    lines = [
        f"cProfile of one validate + compile + sign of {result.capabilities:,} capabilities:"
        f" {result.total_s:.2f} s under the profiler (cProfile slows Python calls down).",
        "",
        "| function (own time) | own s | cumulative s |",
        "|---|---:|---:|",
    ]
    lines += [f"| `{n}` | {own:.3f} | {cum:.3f} |" for n, own, cum in result.by_own]
    lines += ["", "| aivault_ops function (cumulative) | own s | cumulative s |", "|---|---:|---:|"]
    lines += [f"| `{n}` | {own:.3f} | {cum:.3f} |" for n, own, cum in result.by_cumulative]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> CompileProfile:
    """Run standalone and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="20 capabilities")
    args = parser.parse_args(argv)
    result = measure(*((20, 2) if args.smoke else (10_000, 500)))
    print(render(result), end="")
    return result


if __name__ == "__main__":
    main()
