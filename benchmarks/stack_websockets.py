"""asyncio peers: the raw ``websockets`` library, echo server and client.

Run as ``python -m benchmarks.stack_websockets serve echo`` or ``... drive websockets ...``.

Compression is off on both ends: trio-websocket cannot negotiate permessage-deflate, so this
is the like-for-like ceiling of a well-optimised asyncio WebSocket (C speedups included).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager, suppress
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from . import _peer
from ._driver import Stack
from ._spec import MAX_MESSAGE, READY, SERVER_LIFETIME, say

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

SUBPROTOCOLS = [Subprotocol("mcp")]


async def _echo(ws: ServerConnection) -> None:
    with suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


async def _serve() -> None:
    async with ws_serve(
        _echo, "127.0.0.1", 0, subprotocols=SUBPROTOCOLS, compression=None, max_size=MAX_MESSAGE
    ) as server:
        port: int = next(iter(server.sockets)).getsockname()[1]
        say(READY, str(port))
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.serve_forever(), SERVER_LIFETIME)


def serve(kind: str, options: _peer.Options) -> None:
    """Run the echo server until terminated or ``SERVER_LIFETIME`` runs out."""
    if kind != "echo":
        raise SystemExit(f"unknown server kind {kind!r}")
    asyncio.run(_serve())


class _Link:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, payload: str) -> None:
        await self.ws.send(payload)

    async def receive(self) -> None:
        await self.ws.recv()


class RawWebsockets(Stack[str]):
    """``websockets.asyncio.client.connect`` with compression off."""

    def prepare(self, text: str) -> str:
        return text

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncGenerator[_Link, None]:
        async with connect(url, subprotocols=SUBPROTOCOLS, compression=None, max_size=MAX_MESSAGE) as ws:
            yield _Link(ws)

    def info(self) -> dict[str, str]:
        return {"websockets": version("websockets")}


def stack(name: str, options: _peer.Options) -> Stack[Any]:
    """The client stack called ``name``."""
    if name != "websockets":
        raise SystemExit(f"unknown client stack {name!r}")
    return RawWebsockets()


if __name__ == "__main__":
    _peer.main(None, serve=serve, stack=stack, backend="asyncio")
