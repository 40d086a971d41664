"""The mcp 1.30 SDK's own WebSocket transport, run in its own virtual environment.

Run as ``.bench/mcp130/bin/python -m benchmarks.stack_mcp130 serve echo|mcp`` or
``... drive mcp130 --url URL --plan JSON``; `benchmarks._mcp130env` builds that environment
from ``benchmarks/requirements-mcp130.txt``.

mcp 1.30 cannot be installed next to mcp 2 (the package they share is ``mcp``), and mcp 2 no
longer has these modules, so everything from mcp 1.30 is looked up at run time and typed as
``Any`` here; uvicorn and Starlette are in both environments and typed as usual.

Servers (``mcp.server.websocket.websocket_server`` as an ASGI endpoint, in a Starlette
``WebSocketRoute`` under uvicorn with its defaults, which negotiate permessage-deflate with
the SDK's client as they would in production):
    ``echo``  writes back every `SessionMessage`.
    ``mcp``   runs a ``FastMCP`` server with one ``echo`` tool.

Client stack ``mcp130``: ``mcp.client.websocket.websocket_client`` (asyncio, ``websockets``).
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import time
from contextlib import asynccontextmanager, suppress
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from . import _peer
from ._driver import Stack
from ._spec import READY, SERVER_LIFETIME, CallsPlan, Results, say

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from starlette.types import Receive, Scope, Send

# The text every ``call_tool`` sends to the ``echo`` tool (as in benchmarks.stack_trio).
CALL_TEXT = "hello"

# How long uvicorn may take to start listening.
STARTUP_TIMEOUT = 30.0


def _sdk(module: str, name: str) -> Any:
    """``module.name`` from mcp 1.30, looked up at run time (see the module docstring)."""
    return getattr(importlib.import_module(module), name)


class _Endpoint:
    """An ASGI endpoint: the SDK's ``websocket_server``, then an echo loop or an MCP server."""

    def __init__(self, fastmcp: Any) -> None:
        self.fastmcp = fastmcp
        self.websocket_server = _sdk("mcp.server.websocket", "websocket_server")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self.websocket_server(scope, receive, send) as (read, write):
            if self.fastmcp is None:
                async with read, write:
                    async for item in read:
                        if not isinstance(item, Exception):
                            await write.send(item)
            else:
                lowlevel = self.fastmcp._mcp_server
                await lowlevel.run(read, write, lowlevel.create_initialization_options())


def _fastmcp() -> Any:
    # WARNING: at its default (INFO) FastMCP logs a line per request, a cost of the server
    # framework, not of the transport under test (our MCPServer is configured the same way).
    fastmcp = _sdk("mcp.server.fastmcp", "FastMCP")("bench", log_level="WARNING")

    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    fastmcp.tool()(echo)
    return fastmcp


async def _serve(kind: str) -> None:
    if kind == "echo":
        endpoint = _Endpoint(None)
    elif kind == "mcp":
        endpoint = _Endpoint(_fastmcp())
    else:
        raise SystemExit(f"unknown server kind {kind!r}")
    app = Starlette(routes=[WebSocketRoute("/mcp", endpoint)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        await asyncio.sleep(0.01)
    port: int = sock.getsockname()[1]
    say(READY, str(port))
    with suppress(asyncio.TimeoutError):
        await asyncio.wait_for(task, SERVER_LIFETIME)


def serve(kind: str, options: _peer.Options) -> None:
    """Run the server ``kind`` until terminated or ``SERVER_LIFETIME`` runs out."""
    asyncio.run(_serve(kind))


class _Link:
    def __init__(self, read: Any, write: Any) -> None:
        self.read = read
        self.write = write

    async def send(self, payload: object) -> None:
        await self.write.send(payload)

    async def receive(self) -> None:
        item = await self.read.receive()
        if isinstance(item, Exception):
            raise RuntimeError(f"expected an echo, got {item!r}")


class Mcp130(Stack[object]):
    """mcp 1.30's ``websocket_client`` (and ``ClientSession`` for ``call_tool``)."""

    def __init__(self) -> None:
        self.websocket_client = _sdk("mcp.client.websocket", "websocket_client")
        self.session_message = _sdk("mcp.shared.message", "SessionMessage")
        self.jsonrpc_message = _sdk("mcp.types", "JSONRPCMessage")

    def prepare(self, text: str) -> object:
        message: object = self.session_message(self.jsonrpc_message.model_validate_json(text))
        return message

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncGenerator[_Link, None]:
        async with self.websocket_client(url) as (read, write):
            yield _Link(read, write)

    async def call_tools(self, url: str, plan: CallsPlan, results: Results) -> None:
        client_session = _sdk("mcp", "ClientSession")
        async with self.websocket_client(url) as (read, write), client_session(read, write) as session:
            initialized = await session.initialize()
            results.info["protocol"] = str(initialized.protocolVersion)
            for _ in range(plan.warmup):
                await session.call_tool("echo", {"text": CALL_TEXT})
            latencies: list[float] = []
            start = time.perf_counter()
            for _ in range(plan.count):
                began = time.perf_counter()
                result = await session.call_tool("echo", {"text": CALL_TEXT})
                latencies.append((time.perf_counter() - began) * 1e6)
                if result.isError:
                    raise RuntimeError(f"call_tool failed: {result}")
            results.calls_seconds = time.perf_counter() - start
            results.calls = plan.count
            results.call_latency_us = latencies

    def info(self) -> dict[str, str]:
        return {
            name: version(name) for name in ("mcp", "websockets", "uvicorn", "starlette", "anyio", "pydantic")
        }


def stack(name: str, options: _peer.Options) -> Stack[Any]:
    """The client stack called ``name``."""
    if name != "mcp130":
        raise SystemExit(f"unknown client stack {name!r}")
    return Mcp130()


if __name__ == "__main__":
    _peer.main(None, serve=serve, stack=stack, backend="asyncio")
