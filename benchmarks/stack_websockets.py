"""Raw ``websockets`` (asyncio, C speedups) echoing text: ``python -m benchmarks.stack_websockets ...``.

Compression is off on both ends (trio-websocket cannot negotiate it): the like-for-like ceiling
of a well-optimised asyncio WebSocket, and the moonshot row of the report.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager, suppress
from importlib.metadata import version
from typing import TYPE_CHECKING

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from . import _driver
from ._spec import LIFETIME, MAX_MESSAGE, READY, say

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

SUBPROTOCOLS = [Subprotocol("mcp")]


async def _echo(ws: ServerConnection) -> None:
    with suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


async def _serve() -> None:
    async with serve(
        _echo, "127.0.0.1", 0, subprotocols=SUBPROTOCOLS, compression=None, max_size=MAX_MESSAGE
    ) as server:
        say(READY, str(next(iter(server.sockets)).getsockname()[1]))
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.serve_forever(), LIFETIME)


@asynccontextmanager
async def _connect(url: str) -> AsyncGenerator[_driver.Link[str], None]:
    async with connect(url, subprotocols=SUBPROTOCOLS, compression=None, max_size=MAX_MESSAGE) as ws:
        yield ws.send, ws.recv


def stack(name: str) -> _driver.Stack[str]:
    """The client stack ``websockets``."""
    return _driver.Stack(prepare=str, connect=_connect, info={"websockets": version("websockets")})


if __name__ == "__main__":
    _driver.main(serve=lambda kind: asyncio.run(_serve()), stacks=stack, backend="asyncio")
