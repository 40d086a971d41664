"""An in-memory byte stream pair with bounded buffers, standing in for a TCP connection.

`trio.testing.memory_stream_pair` buffers without limit, so a sender never blocks and a
slow consumer never pushes back: a transport tested over it cannot show backpressure and
can grow memory without anyone noticing. Here each direction holds at most ``buffer_size``
bytes, like a socket's send and receive buffers together; ``send_all`` waits for room.
"""

from __future__ import annotations

import operator
from typing import Final

import trio

__all__ = ["DEFAULT_BUFFER_SIZE", "bounded_stream_pair"]

DEFAULT_BUFFER_SIZE: Final = 64 * 1024
"""Bytes one direction holds before ``send_all`` blocks: the order of a socket buffer."""


class _Pipe:
    """The shared state of one direction: the bytes in flight and who has closed what."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.eof = False
        self.receiver_closed = False
        self.waiters = trio.lowlevel.ParkingLot()

    def changed(self) -> None:
        self.waiters.unpark_all()


class _PipeSendStream(trio.abc.SendStream):
    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe
        self._closed = False
        self._busy = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._busy:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._busy = True
        try:
            await trio.lowlevel.checkpoint()
            pipe = self._pipe
            view = memoryview(data).cast("B")
            while True:
                if self._closed:
                    raise trio.ClosedResourceError("this stream was closed")
                if pipe.receiver_closed:
                    raise trio.BrokenResourceError("the other end closed the connection")
                if not view:
                    return
                room = pipe.limit - len(pipe.data)
                if room <= 0:
                    await pipe.waiters.park()
                    continue
                pipe.data += view[:room]
                view = view[room:]
                pipe.changed()
        finally:
            self._busy = False

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()
        pipe = self._pipe
        while not (self._closed or pipe.receiver_closed or len(pipe.data) < pipe.limit):
            await pipe.waiters.park()
        if self._closed:
            raise trio.ClosedResourceError("this stream was closed")

    def close(self) -> None:
        """Send EOF; wakes any task still sending here with `trio.ClosedResourceError`."""
        if not self._closed:
            self._closed = True
            self._pipe.eof = True
            self._pipe.changed()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


class _PipeReceiveStream(trio.abc.ReceiveStream):
    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe
        self._closed = False
        self._busy = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be at least 1")
        if self._busy:
            raise trio.BusyResourceError("another task is receiving on this stream")
        self._busy = True
        try:
            await trio.lowlevel.checkpoint()
            pipe = self._pipe
            while True:
                if self._closed:
                    raise trio.ClosedResourceError("this stream was closed")
                if pipe.data or pipe.eof:
                    break
                await pipe.waiters.park()
            size = len(pipe.data) if max_bytes is None else min(max_bytes, len(pipe.data))
            chunk = bytes(pipe.data[:size])
            del pipe.data[:size]
            pipe.changed()
            return chunk
        finally:
            self._busy = False

    def close(self) -> None:
        """Stop receiving: pending data is discarded and later sends fail as broken."""
        if not self._closed:
            self._closed = True
            self._pipe.receiver_closed = True
            self._pipe.data.clear()
            self._pipe.changed()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


def bounded_stream_pair(
    buffer_size: int = DEFAULT_BUFFER_SIZE,
) -> tuple[
    trio.StapledStream[_PipeSendStream, _PipeReceiveStream],
    trio.StapledStream[_PipeSendStream, _PipeReceiveStream],
]:
    """A connected pair of in-memory streams, each direction buffering ``buffer_size`` bytes.

    Closing a stream sends EOF to the other end and makes the other end's later sends fail
    with `trio.BrokenResourceError`, as a TCP connection does; a task blocked on the closed
    stream itself wakes with `trio.ClosedResourceError`.
    """
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be at least 1, not {buffer_size!r}")
    forward, backward = _Pipe(buffer_size), _Pipe(buffer_size)
    left = trio.StapledStream(_PipeSendStream(forward), _PipeReceiveStream(backward))
    right = trio.StapledStream(_PipeSendStream(backward), _PipeReceiveStream(forward))
    return left, right
