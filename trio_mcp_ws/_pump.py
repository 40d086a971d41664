"""The connection pump: one open WebSocket connection <-> a pair of Trio memory channels.

Shared by the client, the server and the testing pair, which is what makes them behave
the same. Three tasks run for the life of the ``async with``:

- the *reader* decodes each complete message (a very large one in a worker thread, see
  `_offload`) and puts the `SessionMessage` (or the `MessageDecodeError`) on the read
  channel, in order, then how the connection ended. With our own connection reader the
  messages are handed over directly (`_Pump.sink`), with no task switch per message;
- the *writer* takes each `SessionMessage` from the write channel, encodes it and sends
  it as one text frame, writing a burst of queued messages at once;
- the *keepalive* pings the peer every ``ping_interval`` and declares it dead after
  ``ping_timeout`` without a pong.

Nothing accepted by ``write.send`` is dropped on a clean exit: the write channel is
closed, the writer flushes what it holds, and only then does the close handshake start,
all within ``close_timeout``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import trio
from mcp.shared.message import SessionMessage
from trio_websocket import ConnectionClosed

from ._codec import encode
from ._errors import ConnectionClosedError, MessageDecodeError
from ._offload import decode_frame
from ._scope import background_nursery

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from ._tws import Connection

__all__ = ["ReadChannel", "WriteChannel", "open_pump"]

logger = logging.getLogger("trio_mcp_ws")

ReadChannel = trio.MemoryReceiveChannel[SessionMessage | Exception]
"""What a transport yields first: received messages, and errors as values."""

WriteChannel = trio.MemorySendChannel[SessionMessage]
"""What a transport yields second: messages to send."""

# The reader hands each message over directly (the connection's own queue already
# buffers a few); the writer holds a few so a burst of sends does not wait on the socket.
READ_BUFFER: Final = 4
WRITE_BUFFER: Final = 8
# At most this many queued messages go out in one write: everything the channel can hold
# plus the one just taken (the cap matters only if a sender outpaces the loop).
WRITE_BURST: Final = WRITE_BUFFER + 1

# Close codes we send when the body ends (RFC 6455 section 7.4.1).
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_INTERNAL_ERROR: Final = 1011


def exit_close_code(exc: BaseException | None) -> int:
    """The close code for a body that ended with ``exc``: clean 1000, cancelled 1001, error 1011."""
    if exc is None:
        return CLOSE_NORMAL
    if isinstance(exc, (trio.Cancelled, KeyboardInterrupt)):
        return CLOSE_GOING_AWAY
    return CLOSE_INTERNAL_ERROR


class _Pump:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.read_send, self.read_recv = trio.open_memory_channel[SessionMessage | Exception](READ_BUFFER)
        self.write_send, self.write_recv = trio.open_memory_channel[SessionMessage](WRITE_BUFFER)
        self.writer_done = trio.Event()
        # One frame is decoded and delivered at a time, in arrival order (FIFO wake-ups).
        self.order = trio.Semaphore(1)
        self.writer_scope = trio.CancelScope(shield=True)
        self.reader_done = trio.Event()
        self.dropped = 0

    async def reader(self, backlog: list[str | bytes] | None) -> None:
        """Deliver frames in order, then how the connection ended.

        With ``backlog`` (our own reader drives the connection), frames arrive through
        `sink`, straight from the connection's reader: no task switch and no extra channel
        per message. This task then delivers only the frames that were queued before the
        pump started (holding ``_order``, which `open_pump` took for it), and the end.
        Without it (a connection trio-websocket's reader drives), every frame comes
        through ``get_message``.
        """
        ws = self.conn.ws
        try:
            async with self.read_send:
                if backlog is not None:
                    try:
                        for frame in backlog:
                            await self._deliver_frame(frame)
                    finally:
                        self.order.release()
                while True:
                    try:
                        frame = await ws.get_message()
                    except ConnectionClosed:
                        break
                    async with self.order:
                        await self._deliver_frame(frame)
                # After every frame that is still on its way through `sink`.
                async with self.order:
                    record = self.conn.close_record
                    if record is None or not record.normal:
                        code, reason = (
                            (1006, "connection lost") if record is None else (record.code, record.reason)
                        )
                        await self._deliver(ConnectionClosedError(code, reason or _describe(code)))
        finally:
            self.reader_done.set()

    async def sink(self, frame: str | bytes) -> None:
        """Decode and deliver one frame; called by the connection's reader, in order."""
        async with self.order:
            await self._deliver_frame(frame)

    async def _deliver_frame(self, frame: str | bytes) -> None:
        item: SessionMessage | Exception
        try:
            item = SessionMessage(await decode_frame(frame))
        except MessageDecodeError as exc:
            logger.debug("%s: undecodable frame: %s", self.conn.ws, exc)
            item = exc
        await self._deliver(item)

    async def _deliver(self, item: SessionMessage | Exception) -> None:
        try:
            await self.read_send.send(item)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The consumer stopped reading; what still arrives is dropped, not an error.
            logger.debug("%s: read channel closed, dropping %s", self.conn.ws, type(item).__name__)

    async def writer(self) -> None:
        """Send what the write channel holds; keep draining (and dropping) after a close.

        Shielded from outside cancellation: a cancelled MCP session still writes (the SDK
        sends a courtesy ``notifications/cancelled`` while it unwinds), and a writer that
        died with the cancellation would close the channel under it, so that ``send``
        raised Trio's BrokenResourceError, which the SDK does not catch. `shutdown` ends
        the writer, within close_timeout.
        """
        conn = self.conn
        with self.writer_scope:
            try:
                async with self.write_recv:
                    async for message in self.write_recv:
                        batch = self._take_burst(message)
                        if conn.close_record is not None:
                            self._drop(batch)
                            continue
                        try:
                            await conn.send_texts([encode(item.message) for item in batch])
                        except ConnectionClosed:
                            self._drop(batch)
            finally:
                self.writer_done.set()

    def _take_burst(self, first: SessionMessage) -> list[SessionMessage]:
        """``first`` and whatever else is already waiting, to be written at once."""
        batch = [first]
        while len(batch) < WRITE_BURST:
            try:
                batch.append(self.write_recv.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):  # noqa: PERF203 - zero-cost try on 3.11+
                break
        return batch

    def _drop(self, batch: list[SessionMessage]) -> None:
        # The peer is gone: the session must not crash on a late write, so drop and log.
        for message in batch:
            self.dropped += 1
            level = logging.WARNING if self.dropped == 1 else logging.DEBUG
            logger.log(
                level,
                "%s: connection closed, dropped an outgoing %s",
                self.conn.ws,
                type(message.message).__name__,
            )

    async def keepalive(self, interval: float, pong_timeout: float) -> None:
        conn = self.conn
        while conn.close_record is None:
            await trio.sleep(interval)
            if conn.stalled or conn.close_record is not None:
                continue  # the consumer is slow, not the peer: we are receiving data
            received = conn.messages_received
            with trio.move_on_after(pong_timeout) as scope:
                try:
                    await conn.ws.ping()
                except ConnectionClosed:
                    return
            if scope.cancelled_caught and not conn.active_since(received):
                logger.info("%s: no pong within %ss, closing", conn.ws, pong_timeout)
                await conn.fail(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
                await conn.abort()
                return

    async def shutdown(self, code: int) -> None:
        """Flush accepted messages, then close the connection; all within close_timeout."""
        conn = self.conn
        with trio.CancelScope(shield=True):
            with trio.move_on_after(conn.limits.close_timeout):
                self.write_send.close()
                await self.writer_done.wait()
                try:
                    await conn.ws.aclose(code)
                except ConnectionClosed:  # pragma: no cover - aclose swallows it; belt and braces
                    pass
            await conn.abort()
            self.writer_scope.cancel()  # only if close_timeout ran out with it still blocked
            self.read_recv.close()


@asynccontextmanager
async def open_pump(conn: Connection) -> AsyncGenerator[tuple[ReadChannel, WriteChannel], None]:
    """Run the pump over an open connection, yielding ``(read, write)``.

    Resource handling:
        On exit the write channel is closed, everything accepted is flushed, and the
        connection is closed with 1000 (clean exit), 1001 (cancelled) or 1011 (the body
        raised), all within ``close_timeout``; then the TCP connection is closed and every
        task has finished.

    Error handling:
        Decode failures and abnormal closes arrive as exception values on the read
        channel. The body's own exception propagates as itself.
    """
    pump = _Pump(conn)
    limits = conn.limits
    backlog = conn.attach(pump.sink)
    if backlog is not None:
        pump.order.acquire_nowait()  # released by the reader once the backlog is delivered
    async with background_nursery() as nursery:
        nursery.start_soon(pump.reader, backlog)
        nursery.start_soon(pump.writer)
        if limits.ping_interval is not None:
            nursery.start_soon(pump.keepalive, limits.ping_interval, limits.ping_timeout)
        try:
            yield pump.read_recv, pump.write_send
        except BaseException as exc:
            await pump.shutdown(exit_close_code(exc))
            raise
        else:
            await pump.shutdown(CLOSE_NORMAL)


_DESCRIPTIONS: Final = {
    1002: "protocol error",
    1003: "unsupported data",
    1006: "connection lost without a close frame",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal error",
}


def _describe(code: int) -> str:
    return _DESCRIPTIONS.get(code, "abnormal closure")
