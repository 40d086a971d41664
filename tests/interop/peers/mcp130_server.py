"""Interop peer: mcp 1.30's WebSocket server transport, in a Starlette app under uvicorn.

Runs in its own virtual environment (``.peers/mcp130``, made by
``python -m tests.interop.setup_peers``), never in the project's: mcp 1.30 cannot share one
with mcp 2.x. It serves a ``FastMCP`` (the mcp 1.x API) at ``/mcp``, mounted exactly as mcp
1.30's documentation shows (``websocket_server`` in a ``WebSocketRoute``).

Usage::

    python mcp130_server.py [--port PORT]

``--port 0`` (the default) binds a free port on 127.0.0.1. Once uvicorn accepts
connections, one line goes to stdout::

    {"event": "ready", "port": 54321}

and then one JSON line per connection event, so tests can see what the peer saw::

    {"event": "connect", "subprotocols": ["mcp"]}
    {"event": "receive", "kind": "bytes"}          # a frame type other than text
    {"event": "disconnect", "code": 1000, "reason": ""}
    {"event": "handler_error", "error": "KeyError: 'text'"}
    {"event": "handler_end"}
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import socket
import sys
import warnings
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.websocket import websocket_server
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

if TYPE_CHECKING:
    from starlette.types import Message
    from starlette.websockets import WebSocket

# mcp 1.30 marks its WebSocket transport deprecated (it is gone in mcp 2); that is the point here.
warnings.simplefilter("ignore", DeprecationWarning)

# The connection a tool call arrived on, so a tool can close it while its own call is in flight.
CURRENT_WS: contextvars.ContextVar[WebSocket] = contextvars.ContextVar("CURRENT_WS")


def emit(**event: Any) -> None:
    """One JSON line on stdout: the test reads these."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


mcp = FastMCP("mcp130-interop-server")


@mcp.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.tool()
def fail(message: str = "boom") -> str:
    """Always fail, so the client sees a tool error (isError: true)."""
    raise ToolError(message)


@mcp.tool()
def length(text: str) -> int:
    """The length of the text: for large requests."""
    return len(text)


@mcp.tool(structured_output=False)
def big(size: int = 3 * 1024 * 1024) -> str:
    """A text result of ``size`` ASCII characters (default 3 MiB), as text content only."""
    return "x" * size


@mcp.tool()
def big_structured(size: int = 3 * 1024 * 1024) -> str:
    """The same, with FastMCP's default structured output: the text goes on the wire twice."""
    return "x" * size


@mcp.tool()
async def progress(steps: int, ctx: Context) -> str:
    """Send a progress notification and a log message per step, then answer."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await ctx.info(f"step {step} of {steps}")
    return f"done after {steps} steps"


@mcp.tool()
async def slow(ctx: Context) -> str:
    """Log "slow: started", then never answer (until the connection goes away)."""
    await ctx.info("slow: started")
    await anyio.sleep_forever()
    return "unreachable"


@mcp.tool()
async def hang_up(code: int = 1000, reason: str = "") -> str:
    """Close this connection with ``code`` while this very call is in flight."""
    emit(event="hang_up", code=code)
    await CURRENT_WS.get().close(code=code, reason=reason)
    return "closed"


@mcp.tool()
def exit_process() -> str:
    """End the server process at once: the kernel closes TCP, no close frame is sent."""
    sys.stdout.flush()
    os._exit(3)


async def mcp_endpoint(websocket: WebSocket) -> None:
    """Serve one connection exactly as mcp 1.30 documents, recording what the peer saw."""
    emit(event="connect", subprotocols=list(websocket.scope.get("subprotocols", [])))

    async def receive() -> Message:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            emit(event="disconnect", code=message.get("code"), reason=message.get("reason") or "")
        elif message["type"] == "websocket.receive" and message.get("text") is None:
            emit(event="receive", kind="bytes")
        return message

    CURRENT_WS.set(websocket)
    server = mcp._mcp_server  # how mcp 1.x mounts FastMCP on a custom transport
    try:
        async with websocket_server(websocket.scope, receive, websocket.send) as (read, write):
            await server.run(read, write, server.create_initialization_options())
    except BaseException as exc:
        emit(event="handler_error", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        emit(event="handler_end")


class ReadyServer(uvicorn.Server):
    """Announce readiness on stdout once uvicorn is accepting connections."""

    def __init__(self, config: uvicorn.Config, port: int) -> None:
        super().__init__(config)
        self.port = port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        emit(event="ready", port=self.port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    app = Starlette(routes=[WebSocketRoute("/mcp", mcp_endpoint)])
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    asyncio.run(ReadyServer(config, port).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
