"""Slowloris and idle squatters (issue 10, items 3 and 4): nobody can hold the slots.

- Pending handshakes are bounded at `MAX_PENDING_HANDSHAKES`; one more evicts the oldest, so
  clients that never finish their request cannot lock a real client out (item 3). The tests
  set ``handshake_timeout`` far beyond their own ``fail_after``: a real client that got in
  only when a stalled one timed out would fail the test.
- ``first_message_timeout`` closes a connection that completed its handshake but never sends
  a message with 1008; ``max_connections_per_client`` answers 503 beyond its cap (item 4).

Real loopback sockets throughout; the timing of the slowloris figure (p99 under 1 s with
2,000 stalled handshakes) is in ``benchmarks/case_slowloris.py``, not here.
"""

from __future__ import annotations

import select
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing
from mcp import Client
from mcp.server.mcpserver import MCPServer

import trio_mcp_ws._listener as listener
from tests._sdk import as_transport
from tests.test_server_helpers import (
    echo,
    exchange,
    raw_client,
    round_trip,
    rpc_request,
    running,
    upgrade_request,
    wait_closed,
)
from trio_mcp_ws import ConnectionClosedError, HandshakeRejectedError, serve, serve_mcp, websocket_client

if TYPE_CHECKING:
    from trio_mcp_ws import ServerInfo

# Far beyond every fail_after here: a client that waited for a stalled one to time out fails.
# The pending-handshake bound these tests run with: small, so a test opens hundreds of
# sockets rather than thousands (the production bound is sized by the open-files limit).
PENDING = 256


@pytest.fixture(autouse=True)
def _small_pending_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listener, "MAX_PENDING_HANDSHAKES", PENDING)


NEVER = 3600.0


async def half_handshake(port: int) -> trio.SocketStream:
    """A connection that sent the first half of its request and will never send the rest."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(upgrade_request(port)[:40])
    return stream


def dropped(streams: list[trio.SocketStream]) -> list[int]:
    """Indices of the streams the server has closed, checked without waiting.

    The server sends a stalled handshake nothing, so a readable socket is one at EOF (or reset).
    """
    poller = select.poll()
    for stream in streams:
        poller.register(stream.socket.fileno(), select.POLLIN)
    ready = {fd for fd, _ in poller.poll(0)}
    return [i for i, stream in enumerate(streams) if stream.socket.fileno() in ready]


async def test_the_oldest_pending_handshake_is_evicted_for_a_new_one() -> None:
    with trio.fail_after(30):
        async with running(handshake_timeout=NEVER) as info, AsyncExitStack() as stack:
            stalled = [
                await stack.enter_async_context(await half_handshake(info.port)) for _ in range(PENDING)
            ]
            await trio.testing.wait_all_tasks_blocked(0.05)
            assert dropped(stalled) == []
            newcomer = await stack.enter_async_context(await half_handshake(info.port))
            assert await wait_closed(stalled[0]) == b""  # the oldest, dropped without a word
            await trio.testing.wait_all_tasks_blocked(0.05)
            assert dropped([*stalled[1:], newcomer]) == []


async def test_a_real_client_gets_in_past_more_stalled_handshakes_than_the_bound() -> None:
    stalled_count = PENDING + 200
    with trio.fail_after(60):
        async with running(handshake_timeout=NEVER) as info, AsyncExitStack() as stack:
            for _ in range(stalled_count):
                await stack.enter_async_context(await half_handshake(info.port))
            for _ in range(3):
                await round_trip(info.url)


async def test_an_mcp_client_calls_a_tool_past_stalled_handshakes() -> None:
    server = MCPServer("squatted")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
            info: ServerInfo = await nursery.start(
                partial(serve_mcp, server, "127.0.0.1", 0, handshake_timeout=NEVER)
            )
            for _ in range(PENDING * 2):
                await stack.enter_async_context(await half_handshake(info.port))
            async with Client(as_transport(websocket_client(info.url))) as client:
                result = await client.call_tool("add", {"a": 2, "b": 3})
                assert result.structured_content == {"result": 5}
            nursery.cancel_scope.cancel()


async def test_a_silent_connection_is_closed_with_1008_and_a_talking_one_is_not() -> None:
    with trio.fail_after(30):
        async with (
            running(first_message_timeout=0.5) as info,
            raw_client(info.port) as silent,
            websocket_client(info.url) as (read, write),
        ):
            await write.send(rpc_request(1))
            assert (await read.receive()) is not None
            code, _ = await silent.wait_close()
            assert code == 1008
            # The talking connection's timer ran out just as long ago: it is still served.
            await write.send(rpc_request(2))
            assert (await read.receive()) is not None
            await trio.testing.wait_all_tasks_blocked()
            assert info.connections == 1


async def test_our_client_sees_the_1008_and_its_reason() -> None:
    with trio.fail_after(30):
        async with running(first_message_timeout=0.25) as info, websocket_client(info.url) as (read, _):
            closed = await read.receive()
            assert isinstance(closed, ConnectionClosedError)
            assert (closed.code, closed.reason) == (1008, "no message within 0.25s")


async def test_first_message_timeout_is_validated() -> None:
    for bad in (0, -1.0):
        with trio.fail_after(10), pytest.raises(ValueError, match="first_message_timeout"):
            await serve(echo, "127.0.0.1", 0, first_message_timeout=bad)


async def test_max_connections_per_client_answers_503_and_frees_on_close() -> None:
    with trio.fail_after(30):
        async with running(max_connections_per_client=2) as info:
            async with websocket_client(info.url), websocket_client(info.url):
                with pytest.raises(HandshakeRejectedError) as rejected:
                    await round_trip(info.url)
                assert rejected.value.status_code == 503
                response = await exchange(info.port, upgrade_request(info.port))
                assert response is not None
                assert (response.status, response.body) == (
                    503,
                    b"Service Unavailable: too many connections\n",
                )
            await trio.testing.wait_all_tasks_blocked()
            assert info.connections == 0
            async with websocket_client(info.url), websocket_client(info.url):
                assert info.connections == 2


async def test_a_squatter_that_ignores_the_close_frame_loses_its_slot() -> None:
    """The 1008 close is bounded by close_timeout like any other: then TCP is closed."""
    with trio.fail_after(30):
        async with running(max_connections=1, first_message_timeout=0.05, close_timeout=0.2) as info:
            stream = await trio.open_tcp_stream("127.0.0.1", info.port)
            async with stream:
                await stream.send_all(upgrade_request(info.port))
                received = await wait_closed(stream)  # never answering the close frame
            assert received.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
            assert received.endswith(b"\x88\x19\x03\xf0no message within 0.05s")
            await trio.testing.wait_all_tasks_blocked()
            assert info.connections == 0
            await round_trip(info.url)
