"""`websocket_server` under trio-websocket's own server: the adopted driver.

trio-websocket's `WebSocketServer` runs over an in-memory listener here, so the autojump
clock can run the keepalive for seconds of virtual time; the client is our own connection
and pump over the same bounded in-memory streams the testing pair uses.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import mcp_types as t
import trio
import trio.testing
from mcp.shared.message import SessionMessage
from trio_websocket import WebSocketRequest, WebSocketServer

from trio_mcp_ws import ConnectionClosedError, websocket_server
from trio_mcp_ws._options import Limits
from trio_mcp_ws._pump import ReadChannel, WriteChannel, open_pump
from trio_mcp_ws._wsconn import WsConnection
from trio_mcp_ws.testing._memory import bounded_stream_pair

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable


class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener whose connections are in-memory stream pairs made by `connect`."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](0)

    async def connect(self) -> trio.abc.Stream:
        client, server = bounded_stream_pair()
        await self._send.send(server)
        return client

    async def accept(self) -> trio.abc.Stream:
        return await self._receive.receive()

    async def aclose(self) -> None:
        await self._receive.aclose()


@asynccontextmanager
async def tws_server(
    handler: Callable[[WebSocketRequest], Awaitable[None]],
) -> AsyncGenerator[MemoryListener, None]:
    listener = MemoryListener()
    async with trio.open_nursery() as nursery:
        # Typed for socket listeners only; any trio Listener works (it only calls accept()).
        server = WebSocketServer(handler, [listener])  # type: ignore[list-item]
        await nursery.start(server.run)
        yield listener
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def client(listener: MemoryListener) -> AsyncGenerator[tuple[ReadChannel, WriteChannel], None]:
    limits = Limits(ping_interval=None)
    conn = await WsConnection.connect(
        await listener.connect(),
        host="localhost",
        resource="/mcp",
        subprotocols=["mcp"],
        extra_headers=[],
        limits=limits,
    )
    async with open_pump(conn, limits) as channels:
        yield channels


def note(seq: int) -> SessionMessage:
    return SessionMessage(t.JSONRPCNotification(jsonrpc="2.0", method="note", params={"seq": seq}))


async def test_keepalive_sees_backpressure_on_the_adopted_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler that reads nothing for 4 s while the peer sends is not closed by keepalive.

    With trio-websocket's reader in charge, a consumer that stops reading stops that reader
    too, so no pong can be processed; the pump must see its own sink blocked and not
    mistake the missing pongs for a dead peer (this closed with 1011 after ~1 s before).
    """
    received: list[SessionMessage | Exception] = []

    async def handler(request: WebSocketRequest) -> None:
        async with websocket_server(request, ping_interval=0.5, ping_timeout=0.5) as (read, write):
            await trio.sleep(4)
            async with write:
                received.extend([await read.receive() for _ in range(50)])

    with trio.fail_after(60):
        async with tws_server(handler) as listener, client(listener) as (read, write):
            for seq in range(50):
                await write.send(note(seq))
            with trio.move_on_after(10):
                async for item in read:
                    received.append(item)  # noqa: PERF401 - reading until the channel ends is the point
    assert [item.message for item in received if isinstance(item, SessionMessage)] == [
        note(seq).message for seq in range(50)
    ]
    assert not [item for item in received if isinstance(item, Exception)]


async def test_max_message_size_counts_bytes_on_the_adopted_path() -> None:
    """60 characters of "é" are 120 bytes: over a 100-byte limit, so the connection closes 1009."""

    async def handler(request: WebSocketRequest) -> None:
        async with websocket_server(request, max_message_size=100, ping_interval=None) as (read, _):
            async for _item in read:
                pass

    with trio.fail_after(10):
        async with tws_server(handler) as listener, client(listener) as (read, write):
            await write.send(
                SessionMessage(t.JSONRPCNotification(jsonrpc="2.0", method="x", params={"x": "é" * 60}))
            )
            item = await read.receive()
    assert isinstance(item, ConnectionClosedError)
    assert item.code == 1009
