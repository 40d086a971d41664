"""Our ``websocket_client`` under the official ``mcp.Client`` against mcp 1.30's WebSocket server.

The peer is mcp 1.30's ``websocket_server`` in a Starlette app under uvicorn, serving a
``FastMCP`` (tests/interop/peers/mcp130_server.py), in its own virtual environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mcp_types as t
import pytest
import trio
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests._sdk import as_transport
from tests.interop._support import CLOSE_REPORT_BOUND, PeerLauncher, start_mcp130_server
from trio_mcp_ws import websocket_client

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.interop

MIB = 1024 * 1024


def texts(result: t.CallToolResult) -> list[str]:
    return [c.text for c in result.content if isinstance(c, t.TextContent)]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_calls(peers: PeerLauncher, mcp130: Path, mode: str) -> None:
    """Initialize, list tools, call tools, a tool error, a 3 MiB result, notifications."""
    logs: list[Any] = []
    reported: list[tuple[float, float | None, str | None]] = []

    async def on_log(params: t.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, total, message))

    with trio.fail_after(60):
        server, url = await start_mcp130_server(peers, mcp130)
        async with Client(as_transport(websocket_client(url)), mode=mode, logging_callback=on_log) as client:
            # mode="auto" probes server/discover first; mcp 1.30 answers -32602 and the SDK
            # falls back to the initialize handshake.
            assert client.protocol_version == "2025-11-25"
            assert client.server_info is not None
            assert (client.server_info.name, client.server_info.version) == (
                "mcp130-interop-server",
                "1.30.0",
            )
            tools = await client.list_tools()
            assert {"echo", "add", "fail", "big", "progress", "slow"} <= {tool.name for tool in tools.tools}

            result = await client.call_tool("echo", {"text": "héllo ✓ \U0001f600"})
            assert texts(result) == ["héllo ✓ \U0001f600"]
            assert result.structured_content == {"result": "héllo ✓ \U0001f600"}

            result = await client.call_tool("add", {"a": 2, "b": 40})
            assert result.structured_content == {"result": 42}

            result = await client.call_tool("fail", {"message": "nope"})
            assert result.is_error
            assert texts(result) == ["Error executing tool fail: nope"]

            result = await client.call_tool("big", {"size": 3 * MIB})
            assert texts(result) == ["x" * (3 * MIB)]

            result = await client.call_tool("length", {"text": "y" * (3 * MIB)})
            assert result.structured_content == {"result": 3 * MIB}

            result = await client.call_tool("progress", {"steps": 3}, progress_callback=on_progress)
            assert texts(result) == ["done after 3 steps"]
            assert reported == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
            assert logs == ["step 1 of 3", "step 2 of 3", "step 3 of 3"]
        # Our clean exit is a close handshake with 1000, which the peer saw.
        await server.wait_for("disconnect", code=1000)
    assert server.find("connect", subprotocols=["mcp"]) is not None
    assert server.find("handler_error") is None


async def test_result_over_our_limit_closes_with_1009(peers: PeerLauncher, mcp130: Path) -> None:
    """FastMCP 1.x puts a str result in both content and structuredContent: 3 MiB becomes 6.

    That frame is over our default 4 MiB limit, so our client closes with 1009 and the call
    fails at once with the SDK's connection-closed error; a larger ``max_message_size``
    receives it.
    """
    with trio.fail_after(60):
        server, url = await start_mcp130_server(peers, mcp130)
        async with Client(as_transport(websocket_client(url)), mode="legacy") as client:
            start = trio.current_time()
            with pytest.raises(MCPError) as info:
                await client.call_tool("big_structured", {"size": 3 * MIB})
            assert trio.current_time() - start < CLOSE_REPORT_BOUND + 1  # includes 6 MiB on the wire
        assert info.value.error.code == t.CONNECTION_CLOSED
        await server.wait_for("disconnect", code=1009)

        transport = websocket_client(url, max_message_size=8 * MIB)
        async with Client(as_transport(transport), mode="legacy") as client:
            result = await client.call_tool("big_structured", {"size": 3 * MIB})
            assert result.structured_content == {"result": "x" * (3 * MIB)}


@pytest.mark.parametrize(
    ("how", "arguments"),
    [
        ("close-1000", {"code": 1000}),
        ("close-1011", {"code": 1011, "reason": "going down"}),
        ("process-exit", None),
        ("process-killed", None),
    ],
    ids=["close-1000", "close-1011", "process-exit", "process-killed"],
)
async def test_peer_closes_during_call(
    peers: PeerLauncher, mcp130: Path, how: str, arguments: dict[str, Any] | None
) -> None:
    """The server goes away while a call is in flight: the call fails within 2 s."""
    started = trio.Event()

    async def on_log(params: t.LoggingMessageNotificationParams) -> None:
        if params.data == "slow: started":
            started.set()

    with trio.fail_after(60):
        server, url = await start_mcp130_server(peers, mcp130)
        async with Client(
            as_transport(websocket_client(url)), mode="legacy", logging_callback=on_log
        ) as client:
            await client.list_tools()
            async with trio.open_nursery() as nursery:
                outcome: list[BaseException | t.CallToolResult] = []

                async def call(name: str, args: dict[str, Any] | None) -> None:
                    try:
                        outcome.append(await client.call_tool(name, args))
                    except MCPError as exc:
                        outcome.append(exc)

                if how == "process-killed":
                    nursery.start_soon(call, "slow", None)
                    await started.wait()
                    start = trio.current_time()
                    peers.started[0].kill()  # the server process: SIGKILL, no close frame
                else:
                    start = trio.current_time()
                    nursery.start_soon(
                        call, "hang_up" if how.startswith("close") else "exit_process", arguments
                    )
            elapsed = trio.current_time() - start
        assert len(outcome) == 1
        error = outcome[0]
        assert isinstance(error, MCPError), error
        assert error.error.code == t.CONNECTION_CLOSED
        assert elapsed < CLOSE_REPORT_BOUND, elapsed
        if arguments is not None:
            await server.wait_for("hang_up", code=arguments["code"])


@pytest.mark.parametrize("how", ["clean", "cancelled", "cancelled-mid-call"])
async def test_our_close_is_seen_by_peer(peers: PeerLauncher, mcp130: Path, how: str) -> None:
    """We close while the server waits (idle, or inside a call): it sees 1000 or 1001."""
    started = trio.Event()

    async def on_log(params: t.LoggingMessageNotificationParams) -> None:
        if params.data == "slow: started":
            started.set()

    with trio.fail_after(60):
        server, url = await start_mcp130_server(peers, mcp130)
        with trio.CancelScope() as scope:
            async with Client(
                as_transport(websocket_client(url)), mode="legacy", logging_callback=on_log
            ) as client:
                await client.list_tools()
                if how == "cancelled":
                    scope.cancel()
                elif how == "cancelled-mid-call":
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(client.call_tool, "slow")
                        await started.wait()
                        scope.cancel()
        expected = 1000 if how == "clean" else 1001
        event = await server.wait_for("disconnect")
        assert event["code"] == expected, server.report()
