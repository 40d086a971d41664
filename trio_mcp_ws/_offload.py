"""Decoding frames so that one hostile frame can neither stall every connection nor pin memory.

Decoding is synchronous and its cost grows with the objects a frame builds, not its size: a
4 MiB frame of ``[],[],...`` builds 1.4 million lists and took 1.6 s with the cyclic garbage
collector running (most of it collection passes over the new lists) and 170 MiB. Three
things bound it, none of which touches the collector (pausing it process-wide, as this
module once did, lets every other thread's garbage pile up and makes the next pass longer):

- the codec's structural budget (`trio_mcp_ws._codec.check_budget`) refuses a frame with
  more containers or members than any real message holds, with C-speed counts, before the
  parser allocates anything: the costliest frames are refused in a few milliseconds;
- frames over `THREAD_LIMIT` are decoded in a worker thread. pydantic-core holds the GIL
  for each parse, so this does not make a parse concurrent; it lets the event loop run
  between the Python-level steps of a decode (the budget counts, the checks, validation),
  and keeps the loop free while the frame's text is decoded from UTF-8;
- those large decodes run one at a time, process-wide (per ``trio.run``), behind a FIFO
  `trio.CapacityLimiter` shared by every connection: the decode memory budget. At most one
  large frame is being turned into objects at a time (at most ~40 times its size, and the
  structural budget caps that further), however many connections send them.

A rejected frame is freed by reference counting alone. `decode_value` returns the
`MessageDecodeError` as a value with no traceback (a traceback would keep the decoding
frames, and the frame text in their locals, alive for as long as the error lives), and
the worker thread hands back values, never a raised exception, so trio's thread plumbing
holds no traceback either. A caller that catches the error raised by `decode_frame` and
keeps it in a local should drop its traceback (``exc.with_traceback(None)``) for the same
reason: the traceback refers to the caller's own frame, which refers to the error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import trio

from ._codec import decode
from ._errors import MessageDecodeError

if TYPE_CHECKING:
    from mcp_types import JSONRPCMessage

__all__ = [
    "INLINE_LIMIT",
    "LARGE_DECODES",
    "THREAD_LIMIT",
    "decode_frame",
    "decode_message",
    "decode_value",
    "large_decode_limiter",
]

THREAD_LIMIT: Final = 1024 * 1024
"""Frames up to this size (characters or bytes) are decoded inline, on the event loop.

Within the structural budget such a frame decodes in at most ~25 ms, and an ordinary one
(a 100 KB tool result) in ~20 us, less than a thread hand-off costs."""

INLINE_LIMIT: Final = THREAD_LIMIT
"""The largest frame that is never decoded in a worker thread (tests that must not start a
thread, under an autojump clock, keep their frames this small)."""

LARGE_DECODES: Final = 1
"""Large frames decoded at once, process-wide. One: the GIL runs one parse at a time anyway,
and each large decode holds its transient objects until it is done."""

_limiter: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("trio_mcp_ws.large_decodes")


def large_decode_limiter() -> trio.CapacityLimiter:
    """The limiter for large decodes, shared by every connection in this ``trio.run``."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = trio.CapacityLimiter(LARGE_DECODES)
        _limiter.set(limiter)
        return limiter


def decode_value(frame: str | bytes) -> JSONRPCMessage | MessageDecodeError:
    """`decode` a frame, returning the error instead of raising it (the sync fast path).

    The returned `MessageDecodeError` has no traceback, nor have its cause and context, so
    nothing it refers to holds the frame: dropping the error frees everything the decode
    built, by reference counting alone. For a caller on the event loop with a frame of at
    most `THREAD_LIMIT`; `decode_frame` decides where larger ones run.
    """
    try:
        return decode(frame)
    except MessageDecodeError as exc:
        return _detached(exc)


async def decode_message(frame: str | bytes) -> JSONRPCMessage | MessageDecodeError:
    """`decode_value`, inline when small, else in a worker thread behind the limiter.

    What the pump calls: nothing is raised, so no traceback can tie a rejected frame to a
    stack frame, and the error is freed with the last reference to it.
    """
    if len(frame) <= THREAD_LIMIT:
        return decode_value(frame)
    # abandon_on_cancel: a cancelled connection does not wait for its decode; the thread
    # finishes in the background and only then frees its limiter slot.
    return await trio.to_thread.run_sync(
        decode_value, frame, limiter=large_decode_limiter(), abandon_on_cancel=True
    )


async def decode_frame(frame: str | bytes) -> JSONRPCMessage:
    """`decode` a frame: inline when small, else in a worker thread behind the limiter.

    Raises:
        MessageDecodeError: As `decode`. Its traceback reaches only this call and the
            caller's frame, never the decoding frames.
    """
    if len(frame) <= THREAD_LIMIT:
        result = decode_value(frame)
    else:
        # abandon_on_cancel: a cancelled connection does not wait for its decode; the thread
        # finishes in the background and only then frees its limiter slot.
        result = await trio.to_thread.run_sync(
            decode_value, frame, limiter=large_decode_limiter(), abandon_on_cancel=True
        )
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
