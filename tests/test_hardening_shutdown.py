"""Shutdown under load (issue 10, item 7): cancelling `serve_mcp` while every client calls tools.

Many connections each keep tool calls in flight through an official ``MCPServer``; then the
server is cancelled. Every client must get a 1001 close frame, and the shutdown must not wait
for ``close_timeout`` (set far beyond this test's ``fail_after``: a connection whose close
waited for it would fail the test), nor log a flood of warnings. The timing figure (500
connections, ~1,000 calls/s, done within ``close_timeout`` + 1 s) is in
``benchmarks/case_shutdown.py``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio
from mcp.server.mcpserver import MCPServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from trio_mcp_ws import serve_mcp

if TYPE_CHECKING:
    import pytest

    from trio_mcp_ws import ServerInfo

CONNECTIONS = 60
IN_FLIGHT = 4
# Far beyond fail_after: a shutdown that waited for close_timeout would fail the test.
CLOSE_TIMEOUT = 600.0

INITIALIZE = (
    '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
    '"capabilities":{},"clientInfo":{"name":"load","version":"1"}}}'
)
INITIALIZED = '{"jsonrpc":"2.0","method":"notifications/initialized"}'


def call(request_id: int) -> str:
    return (
        f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call",'
        '"params":{"name":"add","arguments":{"a":1,"b":2}}}'
    )


class LoadClient:
    """One connection calling ``add`` with `IN_FLIGHT` calls outstanding, until the server closes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.answered = 0
        self.close_code: int | None = None

    async def run(self, ready: trio.MemorySendChannel[None]) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        async with stream, ready:
            ws = self.ws
            await stream.send_all(ws.send(Request(host=f"127.0.0.1:{self.port}", target="/mcp")))
            next_id, initialized = 1, False
            while True:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                if not data:
                    return
                ws.receive_data(data)
                out = b""
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        out += ws.send(TextMessage(data=INITIALIZE))
                        continue
                    if isinstance(event, CloseConnection):
                        self.close_code = event.code
                        out += ws.send(event.response())
                        break
                    if isinstance(event, TextMessage) and event.message_finished:
                        if not initialized:
                            initialized = True
                            out += ws.send(TextMessage(data=INITIALIZED))
                            for _ in range(IN_FLIGHT):
                                out += ws.send(TextMessage(data=call(next_id)))
                                next_id += 1
                            continue
                        self.answered += 1
                        if self.answered == IN_FLIGHT:
                            await ready.send(None)
                        out += ws.send(TextMessage(data=call(next_id)))
                        next_id += 1
                if out:
                    try:
                        await stream.send_all(out)
                    except trio.BrokenResourceError:
                        return


async def test_cancelling_serve_mcp_under_load_closes_everyone_with_1001(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = MCPServer("busy", log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    clients = [LoadClient(0) for _ in range(CONNECTIONS)]
    with trio.fail_after(120):
        async with trio.open_nursery() as outer:
            serving = trio.CancelScope()

            async def run_server(*, task_status: trio.TaskStatus[ServerInfo]) -> None:
                with serving:
                    await serve_mcp(
                        server, "127.0.0.1", 0, close_timeout=CLOSE_TIMEOUT, task_status=task_status
                    )

            info: ServerInfo = await outer.start(run_server)
            send, receive = trio.open_memory_channel[None](CONNECTIONS)
            async with trio.open_nursery() as load:
                async with send:
                    for client in clients:
                        client.port = info.port
                        load.start_soon(client.run, send.clone())
                # Every client has had IN_FLIGHT answers and keeps calling: the server is busy.
                async with receive:
                    for _ in range(CONNECTIONS):
                        await receive.receive()
                caplog.clear()
                with caplog.at_level(logging.WARNING):
                    serving.cancel()
            # The load nursery ended: every client saw the server close TCP.
    assert [client.close_code for client in clients] == [1001] * CONNECTIONS
    assert all(client.answered >= IN_FLIGHT for client in clients)
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) <= 2, [record.getMessage() for record in warnings]
