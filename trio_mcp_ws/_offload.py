"""Decoding frames so that one hostile frame cannot stall every connection for long.

Decoding is synchronous, and its worst case is costly: a 4 MiB frame made of ``[],[],...``
inside ``params`` builds ~1.4 million Python objects, taking ~300-900 ms and ~100 MiB
(measured with pydantic-core on CPython 3.11; more in a process with a bigger heap).

Most of that time is not parsing but the cyclic garbage collector: allocating a million
containers triggers collection after collection, each one scanning the whole (growing)
heap, which is why the cost grows faster than the frame. With the collector paused for
the decode, the same frame takes ~50-70 ms. Nothing cyclic is created by parsing JSON, so
pausing it for the length of one decode loses nothing; the objects are collected as usual
afterwards.

A worker thread alone does not help much on CPython: pydantic-core holds the GIL for the
whole parse, so the event loop waits for it either way. What the thread and the limiter
give is fairness and a bound: large frames (over `INLINE_LIMIT`) are decoded one at a
time, process-wide (per ``trio.run``), behind a FIFO `trio.CapacityLimiter`, so their
transient memory is bounded (one decode at a time) and every other task runs between
two of them. Small frames, nearly all of them, are decoded inline with no thread hop.

Measured end to end (``tests/test_server_limits.py``, 2 cores): while a client sends
worst-case 4 MiB frames, another connection's round trip on the same server takes at most
60-90 ms (the GIL-held part of one parse); decoded inline with the collector running, it
was 650-1200 ms.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import trio

from ._codec import decode

if TYPE_CHECKING:
    from collections.abc import Generator

    from mcp_types import JSONRPCMessage

__all__ = ["INLINE_LIMIT", "LARGE_DECODES", "THREAD_LIMIT", "decode_frame", "large_decode_limiter"]

INLINE_LIMIT: Final = 64 * 1024
"""Frames up to this size (characters or bytes) are decoded inline: at worst ~1 ms."""

THREAD_LIMIT: Final = 1024 * 1024
"""Frames up to this size are decoded inline too, with the collector paused: at worst
~15 ms. A worker thread costs more than that in hand-off for the large but ordinary
messages of this size (a 100 KB tool result decodes in ~20 us), and buys nothing while
pydantic-core holds the GIL. Bigger frames go to the thread, behind the limiter."""

LARGE_DECODES: Final = 1
"""Large frames decoded at once. One: the GIL runs one parse at a time anyway, and each
worst-case 4 MiB decode needs ~100 MiB while it runs."""

_limiter: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("trio_mcp_ws.large_decodes")


def large_decode_limiter() -> trio.CapacityLimiter:
    """The limiter for large decodes, shared by every connection in this ``trio.run``."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = trio.CapacityLimiter(LARGE_DECODES)
        _limiter.set(limiter)
        return limiter


async def decode_frame(frame: str | bytes) -> JSONRPCMessage:
    """`decode` a frame: inline when small, else in a worker thread behind the limiter.

    Raises:
        MessageDecodeError: As `decode`.
    """
    size = len(frame)
    if size <= INLINE_LIMIT:
        return decode(frame)
    if size <= THREAD_LIMIT:
        return _decode_collector_paused(frame)
    # abandon_on_cancel: a cancelled connection does not wait for its decode; the thread
    # finishes in the background and only then frees its limiter slot.
    return await trio.to_thread.run_sync(
        _decode_collector_paused, frame, limiter=large_decode_limiter(), abandon_on_cancel=True
    )


def _decode_collector_paused(frame: str | bytes) -> JSONRPCMessage:
    with _collector_paused():
        return decode(frame)


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def _collector_paused() -> Generator[None, None, None]:
    """Pause the cyclic garbage collector (process-wide) for the block; re-entrant, thread-safe.

    It is re-enabled only if it was enabled when the first pause began, so an application
    that disables it keeps it disabled.
    """
    global _gc_pausers, _gc_was_enabled  # noqa: PLW0603 - one process-wide switch
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()
