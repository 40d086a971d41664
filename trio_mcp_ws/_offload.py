"""Decoding frames so that one hostile frame can neither stall every connection nor pin memory.

Decoding is synchronous and its cost grows with the objects a frame builds, not its size: a
4 MiB frame of ``[],[],...`` builds 1.4 million lists and took 1.6 s with the cyclic garbage
collector running (most of it collection passes over the new lists) and 170 MiB. Four
things bound it, none of which touches the collector (pausing it process-wide, as this
module once did, lets every other thread's garbage pile up and makes the next pass longer):

- the codec's structural budget (`trio_mcp_ws._codec.check_budget`) refuses a frame with
  more containers or members than the connection allows, with C-speed counts, before the
  parser allocates anything: the costliest frames are refused in a few milliseconds, on
  the event loop;
- frames over `THREAD_LIMIT`, or with more structure than `INLINE_CONTAINERS` or
  `INLINE_MEMBERS`, are *heavy*: decoded in a worker thread. pydantic-core holds the GIL
  for each parse, so this does not make a parse concurrent; it lets the event loop run
  between the Python-level steps of a decode (the checks, validation) and lets the pacing
  below apply;
- heavy decodes run one at a time, process-wide (per ``trio.run``), in FIFO order for every
  connection: the decode memory budget. At most one heavy frame is being turned into
  objects at a time, however many connections send them;
- and they are paced (`LARGE_DECODE_SHARE`): after a heavy decode, the next one waits as
  long as this one took. A parse holds the GIL from start to end (10-100 ms for the largest
  frames a budget admits), and the event loop needs the GIL after every system call: with
  heavy decodes back to back, one round trip of another connection waited behind several
  of them (p99 240-330 ms under 8 attackers); with the pause it waits behind at most one.

A rejected frame is freed by reference counting alone. `decode_value` returns the
`MessageDecodeError` as a value with no traceback (a traceback would keep the decoding
frames, and the frame text in their locals, alive for as long as the error lives), and
the worker thread hands back values, never a raised exception, so trio's thread plumbing
holds no traceback either. A caller that catches the error raised by `decode_frame` and
keeps it in a local should drop its traceback (``exc.with_traceback(None)``) for the same
reason: the traceback refers to the caller's own frame, which refers to the error.
"""

from __future__ import annotations

import math
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import trio

from ._codec import decode, over_budget, structure
from ._errors import MessageDecodeError
from ._options import MAX_CONTAINERS, MAX_MEMBERS

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from mcp_types import JSONRPCMessage

__all__ = [
    "INLINE_CONTAINERS",
    "INLINE_LIMIT",
    "INLINE_MEMBERS",
    "LARGE_DECODES",
    "LARGE_DECODE_SHARE",
    "THREAD_LIMIT",
    "Pacer",
    "decode_frame",
    "decode_message",
    "decode_value",
    "large_decode_limiter",
]

THREAD_LIMIT: Final = 1024 * 1024
"""Frames over this size (characters or bytes) are decoded in a worker thread, paced."""

INLINE_CONTAINERS: Final = 4096
"""Frames with more objects and arrays than this are decoded in a worker thread, paced,
whatever their size."""

INLINE_MEMBERS: Final = 8192
"""Frames with more object members than this are decoded in a worker thread, paced.

With both bounds a frame decoded inline costs at most ~1-3 ms: eight connections sending
1 MiB frames of 32,768 containers each, decoded on the event loop, pushed another client's
p99 round trip to 207 ms. Realistic messages of up to ~250 KB (a tools/list answer: ~470
containers and ~1,000 members) stay inline, where a decode costs less than a hand-off."""

INLINE_LIMIT: Final = min(INLINE_CONTAINERS, INLINE_MEMBERS)
"""The largest frame that is never decoded in a worker thread: too short to be heavy, so
not even counted (tests that must not start a thread, under an autojump clock, keep their
frames this small)."""

# The budget was checked before the decode (`decode_message`): the decode need not count again.
_CHECKED: Final = sys.maxsize

LARGE_DECODES: Final = 1
"""Large frames decoded at once, process-wide. One: the GIL runs one parse at a time anyway,
and each large decode holds its transient objects until it is done."""

LARGE_DECODE_SHARE: Final = 0.5
"""The largest share of the time large decodes may take, process-wide: after each, the
next waits as long again, so the event loop has the GIL to itself at least that long."""


class Pacer:
    """Turns taken one at a time, in FIFO order, each followed by a pause in proportion.

    ``async with pacer.turn():`` waits for the previous turn to end and for its pause to
    pass, then runs the body; the pause after it is the body's duration times
    ``(1 - share) / share``. A cancelled body still ends its turn (and sets its pause).
    """

    def __init__(self, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], not {share!r}")
        self._lock = trio.StrictFIFOLock()
        self._pause = (1 - share) / share
        self._resume_at = -math.inf

    @asynccontextmanager
    async def turn(self) -> AsyncGenerator[None, None]:
        """One turn: wait for the previous turn and its pause, run the body, set the pause."""
        async with self._lock:
            await trio.sleep_until(self._resume_at)
            start = trio.current_time()
            try:
                yield
            finally:
                end = trio.current_time()
                self._resume_at = end + (end - start) * self._pause


class _LargeDecodes:
    """The per-run state of large decodes: the pacer, and the limiter their threads hold."""

    def __init__(self) -> None:
        self.pacer = Pacer(LARGE_DECODE_SHARE)
        # Held by the thread itself: an abandoned decode (its connection cancelled) keeps
        # its slot until the thread is done, so no two large decodes ever overlap.
        self.limiter = trio.CapacityLimiter(LARGE_DECODES)


_large: trio.lowlevel.RunVar[_LargeDecodes] = trio.lowlevel.RunVar("trio_mcp_ws.large_decodes")


def _large_decodes() -> _LargeDecodes:
    try:
        return _large.get()
    except LookupError:
        state = _LargeDecodes()
        _large.set(state)
        return state


def large_decode_limiter() -> trio.CapacityLimiter:
    """The limiter for large decodes, shared by every connection in this ``trio.run``."""
    return _large_decodes().limiter


def decode_value(
    frame: str | bytes, max_containers: int = MAX_CONTAINERS, max_members: int = MAX_MEMBERS
) -> JSONRPCMessage | MessageDecodeError:
    """`decode` a frame, returning the error instead of raising it (the sync fast path).

    The returned `MessageDecodeError` has no traceback, nor have its cause and context, so
    nothing it refers to holds the frame: dropping the error frees everything the decode
    built, by reference counting alone. Synchronous: `decode_message` decides whether a
    frame is decoded so, on the event loop, or in the paced worker thread.
    """
    try:
        return decode(frame, max_containers=max_containers, max_members=max_members)
    except MessageDecodeError as exc:
        return _detached(exc)


async def decode_message(
    frame: str | bytes, *, max_containers: int = MAX_CONTAINERS, max_members: int = MAX_MEMBERS
) -> JSONRPCMessage | MessageDecodeError:
    """`decode_value`: refused at once over budget, inline when light, else in a thread.

    Heavy frames go to the worker thread one at a time, paced. What the pump calls: nothing
    is raised, so no traceback can tie a rejected frame to a stack frame, and the error is
    freed with the last reference to it.
    """
    if len(frame) <= INLINE_LIMIT:
        return decode_value(frame, max_containers, max_members)
    if len(frame) <= THREAD_LIMIT:
        # Counting costs ~10 us per 100 KB of realistic JSON (up to ~4 ms for 1 MiB of
        # brackets): done here, it tells whether the frame is heavy.
        counts = structure(frame)
        refused = over_budget(frame, counts, max_containers=max_containers, max_members=max_members)
        if refused is not None:
            return refused  # made, never raised: no traceback
        containers, members = counts
        if containers <= INLINE_CONTAINERS and members <= INLINE_MEMBERS:
            return decode_value(frame, _CHECKED, _CHECKED)
        max_containers = max_members = _CHECKED
    # A large frame is counted in the thread too: a dense one's counts hold the GIL for ms.
    large = _large_decodes()
    async with large.pacer.turn():
        # abandon_on_cancel: a cancelled connection does not wait for its decode; the thread
        # finishes in the background and only then frees its limiter slot.
        return await trio.to_thread.run_sync(
            decode_value, frame, max_containers, max_members, limiter=large.limiter, abandon_on_cancel=True
        )


async def decode_frame(frame: str | bytes) -> JSONRPCMessage:
    """`decode` a frame as `decode_message` does, raising the error.

    Raises:
        MessageDecodeError: As `decode`. Its traceback reaches only this call and the
            caller's frame, never the decoding frames.
    """
    result = await decode_message(frame)
    del frame  # the traceback of the error raised below keeps this frame's locals
    if isinstance(result, MessageDecodeError):
        try:
            raise result
        finally:
            del result  # no cycle: error -> traceback -> this frame -> error
    return result


def _detached(error: MessageDecodeError) -> MessageDecodeError:
    """``error`` with no traceback anywhere in its chain."""
    seen: set[int] = set()
    item: BaseException | None = error
    while item is not None and id(item) not in seen:
        seen.add(id(item))
        item.__traceback__ = None
        item = item.__cause__ or item.__context__
    return error
