"""The official MCP SDK (mcp >= 2) over our client, under trio.run, in both protocol eras."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import mcp_types as t
import pytest
import trio
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from tests._peers import serve_pump, url
from tests._sdk import as_streams, as_transport
from trio_mcp_ws import ReadChannel, WriteChannel, serve_mcp, websocket_client

if TYPE_CHECKING:
    from trio_mcp_ws._wsconn import WsConnection


def make_server() -> MCPServer:
    server = MCPServer("test-server")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    return server


async def run_mcp(read: ReadChannel, write: WriteChannel, conn: WsConnection) -> None:
    lowlevel = make_server()._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    await lowlevel.run(*as_streams(read, write), lowlevel.create_initialization_options())


@pytest.mark.parametrize(("mode", "version"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
async def test_official_client_and_server(mode: str, version: str) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await serve_pump(nursery, run_mcp)
            async with Client(as_transport(websocket_client(url(port))), mode=mode) as client:
                assert client.protocol_version == version
                tools = await client.list_tools()
                assert sorted(tool.name for tool in tools.tools) == ["add", "shout"]
                result = await client.call_tool("add", {"a": 2, "b": 40})
                assert result.structured_content == {"result": 42}
                result = await client.call_tool("shout", {"text": "héllo"})
                assert result.content == [t.TextContent(type="text", text="HÉLLO")]
            nursery.cancel_scope.cancel()


async def test_server_dropping_tcp_fails_the_pending_call_promptly() -> None:
    """A server that vanishes mid-call: call_tool fails with the SDK's connection-closed error."""

    async def drop_on_call(read: ReadChannel, write: WriteChannel, conn: WsConnection) -> None:
        lowlevel = make_server()._lowlevel_server  # pyright: ignore[reportPrivateUsage]
        forward_send, forward_recv = trio.open_memory_channel[SessionMessage | Exception](0)

        async def watch() -> None:
            async with forward_send:
                async for item in read:
                    message = item.message if isinstance(item, SessionMessage) else None
                    if isinstance(message, t.JSONRPCRequest) and message.method == "tools/call":
                        await conn.stream.aclose()  # TCP gone, no close frame
                        return
                    await forward_send.send(item)

        async with trio.open_nursery() as inner:
            inner.start_soon(watch)
            await lowlevel.run(*as_streams(forward_recv, write), lowlevel.create_initialization_options())

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await serve_pump(nursery, drop_on_call)
            async with Client(as_transport(websocket_client(url(port))), mode="legacy") as client:
                await client.list_tools()
                start = trio.current_time()
                with pytest.raises(MCPError) as info:
                    await client.call_tool("add", {"a": 1, "b": 2})
                assert trio.current_time() - start < 2
            nursery.cancel_scope.cancel()
    assert info.value.error.code == t.CONNECTION_CLOSED


async def test_cancelling_a_client_mid_call_is_clean() -> None:
    """The SDK writes a courtesy cancel while it unwinds: our write channel must take it.

    Before the writer was shielded, it often died with the cancellation and the SDK's
    ``write.send`` raised Trio's BrokenResourceError (11 runs in 20), which it does not catch.
    """
    server = make_server()
    entered = trio.Event()

    @server.tool()
    async def slow() -> str:
        entered.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            info = await nursery.start(partial(serve_mcp, server, "127.0.0.1", 0))
            for _ in range(10):
                entered = trio.Event()
                with trio.CancelScope() as scope:
                    async with (
                        Client(as_transport(websocket_client(info.url)), mode="legacy") as client,
                        trio.open_nursery() as inner,
                    ):
                        inner.start_soon(partial(client.call_tool, "slow", {}))
                        await entered.wait()
                        scope.cancel()
                assert scope.cancelled_caught
            nursery.cancel_scope.cancel()
