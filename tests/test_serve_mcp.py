"""serve_mcp: official MCP SDK servers (MCPServer and the low-level Server) over our server, both eras."""

from __future__ import annotations

import gc
import time
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import mcp_types as t
import pytest
import trio
from mcp import Client
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError

from tests._sdk import as_transport
from tests.test_server_helpers import raw_client
from trio_mcp_ws import (
    AuthenticationError,
    ConnectionInfo,
    HandshakeRequest,
    ServerInfo,
    connection_info,
    serve_mcp,
    websocket_client,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from mcp.server.context import ServerRequestContext

MODES = [("legacy", "2025-11-25"), ("auto", "2026-07-28")]


def make_server(**options: Any) -> MCPServer:
    server = MCPServer("serve-mcp-test", **options)

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        """What the tool can see of its connection."""
        request = ctx.request_context.request
        assert isinstance(request, ConnectionInfo)
        assert connection_info() is request
        headers = ctx.headers or {}
        return {
            "tenant": headers.get("X-Tenant"),
            "principal": request.principal,
            "subprotocol": request.subprotocol,
            "client_host": request.client[0] if request.client else None,
        }

    return server


@asynccontextmanager
async def serving_mcp(
    server: Server[Any] | MCPServer[Any], **options: Any
) -> AsyncGenerator[ServerInfo, None]:
    async with trio.open_nursery() as nursery:
        info: ServerInfo = await nursery.start(partial(serve_mcp, server, "127.0.0.1", 0, **options))
        yield info
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("mode", "version"), MODES)
async def test_mcpserver_in_both_eras(mode: str, version: str) -> None:
    with trio.fail_after(20):
        async with serving_mcp(make_server()) as info:
            async with Client(as_transport(websocket_client(info.url)), mode=mode) as client:
                assert client.protocol_version == version
                tools = await client.list_tools()
                assert sorted(tool.name for tool in tools.tools) == ["add", "whoami"]
                result = await client.call_tool("add", {"a": 2, "b": 40})
                assert result.structured_content == {"result": 42}
            # The server serves the next session, in the other era too.
            async with Client(as_transport(websocket_client(info.url)), mode="legacy") as client:
                result = await client.call_tool("add", {"a": 1, "b": 1})
                assert result.structured_content == {"result": 2}


@pytest.mark.parametrize(("mode", "version"), MODES)
async def test_tools_see_the_connection_headers_and_principal(mode: str, version: str) -> None:
    async def authenticate(request: HandshakeRequest) -> str:
        if request.headers.get("Authorization") != "Bearer t0k3n":
            raise AuthenticationError
        return "alice"

    with trio.fail_after(20):
        async with serving_mcp(make_server(), authenticate=authenticate) as info:
            headers = {"Authorization": "Bearer t0k3n", "X-Tenant": "acme"}
            transport = as_transport(websocket_client(info.url, headers=headers))
            async with Client(transport, mode=mode) as client:
                assert client.protocol_version == version
                result = await client.call_tool("whoami", {})
                assert not result.is_error, result
                assert result.structured_content == {
                    "tenant": "acme",
                    "principal": "alice",
                    "subprotocol": "mcp",
                    "client_host": "127.0.0.1",
                }


@pytest.mark.parametrize(("mode", "version"), MODES)
async def test_lowlevel_server(mode: str, version: str) -> None:
    async def list_tools(
        ctx: ServerRequestContext[Any], params: t.PaginatedRequestParams | None
    ) -> t.ListToolsResult:
        return t.ListToolsResult(tools=[t.Tool(name="echo", input_schema={"type": "object"})])

    async def call_tool(ctx: ServerRequestContext[Any], params: t.CallToolRequestParams) -> t.CallToolResult:
        assert isinstance(ctx.request, ConnectionInfo)
        text = str((params.arguments or {}).get("text", ""))
        return t.CallToolResult(content=[t.TextContent(type="text", text=text)])

    server: Server[Any] = Server("lowlevel-test", on_list_tools=list_tools, on_call_tool=call_tool)
    with trio.fail_after(20):
        async with (
            serving_mcp(server) as info,
            Client(as_transport(websocket_client(info.url)), mode=mode) as client,
        ):
            assert client.protocol_version == version
            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == ["echo"]
            result = await client.call_tool("echo", {"text": "héllo"})
            assert result.content == [t.TextContent(type="text", text="héllo")]


async def test_lifespan_is_entered_once_for_all_connections() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(server: MCPServer[dict[str, str]]) -> AsyncGenerator[dict[str, str], None]:
        events.append("enter")
        try:
            yield {"db": "pool"}
        finally:
            events.append("exit")

    server = make_server(lifespan=lifespan)

    @server.tool()
    def database(ctx: Context) -> str:
        """The lifespan state."""
        state: dict[str, str] = ctx.request_context.lifespan_context
        return state["db"]

    with trio.fail_after(20):
        async with serving_mcp(server) as info:
            assert events == ["enter"]  # before listening
            for mode in ("legacy", "auto", "legacy"):
                async with Client(as_transport(websocket_client(info.url)), mode=mode) as client:
                    result = await client.call_tool("database", {})
                    assert result.structured_content == {"result": "pool"}
            assert events == ["enter"]
    assert events == ["enter", "exit"]


async def test_cancelling_serve_mcp_mid_call_ends_the_session_promptly() -> None:
    server = make_server()
    entered = trio.Event()
    cancelled = trio.Event()

    @server.tool()
    async def slow() -> str:
        """Never answers."""
        entered.set()
        try:
            await trio.sleep(3600)  # until cancelled
        finally:
            cancelled.set()
        return "too late"  # pragma: no cover

    with trio.fail_after(20):
        async with trio.open_nursery() as outer:
            scope = trio.CancelScope()

            async def run(task_status: trio.TaskStatus[ServerInfo] = trio.TASK_STATUS_IGNORED) -> None:
                with scope:
                    await serve_mcp(server, "127.0.0.1", 0, task_status=task_status)

            info: ServerInfo = await outer.start(run)
            async with Client(as_transport(websocket_client(info.url)), mode="legacy") as client:

                async def cancel_when_running() -> None:
                    await entered.wait()
                    scope.cancel()

                outer.start_soon(cancel_when_running)
                start = trio.current_time()
                with pytest.raises(MCPError):
                    await client.call_tool("slow", {})
                assert trio.current_time() - start < 5
    assert cancelled.is_set()


async def test_serve_mcp_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match="MCPServer"):
        await serve_mcp(object(), "127.0.0.1", 0)  # type: ignore[arg-type]


async def test_200_concurrent_official_clients() -> None:
    """200 mcp.Client sessions at once (a quarter in the 2026 era), 5 tool calls each, all right."""
    clients = 200
    calls = 5
    results: dict[int, list[int]] = {}
    with trio.fail_after(120):
        async with serving_mcp(make_server()) as info:
            start = time.perf_counter()

            async def session(n: int) -> None:
                mode = "auto" if n % 4 == 0 else "legacy"
                # Client and server share one process and two cores (slower still under
                # coverage): the last of 200 simultaneous handshakes can take well over the
                # default 10 s. This test is about correctness, not connect latency.
                transport = as_transport(websocket_client(info.url, connect_timeout=100))
                async with Client(transport, mode=mode) as client:
                    got: list[int] = []
                    for i in range(calls):
                        result = await client.call_tool("add", {"a": n, "b": i * 1000})
                        assert result.structured_content is not None
                        got.append(result.structured_content["result"])
                    results[n] = got

            async with trio.open_nursery() as nursery:
                for n in range(clients):
                    nursery.start_soon(session, n)
            elapsed = time.perf_counter() - start
    print(f"{clients} clients x {calls} calls in {elapsed:.1f} s")  # shown with -s
    assert results == {n: [n + i * 1000 for i in range(calls)] for n in range(clients)}


async def test_cancel_serve_mcp_right_after_accepting() -> None:
    """Cancelled just after connections were accepted, the SDK's streams are all closed.

    The SDK awaits ``read_stream.aclose()`` in ``finally`` blocks with synchronous cleanup
    after it; an ``aclose`` that raised Cancelled there skipped the cleanup, and the leaked
    anyio streams warned when collected (warnings are errors in this suite).
    """
    server = MCPServer("leak")
    with trio.fail_after(20):
        for _ in range(20):
            async with trio.open_nursery() as nursery:
                info = await nursery.start(partial(serve_mcp, server, "127.0.0.1", 0))
                async with raw_client(info.port):
                    pass  # handshake done; close at once
                nursery.cancel_scope.cancel()
            gc.collect()
