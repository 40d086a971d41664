"""websocket_client over real loopback sockets: messages, closes, limits and errors."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import mcp_types as t
import pytest
import trio
import trio.testing
from mcp.shared.message import SessionMessage
from wsproto.events import CloseConnection

from tests._peers import OP_BINARY, OP_TEXT, RawConnection, frame, serve_pump, serve_raw, url
from trio_mcp_ws import (
    ConnectionClosedError,
    MessageDecodeError,
    ReadChannel,
    WriteChannel,
    websocket_client,
)

if TYPE_CHECKING:
    from trio_mcp_ws._wsconn import WsConnection

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


def note(method: str, **params: object) -> SessionMessage:
    if params:
        return SessionMessage(t.JSONRPCNotification(jsonrpc="2.0", method=method, params=dict(params)))
    return SessionMessage(t.JSONRPCNotification(jsonrpc="2.0", method=method))


def request(id_: int, method: str = "ping") -> SessionMessage:
    return SessionMessage(t.JSONRPCRequest(jsonrpc="2.0", id=id_, method=method))


async def echo(read: ReadChannel, write: WriteChannel, conn: WsConnection) -> None:
    async with write:
        async for item in read:
            if isinstance(item, SessionMessage):
                await write.send(item)


async def test_round_trip_both_ways() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_pump(nursery, echo)
            async with websocket_client(url(port)) as (read, write):
                for i in range(20):
                    await write.send(request(i))
                for i in range(20):
                    item = await read.receive()
                    assert isinstance(item, SessionMessage)
                    assert item.message == request(i).message
            nursery.cancel_scope.cancel()


async def test_offers_mcp_subprotocol_and_accepts_none() -> None:
    seen: list[list[str]] = []

    async def record(conn: RawConnection) -> None:
        seen.append(conn.request.subprotocols)
        await conn.wait_close()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_raw(nursery, record, subprotocol=None)
            async with websocket_client(url(port)) as (_read, _write):
                pass
            nursery.cancel_scope.cancel()
    assert seen == [["mcp"]]


async def test_clean_exit_flushes_every_accepted_message_in_order() -> None:
    """Thousands of messages sent, then exit at once: the server counts all, in order."""
    count = 3000
    received: list[int] = []
    server_done = trio.Event()

    async def count_all(read: ReadChannel, write: WriteChannel, conn: WsConnection) -> None:
        async for item in read:
            assert isinstance(item, SessionMessage), item
            assert isinstance(item.message, t.JSONRPCNotification)
            assert item.message.params is not None
            received.append(item.message.params["n"])
        server_done.set()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await serve_pump(nursery, count_all)
            async with websocket_client(url(port)) as (_read, write):
                for n in range(count):
                    await write.send(note("n", n=n))
            await server_done.wait()
            nursery.cancel_scope.cancel()
    assert received == list(range(count))


async def test_bad_frames_become_values_and_the_connection_keeps_serving() -> None:
    good = '{"jsonrpc":"2.0","method":"ok"}'
    bad_frames = [
        frame(OP_TEXT, b"not json"),
        frame(OP_TEXT, b'{"jsonrpc":"2.0","result":{}}'),  # JSON, but not a message
        frame(OP_TEXT, b'[{"jsonrpc":"2.0","method":"x"}]'),  # a batch
        frame(OP_BINARY, b"\xff\xfe{}"),  # invalid UTF-8 in a binary frame
    ]

    async def send_bad(conn: RawConnection) -> None:
        for bad in bad_frames:
            await conn.send(bad)
            await conn.send(frame(OP_TEXT, good.encode()))
        await conn.send(frame(OP_BINARY, good.encode()))  # binary UTF-8 JSON is accepted
        await conn.wait_close()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_raw(nursery, send_bad)
            async with websocket_client(url(port)) as (read, _write):
                items = [await read.receive() for _ in range(2 * len(bad_frames) + 1)]
            nursery.cancel_scope.cancel()
    for index, item in enumerate(items):
        if index % 2 == 0 and index < 2 * len(bad_frames):
            assert isinstance(item, MessageDecodeError), item
        else:
            assert isinstance(item, SessionMessage), item
            assert item.message == t.JSONRPCNotification(jsonrpc="2.0", method="ok")
    codes = [item.code for item in items if isinstance(item, MessageDecodeError)]
    assert codes == [-32700, -32600, -32600, -32700]


async def test_sends_text_frames() -> None:
    kinds: list[type] = []

    async def record(conn: RawConnection) -> None:
        message = await conn.next_message()
        kinds.append(type(message))
        await conn.wait_close()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_raw(nursery, record)
            async with websocket_client(url(port)) as (_read, write):
                await write.send(note("x"))
            nursery.cancel_scope.cancel()
    assert kinds == [str]


async def test_peer_normal_close_ends_read_channel_and_later_writes_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def close_at_once(conn: RawConnection) -> None:
        await conn.send(conn.ws.send(CloseConnection(code=1000, reason="bye")))
        await conn.wait_close()

    caplog.set_level(logging.DEBUG, logger="trio_mcp_ws")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_raw(nursery, close_at_once)
            async with websocket_client(url(port)) as (read, write):
                with pytest.raises(trio.EndOfChannel):
                    await read.receive()
                for _ in range(20):  # more than the channel buffer: must never block or raise
                    await write.send(note("late"))
            nursery.cancel_scope.cancel()
    assert "dropped outgoing messages" in caplog.text


@pytest.mark.parametrize("code", [1011, 4000])
async def test_peer_abnormal_close_puts_one_error_then_ends(code: int) -> None:
    async def close_with(conn: RawConnection) -> None:
        await conn.send_text('{"jsonrpc":"2.0","method":"before"}')
        await conn.send(conn.ws.send(CloseConnection(code=code, reason="boom")))
        await conn.wait_close()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_raw(nursery, close_with)
            async with websocket_client(url(port)) as (read, _write):
                items = [item async for item in read]
            nursery.cancel_scope.cancel()
    assert len(items) == 2
    assert isinstance(items[0], SessionMessage)
    assert isinstance(items[1], ConnectionClosedError)
    assert (items[1].code, items[1].reason) == (code, "boom")


async def test_tcp_drop_is_reported_as_1006() -> None:
    async def drop(conn: RawConnection) -> None:
        await conn.stream.aclose()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_raw(nursery, drop)
            async with websocket_client(url(port)) as (read, _write):
                items = [item async for item in read]
            nursery.cancel_scope.cancel()
    assert len(items) == 1
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == 1006


async def test_late_message_after_consumer_stopped_reading_is_no_error() -> None:
    async def flood(conn: RawConnection) -> None:
        for _ in range(50):
            await conn.send_text('{"jsonrpc":"2.0","method":"x"}')
        await conn.wait_close()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_raw(nursery, flood)
            async with websocket_client(url(port)) as (read, _write):
                await read.receive()
                await read.aclose()
                await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("raise_in_body", "expected"), [(False, 1000), (True, 1011)])
async def test_local_exit_close_code(raise_in_body: bool, expected: int) -> None:
    codes: list[int | None] = []

    async def record(conn: RawConnection) -> None:
        event = await conn.wait_close()
        codes.append(None if event is None else event.code)
        if event is not None:
            await conn.send(conn.ws.send(event.response()))

    class BodyError(Exception):
        pass

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_raw(nursery, record)
            try:
                async with websocket_client(url(port)) as (_read, _write):
                    if raise_in_body:
                        raise BodyError
            except BodyError:
                pass
            nursery.cancel_scope.cancel()
    assert codes == [expected]


async def test_body_exception_propagates_unwrapped() -> None:
    async def idle(conn: RawConnection) -> None:
        await conn.wait_close()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_raw(nursery, idle)
            with pytest.raises(KeyError) as info:
                async with websocket_client(url(port)) as (_read, _write):
                    raise KeyError("mine")
            nursery.cancel_scope.cancel()
    assert type(info.value) is KeyError
    assert not isinstance(info.value, BaseExceptionGroup)


async def test_outside_cancellation_closes_within_close_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A peer that never answers the close: we still finish by close_timeout, and Cancelled propagates."""
    eof_at: list[float] = []

    async def never_answer(conn: RawConnection) -> None:
        await conn.wait_eof()
        eof_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        port = await serve_raw(nursery, never_answer)
        start = trio.current_time()
        with trio.move_on_after(1) as scope:
            async with websocket_client(url(port), close_timeout=3, ping_interval=None) as (read, _write):
                await read.receive()
        assert scope.cancelled_caught
        assert trio.current_time() - start <= 1 + 3 + 0.1
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert len(eof_at) == 1
    assert eof_at[0] - start <= 1 + 3 + 0.1


async def test_message_of_max_size_passes_both_ways() -> None:
    limit = 4 * 1024 * 1024
    overhead = len('{"jsonrpc":"2.0","method":"big","params":{"s":""}}')
    body = "x" * (limit - overhead)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await serve_pump(nursery, echo)
            async with websocket_client(url(port)) as (read, write):
                await write.send(note("big", s=body))
                item = await read.receive()
            nursery.cancel_scope.cancel()
    assert isinstance(item, SessionMessage)
    assert isinstance(item.message, t.JSONRPCNotification)
    assert item.message.params == {"s": body}


@pytest.mark.parametrize("char", ["x", "\N{GRINNING FACE}"])
async def test_too_big_incoming_message_closes_1009_counting_bytes(char: str) -> None:
    """The limit counts UTF-8 bytes: 300,000 emoji are 1.2 MB, over a 1 MiB limit."""
    limit = 1024 * 1024
    count = limit // 4 + 10_000 if char != "x" else limit + 1
    message = '{"jsonrpc":"2.0","method":"big","params":{"s":"' + char * count + '"}}'
    assert len(message) < limit or char == "x"
    close_codes: list[int | None] = []

    async def send_big(conn: RawConnection) -> None:
        await conn.send_text(message)
        event = await conn.wait_close()
        close_codes.append(None if event is None else event.code)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_raw(nursery, send_big)
            async with websocket_client(url(port), max_message_size=limit) as (read, _write):
                items = [item async for item in read]
            nursery.cancel_scope.cancel()
    assert len(items) == 1
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == 1009
    assert close_codes == [1009]


async def test_keepalive_detects_a_peer_that_stops_answering(autojump_clock: trio.testing.MockClock) -> None:
    async def deaf(conn: RawConnection) -> None:
        await conn.wait_eof()  # reads (so TCP stays open) but never answers a ping

    async with trio.open_nursery() as nursery:
        port = await serve_raw(nursery, deaf)
        start = trio.current_time()
        async with websocket_client(url(port), ping_interval=5, ping_timeout=3, close_timeout=2) as (
            read,
            _write,
        ):
            items = [item async for item in read]
        detected = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert len(items) == 1
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == 1011
    assert "keepalive" in (items[0].reason or "")
    assert detected <= 5 + 3 + 2 + 0.1


async def test_keepalive_keeps_a_live_connection_open(autojump_clock: trio.testing.MockClock) -> None:
    async def stay(read: ReadChannel, write: WriteChannel, conn: WsConnection) -> None:
        async for _ in read:
            pass

    async with trio.open_nursery() as nursery:
        port = await serve_pump(nursery, stay)
        async with websocket_client(url(port), ping_interval=1, ping_timeout=1) as (read, _write):
            with trio.move_on_after(30):
                item = await read.receive()
                pytest.fail(f"unexpected {item!r}")
        nursery.cancel_scope.cancel()
