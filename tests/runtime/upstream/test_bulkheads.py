"""Upstream bulkheads: a slow host held at its per-host limit never takes another
host's connections; a wait for a connection is bounded and refused E-UPSTREAM-BUSY.

A real TLS server on 127.0.0.1 answers two names. Requests to the slow name
are held open until the test sets an event, so the assertions are about
behaviour (which requests complete while others are held), never durations.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
import uvloop

from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.upstream.client import (
    DevResolve,
    Http1Upstream,
    UpstreamFailure,
    UpstreamSettings,
)

SLOW, FAST = "slow.example.com", "fast.example.com"
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"


@dataclass
class TwoHosts:
    """Answers every request at once, except those to SLOW: held until `release` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0
    connections: dict[str, int] = field(default_factory=lambda: {SLOW: 0, FAST: 0})
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counted = False
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                host = SLOW if f"host: {SLOW}".encode() in head.lower() else FAST
                if not counted:
                    self.connections[host] += 1
                    counted = True
                if host == SLOW:
                    async with self.arrived:
                        self.held += 1
                        self.arrived.notify_all()
                    await self.release.wait()
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def until_held(self, count: int) -> None:
        """Wait until `count` slow requests have reached the server."""
        async with self.arrived:
            await self.arrived.wait_for(lambda: self.held >= count)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(SLOW, FAST).configure_cert(context)
    ca_file = tmp_path_factory.mktemp("bulkheads") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


def request(host: str, timeout_s: float = 30.0) -> UpstreamRequest:
    return UpstreamRequest(
        method="GET", host=host, port=443, path="/v1", query=(), headers=(), body=b"",
        timeout_s=timeout_s,
    )  # fmt: skip


async def fetch(client: Http1Upstream, host: str, timeout_s: float = 30.0) -> int:
    response = await client.open(request(host, timeout_s))
    try:
        await response.aread()
        return response.status_code
    finally:
        await response.aclose()


Scenario = Callable[[Http1Upstream, TwoHosts], Awaitable[None]]


def run(tls: tuple[ssl.SSLContext, Path], scenario: Scenario, **settings: object) -> TwoHosts:
    async def main() -> TwoHosts:
        server = TwoHosts()
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls[0])
        port = listening.sockets[0].getsockname()[1]
        resolve = DevResolve.parse([f"{SLOW}=127.0.0.1:{port}", f"{FAST}=127.0.0.1:{port}"])
        client = Http1Upstream(
            UpstreamSettings(dev_resolve=resolve, dev_ca_cert=tls[1], **settings)  # type: ignore[arg-type]
        )
        try:
            await scenario(client, server)
        finally:
            server.release.set()
            await client.aclose()
            listening.close()
            await listening.wait_closed()
        return server

    return uvloop.run(main())


def test_a_slow_host_at_its_limit_leaves_the_other_host_its_connections(
    tls: tuple[ssl.SSLContext, Path],
) -> None:
    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        slow = [asyncio.ensure_future(fetch(client, SLOW)) for _ in range(6)]
        await server.until_held(4)  # the bulkhead: 4 in use, 2 queued for SLOW only
        fast = await asyncio.gather(*(fetch(client, FAST) for _ in range(40)))
        assert fast == [200] * 40
        assert server.held == 4 and not any(task.done() for task in slow)
        assert client.connections()[0] == 4
        server.release.set()
        assert await asyncio.gather(*slow) == [200] * 6  # the queued two got a connection

    server = run(tls, scenario, max_connections=8, max_per_host=4)
    assert server.connections[SLOW] == 4  # the queued ones reused released connections
    assert server.connections[FAST] <= 4


def test_without_bulkheads_the_slow_host_takes_every_connection(
    tls: tuple[ssl.SSLContext, Path],
) -> None:
    """The cliff the bulkheads remove: with the per-host limit at the pool's size, a
    fast host finds no connection while the slow one holds them all."""

    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        slow = [asyncio.ensure_future(fetch(client, SLOW)) for _ in range(4)]
        await server.until_held(4)
        with pytest.raises(UpstreamFailure) as caught:
            await fetch(client, FAST)
        assert (caught.value.status, caught.value.code) == (503, "E-UPSTREAM-BUSY")
        assert caught.value.verdict == "error"
        server.release.set()
        assert await asyncio.gather(*slow) == [200] * 4
        assert await fetch(client, FAST) == 200  # the refused wait kept no slot

    run(tls, scenario, max_connections=4, max_per_host=4, queue_timeout_s=0.05)


def test_a_wait_past_the_queue_timeout_is_refused_busy_and_keeps_nothing(
    tls: tuple[ssl.SSLContext, Path],
) -> None:
    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        held = asyncio.ensure_future(fetch(client, SLOW))
        await server.until_held(1)
        with pytest.raises(UpstreamFailure) as caught:
            await fetch(client, SLOW)
        assert (caught.value.status, caught.value.code) == (503, "E-UPSTREAM-BUSY")
        assert caught.value.message == f"no connection to {SLOW} came free in time; retry later"
        assert await fetch(client, FAST) == 200
        server.release.set()
        assert await held == 200
        assert await fetch(client, SLOW) == 200  # the permit and the slot are free again
        assert client.connections() == (0, 2)

    server = run(tls, scenario, max_connections=4, max_per_host=1, queue_timeout_s=0.05)
    assert server.connections[SLOW] == 1


def test_the_request_deadline_also_bounds_the_wait(tls: tuple[ssl.SSLContext, Path]) -> None:
    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        held = asyncio.ensure_future(fetch(client, SLOW))
        await server.until_held(1)
        with pytest.raises(UpstreamFailure) as caught:
            await fetch(client, SLOW, timeout_s=0.05)  # far below the queue timeout
        assert caught.value.code == "E-UPSTREAM-BUSY"
        server.release.set()
        assert await held == 200

    run(tls, scenario, max_connections=4, max_per_host=1, queue_timeout_s=60.0)


def test_a_cancelled_waiter_gives_its_place_back(tls: tuple[ssl.SSLContext, Path]) -> None:
    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        held = asyncio.ensure_future(fetch(client, SLOW))
        await server.until_held(1)
        waiting = asyncio.ensure_future(fetch(client, SLOW))
        await asyncio.sleep(0)  # let it queue
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        server.release.set()
        assert await held == 200
        assert await asyncio.gather(fetch(client, SLOW), fetch(client, SLOW)) == [200, 200]

    server = run(tls, scenario, max_connections=4, max_per_host=1)
    assert server.connections[SLOW] == 1


def test_the_per_host_limit_defaults_to_half_the_pool(tls: tuple[ssl.SSLContext, Path]) -> None:
    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        slow = [asyncio.ensure_future(fetch(client, SLOW)) for _ in range(5)]
        await server.until_held(3)
        assert await fetch(client, FAST) == 200
        assert server.held == 3 and client.connections()[0] == 3
        server.release.set()
        assert await asyncio.gather(*slow) == [200] * 5

    run(tls, scenario, max_connections=6)


def test_a_full_pool_hands_a_released_connection_to_a_waiter_for_the_same_host(
    tls: tuple[ssl.SSLContext, Path],
) -> None:
    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        in_use = await client.open(request(FAST))  # one slot, kept in use
        slow = asyncio.ensure_future(fetch(client, SLOW))  # the other slot, held upstream
        await server.until_held(1)
        waiting = asyncio.ensure_future(fetch(client, FAST))  # its host has room, the pool not
        await asyncio.sleep(0)
        assert not waiting.done()
        await in_use.aread()
        await in_use.aclose()
        assert await waiting == 200
        server.release.set()
        assert await slow == 200

    server = run(tls, scenario, max_connections=2, max_per_host=2)
    assert server.connections[FAST] == 1  # handed over, not opened again


def test_a_full_pool_gives_a_released_slot_to_a_waiter_for_another_host(
    tls: tuple[ssl.SSLContext, Path],
) -> None:
    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        in_use = await client.open(request(FAST))
        first = asyncio.ensure_future(fetch(client, SLOW))
        await server.until_held(1)
        second = asyncio.ensure_future(fetch(client, SLOW))  # waits for a slot of the pool
        await asyncio.sleep(0)
        assert server.held == 1
        await in_use.aread()
        await in_use.aclose()  # its connection is closed, its slot goes to `second`
        await server.until_held(2)
        server.release.set()
        assert await asyncio.gather(first, second) == [200, 200]
        assert client.connections() == (0, 2)

    server = run(tls, scenario, max_connections=2, max_per_host=2)
    assert server.connections == {SLOW: 2, FAST: 1}


@pytest.mark.parametrize("where", ["host queue", "pool queue"])
def test_a_waiter_cancelled_just_as_a_connection_is_handed_to_it_passes_it_on(
    tls: tuple[ssl.SSLContext, Path], where: str
) -> None:
    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        in_use = await client.open(request(FAST))
        await in_use.aread()
        waiting = asyncio.ensure_future(fetch(client, FAST))
        await asyncio.sleep(0)  # queued: for its host's turn, or for a slot of the pool
        await in_use.aclose()  # hands the connection over; the waiter has not run yet
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert client.connections() == (0, 1)  # back in the pool, not lost
        assert await fetch(client, FAST) == 200

    per_host = 1 if where == "host queue" else 2
    server = run(tls, scenario, max_connections=1, max_per_host=per_host)
    assert server.connections[FAST] == 1


def test_a_waiter_timing_out_just_as_a_slot_is_handed_to_it_gives_it_back(
    tls: tuple[ssl.SSLContext, Path],
) -> None:
    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        in_use = await client.open(request(FAST))
        waiting = asyncio.ensure_future(fetch(client, SLOW))  # waits for the pool's one slot
        await asyncio.sleep(0)
        await in_use.aclose()  # not read to its end: closed, its slot handed to the waiter
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert client.connections() == (0, 0)
        server.release.set()
        assert await fetch(client, SLOW) == 200  # the slot was given back

    run(tls, scenario, max_connections=1, max_per_host=1)


@pytest.mark.parametrize("cancelled", [False, True], ids=["served", "cancelled"])
def test_a_closed_connection_passes_its_host_turn_to_the_next_waiter(
    tls: tuple[ssl.SSLContext, Path], cancelled: bool
) -> None:
    async def scenario(client: Http1Upstream, server: TwoHosts) -> None:
        in_use = await client.open(request(FAST))
        waiting = asyncio.ensure_future(fetch(client, FAST))
        await asyncio.sleep(0)  # queued for its host's turn
        await in_use.aclose()  # not read to its end: closed; the turn goes to the waiter
        if cancelled:
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        else:
            assert await waiting == 200
        assert await fetch(client, FAST) == 200  # the turn was not lost either way

    server = run(tls, scenario, max_connections=4, max_per_host=1)
    assert server.connections[FAST] == 2
