"""The fast frame path (``_frames``) against every RFC 6455 rule it claims, and the driver using it.

Unit tests: `scan` takes exactly the complete unfragmented unmasked/masked text frames it
claims (FIN, RSV clear, opcode 1, the role's masking, minimal lengths, the size limit in
bytes) and hands everything else to wsproto with its exact extent; `decode_text` is strict
UTF-8; `build_text_frames` makes frames wsproto itself reads back. Driver tests (in memory,
against the raw peer): frames of every kind, split at every byte, arrive in order with the
fast path and wsproto taking turns; a frame sent with the server's 101 is not lost.
"""

from __future__ import annotations

import json
import logging
import struct
from functools import partial
from typing import TYPE_CHECKING, Literal

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from mcp.shared.message import SessionMessage
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from trio_mcp_ws import ConnectionClosedError, decode, websocket_client
from trio_mcp_ws._frames import FAST, NEED_MORE, OTHER, build_text_frames, decode_text, scan
from trio_mcp_ws._mask import python_apply_mask
from trio_mcp_ws.testing import open_raw_peer

if TYPE_CHECKING:
    from trio_mcp_ws.testing import RawPeer

Role = Literal["client", "server"]
KEY = bytes.fromhex("37fa213d")
LIMIT = 1 << 20


def frame(payload: bytes, *, opcode: int = 1, fin: bool = True, rsv: int = 0, masked: bool = False) -> bytes:
    """One frame exactly as given (minimal length encoding), valid or not."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if masked else 0
    size = len(payload)
    if size < 126:
        head = bytes((first, mask_bit | size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    return head + KEY + python_apply_mask(payload, KEY) if masked else head + payload


def nonminimal(payload: bytes, width: Literal[16, 64], *, top_bit: bool = False) -> bytes:
    """An unmasked text frame whose length uses more bytes than it needs."""
    if width == 16:
        return bytes((0x81, 126)) + struct.pack("!H", len(payload)) + payload
    length = len(payload) | (1 << 63 if top_bit else 0)
    return bytes((0x81, 127)) + struct.pack("!Q", length) + payload


# -- scan: what the fast path takes ------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
@pytest.mark.parametrize("masked", [False, True])
def test_takes_complete_text_frames_at_every_length_encoding(size: int, masked: bool) -> None:
    payload = b"x" * size
    data = b"junk" + frame(payload, masked=masked)
    head = 2 + (0 if size < 126 else 2 if size < 65_536 else 8) + (4 if masked else 0)
    assert scan(data, 4, masked=masked, max_size=LIMIT) == (FAST, 4 + head, len(data))
    assert decode_text(data, 4 + head, len(data), masked=masked) == payload.decode()


@pytest.mark.parametrize("payload", [b"", b"x" * 125, b"x" * 126, b"x" * 65_535])
def test_non_minimal_lengths_go_to_wsproto(payload: bytes) -> None:
    width: Literal[16, 64] = 16 if len(payload) < 126 else 64
    data = nonminimal(payload, width)
    kind, _, end = scan(data, 0, masked=False, max_size=LIMIT)
    assert (kind, end) == (OTHER, len(data))
    if len(payload) < 126:  # and a 64-bit length for a 7-bit payload
        data = nonminimal(payload, 64)
        assert scan(data, 0, masked=False, max_size=LIMIT) == (OTHER, 10, len(data))


def test_a_length_with_the_top_bit_set_goes_to_wsproto() -> None:
    data = nonminimal(b"x" * 70_000, 64, top_bit=True)
    assert scan(data, 0, masked=False, max_size=1 << 64)[0] == OTHER


@pytest.mark.parametrize("masked", [False, True])
def test_masking_direction(masked: bool) -> None:
    # A server must get masked frames, a client unmasked ones; the wrong kind is wsproto's (1002).
    right = frame(b"hi", masked=masked)
    wrong = frame(b"hi", masked=not masked)
    assert scan(right, 0, masked=masked, max_size=LIMIT)[0] == FAST
    assert scan(wrong, 0, masked=masked, max_size=LIMIT) == (OTHER, len(wrong) - 2, len(wrong))


@pytest.mark.parametrize("rsv", [1, 2, 4, 7])
def test_rsv_bits_go_to_wsproto(rsv: int) -> None:
    data = frame(b"hi", rsv=rsv)
    assert scan(data, 0, masked=False, max_size=LIMIT) == (OTHER, 2, 4)


@pytest.mark.parametrize("opcode", [0, *range(2, 16)])
def test_every_other_opcode_goes_to_wsproto(opcode: int) -> None:
    data = frame(b"hi", opcode=opcode)
    assert scan(data, 0, masked=False, max_size=LIMIT) == (OTHER, 2, 4)


def test_fragments_go_to_wsproto() -> None:
    first = frame(b"he", fin=False)
    assert scan(first, 0, masked=False, max_size=LIMIT) == (OTHER, 2, 4)


def test_size_limit_counts_bytes() -> None:
    text = "é" * 50  # 50 characters, 100 bytes
    data = frame(text.encode())
    assert scan(data, 0, masked=False, max_size=100)[0] == FAST
    assert scan(data, 0, masked=False, max_size=99) == (OTHER, 2, len(data))


def test_an_over_limit_frame_is_handed_over_before_it_arrives() -> None:
    # wsproto streams it and the driver closes with 1009; we never buffer it.
    data = frame(b"x" * 1000)[:50]
    assert scan(data, 0, masked=False, max_size=999) == (OTHER, 4, 1004)


@pytest.mark.parametrize("masked", [False, True])
def test_need_more_at_every_split(masked: bool) -> None:
    for size in (5, 300, 70_000):
        data = frame(b"y" * size, masked=masked)
        for cut in {*range(min(15, len(data))), len(data) - 1}:
            assert scan(data[:cut], 0, masked=masked, max_size=LIMIT) == (NEED_MORE, 0, 0)


def test_other_frames_need_only_their_header() -> None:
    data = frame(b"z" * 300, opcode=2)
    assert scan(data[:3], 0, masked=False, max_size=LIMIT) == (NEED_MORE, 0, 0)
    assert scan(data[:4], 0, masked=False, max_size=LIMIT) == (OTHER, 4, len(data))


# -- decode_text: strict UTF-8 -----------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",  # never valid
        b"\xc0\xaf",  # overlong "/"
        b"\xed\xa0\x80",  # an encoded surrogate
        b"\xe2\x82",  # truncated
        b"\xf4\x90\x80\x80",  # above U+10FFFF
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_invalid_utf8_is_refused(payload: bytes, masked: bool) -> None:
    data = frame(payload, masked=masked)
    kind, start, end = scan(data, 0, masked=masked, max_size=LIMIT)
    assert kind == FAST
    assert decode_text(data, start, end, masked=masked) is None


@given(st.text())
def test_decode_round_trips_any_text(text: str) -> None:
    payload = text.encode("utf-8", "surrogatepass")
    for masked in (False, True):
        data = frame(payload, masked=masked)
        kind, start, end = scan(bytearray(data), 0, masked=masked, max_size=LIMIT)
        assert kind == FAST
        expected = None if any(0xD800 <= ord(c) <= 0xDFFF for c in text) else text
        assert decode_text(bytearray(data), start, end, masked=masked) == expected


# -- build_text_frames: what we send -----------------------------------------------------


def _wsproto_pair() -> tuple[WSConnection, WSConnection]:
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="localhost", target="/")))
    next(event for event in server.events() if isinstance(event, Request))
    client.receive_data(server.send(AcceptConnection()))
    next(event for event in client.events() if isinstance(event, AcceptConnection))
    return client, server


@given(st.lists(st.text().filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)), max_size=5))
def test_wsproto_reads_what_we_build(texts: list[str]) -> None:
    client, server = _wsproto_pair()
    # Server to client: unmasked, byte for byte what wsproto itself would send.
    unmasked = build_text_frames(texts, mask=False)
    assert unmasked == b"".join(server.send(TextMessage(data=text)) for text in texts)
    client.receive_data(unmasked)
    assert [event.data for event in client.events() if isinstance(event, TextMessage)] == texts
    # Client to server: masked with a fresh key per frame; wsproto unmasks and reads it.
    server.receive_data(build_text_frames(texts, mask=True))
    received = list(server.events())
    assert all(isinstance(event, TextMessage) and event.message_finished for event in received)
    assert [event.data for event in received if isinstance(event, TextMessage)] == texts


@pytest.mark.parametrize("size", [125, 126, 65_535, 65_536])
def test_built_lengths_are_minimal_and_masked_in_the_client_role(size: int) -> None:
    data = build_text_frames(["a" * size], mask=True)
    kind, start, end = scan(data, 0, masked=True, max_size=LIMIT)
    assert (kind, end) == (FAST, len(data))
    assert start == 2 + (0 if size < 126 else 2 if size < 65_536 else 8) + 4
    assert python_apply_mask(data[start:end], data[start - 4 : start]) == b"a" * size
    keys = {build_text_frames(["x"], mask=True)[2:6] for _ in range(8)}
    assert len(keys) > 1  # a fresh random key each time


def test_a_lone_surrogate_cannot_be_sent() -> None:
    with pytest.raises(UnicodeEncodeError):
        build_text_frames(["\ud800"], mask=False)


# -- the driver: fast path and wsproto taking turns --------------------------------------


def _message(index: int) -> str:
    params = {"n": index, "s": "é" * index}
    return json.dumps(
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}, ensure_ascii=False
    )


def _mixed_stream(role_masks: bool) -> tuple[bytes, list[str]]:
    """Frames of every kind a peer legitimately sends, and the messages they carry, in order."""
    m = [_message(i) for i in range(6)]
    fragment_a, fragment_b = m[2].encode()[:10], m[2].encode()[10:]
    frames = [
        frame(m[0].encode(), masked=role_masks),
        frame(b"ping!", opcode=9, masked=role_masks),
        frame(m[1].encode(), masked=role_masks),
        frame(fragment_a, fin=False, masked=role_masks),
        frame(b"", opcode=9, masked=role_masks),  # a control frame between fragments
        frame(fragment_b, opcode=0, masked=role_masks),
        frame(m[3].encode(), opcode=2, masked=role_masks),  # binary holding JSON: accepted
        frame(m[4].encode() + b" " * 70_000, masked=role_masks),  # a 64-bit length
        frame(m[5].encode(), masked=role_masks),
    ]
    return b"".join(frames), [m[0], m[1], m[2], m[3], m[4], m[5]]


@pytest.mark.parametrize("raw_role", ["server", "client"])
async def test_every_split_of_a_mixed_stream(raw_role: Role) -> None:
    data, expected = _mixed_stream(role_masks=raw_role == "client")
    small = len(data) - 70_000
    # Every cut in the small frames, and a few in the big one.
    cuts = [*range(1, small), small + 1, small + 35_000, len(data) - 3]
    with trio.fail_after(120):
        async with open_raw_peer(raw_role=raw_role) as peer:
            for cut in cuts:
                await peer.send_bytes(data[:cut])
                await peer.send_bytes(data[cut:])
                for text in expected:
                    item = await peer.endpoint.read.receive()
                    assert isinstance(item, SessionMessage)
                    assert item.message == decode(text)
            await _no_more(peer)


async def _no_more(peer: RawPeer) -> None:
    await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(trio.WouldBlock):
        peer.endpoint.read.receive_nowait()


@pytest.mark.parametrize("raw_role", ["server", "client"])
@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (frame(b'"\xff"'), 1007),  # invalid UTF-8 in a frame the fast path would take
        (frame(b"{}", rsv=4), 1002),
        (frame(b"{}", opcode=0), 1002),  # a continuation with nothing to continue
        (nonminimal(b"{}", 16), 1002),
    ],
)
async def test_what_the_fast_path_refuses_wsproto_reports(raw_role: Role, bad: bytes, code: int) -> None:
    masked = raw_role == "client"
    if masked:  # the same frame, masked as a client must
        kind, start, _ = scan(bad, 0, masked=False, max_size=LIMIT)
        assert kind in (FAST, OTHER)
        head = bytearray(bad[:start])
        head[1] |= 0x80
        bad = bytes(head) + KEY + python_apply_mask(bad[start:], KEY)
    good = frame(_message(1).encode(), masked=masked)
    with trio.fail_after(10):
        async with open_raw_peer(raw_role=raw_role) as peer:
            await peer.send_bytes(good + bad + good)
            item = await peer.endpoint.read.receive()
            assert isinstance(item, SessionMessage)
            closed = await peer.wait_closed()
            assert closed is not None
            assert closed.code == code
            rest = [item async for item in peer.endpoint.read]
            assert len(rest) == 1
            assert isinstance(rest[0], ConnectionClosedError)


async def test_a_fragmented_message_is_not_interrupted_by_the_fast_path() -> None:
    # A complete text frame inside a fragmented message is a protocol error (RFC 6455 5.4):
    # the fast path must leave it to wsproto rather than deliver it.
    with trio.fail_after(10):
        async with open_raw_peer() as peer:
            await peer.send_bytes(frame(b'{"jsonrpc":', fin=False) + frame(_message(1).encode()))
            closed = await peer.wait_closed()
            assert closed is not None
            assert closed.code == 1002
            rest = [item async for item in peer.endpoint.read]
            assert [type(item) for item in rest] == [ConnectionClosedError]


@pytest.mark.parametrize("raw_role", ["server", "client"])
async def test_size_limit_on_the_fast_path_is_in_bytes(raw_role: Role) -> None:
    masked = raw_role == "client"
    fits = '"' + "é" * 49 + '"'  # 51 characters, 100 bytes
    with trio.fail_after(10):
        async with open_raw_peer(raw_role=raw_role, max_message_size=100) as peer:
            await peer.send_bytes(frame(fits.encode(), masked=masked))
            assert isinstance(await peer.endpoint.read.receive(), Exception)  # not JSON-RPC, but read
            await peer.send_bytes(frame(fits.encode() + b" ", masked=masked))
            closed = await peer.wait_closed()
            assert closed is not None
            assert closed.code == 1009


@pytest.mark.parametrize("chunk", [0, 1, 7])
async def test_a_frame_sent_with_the_101_is_delivered(chunk: int) -> None:
    """A server may send its first frame with its 101, in one write or split anywhere (real sockets)."""
    message = _message(3)

    async def server(stream: trio.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        request: Request | None = None
        while request is None:
            ws.receive_data(await stream.receive_some(65_536))
            request = next((event for event in ws.events() if isinstance(event, Request)), None)
        accept = ws.send(AcceptConnection(subprotocol="mcp" if "mcp" in request.subprotocols else None))
        data = accept + ws.send(TextMessage(data=message))
        for start in range(0, len(data), chunk or len(data)):
            await stream.send_all(data[start : start + (chunk or len(data))])
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, server, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            async with websocket_client(f"ws://127.0.0.1:{port}/mcp") as (read, _write):
                item = await read.receive()
                assert isinstance(item, SessionMessage)
                assert item.message == decode(message)
                nursery.cancel_scope.cancel()


@pytest.mark.parametrize("raw_role", ["server", "client"])
async def test_bytes_after_the_close_handshake_are_dropped(
    raw_role: Role, caplog: pytest.LogCaptureFixture
) -> None:
    # A close frame and more frames in one read: once the handshake is done the rest is
    # dropped (wsproto refuses data after CLOSED), never an internal error in the reader.
    masked = raw_role == "client"
    close = frame(struct.pack("!H", 1000), opcode=8, masked=masked)
    with trio.fail_after(10):
        async with open_raw_peer(raw_role=raw_role, close_timeout=0.5) as peer:
            await peer.send_bytes(close + frame(_message(1).encode(), masked=masked) * 3)
            assert [item async for item in peer.endpoint.read] == []
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
