"""The echo both Autobahn programs run over our driver, and the limits they run it with."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Final

import trio

from trio_mcp_ws._connection import ConnectionGone
from trio_mcp_ws._options import Limits

if TYPE_CHECKING:
    from trio_mcp_ws._wsconn import WsConnection

__all__ = ["LIMITS", "MAX_FRAMES_PER_MESSAGE", "MAX_MESSAGE_SIZE", "echo"]

MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024
"""Above the suite's largest message (16 MiB in cases 9.1.6 and 9.2.6)."""

MAX_FRAMES_PER_MESSAGE: Final = 1 << 20
"""Above the suite's most fragmented message (4 MiB in 64-byte frames, case 9.3.1: 65,536)."""

LIMITS: Final = Limits(
    max_message_size=MAX_MESSAGE_SIZE, max_frames_per_message=MAX_FRAMES_PER_MESSAGE, ping_interval=None
)
"""Our defaults (4 MiB, 4,096 frames) would close cases 9.1.5-9.1.6, 9.2.5-9.2.6 and
9.3.1-9.4.x with 1009, which is what they are for but not what the suite tests. Keepalive is
off: the suite counts every frame, and a ping of ours would be one it did not expect."""


async def echo(conn: WsConnection, *, direct: bool = False) -> None:
    """Send every message back as it arrived (text as text, binary as binary) until the end.

    By default with one reader and one writer, as the pump runs them: the reader goes on
    reading (pings, the close) while a big echo is still being written, and a writer that
    cannot send (the connection is closing) drops the message instead of stopping the
    reader. ``direct=True`` sends each echo from inside the reader's sink instead, so it is
    out before the reader looks at the next frame (see docs/conformance.md, NON-STRICT).
    """
    if direct:
        await conn.run_reader(partial(_send, conn))
        return
    send, receive = trio.open_memory_channel[str | bytes](1)

    async def writer() -> None:
        async with receive:
            async for message in receive:
                await _send(conn, message)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        async with send:
            await conn.run_reader(send.send)


async def _send(conn: WsConnection, message: str | bytes) -> None:
    try:
        if isinstance(message, str):
            await conn.send_texts([message])
        else:
            await conn.send_bytes(message)
    except ConnectionGone:
        pass  # closing: nothing more goes out, but keep draining for the reader
