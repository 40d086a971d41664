"""A rejected frame is freed by reference counting alone, with the cyclic collector off.

Issue 10, item 2: a reference cycle through the delivery path, `decode` and the
thread-result plumbing kept each rejected frame's text alive until a collector pass, so with
the collector paused 20 rejected 4 MiB batches left 75 MiB behind. Every test here runs with
``gc.disable()``: whatever a cycle holds stays held, and the test sees it.

Two probes, since a ``str`` cannot be weakly referenced: ``sys.getrefcount`` of the frame
(back to where it was once the error is dropped), and tracemalloc for what the decode built
from it (the text of a binary frame, the parsed message a pydantic error keeps as input).
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from typing import TYPE_CHECKING

import pytest
import trio
from mcp.shared.message import SessionMessage
from trio_websocket import open_websocket_url

from tests.test_server_helpers import running
from trio_mcp_ws import MessageDecodeError, decode
from trio_mcp_ws._offload import THREAD_LIMIT, decode_frame, decode_value
from trio_mcp_ws._options import MAX_CONTAINERS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from trio_mcp_ws import ReadChannel, WriteChannel

MiB = 1024 * 1024
# What may remain traced after a rejected frame is dropped: small objects the runtime
# caches (interned names, free lists), never the frame or anything of its size.
SLACK = 256 * 1024


def _frames(size: int) -> dict[str, Callable[[], str | bytes]]:
    """Builders of fresh rejected frames of about ``size``, one per way to be rejected."""
    ints = ",".join(["1"] * (size // 2))
    pad = "x" * size
    return {
        "invalid JSON": lambda: '{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":[' + ints,
        "not a valid message (params is a list)": lambda: (
            '{"jsonrpc":"2.0","id":1,"method":"m","params":[' + ints + "]}"
        ),
        "over the structural budget": lambda: (
            '{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":['
            + ",".join(["[]"] * max(size // 3, MAX_CONTAINERS + 1))
            + "]}}"
        ),
        "duplicate id after the payload": lambda: (
            '{"jsonrpc":"2.0","id":1,"method":"m","params":{"t":"' + pad + '"},"id":2}'
        ),
        "batch": lambda: "[" + ",".join(['{"jsonrpc":"2.0","method":"m"}'] * (size // 31)) + "]",
        "invalid UTF-8 (binary)": lambda: (
            ('{"jsonrpc":"2.0","method":"m","params":{"t":"' + pad).encode() + b'\xff"}}'
        ),
    }


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def _grown_since(baseline: int) -> int:
    return tracemalloc.get_traced_memory()[0] - baseline


SIZES = {"inline": 200_000, "worker thread": THREAD_LIMIT + 200_000}
CASES = [(where, name) for where in SIZES for name in _frames(1)]


@pytest.mark.usefixtures("collector_off", "traced")
@pytest.mark.parametrize(("where", "name"), CASES)
def test_decode_error_holds_nothing_once_dropped(where: str, name: str) -> None:
    frame = _frames(SIZES[where])[name]()
    refs = sys.getrefcount(frame)
    baseline = tracemalloc.get_traced_memory()[0]
    with pytest.raises(MessageDecodeError) as info:
        decode(frame)
    assert sys.getrefcount(frame) > refs  # the decoding frames' locals, in the traceback
    del info
    assert sys.getrefcount(frame) == refs
    assert _grown_since(baseline) < SLACK


@pytest.mark.usefixtures("collector_off", "traced")
@pytest.mark.parametrize(("where", "name"), CASES)
def test_decode_value_returns_a_detached_error(where: str, name: str) -> None:
    frame = _frames(SIZES[where])[name]()
    refs = sys.getrefcount(frame)
    baseline = tracemalloc.get_traced_memory()[0]
    error = decode_value(frame)
    assert isinstance(error, MessageDecodeError)
    assert error.__traceback__ is None
    assert error.__cause__ is None or error.__cause__.__traceback__ is None
    assert sys.getrefcount(frame) == refs  # nothing refers to the frame while the error lives
    del error
    assert _grown_since(baseline) < SLACK


@pytest.mark.usefixtures("collector_off", "traced")
@pytest.mark.parametrize(("where", "name"), CASES)
async def test_decode_frame_error_holds_nothing_once_dropped(where: str, name: str) -> None:
    """Inline and through the worker thread (trio's thread plumbing holds no traceback)."""
    frame = _frames(SIZES[where])[name]()
    refs = sys.getrefcount(frame)
    baseline = tracemalloc.get_traced_memory()[0]
    with trio.fail_after(30):
        try:
            await decode_frame(frame)
        except MessageDecodeError as exc:
            error = exc.with_traceback(None)  # the traceback refers to this frame
        else:
            pytest.fail("decoded a frame that must be rejected")
    assert sys.getrefcount(frame) == refs
    del error
    assert _grown_since(baseline) < SLACK


@pytest.mark.usefixtures("collector_off", "traced")
async def test_rejected_frames_delivered_through_serve_are_freed_once_dropped() -> None:
    """End to end: frames rejected on a live connection, delivered to the handler and dropped
    there, leave nothing behind (the text comes from our reader, so tracemalloc is the probe)."""
    errors = 0
    good = trio.Event()

    async def drop(read: ReadChannel, write: WriteChannel) -> None:
        nonlocal errors
        async with write:
            async for item in read:
                if isinstance(item, MessageDecodeError):
                    errors += 1
                elif isinstance(item, SessionMessage):
                    good.set()
                del item  # the handler keeps nothing

    frames = [builder() for builder in _frames(1_500_000).values()]
    sent = [frame for frame in frames if isinstance(frame, str)] * 2
    with trio.fail_after(60):
        async with (
            running(drop, max_message_size=8 * MiB) as info,
            open_websocket_url(info.url, max_message_size=8 * MiB) as raw,
        ):
            await raw.send_message('{"jsonrpc":"2.0","method":"warm-up"}')
            await good.wait()
            good = trio.Event()
            baseline = tracemalloc.get_traced_memory()[0]
            del frames
            while sent:
                await raw.send_message(sent.pop())
            await raw.send_message('{"jsonrpc":"2.0","method":"after"}')
            await good.wait()
            grown = _grown_since(baseline)
    assert errors == 10
    # Ten rejected frames of 1.5 MB each went through; at most one frame's worth may remain
    # (the socket buffers and the last message).
    assert grown < 2 * MiB, f"{grown / MiB:.1f} MiB still held after 10 rejected frames"
