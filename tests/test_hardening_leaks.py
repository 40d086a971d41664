"""No leak per connection (issue 10, item 1), counted in objects after ``gc.collect()``.

Each test runs 500 connection cycles of one kind against a real server on loopback (clean
close, TCP reset after the handshake, reset in the middle of a frame, reset in the middle of
a tool call through `serve_mcp`), waits until the server has nothing left to do, collects,
and counts the live objects of every class a connection creates on the server (our
connection, its pump, the pending handshake, the per-connection reader of `serve_mcp`). Any
survivor is a leak: the old ``WeakKeyDictionary`` whose values held their keys kept them all.
The RSS growth per connection over 10,000 cycles is in ``benchmarks/case_churn.py``.
"""

from __future__ import annotations

import gc
import socket
import struct
from functools import partial
from typing import TYPE_CHECKING

import trio
import trio.testing
from mcp.server.mcpserver import MCPServer

from tests.test_server_helpers import read_response, round_trip, running, upgrade_request
from trio_mcp_ws import serve_mcp
from trio_mcp_ws._pump import _Pump  # pyright: ignore[reportPrivateUsage]
from trio_mcp_ws._serve_mcp import StampedReader
from trio_mcp_ws._wsconn import PendingHandshake, WsConnection

if TYPE_CHECKING:
    from trio_mcp_ws import ServerInfo

CYCLES = 500
TRACKED: tuple[type, ...] = (WsConnection, _Pump, PendingHandshake, StampedReader)


def live() -> dict[str, int]:
    """Live objects of every tracked class, after a full collection."""
    gc.collect()
    counts = dict.fromkeys((kind.__name__ for kind in TRACKED), 0)
    for obj in gc.get_objects():
        if isinstance(obj, TRACKED):
            counts[type(obj).__name__] += 1
    return counts


def none_live() -> dict[str, int]:
    return dict.fromkeys((kind.__name__ for kind in TRACKED), 0)


def masked_text(text: bytes) -> bytes:
    """One client text frame with a zero masking key."""
    size = len(text)
    head = bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0x80 | 126)) + struct.pack("!H", size)
    return head + b"\0\0\0\0" + text


async def open_ws(port: int) -> trio.SocketStream:
    """A raw connection with a completed opening handshake."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(upgrade_request(port))
    response = await read_response(stream)
    assert response is not None
    assert response.status == 101
    return stream


def reset(stream: trio.SocketStream) -> None:
    """Close with a TCP RST (SO_LINGER 0): the peer vanishes without a close frame or FIN."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


async def settle() -> None:
    """Wait until every server task has finished with the connections just dropped."""
    await trio.testing.wait_all_tasks_blocked(0.05)


CLOSE_1000 = b"\x88\x82\0\0\0\0\x03\xe8"
PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


async def test_clean_closes_leave_nothing_alive() -> None:
    with trio.fail_after(120):
        async with running(ping_interval=None) as info:
            await round_trip(info.url)
            await settle()
            baseline = live()
            for _ in range(CYCLES):
                stream = await open_ws(info.port)
                async with stream:
                    await stream.send_all(masked_text(PING) + CLOSE_1000)
                    while await stream.receive_some(65536):  # the echo, the close answer, then EOF
                        pass
            await settle()
            assert live() == baseline == none_live()


async def test_resets_after_the_handshake_leave_nothing_alive() -> None:
    with trio.fail_after(120):
        async with running(ping_interval=None) as info:
            # The count sees a connection while it is open (so a zero below means something).
            stream = await open_ws(info.port)
            await settle()
            assert live() == {**none_live(), "WsConnection": 1, "_Pump": 1, "PendingHandshake": 1}
            reset(stream)
            for _ in range(CYCLES):
                reset(await open_ws(info.port))
            await settle()
            assert live() == none_live()
            await round_trip(info.url)


async def test_resets_mid_frame_leave_nothing_alive() -> None:
    half_frame = masked_text(b"x" * 1000)[:500]
    with trio.fail_after(120):
        async with running(ping_interval=None) as info:
            for _ in range(CYCLES):
                stream = await open_ws(info.port)
                await stream.send_all(half_frame)
                reset(stream)
            await settle()
            assert live() == none_live()
            await round_trip(info.url)


async def test_resets_mid_handshake_leave_nothing_alive() -> None:
    with trio.fail_after(120):
        async with running() as info:
            for _ in range(CYCLES):
                stream = await trio.open_tcp_stream("127.0.0.1", info.port)
                await stream.send_all(upgrade_request(info.port)[:60])
                reset(stream)
            await settle()
            assert live() == none_live()


INITIALIZE = (
    b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
    b'"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}'
)
INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
CALL = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait","arguments":{}}}'


async def test_resets_mid_tool_call_leave_nothing_alive() -> None:
    """The peer vanishes while its tool call runs: session, call and connection all end."""
    server = MCPServer("leaky")
    running_calls = 0
    started = trio.Condition()

    @server.tool()
    async def wait() -> str:
        """Block until cancelled."""
        nonlocal running_calls
        running_calls += 1
        async with started:
            started.notify_all()
        try:
            await trio.sleep_forever()
        finally:
            running_calls -= 1

    with trio.fail_after(240):
        async with trio.open_nursery() as nursery:
            info: ServerInfo = await nursery.start(
                partial(serve_mcp, server, "127.0.0.1", 0, ping_interval=None)
            )
            for cycle in range(CYCLES):
                stream = await open_ws(info.port)
                await stream.send_all(masked_text(INITIALIZE))
                assert b'"id":0' in await stream.receive_some(65536)
                async with started:
                    await stream.send_all(masked_text(INITIALIZED) + masked_text(CALL))
                    await started.wait()
                if cycle == 0:
                    assert live() == {
                        "WsConnection": 1,
                        "_Pump": 1,
                        "PendingHandshake": 1,
                        "StampedReader": 1,
                    }
                reset(stream)
            await settle()
            assert running_calls == 0
            assert live() == none_live()
            nursery.cancel_scope.cancel()
