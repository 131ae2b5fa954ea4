"""`serve --rate-limit-store redis://…`: token buckets shared by every runtime of a fleet.

Each check is one Lua script run atomically by Redis (`EVALSHA`, loaded
once): read the bucket, refill, take a token, write it back, set its
expiry. No read-modify-write crosses the network, so runtimes racing on
one key never grant more than the bucket holds. The clock is Redis's own
(`TIME`), one clock for the whole fleet whatever the runtimes' clocks
say. The semantics are `rate_limit.take`'s: capacity `limit`, refilled at
`limit` per minute. A key expires once its bucket would be full again
(an idle bucket is indistinguishable from a fresh one), and keys are
namespaced by the active policy's environment:
`aivault-ops:ratelimit:<environment>:<consumer>:<capability>`.

When Redis cannot be reached (connect or 0.5 s read timeout), the check
fails closed with 503 `E-RATE-LIMIT-UNAVAILABLE`, or with
`--rate-limit-fallback local` takes a token from this runtime's own
in-process buckets (a fleet of N runtimes then admits up to N× the
limit). Either way `/status` shows `rateLimitStore` degraded. After a
failure the store is not asked again for a short back-off (0.5 s doubling
to 5 s), so an outage costs one timeout, not one per request.

The password comes from `AIVAULT_OPS_REDIS_PASSWORD` or a file, never the
URL (a URL with a password is refused: it would sit in argv).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError

from aivault_ops.errors import UsageError
from aivault_ops.runtime.errors import Failure
from aivault_ops.runtime.observe.health import ComponentHealth
from aivault_ops.runtime.observe.status import rfc3339
from aivault_ops.runtime.policy.rate_limit import Decision, InMemoryRateLimitStore, RateKey

ENV_PASSWORD: Final = "AIVAULT_OPS_REDIS_PASSWORD"  # noqa: S105 (a variable's name)
ENV_USERNAME: Final = "AIVAULT_OPS_REDIS_USERNAME"
KEY_PREFIX: Final = "aivault-ops:ratelimit"
TIMEOUT_S: Final = 0.5
FIRST_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 5.0
FALLBACKS: Final = ("closed", "local")

# KEYS[1] the bucket; ARGV[1] the limit per minute. Returns {allowed (0|1), wait in ms}.
BUCKET_SCRIPT: Final = """
local limit = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local level = limit
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated', 'limit')
if state[1] then
  local tokens, updated, cap = tonumber(state[1]), tonumber(state[2]), tonumber(state[3])
  local elapsed = now - updated
  if elapsed < 0 then elapsed = 0 end
  level = math.min(limit, cap, tokens + elapsed * cap / 60000000)
end
local allowed, wait = 0, 0
if level >= 1 then
  level = level - 1
  allowed = 1
else
  wait = math.ceil((1 - level) * 60000 / limit)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', level),
  'updated', string.format('%.0f', now), 'limit', limit)
redis.call('PEXPIRE', KEYS[1], math.ceil((limit - level) * 60000 / limit) + 1000)
return {allowed, wait}
"""


class RateLimitUnavailable(Failure):
    """503: the shared rate-limit store cannot be reached and the runtime fails closed
    (audited `error`: the policy allowed the request)."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "E-RATE-LIMIT-UNAVAILABLE",
            "the shared rate-limit store cannot be reached; nothing was sent upstream"
            " (see /status)",
        )


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is and how to log in; the password is never shown."""

    url: str  # redis:// or rediss://, without credentials
    password: str | None = field(default=None, repr=False)
    username: str | None = None
    ca_file: Path | None = None

    @classmethod
    def from_options(
        cls,
        url: str,
        *,
        password_file: Path | None,
        ca_file: Path | None,
        environ: Mapping[str, str],
    ) -> RedisSettings:
        """Check `--rate-limit-store URL`; the password from the environment or a file."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise UsageError(
                f"--rate-limit-store {url!r}: expected redis://HOST:PORT/DB or rediss://"
            )
        if parts.password is not None or parts.username is not None:
            raise UsageError(
                "--rate-limit-store: credentials do not belong in the URL (it would sit in argv)",
                hint=f"set {ENV_PASSWORD} (and {ENV_USERNAME}),"
                " or pass --rate-limit-store-password-file",
            )
        if parts.path not in ("", "/") and not parts.path[1:].isdigit():
            raise UsageError(f"--rate-limit-store {url!r}: the path is the database number")
        if ca_file is not None and parts.scheme != "rediss":
            raise UsageError("--rate-limit-store-ca-cert needs a rediss:// URL")
        password = environ.get(ENV_PASSWORD) or None
        if password_file is not None:
            try:
                password = password_file.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise UsageError(f"--rate-limit-store-password-file: {error.strerror}") from None
        return cls(url, password, environ.get(ENV_USERNAME) or None, ca_file)

    def client(self) -> redis.asyncio.Redis:
        """An asyncio client with short timeouts; it connects lazily, on the running loop."""
        options: dict[str, Any] = {
            "password": self.password,
            "username": self.username,
            "socket_timeout": TIMEOUT_S,
            "socket_connect_timeout": TIMEOUT_S,
            # One attempt: redis-py's default retries 10 times with back-off (up to
            # seconds per check against a stopped Redis); the store backs off itself.
            "retry": Retry(NoBackoff(), 0),
        }
        if self.ca_file is not None:
            options["ssl_ca_certs"] = str(self.ca_file)
        return redis.asyncio.Redis.from_url(self.url, **options)


class RedisRateLimitStore:
    """Buckets in Redis (see the module docstring); a `RateLimiter`."""

    def __init__(
        self,
        settings: RedisSettings,
        *,
        namespace: Callable[[], str],
        fallback: InMemoryRateLimitStore | None,
        log: Callable[..., None],
        clock: Callable[[], datetime],
    ) -> None:
        self.settings, self.namespace, self.fallback = settings, namespace, fallback
        self.log, self.clock = log, clock
        self._client: redis.asyncio.Redis | None = None
        self._script: Any = None
        self._down_until = 0.0
        self._backoff = FIRST_BACKOFF_S
        self.error: str | None = None
        self.error_since: datetime | None = None

    async def check_async(self, key: RateKey, limit: int, now: float) -> Decision:
        """Take one token in Redis; when unreachable, fail closed or use the fallback."""
        if time.monotonic() < self._down_until:
            return self._unavailable(key, limit, now)
        try:
            allowed, wait_ms = await self._take(self.bucket_key(key), limit)
        except (RedisError, OSError) as error:
            self._failed(error)
            return self._unavailable(key, limit, now)
        if self.error is not None:
            self.log("rate_limit_store_recovered", store=self.settings.url)
            self.error, self.error_since = None, None
        self._backoff = FIRST_BACKOFF_S
        return Decision(bool(allowed), int(wait_ms) / 1000)

    def bucket_key(self, key: RateKey) -> str:
        """`aivault-ops:ratelimit:<environment>:<consumer>:<capability>`."""
        return f"{KEY_PREFIX}:{self.namespace()}:{key[0]}:{key[1]}"

    async def _take(self, bucket: str, limit: int) -> tuple[int, int]:
        if self._client is None:
            self._client = self.settings.client()
            self._script = self._client.register_script(BUCKET_SCRIPT)
        result = await self._script(keys=[bucket], args=[limit])
        return int(result[0]), int(result[1])

    def _unavailable(self, key: RateKey, limit: int, now: float) -> Decision:
        if self.fallback is None:
            raise RateLimitUnavailable()
        return self.fallback.check(key, limit, now)

    def _failed(self, error: BaseException) -> None:
        what = "authentication refused" if isinstance(error, AuthenticationError) else "unreachable"
        message = f"{self.settings.url}: {what} ({type(error).__name__})"
        if self.error != message:
            self.log(
                "rate_limit_store_error",
                store=self.settings.url,
                error=message,
                fallback="local" if self.fallback is not None else "closed (503)",
            )
        if self.error is None:
            self.error_since = self.clock()
        self.error = message
        self._down_until = time.monotonic() + self._backoff
        self._backoff = min(MAX_BACKOFF_S, self._backoff * 2)

    def health(self) -> ComponentHealth:
        """The `rateLimitStore` section of `/status` (no password)."""
        return ComponentHealth(
            degraded=self.error is not None,
            detail={
                "type": "redis",
                "url": self.settings.url,
                "fallback": "local" if self.fallback is not None else "closed",
                "error": self.error,
                "errorSince": rfc3339(self.error_since),
                "usingFallback": self.error is not None and self.fallback is not None,
            },
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def open_shared_store(
    url: str,
    *,
    fallback: str,
    password_file: Path | None,
    ca_file: Path | None,
    environ: Mapping[str, str],
    environment: Callable[[], str | None],
    log: Callable[..., None],
    clock: Callable[[], datetime],
) -> RedisRateLimitStore:
    """The store for `serve --rate-limit-store URL --rate-limit-fallback closed|local`;
    keys are namespaced by `environment()` (the active policy's), `-` for none."""
    if fallback not in FALLBACKS:
        raise UsageError(f"--rate-limit-fallback {fallback!r}: choose closed or local")
    settings = RedisSettings.from_options(
        url, password_file=password_file, ca_file=ca_file, environ=environ
    )
    return RedisRateLimitStore(
        settings,
        namespace=lambda: environment() or "-",
        fallback=InMemoryRateLimitStore() if fallback == "local" else None,
        log=log,
        clock=clock,
    )
