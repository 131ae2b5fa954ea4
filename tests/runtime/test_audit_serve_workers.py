"""`serve --workers 2` rotating a small audit file under a burst: two processes append,
rotate, compress and prune in one directory and the chain stays whole."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import httpx
from support.bundles import CANARY, TOKEN, BundleFactory
from support.runtime_proc import StartRuntime, wait_until

from aivault_ops.runtime.observe.audit_anchor import read_anchor
from aivault_ops.runtime.observe.audit_segments import disk_bytes, list_segments
from aivault_ops.runtime.observe.audit_verify import verify_chain

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SMALL_FILES = ["--workers", "2", "--audit-max-file-bytes", "4K", "--audit-rotate", "size"]
REQUESTS = 240


def burst(url: str) -> list[int]:
    """REQUESTS invokes, 24 at a time (a turn's batch spans rotations)."""

    async def run() -> list[int]:
        limit = asyncio.Semaphore(24)
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:

            async def one(index: int) -> int:
                async with limit:
                    response = await client.get(f"/v/my-api/v1/users/{index}")
                    return response.status_code

            return await asyncio.gather(*(one(index) for index in range(REQUESTS)))

    return asyncio.run(run())


def audit_records(state: Path) -> list[dict[str, Any]]:
    """Every retained line, gzip'd files decompressed, in chain order."""
    records = []
    for segment in list_segments(state / "audit"):
        data = segment.path.read_bytes()
        data = gzip.decompress(data) if segment.compressed else data
        assert CANARY.encode() not in data and TOKEN.encode() not in data
        records += [json.loads(line) for line in data.splitlines()]
    return records


def test_two_workers_rotate_and_compress_without_losing_a_line(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path, tmp_path: Path
) -> None:
    factory.publish(bundle_dir, 1)
    runtime = start_runtime(*SMALL_FILES)
    assert burst(runtime.url) == [200] * REQUESTS
    assert runtime.stop() == 0
    state = tmp_path / "state"
    paths = sorted(record["path"] for record in audit_records(state))
    assert paths == sorted(f"/v1/users/{index}" for index in range(REQUESTS))
    segments = list_segments(state / "audit")
    assert len(segments) > 10 and any(segment.compressed for segment in segments)
    numbers = [segment.key[2] for segment in segments[:-1]]
    assert numbers == list(range(1, len(numbers) + 1))
    report = verify_chain(state)
    assert (report.ok, report.lines, report.anchor) == (True, REQUESTS, None)


def test_two_workers_prune_to_the_budget_and_the_tail_verifies(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path, tmp_path: Path
) -> None:
    factory.publish(bundle_dir, 1)
    runtime = start_runtime(*SMALL_FILES, "--audit-retain-bytes", "12K")
    assert burst(runtime.url) == [200] * REQUESTS
    # disk use is measured at most every few seconds (a scan of the directory)
    wait_until(lambda: runtime.status()["audit"]["diskBytes"] > 0, what="disk use in /status")
    status = runtime.status()["audit"]
    assert status["warning"] is None and status["freeBytes"] > 0
    state = tmp_path / "state"
    # pruning runs at each rotation: the active file may grow past the budget until the next
    budget = 12 * 1024 + 4 * 1024
    wait_until(lambda: disk_bytes(state / "audit") <= budget, what="pruning to the budget")
    assert runtime.stop() == 0
    anchor = read_anchor(state / "audit")
    assert anchor is not None and anchor.files > 0
    report = verify_chain(state)
    assert report.ok and report.anchor == anchor
    assert 0 < report.lines == len(audit_records(state)) < REQUESTS
