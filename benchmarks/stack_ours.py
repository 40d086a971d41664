"""Our transport's peers: client, echo server and MCP server, all with their defaults.

Run as ``python -m benchmarks.stack_ours serve echo|mcp`` or ``... drive ours --url URL --plan JSON``.

Servers:
    ``echo``  `trio_mcp_ws.serve` with a handler that writes back every `SessionMessage`.
    ``mcp``   `trio_mcp_ws.serve_mcp` running an official `MCPServer` with one ``echo`` tool.

Client stack ``ours``: `trio_mcp_ws.websocket_client`, sending and receiving `SessionMessage`
objects (the ``call_tool`` workload uses the official ``mcp.Client`` over it).
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from functools import partial
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, cast

import trio
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

import trio_mcp_ws

from . import _peer
from ._driver import Stack
from ._spec import READY, SERVER_LIFETIME, CallsPlan, Results, say

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from mcp.client._transport import Transport
    from mcp.client.client import ConnectMode
    from mcp.server.mcpserver import MCPServer

# Our server answers 503 beyond max_connections (default 512); the benchmarks open 1,000.
MAX_CONNECTIONS = 4096

# The text every ``call_tool`` sends to the ``echo`` tool.
CALL_TEXT = "hello"


# -- servers ----------------------------------------------------------------------------


async def _echo_handler(read: trio_mcp_ws.ReadChannel, write: trio_mcp_ws.WriteChannel) -> None:
    async for item in read:
        if isinstance(item, SessionMessage):
            await write.send(item)


def make_mcp_server() -> MCPServer:
    """An official `MCPServer` with one tool, ``echo(text) -> text``."""
    from mcp.server.mcpserver import MCPServer

    # WARNING, as the SDK 1.30 server in benchmarks.stack_mcp130: no log line per request.
    server = MCPServer("bench", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    return server


async def _serve(kind: str) -> None:
    with trio.move_on_after(SERVER_LIFETIME):
        async with trio.open_nursery() as nursery:
            info: trio_mcp_ws.ServerInfo
            if kind == "echo":
                info = await nursery.start(
                    partial(trio_mcp_ws.serve, _echo_handler, "127.0.0.1", 0, max_connections=MAX_CONNECTIONS)
                )
            elif kind == "mcp":
                info = await nursery.start(
                    partial(
                        trio_mcp_ws.serve_mcp,
                        make_mcp_server(),
                        "127.0.0.1",
                        0,
                        max_connections=MAX_CONNECTIONS,
                    )
                )
            else:
                raise SystemExit(f"unknown server kind {kind!r}")
            say(READY, str(info.port))


def serve(kind: str, options: _peer.Options) -> None:
    """Run the server ``kind`` until terminated or ``SERVER_LIFETIME`` runs out."""
    trio.run(_serve, kind)


# -- client stacks ----------------------------------------------------------------------


class _OursLink:
    def __init__(self, read: trio_mcp_ws.ReadChannel, write: trio_mcp_ws.WriteChannel) -> None:
        self.read = read
        self.write = write

    async def send(self, payload: SessionMessage) -> None:
        await self.write.send(payload)

    async def receive(self) -> None:
        item = await self.read.receive()
        if not isinstance(item, SessionMessage):
            raise RuntimeError(f"expected an echo, got {item!r}")


class Ours(Stack[SessionMessage]):
    """`trio_mcp_ws.websocket_client` with its defaults.

    Args:
        mode: The ``mcp.Client`` connect mode for ``call_tool``: ``"auto"`` (the SDK's
            default, the 2026-07-28 stateless era against our server) or ``"legacy"`` (the
            ``initialize`` handshake era, the only one mcp 1.30 speaks).
    """

    def __init__(self, mode: ConnectMode = "auto") -> None:
        self.mode: ConnectMode = mode

    def prepare(self, text: str) -> SessionMessage:
        return SessionMessage(jsonrpc_message_adapter.validate_json(text))

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncGenerator[_OursLink, None]:
        async with trio_mcp_ws.websocket_client(url) as (read, write):
            yield _OursLink(read, write)

    async def call_tools(self, url: str, plan: CallsPlan, results: Results) -> None:
        from mcp import Client

        transport = cast("Transport", trio_mcp_ws.websocket_client(url))
        async with Client(transport, mode=self.mode) as client:
            results.info["protocol"] = str(client.protocol_version)
            for _ in range(plan.warmup):
                await client.call_tool("echo", {"text": CALL_TEXT})
            latencies: list[float] = []
            start = time.perf_counter()
            for _ in range(plan.count):
                began = time.perf_counter()
                result = await client.call_tool("echo", {"text": CALL_TEXT})
                latencies.append((time.perf_counter() - began) * 1e6)
                if result.is_error:
                    raise RuntimeError(f"call_tool failed: {result}")
            results.calls_seconds = time.perf_counter() - start
            results.calls = plan.count
            results.call_latency_us = latencies

    def info(self) -> dict[str, str]:
        return {"trio_mcp_ws": trio_mcp_ws.__version__, "trio_websocket": version("trio-websocket")}


def stack(name: str, options: _peer.Options) -> Stack[Any]:
    """The client stack called ``name``."""
    if name == "ours":
        return Ours()
    if name == "ours-legacy":
        return Ours(mode="legacy")
    raise SystemExit(f"unknown client stack {name!r}")


if __name__ == "__main__":
    _peer.main(None, serve=serve, stack=stack, backend="trio")
