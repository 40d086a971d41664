"""Raw trio-websocket echoing text, no MCP: ``python -m benchmarks.stack_tws serve echo|drive tws ...``.

Both ends use the receive buffer and message queue sizes our transport gives trio-websocket
(64 KiB and 2: written here, since the core keeps them private), so the ratio ours / this is the
cost of our layer alone. This module imports neither mcp nor trio-mcp-ws, so the server's memory
is trio-websocket's own.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial
from importlib.metadata import version
from typing import TYPE_CHECKING

import trio
import trio_websocket

from . import _driver
from ._spec import LIFETIME, MAX_MESSAGE, READY, say

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

BUFFER, QUEUE = 64 * 1024, 2
SETTINGS = {"max_message_size": MAX_MESSAGE, "receive_buffer_size": BUFFER, "message_queue_size": QUEUE}


async def _echo(request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept(subprotocol="mcp" if "mcp" in request.proposed_subprotocols else None)
    try:
        while True:
            await ws.send_message(await ws.get_message())
    except trio_websocket.ConnectionClosed:
        pass


async def _serve() -> None:
    with trio.move_on_after(LIFETIME):
        async with trio.open_nursery() as nursery:
            serve = partial(
                trio_websocket.serve_websocket,
                _echo,
                "127.0.0.1",
                0,
                None,
                max_message_size=MAX_MESSAGE,
                receive_buffer_size=BUFFER,
                message_queue_size=QUEUE,
            )
            server: trio_websocket.WebSocketServer = await nursery.start(serve)
            say(READY, str(server.port))


@asynccontextmanager
async def _connect(url: str) -> AsyncGenerator[_driver.Link[str], None]:
    async with trio_websocket.open_websocket_url(
        url,
        subprotocols=["mcp"],
        max_message_size=MAX_MESSAGE,
        receive_buffer_size=BUFFER,
        message_queue_size=QUEUE,
    ) as ws:
        yield ws.send_message, ws.get_message


def stack(name: str) -> _driver.Stack[str]:
    """The client stack ``tws``."""
    info = {"trio_websocket": version("trio-websocket"), **{k: str(v) for k, v in SETTINGS.items()}}
    return _driver.Stack(prepare=str, connect=_connect, info=info)


if __name__ == "__main__":
    _driver.main(serve=lambda kind: trio.run(_serve), stacks=stack, backend="trio")
