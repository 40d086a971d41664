"""The in-memory testing helpers: open_transport_pair, its endpoints, and the raw peer.

Everything here runs over in-memory streams (no sockets); anything timed uses the autojump
clock, and every test has a hard ``trio.fail_after``.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from typing import TYPE_CHECKING, Literal, cast

import mcp_types as t
import pytest
import trio
import trio.testing
from mcp.shared.message import SessionMessage
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

import trio_mcp_ws.testing
from trio_mcp_ws import ConnectionClosedError, HandshakeError, MessageDecodeError, encode
from trio_mcp_ws._options import Limits
from trio_mcp_ws._wsconn import WsConnection, read_request
from trio_mcp_ws.testing import Endpoint, RawPeer, TransportPair, open_raw_peer, open_transport_pair
from trio_mcp_ws.testing._memory import bounded_stream_pair
from trio_mcp_ws.testing._raw import OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT, encode_frame

if TYPE_CHECKING:
    from collections.abc import Callable

    from trio_mcp_ws import ReadChannel

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

LIMIT = 10  # seconds of trio.fail_after for every test

Role = Literal["client", "server"]


def note(seq: int, pad: str = "") -> SessionMessage:
    params: dict[str, object] = {"seq": seq}
    if pad:
        params["pad"] = pad
    return SessionMessage(t.JSONRPCNotification(jsonrpc="2.0", method="test/seq", params=params))


async def receive_message(read: ReadChannel) -> t.JSONRPCMessage:
    item = await read.receive()
    assert isinstance(item, SessionMessage), item
    return item.message


async def drain(read: ReadChannel) -> list[SessionMessage | Exception]:
    return [item async for item in read]


def messages(items: list[SessionMessage | Exception]) -> list[t.JSONRPCMessage]:
    return [item.message for item in items if isinstance(item, SessionMessage)]


class Boom(Exception):
    pass


# -- the public surface ------------------------------------------------------------------


def test_exports_are_documented_and_complete() -> None:
    names = trio_mcp_ws.testing.__all__
    assert len(set(names)) == len(names)
    public = {
        name for name in vars(trio_mcp_ws.testing) if not name.startswith("_") and name != "annotations"
    }
    assert public == set(names)
    for name in names:
        assert (getattr(trio_mcp_ws.testing, name).__doc__ or "").strip(), name


def test_importing_testing_needs_no_hypothesis() -> None:
    code = "import sys, trio_mcp_ws.testing; print('hypothesis' in sys.modules)"
    env_code = "import os; os.environ['HYPOTHESIS_NO_PLUGINS'] = '1'; " + code
    out = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- the bounded in-memory stream -----------------------------------------------------------


async def test_bounded_stream_pair_passes_trios_stream_checks() -> None:
    async def make() -> tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]:
        return bounded_stream_pair(64)

    with trio.fail_after(LIMIT):
        await trio.testing.check_two_way_stream(make, None)


async def test_bounded_stream_pair_blocks_the_sender_when_full() -> None:
    left, right = bounded_stream_pair(10)
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(left.send_all, b"x" * 25)
            await trio.testing.wait_all_tasks_blocked()
            assert await right.receive_some(100) == b"x" * 10
            await trio.testing.wait_all_tasks_blocked()
            assert await right.receive_some(5) == b"x" * 5
        assert await right.receive_some() == b"x" * 10  # the sender finished: all of it arrived


async def test_bounded_stream_pair_wakes_a_blocked_sender_when_the_receiver_closes() -> None:
    left, right = bounded_stream_pair(1)
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:

            async def broken() -> None:
                with pytest.raises(trio.BrokenResourceError):
                    await left.send_all(b"abc")

            nursery.start_soon(broken)
            await trio.testing.wait_all_tasks_blocked()
            await right.aclose()


async def test_bounded_stream_pair_wakes_a_blocked_receiver_when_it_is_closed() -> None:
    _left, right = bounded_stream_pair(1)
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:

            async def closed() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await right.receive_some()

            nursery.start_soon(closed)
            await trio.testing.wait_all_tasks_blocked()
            await right.aclose()


def test_bounded_stream_pair_needs_a_buffer() -> None:
    with pytest.raises(ValueError, match="buffer_size"):
        bounded_stream_pair(0)


async def test_bounded_stream_pair_send_side_closed_while_blocked() -> None:
    left, right = bounded_stream_pair(1)
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:

            async def closed() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await left.send_all(b"abc")

            nursery.start_soon(closed)
            await trio.testing.wait_all_tasks_blocked()
            await left.send_stream.aclose()
        assert await right.receive_some() == b"a"
        assert await right.receive_some() == b""


# -- open_transport_pair ---------------------------------------------------------------------


async def test_round_trip_both_ways_and_named_tuple() -> None:
    with trio.fail_after(LIMIT):
        async with open_transport_pair() as pair:
            assert isinstance(pair, TransportPair)
            client, server = pair
            assert client is pair.client
            assert (client.role, server.role) == ("client", "server")
            assert repr(client) == "<Endpoint client open>"
            await client.write.send(note(1))
            assert await receive_message(server.read) == note(1).message
            await server.write.send(note(2))
            assert await receive_message(client.read) == note(2).message
            assert [client.close_code, server.close_code] == [None, None]
            assert [client.closed, server.closed] == [False, False]
        assert [client.closed, server.closed] == [True, True]
        assert repr(server) == "<Endpoint server closed>"
        assert [client.close_code, server.close_code] == [1000, 1000]


async def test_endpoint_exit_flushes_everything_then_closes_cleanly() -> None:
    with trio.fail_after(LIMIT):
        async with open_transport_pair() as pair, trio.open_nursery() as nursery:
            received: list[SessionMessage | Exception] = []

            async def collect() -> None:
                received.extend(await drain(pair.server.read))

            nursery.start_soon(collect)
            async with pair.client as (_read, write):
                for seq in range(200):
                    await write.send(note(seq))
        assert messages(received) == [note(seq).message for seq in range(200)]
        assert len(received) == 200  # no exception: a clean close just ends the channel
        assert pair.client.close_code == 1000


@pytest.mark.parametrize(
    ("how", "code", "error"),
    [("clean", 1000, False), ("raise", 1011, True), ("cancel", 1001, False), ("aclose", 1000, False)],
)
async def test_endpoint_close_codes(how: str, code: int, error: bool) -> None:
    with trio.fail_after(LIMIT):
        async with open_transport_pair() as pair:
            if how == "clean":
                async with pair.client:
                    pass
            elif how == "raise":
                with pytest.raises(Boom):
                    async with pair.client:
                        raise Boom
            elif how == "cancel":
                with trio.CancelScope() as scope:
                    async with pair.client as (read, _write):
                        scope.cancel()
                        await read.receive()
                assert scope.cancelled_caught
            else:
                await pair.client.aclose()
                await pair.client.aclose()  # idempotent
            items = await drain(pair.server.read)
            assert pair.client.closed
            assert pair.client.close_code == code
            assert pair.server.close_code == code
            if error:
                assert len(items) == 1
                assert isinstance(items[0], ConnectionClosedError)
                assert items[0].code == code
            else:
                assert items == []
            # A write after the peer closed is dropped (and logged), never raised.
            await pair.server.write.send(note(0))


async def test_endpoint_is_one_shot() -> None:
    with trio.fail_after(LIMIT):
        async with open_transport_pair() as pair:
            async with pair.client:
                with pytest.raises(RuntimeError, match="already entered"):
                    await pair.client.__aenter__()
            with pytest.raises(RuntimeError, match="already entered"):
                await pair.client.__aenter__()
            await pair.server.aclose()
            with pytest.raises(RuntimeError, match="already closed"):
                await pair.server.__aenter__()


async def test_body_exception_propagates_unwrapped_and_closes_with_1011() -> None:
    pairs: list[TransportPair] = []
    with trio.fail_after(LIMIT), pytest.raises(Boom) as info:
        async with open_transport_pair() as pair:
            pairs.append(pair)
            raise Boom("mine")
    assert type(info.value) is Boom
    assert not isinstance(info.value, BaseExceptionGroup)
    assert [(pair.client.close_code, pair.server.close_code) for pair in pairs] == [(1011, 1011)]


async def test_drop_reports_1006_on_both_sides_and_later_writes_are_dropped() -> None:
    with trio.fail_after(LIMIT):
        async with open_transport_pair() as pair:
            await pair.drop()
            for endpoint in pair:
                items = await drain(endpoint.read)
                assert len(items) == 1
                assert isinstance(items[0], ConnectionClosedError)
                assert items[0].code == 1006
                await endpoint.write.send(note(0))
                assert endpoint.close_code == 1006


async def test_backpressure_blocks_the_sender_and_loses_nothing() -> None:
    """A consumer that does not read stops the sender; only buffer sizes decide where.

    The buffers along the way (the write channel, the writer's batch, the in-memory
    connection, the reader's queue, the read channel) are implementation details: the test
    only asks that they are finite, together well under 200 messages of 16 KiB.
    """
    pad = "x" * 16_384
    count = 200
    accepted = 0
    with trio.fail_after(LIMIT):
        async with open_transport_pair() as pair, trio.open_nursery() as nursery:

            async def send() -> None:
                nonlocal accepted
                for seq in range(count):
                    await pair.client.write.send(note(seq, pad))
                    accepted += 1

            nursery.start_soon(send)
            await trio.testing.wait_all_tasks_blocked()
            assert 0 < accepted < count // 2
            stats = pair.client.write.statistics()
            assert stats.tasks_waiting_send == 1
            assert stats.current_buffer_used == stats.max_buffer_size
            read_stats = pair.server.read.statistics()
            assert read_stats.max_buffer_size < math.inf
            assert read_stats.current_buffer_used == read_stats.max_buffer_size
            for seq in range(count):
                item = await pair.server.read.receive()
                assert isinstance(item, SessionMessage)
                assert item.message == note(seq, pad).message
        assert accepted == count


async def test_max_message_size_applies_to_both_ends() -> None:
    with trio.fail_after(LIMIT):
        async with open_transport_pair(max_message_size=100) as pair:
            await pair.client.write.send(note(0, "x" * 200))
            items = await drain(pair.server.read)
            assert len(items) == 1
            assert isinstance(items[0], ConnectionClosedError)
            assert items[0].code == 1009
            # The client sees the server's close frame: the same abnormal code.
            items = await drain(pair.client.read)
            assert len(items) == 1
            assert isinstance(items[0], ConnectionClosedError)
            assert items[0].code == 1009


async def test_keepalive_keeps_an_idle_pair_open(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(LIMIT * 100):
        async with open_transport_pair(ping_interval=1, ping_timeout=1) as pair:
            await trio.sleep(60)
            assert pair.client.close_code is None
            assert pair.server.close_code is None
            await pair.client.write.send(note(1))
            assert isinstance(await pair.server.read.receive(), SessionMessage)


async def test_outside_cancellation_closes_promptly(autojump_clock: trio.testing.MockClock) -> None:
    """Regression: a cancelled reader used to leave aclose() waiting the whole close_timeout."""
    start = trio.current_time()
    pairs: list[TransportPair] = []
    with trio.fail_after(LIMIT * 10), trio.move_on_after(1):
        async with open_transport_pair(close_timeout=30) as pair, trio.open_nursery() as nursery:
            pairs.append(pair)
            for endpoint in pair:
                nursery.start_soon(endpoint.read.receive)
    assert trio.current_time() - start < 2
    assert [endpoint.closed for pair in pairs for endpoint in pair] == [True, True]


async def test_resource_path_and_buffer_size_are_options() -> None:
    with trio.fail_after(LIMIT):
        async with open_transport_pair(resource="/other", buffer_size=10) as pair:
            await pair.client.write.send(note(0, "y" * 1000))
            item = await pair.server.read.receive()
            assert isinstance(item, SessionMessage)
            assert pair.server._conn.resource == "/other"  # pyright: ignore[reportPrivateUsage]


# -- open_raw_peer -----------------------------------------------------------------------------

ROLES: list[Role] = ["server", "client"]


@pytest.mark.parametrize("raw_role", ROLES)
async def test_raw_peer_valid_and_bad_frames(raw_role: Role) -> None:
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role) as peer:
            assert isinstance(peer, RawPeer)
            assert isinstance(peer.endpoint, Endpoint)
            assert peer.endpoint.role != peer.role == raw_role
            assert repr(peer).startswith(f"<RawPeer {raw_role} facing <Endpoint")
            read = peer.endpoint.read
            await peer.send_text(encode(note(1).message))
            await peer.send_text("{oops")
            await peer.send_binary(encode(note(2).message).encode())
            await peer.send_binary(b"\xff\xfe")
            await peer.send_text("[]")
            await peer.send_text(encode(note(3).message))
            items = [await read.receive() for _ in range(6)]
            assert [type(item) for item in items] == [
                SessionMessage,
                MessageDecodeError,
                SessionMessage,
                MessageDecodeError,
                MessageDecodeError,
                SessionMessage,
            ]
            assert messages(items) == [note(n).message for n in (1, 2, 3)]
            await peer.endpoint.write.send(note(4))
            assert await peer.receive_message() == encode(note(4).message)


@pytest.mark.parametrize("raw_role", ROLES)
async def test_raw_peer_fragmented_message_with_pings_between_fragments(raw_role: Role) -> None:
    text = encode(note(7, "é" * 300).message).encode()
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role) as peer:
            await peer.send_frame(OP_TEXT, text[:5], fin=False)
            await peer.send_ping(b"1")
            await peer.send_frame(OP_CONTINUATION, text[5:300], fin=False)
            await peer.send_ping(b"2")
            await peer.send_frame(OP_CONTINUATION, text[300:])
            item = await peer.endpoint.read.receive()
            assert isinstance(item, SessionMessage)
            assert item.message == note(7, "é" * 300).message
            assert await peer.receive_event() == Pong(payload=b"1")
            assert await peer.receive_event() == Pong(payload=b"2")
            # Frames split at any byte, as TCP may: still one message each.
            data = encode_frame(
                OP_BINARY, encode(note(8).message).encode(), mask=b"abcd" if raw_role == "client" else None
            )
            for byte in data:
                await peer.send_bytes(bytes([byte]))
            item = await peer.endpoint.read.receive()
            assert isinstance(item, SessionMessage)
            assert item.message == note(8).message


@pytest.mark.parametrize("raw_role", ROLES)
@pytest.mark.parametrize("size", [10, 200, 70_000])
async def test_raw_peer_frame_lengths_both_ways(raw_role: Role, size: int) -> None:
    message = note(0, "z" * size)
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role) as peer:
            await peer.send_text(encode(message.message))
            item = await peer.endpoint.read.receive()
            assert isinstance(item, SessionMessage)
            assert item.message == message.message
            await peer.endpoint.write.send(message)
            assert await peer.receive_message() == encode(message.message)


@pytest.mark.parametrize("raw_role", ROLES)
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("invalid UTF-8 in a text frame", 1007),
        ("lone surrogate in a text frame", 1007),
        ("reserved bits", 1002),
        ("reserved opcode", 1002),
        ("continuation without start", 1002),
        ("wrong masking", 1002),
    ],
)
async def test_raw_peer_protocol_errors_close_promptly(
    raw_role: Role, name: str, code: int, autojump_clock: trio.testing.MockClock
) -> None:
    """Regression (server side): TCP used to stay open for close_timeout after a parse failure."""
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role, close_timeout=30) as peer:
            start = trio.current_time()
            if name == "invalid UTF-8 in a text frame":
                await peer.send_text(b'"\xc3\x28"')
            elif name == "lone surrogate in a text frame":
                await peer.send_text('"\ud800"')
            elif name == "reserved bits":
                await peer.send_frame(OP_TEXT, b"{}", rsv=0b010)
            elif name == "reserved opcode":
                await peer.send_frame(0x3, b"x")
            elif name == "continuation without start":
                await peer.send_frame(OP_CONTINUATION, b"x")
            else:
                await peer.send_frame(OP_TEXT, b"{}", mask=raw_role != "client")
            items = await drain(peer.endpoint.read)
            close = await peer.wait_closed()
            await peer.wait_eof()
            assert trio.current_time() - start < 1
            assert peer.eof
    assert len(items) == 1
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == code
    assert close is not None
    assert close.code == code
    assert peer.close_code == code


@pytest.mark.parametrize("raw_role", ROLES)
@pytest.mark.parametrize(
    ("code", "reason", "error"), [(1000, "bye", False), (1001, "", False), (4000, "nope", True)]
)
async def test_raw_peer_close_codes(raw_role: Role, code: int, reason: str, error: bool) -> None:
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role) as peer:
            await peer.send_close(code, reason)
            items = await drain(peer.endpoint.read)
            answer = await peer.wait_closed()
            await peer.wait_eof()
    assert answer is not None
    assert answer.code == code
    if error:
        assert len(items) == 1
        assert isinstance(items[0], ConnectionClosedError)
        assert (items[0].code, items[0].reason) == (code, reason)
    else:
        assert items == []


@pytest.mark.parametrize("raw_role", ROLES)
async def test_peer_closing_tcp_right_after_its_close_frame_is_a_normal_close(
    raw_role: Role, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: answering that close failed, and the reader reported an internal error (1011)."""
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role) as peer:
            await peer.send_close(1000, "bye")
            await peer.drop()
            items = await drain(peer.endpoint.read)
            assert peer.endpoint.close_code == 1000
    assert items == []
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("raw_role", ROLES)
@pytest.mark.parametrize("pings", [1, 8, 50])
async def test_pings_arriving_while_we_close_do_not_break_the_close(raw_role: Role, pings: int) -> None:
    """Regression (found by the stateful test): answering a ping after our close frame went out
    raised inside wsproto, which the reader took for a protocol error: 1002, and no close frame."""
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role) as peer:
            for _ in range(pings):
                await peer.send_ping(b"p")
            await peer.endpoint.aclose()
            close = await peer.wait_closed()
    assert close is not None
    assert close.code == 1000
    assert peer.endpoint.close_code == 1000


@pytest.mark.parametrize("raw_role", ROLES)
async def test_raw_peer_drop(raw_role: Role) -> None:
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role) as peer:
            await peer.drop()
            items = await drain(peer.endpoint.read)
            assert await peer.receive_event() is None
            assert await peer.receive_message() is None
            assert await peer.wait_closed() is None
            with pytest.raises(trio.ClosedResourceError):
                await peer.send_text("{}")
    assert len(items) == 1
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == 1006


@pytest.mark.parametrize("raw_role", ROLES)
@pytest.mark.parametrize(("how", "code"), [("clean", 1000), ("raise", 1011), ("cancel", 1001)])
async def test_raw_peer_sees_our_close_codes(raw_role: Role, how: str, code: int) -> None:
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role) as peer:
            with trio.CancelScope() as scope:
                try:
                    async with peer.endpoint:
                        if how == "raise":
                            raise Boom
                        if how == "cancel":
                            scope.cancel()
                            await trio.sleep_forever()
                except Boom:
                    pass
            assert await peer.receive_message() is None
            close = await peer.wait_closed()
            await peer.wait_eof()
    assert close is not None
    assert close.code == code
    assert peer.close_code == code


@pytest.mark.parametrize("raw_role", ROLES)
async def test_raw_peer_that_never_answers_our_close(
    raw_role: Role, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role, close_timeout=3) as peer:
            peer.answer_close = False
            start = trio.current_time()
            await peer.endpoint.aclose()
            assert 3 <= trio.current_time() - start < 3.1
            close = await peer.wait_closed()
            await peer.wait_eof()
    assert close is not None
    assert close.code == 1000


async def test_raw_peer_sees_keepalive_pings_and_a_dead_peer_is_detected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(LIMIT * 10):
        async with open_raw_peer(ping_interval=5, ping_timeout=2) as peer:
            event = await peer.receive_event()
            assert isinstance(event, Ping)
            assert peer.endpoint.close_code is None
            peer.answer_pings = False
            items = await drain(peer.endpoint.read)
            close = await peer.wait_closed()
    assert len(items) == 1
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == 1011
    assert close is not None
    assert close.code == 1011


@pytest.mark.parametrize("raw_role", ROLES)
async def test_raw_peer_without_subprotocol(raw_role: Role) -> None:
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role, subprotocol=None) as peer:
            assert peer.endpoint._conn.subprotocol is None  # pyright: ignore[reportPrivateUsage]
            await peer.send_text(encode(note(1).message))
            assert isinstance(await peer.endpoint.read.receive(), SessionMessage)


async def test_raw_peer_receive_event_kinds() -> None:
    with trio.fail_after(LIMIT):
        async with open_raw_peer() as peer:
            await peer.endpoint.write.send(note(1))
            event = await peer.receive_event()
            assert isinstance(event, TextMessage)
            assert event.data == encode(note(1).message)
            await peer.send_close(None)
            items = await drain(peer.endpoint.read)
            event = await peer.receive_event()
            assert isinstance(event, CloseConnection)
    # An empty close frame is how browsers and the TypeScript SDK close: a normal close.
    assert items == []
    assert not isinstance(event, BytesMessage)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: encode_frame(16, b""), "opcode"),
        (lambda: encode_frame(OP_PING, b"", rsv=8), "rsv"),
        (lambda: encode_frame(OP_PING, b"", mask=b"abc"), "masking key"),
    ],
)
def test_encode_frame_refuses_what_cannot_be_encoded(call: Callable[[], bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# -- core behaviours the raw peer makes easy to reach ---------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_message_size": 0}, "max_message_size"),
        ({"close_timeout": -1}, "close_timeout"),
        ({"ping_interval": 0}, "ping_interval"),
        ({"ping_timeout": 0}, "ping_timeout"),
    ],
)
async def test_invalid_limits_are_value_errors(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        async with open_transport_pair(**options):  # type: ignore[arg-type]
            pass  # pragma: no cover - never entered


async def test_after_a_1009_later_frames_are_discarded_and_a_bad_one_drops_tcp(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """While closing with 1009: messages are discarded, and a frame that breaks the protocol
    ends the connection at once instead of waiting for the close answer."""
    with trio.fail_after(LIMIT):
        async with open_raw_peer(max_message_size=100, close_timeout=30) as peer:
            peer.answer_close = False
            start = trio.current_time()
            await peer.send_text(encode(note(0, "x" * 200).message))
            await peer.send_text(encode(note(1).message))
            await peer.send_text(b'"\xff"')
            items = await drain(peer.endpoint.read)
            await peer.wait_eof()
            assert trio.current_time() - start < 1
    assert [type(item) for item in items] == [ConnectionClosedError]
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == 1009


async def test_a_peer_that_never_answers_a_1009_is_dropped_after_close_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The reader's own deadline: the body is still running, nothing else closes TCP."""
    with trio.fail_after(LIMIT * 10):
        async with open_raw_peer(max_message_size=100, close_timeout=3) as peer:
            peer.answer_close = False
            await peer.send_text(encode(note(0, "x" * 200).message))
            start = trio.current_time()
            await peer.wait_eof()
            assert 3 <= trio.current_time() - start < 3.1
            assert peer.close_code == 1009


@pytest.mark.parametrize("raw_role", ROLES)
async def test_a_1009_close_frame_that_cannot_be_sent(raw_role: Role) -> None:
    """The peer vanished right after its oversized message: our close frame finds no one."""
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role, max_message_size=100) as peer:
            await peer.send_text(encode(note(0, "x" * 200).message))
            await peer.drop()
            items = await drain(peer.endpoint.read)
    assert len(items) == 1
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == 1009


async def test_client_ignores_data_after_the_close_handshake() -> None:
    with trio.fail_after(LIMIT):
        async with open_raw_peer() as peer, trio.open_nursery() as nursery:
            peer.answer_close = False
            nursery.start_soon(peer.endpoint.aclose)
            close = await peer.wait_closed()
            assert close is not None
            await peer.send_close(close.code)
            await peer.send_text("after the close handshake")
            await trio.testing.wait_all_tasks_blocked()
            await peer.drop()
    assert peer.endpoint.close_code == 1000


async def test_handshake_on_a_stream_whose_peer_is_gone() -> None:
    left, right = bounded_stream_pair()
    await right.aclose()
    limits = Limits(ping_interval=None)
    with trio.fail_after(LIMIT), pytest.raises(HandshakeError, match="opening handshake"):
        await WsConnection.connect(
            left,
            host="localhost",
            resource="/",
            subprotocols=[],
            extra_headers=[],
            limits=limits,
        )


async def test_keepalive_does_not_blame_the_peer_for_a_slow_consumer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(LIMIT * 100):
        async with (
            open_transport_pair(ping_interval=1, ping_timeout=1) as pair,
            trio.open_nursery() as nursery,
        ):

            async def send() -> None:
                for seq in range(20):
                    await pair.client.write.send(note(seq))

            nursery.start_soon(send)
            await trio.sleep(60)  # the server reads nothing for a minute: its reader is stalled
            assert pair.server.close_code is None
            for seq in range(20):
                assert await receive_message(pair.server.read) == note(seq).message


async def test_keepalive_notices_a_peer_that_stopped_reading(autojump_clock: trio.testing.MockClock) -> None:
    """A half-dead peer: it no longer reads, so our ping cannot even be written."""
    with trio.fail_after(LIMIT * 100):
        async with open_raw_peer(ping_interval=5, ping_timeout=2) as peer:
            stream = peer.stream
            assert isinstance(stream, trio.StapledStream)
            await cast(
                "trio.StapledStream[trio.abc.SendStream, trio.abc.ReceiveStream]", stream
            ).receive_stream.aclose()
            items = await drain(peer.endpoint.read)
    assert len(items) == 1
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == 1006


async def test_server_refusing_a_garbage_request_from_a_client_already_gone() -> None:
    """The 400 answer cannot be written: the handshake still fails cleanly, as a HandshakeError."""
    ours, theirs = bounded_stream_pair()
    await theirs.send_all(b"GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n")  # not an upgrade request
    await theirs.aclose()
    with trio.fail_after(LIMIT), pytest.raises(HandshakeError, match="refused the handshake with 400"):
        await read_request(ours, limits=Limits(ping_interval=None))
