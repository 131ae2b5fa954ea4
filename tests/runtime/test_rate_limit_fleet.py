"""Three runtimes sharing one Redis: a limit of N per minute admits N across all of them."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.bundles import TOKEN, BundleFactory
from support.engines import Redis
from support.fleet import dev_args
from support.runtime_proc import RuntimeProcess, wait_until
from support.upstream import RecordingUpstream

LIMIT = 4  # per minute: one token refills every 15 s
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def runtimes(
    tmp_path: Path, factory: BundleFactory, upstream: RecordingUpstream, own_redis: Redis
) -> Iterator[list[RuntimeProcess]]:
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    factory.publish(bundles, 1, limits={"rateLimitPerMinute": LIMIT})
    started = []
    for index, fallback in enumerate(("closed", "closed", "local")):
        runtime = RuntimeProcess(
            bundle_dir=bundles,
            state_dir=tmp_path / f"state-{index}",
            log_path=tmp_path / f"runtime-{index}.log",
            args=[
                "--identity", str(factory.identity), "--trust", factory.trust, *dev_args(upstream),
                "--rate-limit-store", own_redis.url, "--rate-limit-fallback", fallback,
            ],
        )  # fmt: skip
        started.append(runtime.start())
    yield started
    for runtime in started:
        runtime.stop()


def call(url: str) -> tuple[int, str]:
    response = httpx.get(url + "/v/my-api/v1/users", headers=AUTH, timeout=10)
    return response.status_code, response.json().get("error", "")


def test_the_limit_holds_across_runtimes_and_redis_down_fails_closed(
    runtimes: list[RuntimeProcess], upstream: RecordingUpstream, own_redis: Redis
) -> None:
    urls = [runtime.url for runtime in runtimes] * 8
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(call, urls))
    elapsed = time.monotonic() - started
    admitted = sum(status == 200 for status, _ in answers)
    refilled = int(elapsed * LIMIT / 60)  # 0 unless the machine took over 15 s
    assert LIMIT <= admitted <= LIMIT + refilled
    assert {code for status, code in answers if status != 200} == {"E-RATE-LIMITED"}
    assert len(upstream.seen) == admitted  # nothing beyond the limit reached the upstream
    for runtime in runtimes:
        bucket_store = runtime.status()["rateLimitStore"]
        assert bucket_store["type"] == "redis" and bucket_store["error"] is None
        assert bucket_store["url"] == own_redis.url

    own_redis.stop()
    upstream.clear()
    closed, _, local = runtimes
    assert call(closed.url) == (503, "E-RATE-LIMIT-UNAVAILABLE")
    wait_until(lambda: closed.status()["state"] == "degraded", what="degraded")
    assert closed.status()["rateLimitStore"]["usingFallback"] is False
    assert call(local.url)[0] == 200  # its own fresh bucket, with a warning in /status
    status = local.status()
    assert status["state"] == "degraded" and status["rateLimitStore"]["usingFallback"] is True
    assert "unreachable" in status["rateLimitStore"]["error"]
    assert len(upstream.seen) == 1
