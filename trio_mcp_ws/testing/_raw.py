"""`open_raw_peer`: one of our transports facing a WebSocket peer that sends anything at all.

The peer is a sans-IO `wsproto.WSConnection` for what must be right (the opening handshake
and parsing what our side sends) plus a byte-level frame writer for what may be wrong:
invalid UTF-8 in text frames, reserved bits and opcodes, bad fragmentation, unmasked
client frames, any close code. Our side is an ordinary `Endpoint`, running the production
connection and pump over an in-memory stream.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from .._options import DEFAULT_MAX_MESSAGE_SIZE, SUBPROTOCOL, Limits
from .._scope import background_nursery
from .._trio_only import require_trio
from .._wsconn import WsConnection, read_request
from ._memory import DEFAULT_BUFFER_SIZE, bounded_stream_pair
from ._pair import Endpoint, Role, close_on_exit

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

__all__ = ["RawPeer", "open_raw_peer"]

logger = logging.getLogger("trio_mcp_ws")

# Frame opcodes (RFC 6455 section 5.2); `send_frame` takes any value 0..15.
OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

# The masking key of every masked frame the peer sends: fixed, so tests are reproducible
# (RFC 6455 section 5.3 wants it unpredictable, which only matters against proxies).
_MASK_KEY: Final = b"\x37\xfa\x21\x3d"

_RECEIVE_SIZE: Final = 64 * 1024


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None
) -> bytes:
    """One WebSocket frame, exactly as given, whether or not it is valid."""
    if not 0 <= opcode <= 0xF:
        raise ValueError(f"opcode must be 0..15, not {opcode!r}")
    if not 0 <= rsv <= 0b111:
        raise ValueError(f"rsv must be 0..7, not {rsv!r}")
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    size = len(payload)
    if size < 126:
        head.append(mask_bit | size)
    elif size < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", size)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", size)
    if mask is None:
        return bytes(head) + payload
    if len(mask) != 4:
        raise ValueError("a masking key is 4 bytes")
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes(head) + mask + masked


class RawPeer:
    """The far end of one of our transports, driven by hand, frame by frame.

    Sending: `send_text`, `send_binary`, `send_ping`, `send_close` write one frame each,
    and `send_frame` / `send_bytes` write anything at all, so a test can do what a
    well-behaved peer never would. Receiving: a background task reads what our side sends,
    answers its pings (unless `answer_pings` is false) and its close frame (unless
    `answer_close` is false), and queues everything for `receive_event`,
    `receive_message` and `wait_closed`.

    Create one with `open_raw_peer`; ``peer.endpoint`` is our side.
    """

    def __init__(self, stream: trio.abc.Stream, ws: WSConnection, role: Role, endpoint: Endpoint) -> None:
        self.role: Role = role
        """The role this peer played in the opening handshake; ``endpoint`` played the other."""
        self.endpoint = endpoint
        """Our side of the connection: the transport under test."""
        self.answer_pings = True
        """Whether the peer answers our pings; set to ``False`` to play a dead peer."""
        self.answer_close = True
        """Whether the peer answers our close frame (and, as a server, then closes TCP)."""
        self.stream = stream
        """The peer's byte stream, for tests that need it raw."""
        self._ws = ws
        self._send_lock = trio.StrictFIFOLock()
        self._events_in, self._events = trio.open_memory_channel[Event](float("inf"))
        self._pending: deque[Event] = deque()
        self._close_sent = False
        self._close_received: CloseConnection | None = None
        self._eof = trio.Event()

    def __repr__(self) -> str:
        return f"<RawPeer {self.role} facing {self.endpoint!r}>"

    # -- state --------------------------------------------------------------------------

    @property
    def close_code(self) -> int | None:
        """The code of the close frame our side sent, once the peer has read it."""
        return None if self._close_received is None else self._close_received.code

    @property
    def eof(self) -> bool:
        """Whether the TCP connection has closed (by either side, or `drop`)."""
        return self._eof.is_set()

    # -- sending ------------------------------------------------------------------------

    async def send_bytes(self, data: bytes) -> None:
        """Write bytes to the connection as they are: half a frame, garbage, anything.

        Raises:
            trio.BrokenResourceError: Our side has closed the connection.
            trio.ClosedResourceError: This peer dropped it (`drop`).
        """
        async with self._send_lock:
            await self.stream.send_all(data)

    async def send_frame(
        self, opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bool | None = None
    ) -> None:
        """Write one frame exactly as given, valid or not.

        Args:
            opcode: 0..15, including the reserved ones (``wsproto.frame_protocol.Opcode``
                names the valid ones).
            payload: The payload bytes, unchecked (a text frame may hold invalid UTF-8).
            fin: The FIN bit; ``False`` starts or continues a fragmented message.
            rsv: The three RSV bits as a number 0..7; anything but 0 is a protocol error.
            mask: Whether to mask the payload; default: as the role requires (a client
                masks, a server does not). The opposite is a protocol error.
        """
        if mask is None:
            mask = self.role == "client"
        await self.send_bytes(
            encode_frame(opcode, payload, fin=fin, rsv=rsv, mask=_MASK_KEY if mask else None)
        )

    async def send_text(self, text: str | bytes) -> None:
        """Send one text frame holding ``text``.

        A ``str`` is encoded as UTF-8, with lone surrogates passed through as the invalid
        bytes they would be; ``bytes`` are sent as they are. Either way invalid UTF-8 reaches
        our side, which must close the connection with 1007.
        """
        payload = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        await self.send_frame(OP_TEXT, payload)

    async def send_binary(self, data: bytes) -> None:
        """Send one binary frame holding ``data``."""
        await self.send_frame(OP_BINARY, data)

    async def send_ping(self, payload: bytes = b"") -> None:
        """Send a ping; our side's pong arrives as a ``wsproto.events.Pong`` event."""
        await self.send_frame(OP_PING, payload)

    async def send_close(self, code: int | None = 1000, reason: str | bytes = "") -> None:
        """Send a close frame with any code (even an invalid one) and reason.

        ``code=None`` sends an empty close frame (our side then sees 1005, "no status").
        The peer answers nothing after this; our side's answering close frame shows up in
        `wait_closed`. As a server, close TCP afterwards yourself if the test needs it
        (`drop`).
        """
        payload = b""
        if code is not None:
            payload = struct.pack("!H", code) + (reason.encode() if isinstance(reason, str) else reason)
        self._close_sent = True
        await self.send_frame(OP_CLOSE, payload)

    async def drop(self) -> None:
        """Close the TCP connection at once, with no close frame: our side sees 1006."""
        self._close_sent = True
        await trio.aclose_forcefully(self.stream)
        self._eof.set()

    # -- receiving ----------------------------------------------------------------------

    async def receive_event(self) -> Event | None:
        """The next wsproto event from our side, or ``None`` once the connection closed.

        Events: ``TextMessage`` / ``BytesMessage`` (possibly one fragment of a message),
        ``Ping`` (our keepalive), ``Pong`` (answers to `send_ping`), ``CloseConnection``.
        """
        if self._pending:
            await trio.lowlevel.checkpoint()
            return self._pending.popleft()
        try:
            return await self._events.receive()
        except trio.EndOfChannel:
            return None

    async def receive_message(self) -> str | bytes | None:
        """The next complete message from our side, skipping pings and pongs.

        Returns:
            The text (``str``) or binary (``bytes``) message, or ``None`` when our side's
            close frame (still available to `wait_closed`) or the end of the connection
            comes first.
        """
        parts: list[str | bytes] = []
        while True:
            event = await self.receive_event()
            if event is None:
                return None
            if isinstance(event, CloseConnection):
                self._pending.appendleft(event)
                return None
            if isinstance(event, (TextMessage, BytesMessage)):
                data = event.data
                parts.append(data if isinstance(data, str) else bytes(data))
                if event.message_finished:
                    if isinstance(event, TextMessage):
                        return "".join(part for part in parts if isinstance(part, str))
                    return b"".join(part for part in parts if isinstance(part, bytes))

    async def wait_closed(self) -> CloseConnection | None:
        """Skip to our side's close frame and return it; ``None`` if TCP closed without one."""
        while True:
            event = await self.receive_event()
            if event is None or isinstance(event, CloseConnection):
                return event

    async def wait_eof(self) -> None:
        """Wait until the TCP connection has closed, reading (and queueing) what arrives."""
        await self._eof.wait()

    # -- the reader task ----------------------------------------------------------------

    async def _read(self) -> None:
        """Read and parse what our side sends; answer pings and closes as configured."""
        async with self._events_in:
            while True:
                for event in self._ws.events():
                    await self._events_in.send(event)
                    if isinstance(event, Ping) and self.answer_pings and not self._close_sent:
                        await self._try_send(encode_frame(OP_PONG, event.payload, mask=self._mask()))
                    elif isinstance(event, CloseConnection):
                        await self._on_close(event)
                try:
                    data = await self.stream.receive_some(_RECEIVE_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    self._eof.set()
                    return
                if self._close_received is None:
                    self._ws.receive_data(bytes(data))

    async def _on_close(self, event: CloseConnection) -> None:
        if self._close_received is not None:
            return
        self._close_received = event
        if not self.answer_close:
            return
        if not self._close_sent:
            self._close_sent = True
            payload = b"" if event.code == 1005 else struct.pack("!H", event.code)
            await self._try_send(encode_frame(OP_CLOSE, payload, mask=self._mask()))
        if self.role == "server":
            # RFC 6455 section 7.1.1: the server closes TCP once the close handshake is done.
            await trio.aclose_forcefully(self.stream)

    def _mask(self) -> bytes | None:
        return _MASK_KEY if self.role == "client" else None

    async def _try_send(self, data: bytes) -> None:
        try:
            await self.send_bytes(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # our side is gone; nothing to answer


@asynccontextmanager
async def open_raw_peer(
    *,
    raw_role: Role = "server",
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    close_timeout: float = 10.0,
    ping_interval: float | None = None,
    ping_timeout: float = 20.0,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    subprotocol: str | None = SUBPROTOCOL,
) -> AsyncGenerator[RawPeer, None]:
    r"""Connect one of our transports to a raw WebSocket peer, in memory.

    ```python
    async with open_raw_peer() as peer:
        await peer.send_text('{"jsonrpc": "2.0", "method": 1}')   # not a valid message
        assert isinstance(await peer.endpoint.read.receive(), MessageDecodeError)
        await peer.send_text(b'"\xff"')                             # invalid UTF-8
        assert (await peer.wait_closed()).code == 1007
    ```

    Args:
        raw_role: The role the raw peer plays: ``"server"`` (the default) puts our
            transport on the client side, as `websocket_client`; ``"client"`` puts it on
            the server side, as a server handler. A client peer masks its frames.
        max_message_size: Our side's limit on incoming messages, in bytes.
        close_timeout: Seconds our side allows for flushing and the close handshake.
        ping_interval: Seconds between our side's keepalive pings; ``None`` disables them.
        ping_timeout: Seconds our side waits for a pong.
        buffer_size: Bytes each direction of the in-memory connection holds.
        subprotocol: The subprotocol the raw peer offers (as a client) or selects when
            offered (as a server); ``None`` for none.

    Yields:
        The `RawPeer`; ``peer.endpoint`` is our transport, open and ready.

    Resource handling:
        When the block ends, our endpoint closes as its own ``async with`` would (1000, or
        1001 / 1011 if the block was cancelled / raised), waiting for the peer's answer
        within ``close_timeout`` (the peer answers unless ``answer_close`` is false), then
        the peer's reader stops. No task outlives the block.

    Error handling:
        The block's own exception propagates as itself.
    """
    require_trio("open_raw_peer")
    limits = Limits(
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )
    ours, theirs = bounded_stream_pair(buffer_size)
    try:
        async with background_nursery() as nursery:
            if raw_role == "server":
                ws, conn = await _as_server(nursery, ours, theirs, limits=limits, subprotocol=subprotocol)
                endpoint = Endpoint("client", conn)
            else:
                ws, conn = await _as_client(nursery, ours, theirs, limits=limits, subprotocol=subprotocol)
                endpoint = Endpoint("server", conn)
            peer = RawPeer(theirs, ws, raw_role, endpoint)
            nursery.start_soon(peer._read)  # pyright: ignore[reportPrivateUsage]
            await nursery.start(endpoint._run)  # pyright: ignore[reportPrivateUsage]
            async with close_on_exit(endpoint):
                yield peer
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(theirs)
            await trio.aclose_forcefully(ours)


async def _as_server(
    nursery: trio.Nursery,
    ours: trio.abc.Stream,
    theirs: trio.abc.Stream,
    *,
    limits: Limits,
    subprotocol: str | None,
) -> tuple[WSConnection, WsConnection]:
    """The raw peer accepts our client's opening handshake."""
    ws = WSConnection(ConnectionType.SERVER)

    async def accept() -> None:
        request: Request | None = None
        while request is None:
            ws.receive_data(bytes(await theirs.receive_some(_RECEIVE_SIZE)))
            request = next((event for event in ws.events() if isinstance(event, Request)), None)
        chosen = subprotocol if subprotocol in request.subprotocols else None
        await theirs.send_all(ws.send(AcceptConnection(subprotocol=chosen)))

    async with trio.open_nursery() as handshake:
        handshake.start_soon(accept)
        conn = await WsConnection.connect(
            ours,
            host="localhost",
            resource="/mcp",
            subprotocols=[SUBPROTOCOL],
            extra_headers=[],
            limits=limits,
        )
    return ws, conn


async def _as_client(
    nursery: trio.Nursery,
    ours: trio.abc.Stream,
    theirs: trio.abc.Stream,
    *,
    limits: Limits,
    subprotocol: str | None,
) -> tuple[WSConnection, WsConnection]:
    """The raw peer sends the opening handshake to our server side."""
    ws = WSConnection(ConnectionType.CLIENT)
    offered = [subprotocol] if subprotocol is not None else []
    # The request fits the stream's buffer, so sending before our side reads cannot block.
    await theirs.send_all(ws.send(Request(host="localhost", target="/mcp", subprotocols=offered)))
    pending = await read_request(ours, limits=limits)
    chosen = SUBPROTOCOL if SUBPROTOCOL in pending.request.subprotocols else None
    conn = await pending.accept(subprotocol=chosen)
    while True:
        ws.receive_data(bytes(await theirs.receive_some(_RECEIVE_SIZE)))
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                return ws, conn
            if isinstance(event, RejectConnection):  # pragma: no cover - our server side accepts
                raise RuntimeError(f"our server side rejected the handshake: {event!r}")
