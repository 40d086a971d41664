"""Limits: max_connections (503), max_message_size (1009), and hostile frames that cost a lot to decode."""

from __future__ import annotations

import gc
import statistics
import threading
import time
from typing import TYPE_CHECKING

import mcp_types as t
import pytest
import trio
import trio.testing
from mcp.shared.message import SessionMessage
from trio_websocket import open_websocket_url

import trio_mcp_ws._offload as offload
from tests.test_server_helpers import exchange, round_trip, rpc_request, running, upgrade_request
from trio_mcp_ws import (
    AuthenticationError,
    ConnectionClosedError,
    HandshakeRejectedError,
    MessageDecodeError,
    decode,
    websocket_client,
)

if TYPE_CHECKING:
    from mcp_types import JSONRPCMessage

    from trio_mcp_ws import ReadChannel, WriteChannel

MiB = 1024 * 1024


def worst_case_frame(size: int = 4 * MiB - 64) -> str:
    """A valid request whose params hold ~``size / 3`` empty lists: the costliest JSON we know.

    Every ``[]`` becomes a Python list, and a million of them trigger cyclic-GC pass after
    pass. (A batch, ``[{},{},...]``, is cheaper for us: the codec refuses it before parsing.)
    """
    prefix, suffix = '{"jsonrpc":"2.0","id":1,"method":"hostile","params":{"a":[', "]}}"
    count = (size - len(prefix) - len(suffix)) // 3
    return prefix + ",".join(["[]"] * count) + suffix


async def answer_small(read: ReadChannel, write: WriteChannel) -> None:
    """Answer every request with an empty result (never echo the hostile frame back)."""
    async with write:
        async for item in read:
            if isinstance(item, SessionMessage) and isinstance(item.message, t.JSONRPCRequest):
                reply = t.JSONRPCResponse(jsonrpc="2.0", id=item.message.id, result={})
                await write.send(SessionMessage(reply))


# -- max_connections ----------------------------------------------------------------------------


async def test_max_connections_answers_503_and_the_listener_stays_healthy() -> None:
    with trio.fail_after(20):
        async with running(max_connections=2) as info:
            async with (
                websocket_client(info.url) as (read1, write1),
                websocket_client(info.url) as (read2, write2),
            ):
                assert info.connections == 2
                for _ in range(5):
                    with pytest.raises(HandshakeRejectedError) as rejected:
                        await round_trip(info.url)
                    assert rejected.value.status_code == 503
                response = await exchange(info.port, upgrade_request(info.port))
                assert response is not None
                assert response.status == 503
                assert response.body == b"Service Unavailable: too many connections\n"
                # The two admitted connections still work.
                for read, write in ((read1, write1), (read2, write2)):
                    await write.send(rpc_request(7))
                    assert isinstance(await read.receive(), SessionMessage)
            await trio.testing.wait_all_tasks_blocked()
            assert info.connections == 0
            async with websocket_client(info.url), websocket_client(info.url):
                assert info.connections == 2


async def test_refused_handshakes_free_their_slot() -> None:
    """Rejected (policy, auth) and failed handshakes do not leak connection slots."""

    async def nobody(request: object) -> None:
        raise AuthenticationError

    with trio.fail_after(20):
        async with running(max_connections=1, authenticate=nobody) as info:
            for _ in range(5):
                response = await exchange(info.port, upgrade_request(info.port))
                assert response is not None
                assert response.status == 401
                response = await exchange(info.port, upgrade_request(info.port, host="evil.example"))
                assert response is not None
                assert response.status == 421
            assert info.connections == 0


# -- max_message_size ---------------------------------------------------------------------------


async def test_oversized_message_closes_with_1009_and_the_server_is_fine() -> None:
    with trio.fail_after(20):
        async with running(max_message_size=1024) as info:
            async with websocket_client(info.url) as (read, write):
                await write.send(rpc_request(1, params={"pad": "x" * 900}))  # under the limit
                assert isinstance(await read.receive(), SessionMessage)
                await write.send(rpc_request(2, params={"pad": "x" * 2000}))
                closed = await read.receive()
                assert isinstance(closed, ConnectionClosedError)
                assert closed.code == 1009
            await round_trip(info.url)


async def test_message_size_is_counted_in_bytes() -> None:
    with trio.fail_after(20):
        async with running(max_message_size=1024) as info, websocket_client(info.url) as (read, write):
            await write.send(rpc_request(1, params={"pad": "é" * 600}))  # 600 characters, 1200 bytes
            closed = await read.receive()
            assert isinstance(closed, ConnectionClosedError)
            assert closed.code == 1009


# -- hostile frames -----------------------------------------------------------------------------


async def test_large_frames_are_decoded_in_a_worker_with_the_collector_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mechanism: small frames inline; medium ones inline with the collector paused;
    large ones in a thread, collector paused, one at a time."""
    calls: list[tuple[int, bool, bool]] = []
    running_now = 0
    overlap = 0
    lock = threading.Lock()
    original = decode

    def spy(frame: str | bytes) -> JSONRPCMessage:
        nonlocal running_now, overlap
        with lock:
            running_now += 1
            overlap = max(overlap, running_now)
        try:
            calls.append((len(frame), threading.current_thread() is threading.main_thread(), gc.isenabled()))
            return original(frame)
        finally:
            with lock:
                running_now -= 1

    monkeypatch.setattr(offload, "decode", spy)  # what decode_frame calls
    large = (
        '{"jsonrpc":"2.0","id":1,"method":"x","params":{"pad":"' + "x" * (offload.THREAD_LIMIT + 1) + '"}}'
    )
    medium = (
        '{"jsonrpc":"2.0","id":2,"method":"x","params":{"pad":"' + "x" * (offload.INLINE_LIMIT + 1) + '"}}'
    )
    assert gc.isenabled()
    with trio.fail_after(20):
        async with running(answer_small) as info:
            async with trio.open_nursery() as nursery:
                for _ in range(4):

                    async def send_large() -> None:
                        async with open_websocket_url(info.url) as ws:
                            await ws.send_message(large)
                            await ws.get_message()

                    nursery.start_soon(send_large)
            async with open_websocket_url(info.url) as ws:
                await ws.send_message(medium)
                await ws.get_message()
            async with websocket_client(info.url) as (read, write):
                await write.send(rpc_request(5))
                assert isinstance(await read.receive(), SessionMessage)
    assert gc.isenabled()
    large_calls = [call for call in calls if call[0] > offload.THREAD_LIMIT]
    medium_calls = [call for call in calls if offload.INLINE_LIMIT < call[0] <= offload.THREAD_LIMIT]
    small_calls = [call for call in calls if call[0] <= offload.INLINE_LIMIT]
    assert len(large_calls) == 4
    assert all(not on_main and not gc_on for _, on_main, gc_on in large_calls)
    assert len(medium_calls) == 1
    assert all(on_main and not gc_on for _, on_main, gc_on in medium_calls)
    assert small_calls
    assert all(on_main and gc_on for _, on_main, gc_on in small_calls)
    assert overlap == 1  # the limiter: one large decode at a time


def test_collector_pause_is_reentrant_and_respects_a_disabled_collector() -> None:
    pause = offload._collector_paused  # pyright: ignore[reportPrivateUsage]
    assert gc.isenabled()
    with pause():
        assert not gc.isenabled()
        with pause():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with pause():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_a_worst_case_frame_does_not_stall_other_connections() -> None:
    """While one client sends worst-case 4 MiB frames, another's round trips stay fast.

    Measured on 2 cores (CPython 3.11): the other connection's worst round trip is 60-90 ms
    on an idle machine, ~300 ms with three such tests sharing the 2 cores; decoding inline
    with the collector running, it was 650-1200 ms idle. The stall that remains is the part
    of one parse that holds the GIL, so the bound is relative to that, measured here and now
    (a loaded machine slows both), with a floor: max(0.5 s, 4 x one GIL-held parse). The
    mechanism itself is checked deterministically above.
    """
    frame = worst_case_frame()
    assert len(frame) < 4 * MiB
    parse_times: list[float] = []
    for _ in range(3):
        with offload._collector_paused():  # pyright: ignore[reportPrivateUsage]
            start = time.perf_counter()
            decode(frame)
            parse_times.append(time.perf_counter() - start)
    bound = max(0.5, 4 * statistics.median(parse_times))
    with trio.fail_after(120):
        async with running(answer_small) as info, websocket_client(info.url) as (read, write):

            async def round_trip_time(request_id: int) -> float:
                start = time.perf_counter()
                await write.send(rpc_request(request_id))
                item = await read.receive()
                assert isinstance(item, SessionMessage)
                return time.perf_counter() - start

            baseline = [await round_trip_time(i) for i in range(20)]
            latencies: list[float] = []
            async with open_websocket_url(info.url, max_message_size=8 * MiB) as hostile:
                done = trio.Event()

                async def attack() -> None:
                    for _ in range(3):
                        await hostile.send_message(frame)
                        await hostile.get_message()
                    done.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(attack)
                    request_id = 100
                    while not done.is_set():
                        latencies.append(await round_trip_time(request_id))
                        request_id += 1
    worst = max(latencies)
    print(  # shown with -s; the numbers the docs quote
        f"baseline median {statistics.median(baseline) * 1000:.2f} ms; "
        f"under attack: {len(latencies)} round trips, "
        f"median {statistics.median(latencies) * 1000:.1f} ms, worst {worst * 1000:.0f} ms; "
        f"one parse {statistics.median(parse_times) * 1000:.0f} ms, bound {bound * 1000:.0f} ms"
    )
    assert worst < bound


async def test_limiter_is_shared_within_a_run() -> None:
    assert offload.large_decode_limiter() is offload.large_decode_limiter()
    assert offload.large_decode_limiter().total_tokens == offload.LARGE_DECODES


async def test_bad_large_frames_arrive_as_values_and_the_connection_serves_on() -> None:
    received: list[SessionMessage | Exception] = []

    async def record(read: ReadChannel, write: WriteChannel) -> None:
        async with write:
            async for item in read:
                received.append(item)
                if isinstance(item, SessionMessage):
                    await write.send(item)

    with trio.fail_after(20):
        async with (
            running(record, max_message_size=8 * MiB) as info,
            open_websocket_url(info.url, max_message_size=8 * MiB) as raw,
        ):
            await raw.send_message('{"jsonrpc":"2.0","id":1,"method":"x","params":' + "0" * MiB)
            await raw.send_message(
                '{"jsonrpc":"2.0","id":2,"method":"x","params":{"a":[' + "0," * MiB + "0]}}"
            )
            assert '"id":2' in str(await raw.get_message())
    assert isinstance(received[0], MessageDecodeError)
    assert isinstance(received[1], SessionMessage)
