"""permessage-deflate: negotiation in both roles, the bounded inflate, and what runs after it.

Rules as in tests/conftest.py: loopback sockets (127.0.0.1, port 0), a ``trio.fail_after``
around every I/O test, no sleeps. The peers are ours (`serve`, `websocket_client`) and raw
ones that write the handshake and frames by hand, so a test controls exactly what is
offered, answered and sent; what crosses the wire is counted by a relay (tests/interop).
"""

from __future__ import annotations

import base64
import hashlib
import struct
import tracemalloc
import zlib
from functools import partial
from typing import TYPE_CHECKING, Any

import mcp_types as t
import pytest
import trio
from mcp.shared.message import SessionMessage

from tests._peers import serve_streams
from tests.interop._relay import start_relay
from trio_mcp_ws import (
    ConnectionClosedError,
    Deflate,
    HandshakeError,
    MessageDecodeError,
    ServerInfo,
    serve,
    websocket_client,
)
from trio_mcp_ws._deflate import resolve_compression
from trio_mcp_ws._options import Limits
from trio_mcp_ws._wsconn import WsConnection

if TYPE_CHECKING:
    from trio_mcp_ws import Handler, ReadChannel, WriteChannel

MIB = 1024 * 1024
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = base64.b64encode(b"0123456789abcdef")
OP_CONT, OP_TEXT, OP_CLOSE, OP_PING = 0x0, 0x1, 0x8, 0x9
CLOSE_1000 = struct.pack("!H", 1000)


# -- helpers ---------------------------------------------------------------------------


def deflate(data: bytes) -> bytes:
    """One message as a permessage-deflate sender puts it on the wire (tail stripped)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def bomb(size: int) -> bytes:
    """Raw deflate of ``size`` zero bytes (a multiple of 1 MiB), about ``size / 1000`` bytes long.

    Built without compressing ``size`` bytes: after a full flush the compressor starts over,
    so every further MiB of zeros deflates to the same bytes as the first.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * (size // MIB)


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """One client-to-server frame, masked with the all-zero key (so the payload reads as is)."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + b"\0\0\0\0" + payload


def server_frame(opcode: int, payload: bytes, *, rsv1: bool = False) -> bytes:
    """One unmasked server-to-client frame."""
    head = bytes([0x80 | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def note(data: str) -> SessionMessage:
    return SessionMessage(t.JSONRPCNotification(jsonrpc="2.0", method="x", params={"data": data}))


def as_text(message: SessionMessage) -> str:
    assert isinstance(message.message, t.JSONRPCNotification)
    params = message.message.params
    assert params is not None
    value = params["data"]
    assert isinstance(value, str)
    return value


async def read_head(stream: trio.abc.Stream) -> tuple[int, dict[str, str], bytes]:
    """An HTTP response or request head: (status or 0, lower-cased headers, bytes after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise AssertionError(f"connection closed in the head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    first, *lines = head.decode("latin-1").split("\r\n")
    parts = first.split(" ")
    status = int(parts[1]) if first.startswith("HTTP/") else 0
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


async def raw_client(port: int, extensions: str | None) -> tuple[trio.SocketStream, int, dict[str, str]]:
    """Open a connection to our server at /mcp offering ``extensions``; return the answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    lines = [
        "GET /mcp HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY.decode()}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: mcp",
    ]
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, headers, rest = await read_head(stream)
    assert not rest
    return stream, status, headers


class Recorder:
    """A `serve` handler that keeps everything its read channel delivers, until it ends."""

    def __init__(self) -> None:
        self.items: list[SessionMessage | Exception] = []
        self.ended = trio.Event()

    async def __call__(self, read: ReadChannel, write: WriteChannel) -> None:
        async with write:
            async for item in read:
                self.items.append(item)
        self.ended.set()

    def close_code(self) -> int | None:
        closes = [item for item in self.items if isinstance(item, ConnectionClosedError)]
        return closes[-1].code if closes else None


async def ignore(message: str | bytes) -> None:
    """A sink for a raw connection's incoming messages."""


async def echo(read: ReadChannel, write: WriteChannel) -> None:
    async with write:
        async for item in read:
            if isinstance(item, SessionMessage):
                await write.send(item)


async def start_server(nursery: trio.Nursery, handler: Handler, **options: Any) -> ServerInfo:
    info: ServerInfo = await nursery.start(
        partial(serve, handler, "127.0.0.1", 0, ping_interval=None, **options)
    )
    return info


# -- settings --------------------------------------------------------------------------


def test_settings_are_checked_and_deflate_means_the_defaults() -> None:
    assert resolve_compression(None) is None
    assert resolve_compression("deflate") == Deflate() == Deflate(level=1, window_bits=12)
    custom = Deflate(level=6, window_bits=15)
    assert resolve_compression(custom) is custom
    for bad in ({"level": 10}, {"level": -1}, {"level": True}, {"window_bits": 8}, {"window_bits": 16}):
        with pytest.raises(ValueError, match="Deflate"):
            Deflate(**bad)
    with pytest.raises(ValueError, match="compression must be"):
        resolve_compression("gzip")  # type: ignore[arg-type]


# -- negotiation, server side ----------------------------------------------------------

OFFERS = [
    ("permessage-deflate", ""),
    ("permessage-deflate; client_max_window_bits", ""),
    ("permessage-deflate; client_max_window_bits=10; client_no_context_takeover", ""),
    ("permessage-deflate; server_no_context_takeover", "server_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=10", "server_max_window_bits=10"),
    ("permessage-deflate; server_max_window_bits=15", "server_max_window_bits=12"),
    ('permessage-deflate; server_max_window_bits="9"', "server_max_window_bits=9"),
    # Malformed or unusable offers are declined, and the next one in the list is taken.
    ("permessage-deflate; server_max_window_bits=8, permessage-deflate", ""),
    ("permessage-deflate; server_max_window_bits=x, permessage-deflate; server_no_context_takeover",
     "server_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=010", None),
    ("permessage-deflate; server_max_window_bits", None),
    ("permessage-deflate; client_max_window_bits=16", None),
    ("permessage-deflate; client_no_context_takeover=1", None),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
    ("permessage-deflate; x-unknown", None),
    ("x-webkit-deflate-frame", None),
    # Only the first acceptable offer is answered.
    ("permessage-deflate; server_no_context_takeover, permessage-deflate", "server_no_context_takeover"),
]  # fmt: skip


@pytest.mark.parametrize(("offer", "answer"), OFFERS)
async def test_server_answers_each_offer(offer: str, answer: str | None) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            info = await start_server(nursery, echo, compression="deflate")
            stream, status, headers = await raw_client(info.port, offer)
            await stream.aclose()
            nursery.cancel_scope.cancel()
    assert status == 101
    expected = None if answer is None else ("permessage-deflate; " + answer).rstrip("; ")
    assert headers.get("sec-websocket-extensions") == expected


async def test_server_without_compression_accepts_no_offer() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            info = await start_server(nursery, echo)
            stream, status, headers = await raw_client(info.port, "permessage-deflate")
            await stream.aclose()
            nursery.cancel_scope.cancel()
    assert status == 101
    assert "sec-websocket-extensions" not in headers


# -- negotiation, client side ----------------------------------------------------------


async def serve_answering(nursery: trio.Nursery, extensions: str | None) -> tuple[int, list[str | None]]:
    """A raw server that upgrades with ``Sec-WebSocket-Extensions: extensions``; keeps each offer."""
    offers: list[str | None] = []

    async def handler(stream: trio.SocketStream) -> None:
        _, headers, _ = await read_head(stream)
        offers.append(headers.get("sec-websocket-extensions"))
        accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest())
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept.decode()}",
            "Sec-WebSocket-Protocol: mcp",
        ]
        if extensions is not None:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
        while await stream.receive_some(65536):
            pass

    return await serve_streams(nursery, handler), offers


@pytest.mark.parametrize(
    "answer",
    [
        "permessage-deflate; client_max_window_bits=8",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=99",
        "permessage-deflate; server_max_window_bits=ten",
        "permessage-deflate; client_no_context_takeover=yes",
        "permessage-deflate; mystery",
        "permessage-deflate, permessage-deflate",
        "x-webkit-deflate-frame",
    ],
)
async def test_client_fails_the_handshake_on_a_bad_answer(answer: str) -> None:
    """A server that gets the negotiation wrong is a `HandshakeError` at once, not a timeout."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port, offers = await serve_answering(nursery, answer)
            with pytest.raises(HandshakeError, match="invalid WebSocket handshake response"):
                async with websocket_client(
                    f"ws://127.0.0.1:{port}/mcp", compression="deflate", connect_timeout=8
                ):
                    pass  # pragma: no cover - the handshake fails
            nursery.cancel_scope.cancel()
    assert offers == ["permessage-deflate; client_max_window_bits"]


async def test_client_without_compression_refuses_an_unoffered_extension() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port, offers = await serve_answering(nursery, "permessage-deflate")
            with pytest.raises(HandshakeError, match="unrecognized extension"):
                async with websocket_client(f"ws://127.0.0.1:{port}/mcp", connect_timeout=8):
                    pass  # pragma: no cover - the handshake fails
            nursery.cancel_scope.cancel()
    assert offers == [None]


# -- ours <-> ours ---------------------------------------------------------------------

TEXT = " ".join(f"tool_{i} returns the value of field {i % 17} for the query" for i in range(800))
"""About 45 KB of repetitive JSON-ish text, which deflates well."""


@pytest.mark.parametrize(
    ("client", "server"),
    [
        (None, None),
        ("deflate", None),
        (None, "deflate"),
        ("deflate", "deflate"),
        (Deflate(level=0), Deflate(level=9, window_bits=15)),
        (Deflate(level=9, window_bits=9), Deflate(level=6, window_bits=9)),
    ],
)
async def test_round_trips_and_compresses_only_when_both_sides_agree(
    client: Deflate | str | None, server: Deflate | str | None
) -> None:
    count = 10
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            info = await start_server(nursery, echo, compression=server)
            relay_port, counts = await start_relay(nursery, info.port)
            async with websocket_client(
                f"ws://127.0.0.1:{relay_port}/mcp",
                compression=client,  # type: ignore[arg-type]
                ping_interval=None,
            ) as (read, write):
                for i in range(count):
                    await write.send(note(f"{i} {TEXT}"))
                    item = await read.receive()
                    assert isinstance(item, SessionMessage), item
                    assert as_text(item) == f"{i} {TEXT}"
            nursery.cancel_scope.cancel()
    sent = count * len(TEXT)
    both = client is not None and server is not None
    stored = isinstance(client, Deflate) and client.level == 0
    if both:
        # Level 0 stores (the client's messages grow a little); the server still deflates.
        assert counts.down < sent / 4, counts
        assert (counts.up > sent) if stored else (counts.up < sent / 4), counts
    else:
        assert counts.up > sent, counts
        assert counts.down > sent, counts


# -- the bounded inflate ---------------------------------------------------------------


async def test_bomb_helper_inflates_to_what_it_says() -> None:
    data = bomb(4 * MIB)
    assert len(data) < 5000
    assert zlib.decompressobj(-15).decompress(data + b"\x00\x00\xff\xff") == bytes(4 * MIB)


async def send_bomb(port: int, frames: list[bytes]) -> None:
    stream, status, headers = await raw_client(port, "permessage-deflate")
    assert status == 101
    assert headers["sec-websocket-extensions"] == "permessage-deflate"
    try:
        for data in frames:
            await stream.send_all(data)
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:
        pass  # the server closed with unread data in its buffer: a reset
    finally:
        await stream.aclose()


@pytest.mark.parametrize(
    ("limit", "inflated", "fragments"),
    [
        (64 * 1024, 1 * MIB, 1),  # a 1 KB frame inflating to 1 MiB (deflate's ratio tops out near 1032:1)
        (4 * MIB, 1024 * MIB, 1),  # a 1 MB frame inflating to 1 GiB, against the default limit
        (1 * MIB, 64 * MIB, 64),  # the same, spread over 64 frames of one message
    ],
    ids=["1KB-to-1MiB", "1MB-to-1GiB", "fragmented"],
)
async def test_a_decompression_bomb_closes_with_1009_within_the_limit(
    limit: int, inflated: int, fragments: int
) -> None:
    payload = bomb(inflated)
    step = -(-len(payload) // fragments)
    pieces = [payload[i : i + step] for i in range(0, len(payload), step)]
    frames = [
        client_frame(OP_TEXT if i == 0 else OP_CONT, piece, fin=i == len(pieces) - 1, rsv1=i == 0)
        for i, piece in enumerate(pieces)
    ]
    recorder = Recorder()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            info = await start_server(nursery, recorder, compression="deflate", max_message_size=limit)
            tracemalloc.start()
            try:
                await send_bomb(info.port, frames)
                await recorder.ended.wait()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            nursery.cancel_scope.cancel()
    assert recorder.close_code() == 1009, recorder.items
    assert not any(isinstance(item, SessionMessage) for item in recorder.items)
    # The inflater hands out at most limit + 1 bytes; wsproto copies a chunk about three times
    # (bytes, bytearray, the frame's bytes) and decodes it as UTF-8 once: a few times the
    # limit, never the 1 GiB the frame holds.
    assert peak < 6 * limit + 2 * MIB, f"peak {peak / MIB:.1f} MiB for a {limit / MIB:.2f} MiB limit"


async def test_a_message_at_the_limit_inflates_whole() -> None:
    limit = 256 * 1024
    text = '{"jsonrpc":"2.0","method":"x","params":{"data":"' + "a" * (limit - 60) + '"}}'
    text += " " * (limit - len(text))
    recorder = Recorder()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            info = await start_server(nursery, recorder, compression="deflate", max_message_size=limit)
            frames = [
                client_frame(OP_TEXT, deflate(text.encode()), rsv1=True),
                client_frame(OP_CLOSE, CLOSE_1000),
            ]
            await send_bomb(info.port, frames)
            await recorder.ended.wait()
            nursery.cancel_scope.cancel()
    messages = [item for item in recorder.items if isinstance(item, SessionMessage)]
    assert len(messages) == 1
    assert as_text(messages[0]) == "a" * (limit - 60)


async def test_our_client_closes_a_bomb_from_the_server_with_1009() -> None:
    async def handler(stream: trio.SocketStream) -> None:
        _, headers, _ = await read_head(stream)
        accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest())
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: mcp\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
            + server_frame(OP_TEXT, bomb(64 * MIB), rsv1=True)
        )
        while await stream.receive_some(65536):
            pass

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await serve_streams(nursery, handler)
            async with websocket_client(
                f"ws://127.0.0.1:{port}/mcp", compression="deflate", max_message_size=MIB, close_timeout=2
            ) as (read, _):
                items = [item async for item in read]
            nursery.cancel_scope.cancel()
    assert len(items) == 1, items
    assert isinstance(items[0], ConnectionClosedError)
    assert items[0].code == 1009
    assert "once decompressed" in (items[0].reason or "")


# -- after inflation: the codec's budgets; bad use of the extension --------------------


async def test_hostile_frame_budgets_apply_to_the_inflated_text() -> None:
    """A 200 KB frame of nesting deflates to a few hundred bytes; decode still refuses it."""
    recorder = Recorder()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            info = await start_server(nursery, recorder, compression="deflate")
            stream = await trio.open_tcp_stream("127.0.0.1", info.port)
            conn = await WsConnection.connect(
                stream,
                host=f"127.0.0.1:{info.port}",
                resource="/mcp",
                subprotocols=["mcp"],
                extra_headers=[],
                limits=Limits(ping_interval=None),
                compression=Deflate(),
            )
            good = '{"jsonrpc":"2.0","method":"x","params":{"data":"after"}}'
            await conn.send_texts(["[" * 200_000, good])
            await conn.close(1000)
            await conn.run_reader(ignore)
            await recorder.ended.wait()
            nursery.cancel_scope.cancel()
    assert isinstance(recorder.items[0], MessageDecodeError), recorder.items
    assert isinstance(recorder.items[1], SessionMessage)
    assert as_text(recorder.items[1]) == "after"


@pytest.mark.parametrize(
    ("offer", "frames", "code"),
    [
        ("permessage-deflate", [client_frame(OP_PING, b"", rsv1=True)], 1002),
        (
            "permessage-deflate",
            [
                client_frame(OP_TEXT, deflate(b"[1,"), fin=False, rsv1=True),
                client_frame(OP_CONT, b"x", rsv1=True),
            ],
            1002,
        ),
        ("permessage-deflate", [client_frame(OP_TEXT, b"\xff\xfe not deflate", rsv1=True)], 1007),
        (None, [client_frame(OP_TEXT, deflate(b'{"jsonrpc":"2.0","method":"x"}'), rsv1=True)], 1002),
    ],
    ids=["rsv1-on-ping", "rsv1-on-continuation", "invalid-deflate", "rsv1-not-negotiated"],
)
async def test_bad_use_of_the_extension_closes_with_a_clear_code(
    offer: str | None, frames: list[bytes], code: int
) -> None:
    recorder = Recorder()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            info = await start_server(nursery, recorder, compression="deflate")
            stream, status, _ = await raw_client(info.port, offer)
            assert status == 101
            for data in frames:
                await stream.send_all(data)
            await recorder.ended.wait()
            await stream.aclose()
            nursery.cancel_scope.cancel()
    assert recorder.close_code() == code, recorder.items


async def test_an_offered_client_no_context_takeover_does_not_bind_the_client() -> None:
    """We do not answer client_no_context_takeover, so the client may keep its context."""
    body = '{"jsonrpc":"2.0","method":"x","params":{"data":"' + "same words again " * 20 + '"}}'
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    frames = [
        client_frame(
            OP_TEXT,
            (compressor.compress(body.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4],
            rsv1=True,
        )
        for _ in range(2)
    ]
    assert len(frames[1]) < len(frames[0]) / 2  # the second message refers back to the first
    recorder = Recorder()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            info = await start_server(nursery, recorder, compression="deflate")
            stream, status, headers = await raw_client(
                info.port, "permessage-deflate; client_no_context_takeover"
            )
            assert status == 101
            assert headers["sec-websocket-extensions"] == "permessage-deflate"
            for data in [*frames, client_frame(OP_CLOSE, CLOSE_1000)]:
                await stream.send_all(data)
            await recorder.ended.wait()
            await stream.aclose()
            nursery.cancel_scope.cancel()
    assert [type(item) for item in recorder.items] == [SessionMessage, SessionMessage]
