"""Fragment floods (issue 10, item 6): a bound on frames per message, and per-frame overhead.

A message may arrive in at most ``Limits.max_frames_per_message`` (4096) frames, and each frame
after the first counts `FRAME_OVERHEAD` bytes against ``max_message_size``; either way the
connection closes with 1009 and a reason saying which. Each test speaks WebSocket by hand
(masked client frames, zero key) to a real `serve` on loopback, reads the server's close
frame with wsproto, and then checks that the server still serves a real client.
"""

from __future__ import annotations

from collections import Counter
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from tests.test_server_helpers import round_trip, running
from trio_mcp_ws._options import MAX_FRAMES_PER_MESSAGE
from trio_mcp_ws._wsconn import FRAME_OVERHEAD, FRAMES_PER_CHECKPOINT, WsConnection

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    import pytest
    from wsproto.events import Event

    from trio_mcp_ws._connection import Sink

OP_CONT, OP_TEXT = 0x0, 0x1


def masked(opcode: int, payload: bytes, *, fin: bool) -> bytes:
    """One client frame, masked with a zero key (so the payload goes on the wire as is)."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        head = bytes((first, 0x80 | size))
    elif size < 1 << 16:
        head = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def fragmented(text: bytes, frames: int) -> bytes:
    """``text`` as one text message in exactly ``frames`` frames (empty ones after the text)."""
    parts = [text] + [b""] * (frames - 1)
    return b"".join(
        masked(OP_TEXT if i == 0 else OP_CONT, part, fin=i == frames - 1) for i, part in enumerate(parts)
    )


class Peer:
    """The client end of one connection: raw bytes out, wsproto events in."""

    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self.pending: list[TextMessage | CloseConnection] = []

    async def send_until_closed(self, data: bytes, times: int) -> int:
        """Send ``data`` up to ``times`` times; stop when the server stops reading. Returns how many."""
        sent = 0
        try:
            for _ in range(times):
                await self.stream.send_all(data)
                sent += 1
        except trio.BrokenResourceError:
            pass
        return sent

    async def next(self) -> TextMessage | CloseConnection | None:
        """The next message event or the close frame; None once the server closed TCP."""
        while not self.pending:
            try:
                chunk = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                chunk = b""
            if not chunk:
                return None
            self.ws.receive_data(chunk)
            self.pending.extend(e for e in self.ws.events() if isinstance(e, (TextMessage, CloseConnection)))
        return self.pending.pop(0)

    async def events(self) -> list[TextMessage | CloseConnection]:
        """Every message event up to and including the close frame (or the TCP close)."""
        seen: list[TextMessage | CloseConnection] = []
        while (event := await self.next()) is not None:
            seen.append(event)
            if isinstance(event, CloseConnection):
                break
        return seen


@asynccontextmanager
async def peer(port: int) -> AsyncGenerator[Peer, None]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=f"127.0.0.1:{port}", target="/mcp", subprotocols=["mcp"])))
        accepted = False
        while not accepted:
            ws.receive_data(await stream.receive_some(65536))
            accepted = any(isinstance(event, AcceptConnection) for event in ws.events())
        yield Peer(stream, ws)


# The server answers a flood with its close frame at once, then waits close_timeout for the
# answer a flooder never sends (reading on meanwhile): shortened so the tests run quickly.
FLOOD_CLOSE_TIMEOUT = 1.0

PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


async def test_a_message_in_max_frames_is_delivered() -> None:
    with trio.fail_after(30):
        async with running() as info, peer(info.port) as client:
            await client.stream.send_all(fragmented(PING, MAX_FRAMES_PER_MESSAGE))
            echoed = await client.next()
            assert isinstance(echoed, TextMessage)
            assert echoed.data.encode() == PING
            await client.stream.send_all(masked(0x8, b"\x03\xe8", fin=True))  # close 1000
            closed = await client.next()
            assert isinstance(closed, CloseConnection)
            assert closed.code == 1000


async def test_empty_continuation_flood_closes_with_1009() -> None:
    """5,000,000 empty continuation frames, sent while the server reads: refused after 4096."""
    empty = masked(OP_CONT, b"", fin=False)
    with trio.fail_after(60):
        async with running(close_timeout=FLOOD_CLOSE_TIMEOUT) as info:
            async with peer(info.port) as client, trio.open_nursery() as nursery:
                seen: list[TextMessage | CloseConnection] = []

                async def read() -> None:
                    seen.extend(await client.events())

                nursery.start_soon(read)
                await client.stream.send_all(masked(OP_TEXT, b"", fin=False))
                sent = await client.send_until_closed(empty * 10_000, 500)
            assert sent < 500, "the server read all 5,000,000 frames without closing"
            assert len(seen) == 1
            assert isinstance(seen[0], CloseConnection)
            assert (seen[0].code, seen[0].reason) == (
                1009,
                f"message in more than {MAX_FRAMES_PER_MESSAGE} frames",
            )
            await round_trip(info.url)


async def test_one_byte_fragments_close_with_1009() -> None:
    """A 4 MiB message in 1-byte fragments is refused at frame 4097, not assembled."""
    byte = masked(OP_CONT, b" ", fin=False)
    with trio.fail_after(60):
        async with running(close_timeout=FLOOD_CLOSE_TIMEOUT) as info:
            async with peer(info.port) as client, trio.open_nursery() as nursery:
                seen: list[TextMessage | CloseConnection] = []

                async def read() -> None:
                    seen.extend(await client.events())

                nursery.start_soon(read)
                await client.stream.send_all(masked(OP_TEXT, b"{", fin=False))
                await client.send_until_closed(byte * 8192, 4 * 1024 * 1024 // 8192)
            assert len(seen) == 1
            assert isinstance(seen[0], CloseConnection)
            assert (seen[0].code, seen[0].reason) == (
                1009,
                f"message in more than {MAX_FRAMES_PER_MESSAGE} frames",
            )
            await round_trip(info.url)


async def test_frame_overhead_counts_against_max_message_size() -> None:
    """Empty frames weigh `FRAME_OVERHEAD` bytes each: enough of them exceed the size limit."""
    limit = 1024
    frames_at_limit = limit // FRAME_OVERHEAD + 1  # the first frame is free
    with trio.fail_after(30):
        async with running(max_message_size=limit) as info:
            async with peer(info.port) as client:
                await client.stream.send_all(fragmented(b"", frames_at_limit))  # 1,024 bytes: fits
                await client.stream.send_all(fragmented(b"", frames_at_limit + 1))  # 1,032: over
                seen = await client.events()
            # The first (empty, undecodable) message is answered by nobody: the echo handler
            # drops errors. The second closes the connection.
            assert len(seen) == 1
            assert isinstance(seen[0], CloseConnection)
            assert (seen[0].code, seen[0].reason) == (1009, f"message exceeds the limit of {limit} bytes")
            await round_trip(info.url)


class TaskSteps(trio.abc.Instrument):
    """Numbers every task step, so that work done within one step can be counted."""

    def __init__(self) -> None:
        self.step = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.step += 1


async def test_a_flood_is_parsed_in_bounded_steps_and_not_past_the_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10,000 empty frames in one send: the server acts on 4,097 of them, the last one
    closing with 1009, and lets other tasks run every `FRAMES_PER_CHECKPOINT` frames."""
    steps = TaskSteps()
    per_step: Counter[int] = Counter()
    original = WsConnection._on_event  # pyright: ignore[reportPrivateUsage]

    async def counting(self: WsConnection, event: Event, sink: Sink) -> bool:
        if not self.client:
            per_step[steps.step] += 1
        return await original(self, event, sink)

    monkeypatch.setattr(WsConnection, "_on_event", counting)
    flood = masked(OP_TEXT, b"", fin=False) + masked(OP_CONT, b"", fin=False) * 10_000
    trio.lowlevel.add_instrument(steps)
    try:
        with trio.fail_after(30):
            async with running(close_timeout=FLOOD_CLOSE_TIMEOUT) as info:
                async with peer(info.port) as client:
                    await client.stream.send_all(flood)
                    seen = await client.events()
                assert [
                    (event.code, event.reason) for event in seen if isinstance(event, CloseConnection)
                ] == [(1009, f"message in more than {MAX_FRAMES_PER_MESSAGE} frames")]
    finally:
        trio.lowlevel.remove_instrument(steps)
    assert sum(per_step.values()) == MAX_FRAMES_PER_MESSAGE + 1
    assert max(per_step.values()) <= FRAMES_PER_CHECKPOINT
