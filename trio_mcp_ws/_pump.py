"""The connection pump: one open WebSocket connection <-> a pair of Trio memory channels.

Shared by every driver (our own connection, trio-websocket's adopted one, ASGI), which is
what makes client and server, and every way of serving, behave the same. It knows only the
`MessageConnection` interface (``_connection.py``): no driver, URL or HTTP. Two tasks run
for the life of the ``async with``, and timers share one task per Trio run:

- the *reader* runs the driver's reader with `_Pump.sink` as its sink: each complete
  message is decoded (a very large one in a worker thread, see `_offload`) and put on the
  read channel, in order, in the reader's own task; then how the connection ended;
- the *writer* takes each `SessionMessage` from the write channel, encodes it, and sends
  it as one text frame, writing a burst of queued messages at once;
- the *keepalive* pings the peer every ``ping_interval`` and declares it dead after
  ``ping_timeout`` without a pong, unless the sink is blocked on the consumer (then the
  driver is not reading, so no pong can arrive: the consumer is slow, not the peer).
  Between pings it is only an entry in `_Timers` (one task for every connection of the
  run, like the first-message deadline); a ping runs as a short task in the pump's
  nursery. A sleeping task per connection for each cost about 5 KiB of every idle
  connection.

Nothing accepted by ``write.send`` is dropped on a clean exit: the write channel is
closed, the writer flushes what it holds, and only then does the close handshake start,
all within ``close_timeout``. Reader and writer are shielded from outside cancellation, so
a cancelled body still flushes and completes its close handshake, bounded by the same
timeout.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, Literal, cast

import trio
from mcp.shared.message import SessionMessage

from ._channels import ReadChannel, WriteChannel
from ._codec import encode
from ._connection import (
    CLOSE_ABNORMAL,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_UNSUPPORTED_DATA,
    ConnectionGone,
    MessageConnection,
    describe_close,
)
from ._errors import ConnectionClosedError, MessageDecodeError
from ._logging import RateLimitedLog
from ._offload import decode_message
from ._scope import background_nursery

if sys.version_info < (3, 11):  # pragma: no cover - exercised by the 3.10 CI job
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

    from ._options import Limits

__all__ = ["BinaryFrames", "ReadChannel", "WriteChannel", "exit_close_code", "open_pump"]

logger = logging.getLogger("trio_mcp_ws")


BinaryFrames = Literal["accept", "reject"]
"""What to do with a binary message: decode it as UTF-8 JSON (``"accept"``, what mcp 1.30
peers need) or close with 1003 (``"reject"``, as the SEP-1288 draft asks)."""

# Decoded messages waiting for the consumer; with the driver's one message in hand, this
# bounds what a slow consumer makes us hold before TCP backpressure starts.
READ_BUFFER: Final = 4
# The writer holds a few so a burst of sends does not wait on the socket.
WRITE_BUFFER: Final = 8
# At most this many queued messages go out in one write: everything the channel can hold
# plus the one just taken (the cap matters only if a sender outpaces the loop).
WRITE_BURST: Final = WRITE_BUFFER + 1

# Writes dropped after the peer left are logged at WARNING at most this often per process
# (a remote peer must not be able to flood the logs); the rest go to DEBUG and are counted.
_dropped_log = RateLimitedLog(logger, "dropped outgoing messages on connections already closed")


class _Timer:
    """One pending call of `_Timers`; `cancel` drops the callback (and what it holds) at once."""

    __slots__ = ("callback", "owner")

    def __init__(self, owner: _Timers, callback: Callable[[], None]) -> None:
        self.owner = owner
        self.callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        if self.callback is not None:
            self.callback = None
            self.owner.forget()


class _Timers:
    """Deadlines of every pump in a Trio run, fired by one system task.

    Callbacks are synchronous and must not raise (a failure is logged); anything that
    awaits is started by the callback in its pump's own nursery, so it ends with the pump.
    A cancelled timer stays in the heap, without its callback, until its deadline, until
    cancelled ones are half the heap (then it is rebuilt), or until no timer is left: then
    the heap is emptied and the task ends (it starts again on the next `at`), so no task
    outlives the last connection.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()
        self._sleep = trio.CancelScope()
        self._live = 0  # timers neither fired nor cancelled
        self._dead = 0  # cancelled timers still in the heap
        self._running = False

    def at(self, deadline: float, callback: Callable[[], None]) -> _Timer:
        """Call ``callback()`` at ``deadline`` (Trio's clock), unless cancelled first."""
        timer = _Timer(self, callback)
        heapq.heappush(self._heap, (deadline, next(self._order), timer))
        self._live += 1
        if not self._running:
            self._running = True
            self._sleep = trio.CancelScope(deadline=deadline)
            trio.lowlevel.spawn_system_task(self._run, name="trio_mcp_ws timers")
        else:
            self._sleep.deadline = min(self._sleep.deadline, deadline)  # wake earlier if due first
        return timer

    def forget(self) -> None:
        """A timer was cancelled; wake the task to end it if that was the last one."""
        self._live -= 1
        self._dead += 1
        if not self._live:
            self._sleep.cancel()
        elif self._dead > 64 and self._dead * 2 > len(self._heap):
            self._heap[:] = [entry for entry in self._heap if entry[2].callback is not None]
            heapq.heapify(self._heap)
            self._dead = 0

    async def _run(self) -> None:
        heap = self._heap
        try:
            while self._live:
                now = trio.current_time()
                while heap and heap[0][0] <= now:
                    timer = heapq.heappop(heap)[2]
                    callback, timer.callback = timer.callback, None
                    if callback is None:
                        self._dead -= 1
                        continue
                    self._live -= 1
                    try:
                        callback()
                    except Exception:  # a bug must not end every connection's timers
                        logger.exception("internal error in a timer")
                if not self._live:
                    break
                with self._sleep:  # cancelled, or its deadline moved, by `at` and `forget`
                    await trio.sleep(math.inf)
                self._sleep = trio.CancelScope(deadline=heap[0][0] if heap else math.inf)
        finally:
            heap.clear()
            self._dead = 0
            self._running = False


_TIMERS: Final = trio.lowlevel.RunVar[_Timers]("trio_mcp_ws.timers")


def _timers() -> _Timers:
    """This Trio run's `_Timers`."""
    try:
        return _TIMERS.get()
    except LookupError:
        timers = _Timers()
        _TIMERS.set(timers)
        return timers


def exit_close_code(exc: BaseException | None) -> int:
    """The close code for a body that ended with ``exc``: clean 1000, cancelled 1001, error 1011."""
    if exc is None:
        return CLOSE_NORMAL
    if isinstance(exc, BaseExceptionGroup):
        # A body with a nursery of its own, cancelled: strict exception groups wrap the
        # Cancelled. Only cancellations (or Ctrl-C) inside still mean "going away".
        group = cast("BaseExceptionGroup[BaseException]", exc)
        rest = group.split((trio.Cancelled, KeyboardInterrupt))[1]
        return CLOSE_GOING_AWAY if rest is None else CLOSE_INTERNAL_ERROR
    if isinstance(exc, (trio.Cancelled, KeyboardInterrupt)):
        return CLOSE_GOING_AWAY
    return CLOSE_INTERNAL_ERROR


class _Pump:
    def __init__(self, conn: MessageConnection, limits: Limits, binary_frames: BinaryFrames) -> None:
        self.conn = conn
        self.limits = limits
        self.binary_frames = binary_frames
        self.read_send, self.read_recv = trio.open_memory_channel[SessionMessage | Exception](READ_BUFFER)
        self.write_send, self.write_recv = trio.open_memory_channel[SessionMessage](WRITE_BUFFER)
        self.reader_scope = trio.CancelScope(shield=True)
        self.writer_scope = trio.CancelScope(shield=True)
        self.reader_done = trio.Event()
        self.writer_done = trio.Event()
        self.stalled = False
        """True while the sink waits for the consumer to take a message (backpressure)."""
        self.received = 0
        self.ended = False
        self.nursery: trio.Nursery | None = None
        self._timers: list[_Timer] = []

    def consumer_is_slow(self) -> bool:
        """Whether the sink is blocked on the consumer now (then no pong can be read either)."""
        return self.stalled

    async def reader(self) -> None:
        """Run the driver's reader with our sink, then deliver how the connection ended."""
        with self.reader_scope:
            try:
                async with self.read_send:
                    await self.conn.run_reader(self.sink)
                    record = self.conn.close_record
                    if record is None or not record.normal:
                        code, reason = (
                            (CLOSE_ABNORMAL, None) if record is None else (record.code, record.reason)
                        )
                        await self._deliver(ConnectionClosedError(code, reason or describe_close(code)))
            finally:
                self.reader_done.set()

    async def sink(self, frame: str | bytes) -> None:
        """Decode one complete message and put it on the read channel; the driver awaits it."""
        self.received += 1
        if isinstance(frame, bytes) and self.binary_frames == "reject":
            await self.conn.close(CLOSE_UNSUPPORTED_DATA, "binary frames are not accepted; send text")
            return
        limits = self.limits
        result = await decode_message(
            frame, max_containers=limits.max_containers, max_members=limits.max_members
        )
        del frame  # a rejected frame must not outlive its delivery
        if isinstance(result, MessageDecodeError):
            logger.debug("%r: undecodable frame: %s", self.conn, result)
            await self._deliver(result)
        else:
            await self._deliver(SessionMessage(result))

    async def _deliver(self, item: SessionMessage | Exception) -> None:
        # With room in the channel (the usual case) hand it over without a checkpoint: the
        # driver's next read checkpoints anyway, and a full channel still blocks below.
        try:
            self.read_send.send_nowait(item)
        except trio.WouldBlock:
            pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._dropped(item)
            return
        else:
            return
        self.stalled = True
        try:
            await self.read_send.send(item)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._dropped(item)
        finally:
            self.stalled = False

    def _dropped(self, item: SessionMessage | Exception) -> None:
        # The consumer stopped reading; what still arrives is dropped, not an error.
        logger.debug("%r: read channel closed, dropping %s", self.conn, type(item).__name__)

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
                    while True:
                        # No checkpoint when a message is already waiting: the write checkpoints.
                        try:
                            message = self.write_recv.receive_nowait()
                        except trio.WouldBlock:
                            try:
                                message = await self.write_recv.receive()
                            except trio.EndOfChannel:
                                break
                        except trio.EndOfChannel:
                            break
                        batch = self._take_burst(message)
                        if conn.close_record is not None:
                            _dropped_log.record(len(batch))
                            continue
                        try:
                            await conn.send_texts([encode(item.message) for item in batch])
                        except ConnectionGone:
                            _dropped_log.record(len(batch))
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

    def start_timers(self, nursery: trio.Nursery) -> None:
        """Arm the keepalive and the first-message deadline; their tasks go in ``nursery``."""
        self.nursery = nursery
        limits = self.limits
        if limits.ping_interval is not None and self.conn.can_ping:
            self._keepalive_after(limits.ping_interval)
        if limits.first_message_timeout is not None:
            seconds = limits.first_message_timeout
            self._at(trio.current_time() + seconds, lambda: self._first_message_due(seconds))

    def stop_timers(self) -> None:
        """Disarm every timer; from now on none starts a task."""
        self.ended = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _at(self, deadline: float, callback: Callable[[], None]) -> None:
        self._timers = [timer for timer in self._timers if timer.callback is not None]
        self._timers.append(_timers().at(deadline, callback))

    def _spawn(self, task: Callable[[], Awaitable[None]]) -> None:
        if self.ended or self.nursery is None:
            return
        self.nursery.start_soon(task)

    def _keepalive_after(self, interval: float) -> None:
        def due() -> None:
            if self.ended or self.conn.close_record is not None:
                return
            if self.consumer_is_slow():
                self._keepalive_after(interval)  # the consumer is slow, not the peer
            else:
                self._spawn(self._ping_once)

        self._at(trio.current_time() + interval, due)

    async def _ping_once(self) -> None:
        """One keepalive ping: the next is armed after its pong, or the peer is declared dead."""
        conn, pong_timeout = self.conn, self.limits.ping_timeout
        received = self.received
        with trio.move_on_after(pong_timeout) as scope:
            try:
                await conn.ping()
            except ConnectionGone:
                return
        if scope.cancelled_caught and not self.consumer_is_slow() and self.received == received:
            logger.info("%r: no pong within %ss, closing", conn, pong_timeout)
            with trio.move_on_after(pong_timeout):
                await conn.close(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
            await conn.abort()
            return
        interval = self.limits.ping_interval
        if interval is not None and not self.ended and conn.close_record is None:
            self._keepalive_after(interval)

    def _first_message_due(self, seconds: float) -> None:
        """Close with 1008 if no message arrived within ``seconds`` (an idle squatter)."""
        if self.received or self.ended or self.conn.close_record is not None:
            return

        async def close() -> None:
            logger.debug("%r: no message within %ss, closing", self.conn, seconds)
            await self.conn.close(CLOSE_POLICY_VIOLATION, f"no message within {seconds:g}s")
            # A squatter that never answers the close frame must not keep its slot either.
            with trio.move_on_after(self.limits.close_timeout):
                await self.reader_done.wait()
            await self.conn.abort()

        self._spawn(close)

    async def shutdown(self, code: int) -> None:
        """Flush accepted messages, then close the connection; all within close_timeout."""
        conn = self.conn
        with trio.CancelScope(shield=True):
            # Nobody reads any more: a reader blocked on the consumer must not hold up the close.
            self.read_recv.close()
            with trio.move_on_after(self.limits.close_timeout):
                self.write_send.close()
                await self.writer_done.wait()
                await conn.close(code)
                await self.reader_done.wait()
            await conn.abort()
            # Only if close_timeout ran out with them still blocked.
            self.writer_scope.cancel()
            self.reader_scope.cancel()


@asynccontextmanager
async def open_pump(
    conn: MessageConnection, limits: Limits, *, binary_frames: BinaryFrames = "accept"
) -> AsyncGenerator[tuple[ReadChannel, WriteChannel], None]:
    """Run the pump over an open connection, yielding ``(read, write)``.

    Resource handling:
        On exit the write channel is closed, everything accepted is flushed, and the
        connection is closed with 1000 (clean exit), 1001 (cancelled) or 1011 (the body
        raised), all within ``close_timeout``; then the connection is aborted if it is not
        over yet, and every task has finished.

    Error handling:
        Decode failures and abnormal closes arrive as exception values on the read
        channel. The body's own exception propagates as itself.
    """
    pump = _Pump(conn, limits, binary_frames)
    async with background_nursery() as nursery:
        nursery.start_soon(pump.reader)
        nursery.start_soon(pump.writer)
        pump.start_timers(nursery)
        try:
            yield cast("ReadChannel", pump.read_recv), cast("WriteChannel", pump.write_send)
        except BaseException as exc:
            await pump.shutdown(exit_close_code(exc))
            raise
        else:
            await pump.shutdown(CLOSE_NORMAL)
        finally:
            pump.stop_timers()
