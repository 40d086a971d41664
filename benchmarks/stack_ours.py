"""Our transport's peers, public API only: ``python -m benchmarks.stack_ours serve|drive ...``.

Servers: ``echo`` (`trio_mcp_ws.serve` with a handler writing back every `SessionMessage`) and
``mcp`` (`trio_mcp_ws.serve_mcp` running an official `MCPServer` with one ``echo`` tool).
Client stacks: ``ours`` (`trio_mcp_ws.websocket_client`; ``mcp.Client`` in its default mode for
``call_tool``, the 2026-07-28 stateless era) and ``ours-legacy`` (``mode="legacy"``, the
``initialize`` era, the only one mcp 1.30 speaks). Everything else is at its default.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import trio
from mcp.shared.message import SessionMessage

import trio_mcp_ws

from . import _driver
from ._spec import LIFETIME, READY, say

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from mcp.client._transport import Transport
    from mcp.client.client import ConnectMode
    from mcp.server.mcpserver import MCPServer

# The benchmarks open 1,000 connections; our server answers 503 beyond max_connections.
MAX_CONNECTIONS = 4096


async def echo_handler(read: trio_mcp_ws.ReadChannel, write: trio_mcp_ws.WriteChannel) -> None:
    """Write back every message read (and ignore the exceptions bad frames become)."""
    async for item in read:
        if isinstance(item, SessionMessage):
            await write.send(item)


def _mcp_server() -> MCPServer:
    from mcp.server.mcpserver import MCPServer

    # WARNING, as the SDK 1.30 server: no log line per request.
    server = MCPServer("bench", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    return server


async def _serve(kind: str) -> None:
    servers = {
        "echo": partial(trio_mcp_ws.serve, echo_handler),
        "mcp": partial(trio_mcp_ws.serve_mcp, _mcp_server()),
    }
    with trio.move_on_after(LIFETIME):
        async with trio.open_nursery() as nursery:
            info: trio_mcp_ws.ServerInfo = await nursery.start(
                partial(servers[kind], "127.0.0.1", 0, max_connections=MAX_CONNECTIONS)
            )
            say(READY, str(info.port))


@asynccontextmanager
async def _connect(url: str) -> AsyncGenerator[_driver.Link[SessionMessage], None]:
    async with trio_mcp_ws.websocket_client(url) as (read, write):
        yield write.send, read.receive


def _codec_us(text: str) -> dict[str, float]:
    """Our decode plus encode of ``text`` in-process, in microseconds (the floor of a round trip)."""
    n = max(3, 2_000_000 // len(text))
    start = time.perf_counter()
    for _ in range(n):
        trio_mcp_ws.encode(trio_mcp_ws.decode(text))
    return {"codec": (time.perf_counter() - start) / n * 1e6}


def _masker() -> str:
    """Which masker our transport runs with (the ``speedups`` extra installs the C one)."""
    from trio_mcp_ws._mask import ACCELERATED

    return "C (websockets.speedups)" if ACCELERATED else "pure Python"


def stack(name: str) -> _driver.Stack[Any]:
    """The client stack ``ours`` or ``ours-legacy``."""
    mode: ConnectMode = {"ours": "auto", "ours-legacy": "legacy"}[name]

    @asynccontextmanager
    async def session(url: str) -> AsyncGenerator[_driver.Session, None]:
        from mcp import Client

        async with Client(cast("Transport", trio_mcp_ws.websocket_client(url)), mode=mode) as client:

            async def call() -> None:
                if (await client.call_tool("echo", {"text": "hello"})).is_error:
                    raise RuntimeError("call_tool failed")

            yield str(client.protocol_version), call

    return _driver.Stack(
        prepare=lambda text: SessionMessage(trio_mcp_ws.decode(text)),
        connect=_connect,
        session=session,
        info={"trio_mcp_ws": trio_mcp_ws.__version__, "masker": _masker()},
        measure=_codec_us,
    )


if __name__ == "__main__":
    _driver.main(serve=lambda kind: trio.run(_serve, kind), stacks=stack, backend="trio")
