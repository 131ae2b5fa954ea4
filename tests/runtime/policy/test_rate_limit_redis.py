"""Token buckets in a real Redis (Debian's redis-server): atomic, shared, expiring, fail-closed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from support.engines import Redis

from aivault_ops.errors import UsageError
from aivault_ops.runtime.policy.rate_limit import InMemoryRateLimitStore
from aivault_ops.runtime.policy.rate_limit_redis import (
    RateLimitUnavailable,
    RedisRateLimitStore,
    RedisSettings,
)

KEY = ("agent", "openai/chat")


def store(
    url: str, *, fallback: bool = False, environment: str = "prod", password: str | None = None
) -> RedisRateLimitStore:
    return RedisRateLimitStore(
        RedisSettings(url, password=password),
        namespace=lambda: environment,
        fallback=InMemoryRateLimitStore() if fallback else None,
        log=lambda *args, **kwargs: None,
        clock=lambda: datetime.now(UTC),
    )


@pytest.fixture
def sync_redis(own_redis: Redis) -> Iterator[redis.Redis]:
    client = redis.Redis(port=own_redis.port)
    yield client
    client.close()


def test_a_bucket_admits_its_limit_then_says_when_to_retry(own_redis: Redis) -> None:
    async def run() -> list[tuple[bool, float]]:
        shared = store(own_redis.url)
        try:
            return [
                (d.allowed, d.retry_after_seconds)
                for d in [await shared.check_async(KEY, 6, 0.0) for _ in range(8)]
            ]
        finally:
            await shared.aclose()

    decisions = asyncio.run(run())
    assert [allowed for allowed, _ in decisions] == [True] * 6 + [False] * 2
    assert 9.0 < decisions[-1][1] <= 10.0  # 60 s / 6 tokens, minus what refilled meanwhile


def test_runtimes_racing_on_one_key_never_get_more_than_the_limit(own_redis: Redis) -> None:
    async def run() -> int:
        runtimes = [store(own_redis.url) for _ in range(3)]
        try:
            calls = [r.check_async(KEY, 10, 0.0) for r in runtimes for _ in range(20)]
            return sum(d.allowed for d in await asyncio.gather(*calls))
        finally:
            for runtime in runtimes:
                await runtime.aclose()

    assert asyncio.run(run()) == 10


def test_keys_are_namespaced_by_environment_and_expire_when_idle(
    own_redis: Redis, sync_redis: redis.Redis
) -> None:
    async def run() -> None:
        for environment in ("prod", "staging"):
            shared = store(own_redis.url, environment=environment)
            await shared.check_async(KEY, 60, 0.0)
            await shared.aclose()

    asyncio.run(run())
    keys = sorted(k.decode() for k in sync_redis.keys("*"))
    assert keys == [
        "aivault-ops:ratelimit:prod:agent:openai/chat",
        "aivault-ops:ratelimit:staging:agent:openai/chat",
    ]
    ttl = sync_redis.pttl(keys[0])
    assert 1000 < ttl <= 2000  # one token short of full: refills in 1 s (+1 s slack)


def test_redis_down_fails_closed_then_recovers(own_redis: Redis) -> None:
    async def run() -> None:
        shared = store(own_redis.url)
        assert (await shared.check_async(KEY, 5, 0.0)).allowed
        own_redis.stop()
        with pytest.raises(RateLimitUnavailable) as refused:
            await shared.check_async(KEY, 5, 0.0)
        assert (refused.value.status, refused.value.code) == (503, "E-RATE-LIMIT-UNAVAILABLE")
        with pytest.raises(RateLimitUnavailable):  # within the back-off: no new attempt
            await shared.check_async(KEY, 5, 0.0)
        health = shared.health()
        assert health.degraded and health.detail["fallback"] == "closed"
        assert "unreachable" in health.detail["error"]
        own_redis.start()
        for _ in range(200):
            try:
                decision = await shared.check_async(KEY, 5, 0.0)
                break
            except RateLimitUnavailable:
                await asyncio.sleep(0.05)
        assert decision.allowed and not shared.health().degraded
        await shared.aclose()

    asyncio.run(run())


def test_the_local_fallback_keeps_counting_per_runtime(own_redis: Redis) -> None:
    async def run() -> list[bool]:
        shared = store(own_redis.url, fallback=True)
        own_redis.stop()
        decisions = [(await shared.check_async(KEY, 3, 0.0)).allowed for _ in range(5)]
        health = shared.health()
        assert health.degraded and health.detail["usingFallback"] is True
        await shared.aclose()
        return decisions

    assert asyncio.run(run()) == [True, True, True, False, False]


def test_a_password_comes_from_the_environment_or_a_file_never_the_url(
    tmp_path: Path,
) -> None:
    with pytest.raises(UsageError, match="credentials do not belong in the URL") as caught:
        RedisSettings.from_options(
            "redis://:hunter2@127.0.0.1:6379/0", password_file=None, ca_file=None, environ={}
        )
    assert "hunter2" not in caught.value.diagnostics()
    from_env = RedisSettings.from_options(
        "redis://127.0.0.1/0", password_file=None, ca_file=None,
        environ={"AIVAULT_OPS_REDIS_PASSWORD": "from-env"},
    )  # fmt: skip
    assert from_env.password == "from-env" and "from-env" not in repr(from_env)
    (tmp_path / "pw").write_text("from-file\n")
    from_file = RedisSettings.from_options(
        "rediss://redis.internal:6380/2", password_file=tmp_path / "pw", ca_file=None, environ={}
    )
    assert from_file.password == "from-file"
    with pytest.raises(UsageError, match="expected redis://"):
        RedisSettings.from_options("http://x/0", password_file=None, ca_file=None, environ={})


def test_a_password_protected_redis(tmp_path: Path) -> None:
    class Protected(Redis):
        def command(self) -> list[str]:
            return [*super().command(), "--requirepass", "s3cret-redis-pass"]

        def ready(self) -> bool:  # PING answers -NOAUTH: any answer means it is up
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    return bool(sock.recv(64))
            except OSError:
                return False

    (tmp_path / "r").mkdir()
    server = Protected(tmp_path / "r")
    server.start()
    try:

        async def run() -> tuple[bool, str | None]:
            good = store(server.url, password="s3cret-redis-pass")
            wrong = store(server.url, password="nope")
            allowed = (await good.check_async(KEY, 5, 0.0)).allowed
            with pytest.raises(RateLimitUnavailable):
                await wrong.check_async(KEY, 5, 0.0)
            error = wrong.health().detail["error"]
            await good.aclose()
            await wrong.aclose()
            return allowed, error

        allowed, error = asyncio.run(run())
        assert allowed
        assert error is not None and "authentication refused" in error
        assert "s3cret" not in error and "nope" not in error
    finally:
        server.stop()
