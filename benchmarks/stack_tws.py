"""Raw trio-websocket peers: an echo server and a client, with no MCP anywhere.

Run as ``python -m benchmarks.stack_tws serve echo [--buffer N] [--queue N]`` or
``... drive tws --url URL --plan JSON [--buffer N] [--queue N]``. ``--buffer`` sets
trio-websocket's ``receive_buffer_size`` on that side and ``--queue`` its
``message_queue_size`` (defaults: its own, 4 KiB and 1); everything else is its default.
This module imports neither mcp nor trio-mcp-ws, so the server's memory is trio-websocket's
alone.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import trio
import trio_websocket
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from . import _peer
from ._driver import Stack
from ._spec import MAX_MESSAGE, READY, SERVER_LIFETIME, say

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

# trio-websocket's own defaults; the baseline runs with them unless told otherwise.
DEFAULT_BUFFER = 4096
DEFAULT_QUEUE = 1


async def _echo(request: WebSocketRequest) -> None:
    offered = request.proposed_subprotocols
    ws = await request.accept(subprotocol="mcp" if "mcp" in offered else None)
    try:
        while True:
            await ws.send_message(await ws.get_message())
    except ConnectionClosed:
        pass


async def _serve(buffer: int, queue: int) -> None:
    with trio.move_on_after(SERVER_LIFETIME):
        async with trio.open_nursery() as nursery:
            server: trio_websocket.WebSocketServer = await nursery.start(
                partial(
                    trio_websocket.serve_websocket,
                    _echo,
                    "127.0.0.1",
                    0,
                    None,
                    max_message_size=MAX_MESSAGE,
                    receive_buffer_size=buffer,
                    message_queue_size=queue,
                )
            )
            say(READY, str(server.port))


def serve(kind: str, options: _peer.Options) -> None:
    """Run the echo server until terminated or ``SERVER_LIFETIME`` runs out."""
    if kind != "echo":
        raise SystemExit(f"unknown server kind {kind!r}")
    trio.run(_serve, options.buffer or DEFAULT_BUFFER, options.queue or DEFAULT_QUEUE)


class _Link:
    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, payload: str) -> None:
        await self.ws.send_message(payload)

    async def receive(self) -> None:
        await self.ws.get_message()


class RawTrioWebsocket(Stack[str]):
    """trio-websocket's client with its defaults but for the receive buffer and queue sizes."""

    def __init__(self, buffer: int, queue: int) -> None:
        self.buffer = buffer
        self.queue = queue

    def prepare(self, text: str) -> str:
        return text

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncGenerator[_Link, None]:
        async with trio_websocket.open_websocket_url(
            url,
            subprotocols=["mcp"],
            max_message_size=MAX_MESSAGE,
            receive_buffer_size=self.buffer,
            message_queue_size=self.queue,
        ) as ws:
            yield _Link(ws)

    def info(self) -> dict[str, str]:
        return {
            "trio_websocket": version("trio-websocket"),
            "receive_buffer_size": str(self.buffer),
            "message_queue_size": str(self.queue),
        }


def stack(name: str, options: _peer.Options) -> Stack[Any]:
    """The client stack called ``name``."""
    if name != "tws":
        raise SystemExit(f"unknown client stack {name!r}")
    return RawTrioWebsocket(options.buffer or DEFAULT_BUFFER, options.queue or DEFAULT_QUEUE)


if __name__ == "__main__":
    _peer.main(None, serve=serve, stack=stack, backend="trio")
