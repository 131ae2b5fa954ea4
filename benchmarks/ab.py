"""CPU per proxied request: this checkout against another revision, in one run.

    python -m benchmarks.ab --base REV [--rounds 8] [--duration 5]

Checks out `REV` into a temporary git worktree, starts one nginx TLS
upstream and two runtimes (1 worker each, the same signed bundle): `base`
runs `REV`'s `aivault_ops`, `head` runs this checkout's. wrk drives each in
turn, alternating the order every round so drift on a shared machine hits
both alike; each sample is the runtime's user+system CPU divided by the
requests wrk completed. Prints the medians and the median of the per-round
ratios head/base (1.00 = no change). This is how the closing notes' "CPU per
request within 5 % of before" claims are measured.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bundles import UPSTREAM_PATH, Keys, SmallBundles
from benchmarks.common import Processes, cpu_seconds, free_port, in_tmp, run_wrk
from benchmarks.stack import REPO, Tls, start_nginx_upstream, start_runtime

CONNECTIONS = (64, 1)
SIDES = ("base", "head")


@dataclass
class AbResult:
    """CPU µs per request, per (side, connections), one sample per round."""

    base: str
    samples: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    def ratio(self, connections: int) -> float:
        """Median over rounds of head/base."""
        pairs = zip(
            self.samples[("head", connections)], self.samples[("base", connections)], strict=True
        )
        return statistics.median(head / base for head, base in pairs)

    def render(self) -> str:
        """A small Markdown table."""
        lines = [
            f"CPU µs per request, head = this checkout, base = {self.base}",
            "",
            "| connections | base | head | head/base (median of rounds) |",
            "|---:|---:|---:|---:|",
        ]
        for connections in CONNECTIONS:
            base = statistics.median(self.samples[("base", connections)])
            head = statistics.median(self.samples[("head", connections)])
            lines.append(
                f"| {connections} | {base:.0f} | {head:.0f} | {self.ratio(connections):.3f} |"
            )
        return "\n".join(lines)


def _worktree(revision: str, into: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(into), revision],
        check=True,
    )


def _cpu_per_request(pid: int, url: str, token: str, connections: int, duration_s: float) -> float:
    before = cpu_seconds(pid)
    sample = run_wrk(url, connections=connections, duration_s=duration_s, headers=(token,))
    if sample.errors:
        raise RuntimeError(f"wrk saw {sample.errors} errors against {url}")
    return (cpu_seconds(pid) - before) / max(1, sample.requests) * 1e6


def measure(
    workdir: Path, processes: Processes, *, base: str, rounds: int, duration_s: float
) -> AbResult:
    """Both runtimes against one upstream, `rounds` interleaved wrk rounds."""
    tree = workdir / "base-tree"
    _worktree(base, tree)
    try:
        tls, keys = Tls.create(workdir), Keys.create(workdir)
        bundle = SmallBundles.create(keys).build(1)
        upstream = start_nginx_upstream(processes, workdir, tls, free_port())
        runtimes = {}
        for side in SIDES:
            (workdir / f"{side}-bundles").mkdir()
            (workdir / f"{side}-bundles" / "bundle-1.tar.gz").write_bytes(bundle)
            runtimes[side] = start_runtime(
                processes, workdir, name=side, keys=keys, tls=tls, upstream_port=upstream,
                source=tree if side == "base" else REPO,
            )  # fmt: skip
        token = f"Authorization: Bearer {keys.token}"
        result = AbResult(base)
        for round_index in range(rounds):
            order = SIDES if round_index % 2 == 0 else SIDES[::-1]
            for connections in CONNECTIONS:
                for side in order:
                    handle = runtimes[side]
                    url = f"{handle.url}/v/my-api{UPSTREAM_PATH}"
                    spent = _cpu_per_request(handle.pid, url, token, connections, duration_s)
                    result.samples.setdefault((side, connections), []).append(spent)
            time.sleep(0.2)
        return result
    finally:
        processes.close()
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False
        )


def main(argv: list[str] | None = None) -> AbResult:
    """Parse options, measure, print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    options = parser.parse_args(argv)
    result = in_tmp(
        lambda workdir, processes: measure(
            workdir, processes, base=options.base, rounds=options.rounds,
            duration_s=options.duration,
        )
    )  # fmt: skip
    print(result.render())
    return result


if __name__ == "__main__":
    main()
