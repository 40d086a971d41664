"""Protocol errors close properly and in bounded time, whatever the peer does.

Each peer here breaks the protocol and then never answers our close frame: we must send
the right close code ourselves and close TCP within ``close_timeout``.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests._peers import OP_CONT, OP_PING, OP_TEXT, RawConnection, frame, serve_raw, url
from trio_mcp_ws import ConnectionClosedError, websocket_client

CLOSE_TIMEOUT = 4.0

BROKEN_FRAMES = {
    "invalid UTF-8 in a text frame": (frame(OP_TEXT, b'{"jsonrpc":"2.0","method":"\xff"}'), 1007),
    "reserved bits set": (frame(OP_TEXT, b"{}", rsv=0b100), 1002),
    "unknown opcode": (frame(0x3, b"x"), 1002),
    "continuation without a start": (frame(OP_CONT, b"x"), 1002),
    "fragmented control frame": (frame(OP_PING, b"x", fin=False), 1002),
    "message over max_message_size": (frame(OP_TEXT, b'"' + b"x" * 2000 + b'"'), 1009),
}


@pytest.mark.parametrize("name", list(BROKEN_FRAMES))
async def test_protocol_error_sends_close_code_and_closes_tcp_in_time(
    name: str, autojump_clock: trio.testing.MockClock
) -> None:
    data, expected = BROKEN_FRAMES[name]
    seen: list[tuple[int | None, float]] = []

    async def break_then_ignore(conn: RawConnection) -> None:
        await conn.send(data)
        start = trio.current_time()
        event = await conn.wait_close()  # the close frame we expect from the client
        await conn.wait_eof()  # never answered: the client must close TCP by itself
        seen.append((None if event is None else event.code, trio.current_time() - start))

    async with trio.open_nursery() as nursery:
        port = await serve_raw(nursery, break_then_ignore)
        async with websocket_client(
            url(port), max_message_size=1000, close_timeout=CLOSE_TIMEOUT, ping_interval=None
        ) as (read, _write):
            items = [item async for item in read]
            # The read channel ends once the failure is known, not when TCP closes.
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()

    assert len(items) == 1, items
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == expected
    assert len(seen) == 1
    code, elapsed = seen[0]
    assert code == expected
    assert elapsed <= CLOSE_TIMEOUT + 0.1


async def test_protocol_error_with_a_peer_that_answers_the_close_is_quick(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[float] = []

    async def break_then_answer(conn: RawConnection) -> None:
        await conn.send(frame(OP_TEXT, b"\xc3\x28"))
        start = trio.current_time()
        event = await conn.wait_close()
        assert event is not None
        await conn.send(frame(0x8, event.code.to_bytes(2, "big")))
        await conn.stream.aclose()
        seen.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        port = await serve_raw(nursery, break_then_answer)
        start = trio.current_time()
        async with websocket_client(url(port), close_timeout=CLOSE_TIMEOUT, ping_interval=None) as (
            read,
            _write,
        ):
            items = [item async for item in read]
        assert trio.current_time() - start < 0.1
        nursery.cancel_scope.cancel()
    assert [type(item) for item in items] == [ConnectionClosedError]
    assert len(seen) == 1
    assert seen[0] < 0.1
