"""A byte-counting TCP relay on 127.0.0.1, to see what compression does on the wire.

The compression tests put it between a client and a server (ours or another project's) and
read how many bytes crossed in each direction: a peer that really compresses sends a
fraction of the message bytes, one that does not sends more than them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import trio

__all__ = ["Counts", "start_relay"]


@dataclass
class Counts:
    """Bytes relayed so far: ``up`` from clients to the server, ``down`` back."""

    up: int = 0
    down: int = 0


async def start_relay(nursery: trio.Nursery, target_port: int) -> tuple[int, Counts]:
    """Relay every connection to 127.0.0.1:``target_port``; return the relay's port and its counts.

    Each side's end of stream closes both connections (WebSocket close frames have been
    relayed by then), so the relay adds no waiting of its own.
    """
    counts = Counts()

    async def pipe(src: trio.abc.Stream, dst: trio.abc.Stream, up: bool, done: trio.CancelScope) -> None:
        try:
            while data := await src.receive_some(65536):
                if up:
                    counts.up += len(data)
                else:
                    counts.down += len(data)
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            done.cancel()

    async def handle(client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream("127.0.0.1", target_port)
        async with client, server, trio.open_nursery() as pipes:
            pipes.start_soon(pipe, client, server, True, pipes.cancel_scope)
            pipes.start_soon(pipe, server, client, False, pipes.cancel_scope)

    listeners: list[trio.SocketListener] = await nursery.start(
        partial(trio.serve_tcp, handle, 0, host="127.0.0.1")
    )
    port: int = listeners[0].socket.getsockname()[1]
    return port, counts
