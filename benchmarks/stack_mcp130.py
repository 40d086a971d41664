"""mcp 1.30's own WebSocket transport, run with ``.bench/mcp130/bin/python -m benchmarks.stack_mcp130``.

mcp 1.30 and mcp 2 both install the package ``mcp``, so these peers run in their own environment
(`benchmarks._mcp130env`), and every mcp 1.30 name is looked up at run time and typed ``Any``.

Servers: the SDK's ``websocket_server`` as an ASGI endpoint in a Starlette ``WebSocketRoute``
under uvicorn, echoing every message (``echo``) or running a ``FastMCP`` server with one ``echo``
tool (``mcp``). With its defaults uvicorn and the SDK's client (``websockets``) negotiate
permessage-deflate, which then compresses every data frame; ``echo-plain`` and the client stack
``mcp130-plain`` turn it off on both ends, the fair transport-against-transport baseline.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import zlib
from contextlib import asynccontextmanager, suppress
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import connect

from . import _driver
from ._spec import LIFETIME, READY, say

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from starlette.types import Receive, Scope, Send


def _sdk(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def _fastmcp() -> Any:
    # WARNING: at INFO FastMCP logs a line per request, a cost of the framework, not the transport.
    fastmcp = _sdk("mcp.server.fastmcp", "FastMCP")("bench", log_level="WARNING")

    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    fastmcp.tool()(echo)
    return fastmcp


class _Endpoint:
    """An ASGI app (a class, so Starlette does not take it for a WebSocket-session function)."""

    def __init__(self, fastmcp: Any) -> None:
        self.fastmcp = fastmcp
        self.websocket_server = _sdk("mcp.server.websocket", "websocket_server")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self.websocket_server(scope, receive, send) as (read, write):
            if self.fastmcp is not None:
                lowlevel = self.fastmcp._mcp_server
                await lowlevel.run(read, write, lowlevel.create_initialization_options())
                return
            async with read, write:
                async for item in read:
                    if not isinstance(item, Exception):
                        await write.send(item)


async def _serve(kind: str) -> None:
    app = Starlette(routes=[WebSocketRoute("/mcp", _Endpoint(_fastmcp() if kind == "mcp" else None))])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws_per_message_deflate=kind != "echo-plain"
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:  # uvicorn has no started event; bounded by the runner's deadline
        if task.done():
            raise SystemExit("uvicorn did not start")
        await asyncio.sleep(0.01)
    say(READY, str(sock.getsockname()[1]))
    with suppress(asyncio.TimeoutError):
        await asyncio.wait_for(task, LIFETIME)


def stack(name: str) -> _driver.Stack[Any]:
    """The client stack ``mcp130`` (the SDK's defaults) or ``mcp130-plain`` (no compression)."""
    plain = name == "mcp130-plain"
    sdk_websocket: Any = importlib.import_module("mcp.client.websocket")
    negotiated: list[Any] = []
    info = {name: version(name) for name in ("mcp", "websockets", "uvicorn", "starlette", "pydantic")}

    @asynccontextmanager
    async def ws_connect(url: str, **kwargs: Any) -> AsyncGenerator[Any, None]:
        # The SDK's client calls websockets' connect with only the subprotocol; this wrapper
        # records what was negotiated and, for the plain stack, offers no compression.
        async with connect(url, **kwargs, compression=None if plain else "deflate") as ws:
            negotiated[:] = ws.protocol.extensions
            info["extensions"] = ", ".join(extension.name for extension in negotiated) or "none"
            yield ws

    sdk_websocket.ws_connect = ws_connect
    websocket_client = sdk_websocket.websocket_client

    @asynccontextmanager
    async def _connect(url: str) -> AsyncGenerator[_driver.Link[Any], None]:
        async with websocket_client(url) as (read, write):
            yield write.send, read.receive

    @asynccontextmanager
    async def session(url: str) -> AsyncGenerator[_driver.Session, None]:
        client_session = _sdk("mcp", "ClientSession")
        async with websocket_client(url) as (read, write), client_session(read, write) as s:
            initialized = await s.initialize()

            async def call() -> None:
                if (await s.call_tool("echo", {"text": "hello"})).isError:
                    raise RuntimeError("call_tool failed")

            yield str(initialized.protocolVersion), call

    def deflated(text: str) -> dict[str, float]:
        """What the negotiated deflate makes of ``text``: its size over the original's."""
        if not negotiated:
            return {}
        compressor = zlib.compressobj(wbits=-negotiated[0].local_max_window_bits)
        data = text.encode()
        return {"deflate": len(compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)) / len(data)}

    session_message = _sdk("mcp.shared.message", "SessionMessage")
    message = _sdk("mcp.types", "JSONRPCMessage")
    return _driver.Stack(
        prepare=lambda text: session_message(message.model_validate_json(text)),
        connect=_connect,
        session=session,
        info=info,
        measure=deflated,
    )


if __name__ == "__main__":
    _driver.main(serve=lambda kind: asyncio.run(_serve(kind)), stacks=stack, backend="asyncio")
