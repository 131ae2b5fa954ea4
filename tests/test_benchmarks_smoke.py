"""The benchmark harness in smoke mode: it runs end to end and writes every section.

Asserts nothing about timing (CI boxes are noisy); only that the harness has
not rotted. Needs nginx and wrk (Debian: `apt-get install -y nginx wrk`), and
for the fleet section docker-registry and redis-server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SECTIONS = (
    ("## Targets", "| target | measured | met |"),
    (
        "## Proxy throughput and latency",
        "| target | conns | req/s | p50 (ms) | p99 (ms) | errors |",
    ),
    ("## Reload under load", "| bundles | publish → first response (p50, ms) |"),
    ("## Bundle load vs sops", "| what | total (s) | per file (ms) |"),
    ("## Compile scaling", "| capabilities | secret files | YAML parse (s) |"),
    ("## Memory", "| runtime (1 worker) | RSS (MiB) |"),
    (
        "## Fleet: registry propagation and shared rate limits",
        "| publish → all runtimes serving (p50, ms) |",
    ),
    (
        "## Bulkheads: a fast capability beside a saturated slow upstream",
        "| runtime | fast alone (req/s) | fast beside slow (req/s) | ratio |",
    ),
    ("## Soak: load, reloads and a slow upstream", "| window | req/s | p99 (ms) | errors |"),
    ("## Where the time goes (profile)", ""),
)

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None or shutil.which("wrk") is None,
    reason="the benchmark smoke run needs nginx and wrk (apt-get install -y nginx wrk)",
)


@pytest.mark.timeout(540)  # every section: the fleet's registry, Redis, 5 runtimes, a 30 s soak
def test_smoke_run_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "B.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=480,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    text = out.read_text()
    for heading, table_header in SECTIONS:
        assert heading in text, heading
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        assert table_header in section, (heading, section[:500])
        assert "**Failed:**" not in section, section
    assert "**smoke run**" in text


def test_unknown_section_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--only",
            "proxy,nope",
            "--out",
            str(tmp_path / "B.md"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown section(s) nope" in result.stderr
    assert not (tmp_path / "B.md").exists()


def test_ab_compares_head_with_a_base_revision() -> None:
    """`benchmarks.ab` against HEAD itself: both runtimes serve, the table has both rows."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.ab", "--base", "HEAD", "--rounds", "1",
         "--duration", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 64 |")]
    rows += [line for line in result.stdout.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 2
