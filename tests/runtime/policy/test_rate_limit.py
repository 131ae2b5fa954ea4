"""Token buckets: exact counts under a fake clock, in memory and across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from aivault_ops.errors import AivaultError
from aivault_ops.runtime.policy.rate_limit import (
    PROBE,
    Bucket,
    Decision,
    InMemoryRateLimitStore,
    RateLimitStore,
    SharedFileRateLimitStore,
    take,
)

KEY = ("research-agent", "openai/chat")


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RateLimitStore]:
    if request.param == "memory":
        yield InMemoryRateLimitStore()
        return
    shared = SharedFileRateLimitStore(tmp_path / "rate-limits.bin", slots=64)
    yield shared
    shared.close()


def allowed(store: RateLimitStore, key: tuple[str, str], limit: int, now: float, n: int) -> int:
    return sum(store.check(key, limit, now).allowed for _ in range(n))


def test_burst_up_to_capacity_then_refused(store: RateLimitStore) -> None:
    assert allowed(store, KEY, 60, 1000.0, 100) == 60
    refused = store.check(KEY, 60, 1000.0)
    assert refused == Decision(False, 1.0)
    assert refused.retry_after_header() == "1"


def test_refill_is_rate_over_sixty_seconds(store: RateLimitStore) -> None:
    assert allowed(store, KEY, 6, 0.0, 10) == 6
    assert store.check(KEY, 6, 9.0).allowed is False
    assert store.check(KEY, 6, 9.0).retry_after_seconds == pytest.approx(1.0)
    assert store.check(KEY, 6, 10.0).allowed is True
    assert allowed(store, KEY, 6, 35.0, 10) == 2
    assert allowed(store, KEY, 6, 10_000.0, 10) == 6


def test_keys_are_independent(store: RateLimitStore) -> None:
    assert allowed(store, KEY, 2, 0.0, 5) == 2
    assert allowed(store, ("research-agent", "openai/embeddings"), 2, 0.0, 5) == 2
    assert allowed(store, ("other-agent", "openai/chat"), 2, 0.0, 5) == 2


def test_clock_going_backwards_refills_nothing(store: RateLimitStore) -> None:
    assert allowed(store, KEY, 60, 500.0, 60) == 60
    assert store.check(KEY, 60, 100.0).allowed is False
    assert store.check(KEY, 60, 101.0).allowed is True


def test_small_clock_skew_between_workers_counts_no_time_twice(store: RateLimitStore) -> None:
    assert allowed(store, KEY, 60, 10.0, 60) == 60
    assert store.check(KEY, 60, 9.5).allowed is False
    assert store.check(KEY, 60, 10.5).allowed is False
    assert store.check(KEY, 60, 11.0).allowed is True


def test_a_lowered_limit_caps_the_bucket(store: RateLimitStore) -> None:
    assert allowed(store, KEY, 60, 0.0, 1) == 1
    assert allowed(store, KEY, 3, 0.0, 10) == 3


def test_retry_after_rounds_up() -> None:
    assert Decision(False, 0.2).retry_after_header() == "1"
    assert Decision(False, 2.01).retry_after_header() == "3"
    _, decision = take(Bucket(0.5, 0.0, 1), 1, 0.0)
    assert decision == Decision(False, 30.0)
    with pytest.raises(ValueError, match="at least 1"):
        take(None, 0, 0.0)


def test_memory_store_evicts_idle_full_buckets() -> None:
    memory = InMemoryRateLimitStore(sweep_size=10)
    for n in range(9):
        memory.check((f"c{n}", "cap"), 60, 0.0)
    memory.check(("busy", "cap"), 1, 1.0)
    assert len(memory) == 1, "the nine refilled buckets are dropped, the busy one kept"
    assert memory.check(("busy", "cap"), 1, 1.0).allowed is False
    for n in range(30):
        memory.check((f"d{n}", "cap"), 60, 1.0)
    assert len(memory) == 31, "active buckets are never dropped"
    for n in range(9):
        memory.check((f"e{n}", "cap"), 60, 100.0)
    assert len(memory) == 9, "the sweep at 40 entries keeps only the nine active buckets"


def test_shared_table_reuses_idle_slots_and_fails_closed_when_full(tmp_path: Path) -> None:
    table = SharedFileRateLimitStore(tmp_path / "t.bin", slots=PROBE)
    for n in range(PROBE):
        assert table.check((f"c{n}", "cap"), 1, 0.0).allowed
    assert table.check(("late", "cap"), 1, 0.0) == Decision(False, 1.0)
    assert table.check(("late", "cap"), 1, 60.0).allowed
    assert table.check(("c0", "cap"), 1, 60.0).allowed
    table.close()


def test_shared_table_needs_a_probe_window(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 8 slots"):
        SharedFileRateLimitStore(tmp_path / "t.bin", slots=PROBE - 1)


def test_shared_table_persists_and_checks_its_layout(tmp_path: Path) -> None:
    first = SharedFileRateLimitStore(tmp_path / "t.bin", slots=64)
    assert allowed(first, KEY, 5, 0.0, 5) == 5
    first.close()
    second = SharedFileRateLimitStore(tmp_path / "t.bin", slots=64)
    assert second.check(KEY, 5, 0.0).allowed is False
    second.close()
    assert (tmp_path / "t.bin").stat().st_mode & 0o077 == 0
    with pytest.raises(AivaultError, match="rate-limit table has another layout"):
        SharedFileRateLimitStore(tmp_path / "t.bin", slots=128)


WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from aivault_ops.runtime.policy.rate_limit import SharedFileRateLimitStore

    store = SharedFileRateLimitStore(Path(sys.argv[1]), slots=1024)
    print("ready", flush=True)
    sys.stdin.readline()
    key = ("research-agent", "openai/chat")
    print(sum(store.check(key, 100_000, 1000.0).allowed for _ in range(int(sys.argv[2]))))
    """
)


def test_two_processes_never_exceed_capacity(tmp_path: Path) -> None:
    """Frozen time in both workers: exactly 100000 of 2 x 60000 checks are allowed.

    The capacity is large so that both workers are still taking tokens while
    the other runs; without the byte-range lock, lost updates grant more.
    """
    table = tmp_path / "rate-limits.bin"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(table), "60000"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    counts = []
    for worker in workers:
        assert worker.stdout is not None
        counts.append(int(worker.stdout.read()))
        worker.stdin.close()  # type: ignore[union-attr]
        worker.stdout.close()
        assert worker.wait(timeout=120) == 0
    assert sum(counts) == 100_000
