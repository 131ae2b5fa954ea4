"""Compile scaling: validate + compile + sign against bare YAML parsing of the same files.

Generates policy repos of 100, 1,000 and 10,000 capabilities (10 / 100 / 500
SOPS secret files, one credential per file, a custom provider per credential,
20 capabilities per credential) and reports, for each, the median of several
runs of (a) reading and parsing every manifest with libyaml (`CSafeLoader`) and (b)
`aivault-ops`' validate + compile + canonical JSON + bundle signing.

    python -m benchmarks.compile [--smoke] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pyrage import x25519

from aivault_ops.bundle import SigningKey
from aivault_ops.compiled_project import compile_project, sign_bundle
from benchmarks.bundles import write_repo

FULL_SIZES = ((100, 10), (1_000, 100), (10_000, 500))
SMOKE_SIZES = ((20, 2),)


@dataclass(frozen=True)
class Row:
    capabilities: int
    secret_files: int
    parse_s: float
    compile_s: float
    spread: str

    @property
    def ratio(self) -> float:
        return self.compile_s / self.parse_s


def generate(root: Path, capabilities: int, secret_files: int) -> None:
    """A valid policy repo of the given size (SOPS files written by our encryptor)."""
    recipient = str(x25519.Identity.generate().to_public())
    write_repo(root, recipient, "ab" * 32, capabilities, secret_files)


LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def bare_parse(root: Path) -> None:
    """The baseline: read and parse every manifest file (libyaml), nothing else."""
    for path in sorted(root.rglob("*.yaml")):
        if path.name != ".sops.yaml" and "secrets" not in path.parts:
            list(yaml.load_all(path.read_text(), Loader=LOADER))


def compile_and_sign(root: Path, key: SigningKey) -> None:
    compiled = compile_project(root, environment=None)
    sign_bundle(compiled, serial=1, revision="bench", expires_at=None, signing_key=key)


def median_time(action: Callable[[], None], runs: int) -> tuple[float, str]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), f"{min(samples):.3f}–{max(samples):.3f}"


def measure(capabilities: int, secret_files: int, runs: int) -> Row:
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, capabilities, secret_files)
        parse_s, _ = median_time(lambda: bare_parse(root), runs)
        compile_s, spread = median_time(lambda: compile_and_sign(root, key), runs)
    return Row(capabilities, secret_files, parse_s, compile_s, spread)


def render(rows: list[Row]) -> str:
    lines = [
        "| capabilities | secret files | YAML parse (s) | validate+compile+sign (s)"
        " | spread (s) | ratio |",
        "|---:|---:|---:|---:|---|---:|",
    ]
    lines += [
        f"| {r.capabilities:,} | {r.secret_files} | {r.parse_s:.3f} | {r.compile_s:.3f} |"
        f" {r.spread} | {r.ratio:.2f}× |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (for CI)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    sizes, runs = (SMOKE_SIZES, 1) if args.smoke else (FULL_SIZES, args.runs)
    rows = [measure(caps, files, runs) for caps, files in sizes]
    print(render(rows), end="")
    return rows


if __name__ == "__main__":
    main()
