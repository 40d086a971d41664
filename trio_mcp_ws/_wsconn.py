"""Our WebSocket connection: wsproto's sans-IO state machine over a Trio stream.

The driver behind `websocket_client`, `serve` and the testing pair. It uses wsproto's
public API only (`WSConnection`, its events, ``send`` and ``receive_data``) and owns
everything around it: the opening handshake in both roles, one reader, one send lock,
pings matched to pongs, and the close handshake. trio-websocket's connection object is
not used here: its reader (measured on 0.12.2) counts the size limit in characters, never
sends the close frame after a protocol error, stops reading after a 1009 so its close can
never finish, and reports a server that closes mid-handshake only at the connect timeout.
Running our reader under its object meant sharing one wsproto state machine with its
methods through 23 private names; owning the whole connection needs none.

What a peer sees from this driver:

- text frames are decoded as UTF-8 strictly (1007 otherwise); bad framing is 1002;
- a message over ``max_message_size`` bytes, or in more than ``max_frames_per_message``
  frames, closes with 1009 (each frame after the first also counts `FRAME_OVERHEAD` bytes
  against the size, so a flood of empty fragments cannot stay under the limit);
- pings are answered while the connection is open; a close frame is answered, and a
  server closes TCP right after the close handshake (RFC 6455 section 7.1.1);
- a server refusing a handshake answers with a plain HTTP response and closes.
"""

from __future__ import annotations

import base64
import binascii
import http
import logging
import os
import re
from typing import TYPE_CHECKING, Final, NoReturn

import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ._connection import (
    CLOSE_ABNORMAL,
    CLOSE_INTERNAL_ERROR,
    CLOSE_MESSAGE_TOO_BIG,
    CloseRecord,
    ConnectionGone,
    Sink,
)
from ._deflate import DeflateExtension
from ._errors import HandshakeError, HandshakeRejectedError
from ._frames import FAST, NEED_MORE, build_text_frames, decode_text, scan

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ._deflate import Deflate
    from ._options import Limits

__all__ = [
    "FRAMES_PER_CHECKPOINT",
    "FRAME_OVERHEAD",
    "MAX_REQUEST_HEAD",
    "REJECT_TIMEOUT",
    "PendingHandshake",
    "WsConnection",
    "http_response",
    "peer_address",
    "read_request",
]

logger = logging.getLogger("trio_mcp_ws")

FRAME_OVERHEAD: Final = 8
"""Bytes each frame after a message's first counts against ``max_message_size`` besides its
payload (about a masked header's size), so a flood of empty continuation frames costs what
it weighs on the wire."""

MAX_REQUEST_HEAD: Final = 16 * 1024
"""Largest opening-handshake request head (request line and headers) a server reads, in bytes,
however they arrive; more is answered 431. Real clients send well under 2 KiB."""

MAX_REJECTION_BODY: Final = 64 * 1024
"""How much of a server's rejection body the client keeps for `HandshakeRejectedError`."""

FRAMES_PER_CHECKPOINT: Final = 64
"""Frames the reader acts on before it lets other tasks run. One receive can hold ~10,000
tiny frames at ~7 us each through wsproto: 70 ms with no other connection served. At 256,
four flooders still made a `serve_mcp` round trip (several scheduling rounds) miss 100 ms;
a checkpoint per 64 frames costs about 1% of the work between them."""

# A control frame's payload is at most 125 bytes; a close frame's reason gets 123 of them.
_MAX_CLOSE_REASON: Final = 123

# Where an HTTP head ends, as h11 finds it (it accepts bare LF line endings too).
_HEAD_END: Final = re.compile(rb"\n\r?\n")


class WsConnection:
    """One open WebSocket connection: a `MessageConnection` over a Trio stream.

    Create it with `connect` (client) or `read_request` then `PendingHandshake.accept`
    (server); either leaves the opening handshake done, with whatever arrived after it in
    ``leftover``, which `run_reader` delivers first.

    Incoming complete unfragmented text frames are parsed by `_frames` (the fast path),
    everything else by wsproto, which is fed whole frames only while the fast path is on;
    outgoing text frames are built by `_frames` too. Both step aside for good when an
    extension was negotiated (``extensions``): then wsproto handles every frame.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        proto: WSConnection,
        limits: Limits,
        *,
        subprotocol: str | None,
        client: bool,
        resource: str,
        leftover: bytes = b"",
        extensions: Sequence[object] = (),
    ) -> None:
        self.stream = stream
        self.limits = limits
        self.subprotocol = subprotocol
        """The subprotocol the handshake selected, or ``None``."""
        self.resource = resource
        """The request target (path and query) of the opening handshake."""
        self.client = client
        self._proto = proto
        self._send_lock = trio.StrictFIFOLock()
        self._local_close: CloseRecord | None = None
        self._remote_close: CloseRecord | None = None
        self._aborted = False
        self._deadline = float("inf")
        self._read_scope: trio.CancelScope | None = None
        self._pings: dict[bytes, trio.Event] = {}
        self._parts: list[str | bytes] = []
        self._size = 0
        self._frames = 0
        # The fast path's state (see `_frames` for why it keeps wsproto consistent).
        self._fast = not extensions
        self._rx = bytearray(leftover)  # received bytes not parsed yet, from a frame boundary
        self._owed = 0  # bytes of the frame being handed to wsproto still to hand over
        self._fragmented = False  # a fragmented message is in progress (wsproto's to parse)
        self._until_checkpoint = FRAMES_PER_CHECKPOINT  # see `_checkpoint`

    def __repr__(self) -> str:
        role = "client" if self.client else "server"
        return f"<WsConnection {role} {self._proto.state.name}>"

    # -- construction (client) ---------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        stream: trio.abc.Stream,
        *,
        host: str,
        resource: str,
        subprotocols: Sequence[str],
        extra_headers: Sequence[tuple[bytes, bytes]],
        limits: Limits,
        compression: Deflate | None = None,
    ) -> WsConnection:
        """Run the client side of the opening handshake over ``stream``.

        With ``compression``, permessage-deflate is offered; a server that does not accept
        it gets an uncompressed connection.

        Raises:
            HandshakeRejectedError: The server answered with an HTTP error.
            HandshakeError: The server closed the connection, or answered with something that
                is not a WebSocket upgrade; reported as soon as it happens.
        """
        proto = WSConnection(ConnectionType.CLIENT)
        offered = (
            [DeflateExtension(compression, max_message_size=limits.max_message_size)] if compression else []
        )
        request = Request(
            host=host,
            target=resource,
            subprotocols=list(subprotocols),
            extensions=list(offered),
            extra_headers=list(extra_headers),
        )
        await _send_all(stream, proto.send(request), "sending the opening handshake")
        rejection: RejectConnection | None = None
        body = bytearray()
        # Feed wsproto the response head only, up to each place it may end: frames the server
        # sent right after its 101 stay here, so wsproto's frame buffer starts out empty.
        tail = b""  # the last bytes fed, where a head end may have begun
        pending = b""
        while True:
            for event in proto.events():
                if isinstance(event, AcceptConnection):
                    if event.extensions and pending:
                        # With an extension on, wsproto parses every frame: it gets what
                        # followed the 101 now, before any later read.
                        proto.receive_data(pending)
                        pending = b""
                    return cls(
                        stream,
                        proto,
                        limits,
                        subprotocol=event.subprotocol,
                        client=True,
                        resource=resource,
                        leftover=pending,
                        extensions=event.extensions,
                    )
                if isinstance(event, RejectConnection):
                    rejection = event
                    if not event.has_body:
                        raise HandshakeRejectedError(event.status_code, event.headers, b"")
                elif isinstance(event, RejectData) and rejection is not None:
                    body += event.data[: MAX_REJECTION_BODY - len(body)]
                    if event.body_finished:
                        raise HandshakeRejectedError(rejection.status_code, rejection.headers, bytes(body))
            if pending:
                data, pending = pending, b""
            else:
                data = await _receive(stream, limits.receive_buffer_size)
            if not data:
                if rejection is not None:  # a body delimited by the connection's end
                    raise HandshakeRejectedError(rejection.status_code, rejection.headers, bytes(body))
                raise HandshakeError("the server closed the connection during the opening handshake")
            if rejection is None:
                joined = tail + data
                for end in _HEAD_END.finditer(joined):
                    if end.end() > len(tail):  # the first place past what wsproto already has
                        cut = end.end() - len(tail)
                        data, pending = data[:cut], data[cut:]
                        break
                tail = (tail + data)[-3:]
            try:
                proto.receive_data(data)
            except (RemoteProtocolError, LocalProtocolError, h11.ProtocolError) as exc:
                raise HandshakeError(f"invalid WebSocket handshake response: {exc}") from exc

    # -- the MessageConnection interface ---------------------------------------------------

    @property
    def close_record(self) -> CloseRecord | None:
        """How the connection ended; a close we decided takes precedence over the peer's."""
        return self._local_close or self._remote_close

    @property
    def can_ping(self) -> bool:
        """Always: we own the connection."""
        return True

    async def run_reader(self, sink: Sink) -> None:
        """Read, feed wsproto and act on every event until the connection is over; then close TCP.

        Never raises (except Cancelled): a failure is recorded as the close.
        """
        try:
            await self._read_loop(sink)
        except Exception:
            # A bug here must not take the caller's nursery down: report it as a 1011 close.
            logger.exception("%r: reader failed", self)
            if self._local_close is None:
                self._local_close = CloseRecord(CLOSE_INTERNAL_ERROR, "internal error in the reader")
        finally:
            await self.abort()

    async def send_texts(self, texts: Sequence[str]) -> None:
        """Send each text as one text frame, in order, with one write to the stream.

        Raises:
            ConnectionGone: The connection is closing or closed.
        """
        if not self._fast:
            await self._send_events([TextMessage(data=text) for text in texts])
            return
        await self._acquire_send_lock()
        try:
            if self._aborted or self._proto.state is not ConnectionState.OPEN:
                raise ConnectionGone
            await self._write(build_text_frames(texts, mask=self.client))
        finally:
            self._send_lock.release()

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary message (the transport itself only sends text; tools may not).

        Raises:
            ConnectionGone: The connection is closing or closed.
        """
        await self._send_events([BytesMessage(data=data)])

    async def ping(self) -> None:
        """Send a ping and wait for its pong.

        Raises:
            ConnectionGone: The connection is closing or closed, or ended while waiting.
        """
        payload = os.urandom(4)
        answered = trio.Event()
        self._pings[payload] = answered
        try:
            await self._send_events([Ping(payload=payload)])
            await answered.wait()
        finally:
            self._pings.pop(payload, None)
        if self._aborted:
            raise ConnectionGone

    async def close(self, code: int, reason: str = "") -> None:
        """Record the close and send the close frame (bounded by ``close_timeout``). Idempotent."""
        if self.close_record is not None:
            return
        self._local_close = CloseRecord(code, reason or None)
        self._deadline = trio.current_time() + self.limits.close_timeout
        if self._read_scope is not None:  # the reader waits in a receive with the old deadline
            self._read_scope.deadline = self._deadline
        logger.debug("%r: closing with %d (%s)", self, code, reason)
        reason_bytes = reason.encode("utf-8")[:_MAX_CLOSE_REASON].decode("utf-8", "ignore")
        with trio.move_on_after(self.limits.close_timeout):
            try:
                await self._send_events([CloseConnection(code=code, reason=reason_bytes or None)])
            except ConnectionGone:
                pass

    async def abort(self) -> None:
        """Close the stream now, whatever the WebSocket state. Idempotent, never raises."""
        if self._aborted:
            return
        self._aborted = True
        if self.close_record is None:
            self._remote_close = CloseRecord(CLOSE_ABNORMAL, "connection lost without a close frame")
        for answered in self._pings.values():
            answered.set()  # no pong can come now: wake the waiters, they see the close
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self.stream)

    # -- sending -----------------------------------------------------------------------

    async def _acquire_send_lock(self) -> None:
        """Take the send lock, without a checkpoint when it is free.

        The write that follows checkpoints anyway; FIFO order is kept, as `acquire_nowait`
        refuses while others wait.
        """
        try:
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._send_lock.acquire()

    async def _send_events(self, events: Sequence[Event]) -> None:
        await self._acquire_send_lock()
        try:
            proto = self._proto
            if self._aborted or proto.state is not ConnectionState.OPEN:
                raise ConnectionGone
            data = b"".join([proto.send(event) for event in events])
            await self._write(data)
        finally:
            self._send_lock.release()

    async def _write(self, data: bytes) -> None:
        """Write under the send lock (held by the caller); a dead stream means the peer is gone."""
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            if self.close_record is None:
                self._remote_close = CloseRecord(CLOSE_ABNORMAL, "connection lost while sending")
            await self.abort()  # nothing can be sent, so nothing can close cleanly: end the reader too
            raise ConnectionGone from None

    async def _answer(self, event: Event) -> None:
        """Send a control frame the protocol requires (pong, close answer); never raises."""
        async with self._send_lock:
            if self._aborted:
                return
            try:
                data = self._proto.send(event)
            except LocalProtocolError:
                return  # the state moved on (our own close is out): nothing to answer
            try:
                await self._write(data)
            except ConnectionGone:
                pass

    # -- reading -----------------------------------------------------------------------

    async def _read_loop(self, sink: Sink) -> None:
        proto = self._proto
        data = b""
        while True:
            if not await self._parse(data, sink):
                return
            if self._aborted:
                return
            data = b""
            with trio.move_on_at(self._deadline) as timeout:
                self._read_scope = timeout  # close() from another task moves its deadline
                data = await _receive(self.stream, self.limits.receive_buffer_size)
            self._read_scope = None
            if timeout.cancelled_caught:
                logger.debug("%r: the peer did not finish the close within close_timeout", self)
                return
            if not data:
                return  # EOF: over, cleanly if the close handshake was done (abort records 1006)
            if proto.state is ConnectionState.CLOSED:
                data = b""  # the close handshake is done; only the peer's TCP close is awaited

    async def _parse(self, data: bytes, sink: Sink) -> bool:
        """Act on ``data`` (after what is left of earlier reads); False when the reader should stop.

        Frame by frame, in order: a complete unfragmented text frame is decoded here and
        handed to ``sink``; any other frame is fed to wsproto whole (or up to its end, if it
        has not fully arrived) and its events acted on. Once the fast path is off (an
        extension, a close started) everything goes to wsproto as it comes.
        """
        proto = self._proto
        if not self._fast:
            if data:
                proto.receive_data(data)
            return await self._drain(sink)
        buf: bytes | bytearray = data
        if self._rx:
            self._rx += data
            buf, self._rx = self._rx, bytearray()
        pos, size = 0, len(buf)
        masked = not self.client
        max_size = self.limits.max_message_size
        try:
            while pos < size:
                if proto.state is ConnectionState.CLOSED:
                    pos = size  # the close handshake is done: what follows is dropped, as wsproto would
                    break
                if self._owed:
                    take = min(self._owed, size - pos)
                    self._owed -= take
                    proto.receive_data(bytes(buf[pos : pos + take]))
                    pos += take
                    if not await self._drain(sink):
                        return False
                    continue
                if self._local_close is not None or proto.state is not ConnectionState.OPEN:
                    self._fast = False  # for good: from here on wsproto gets every byte
                    proto.receive_data(bytes(buf[pos:]))
                    pos = size
                    return await self._drain(sink)
                kind, start, end = scan(buf, pos, masked=masked, max_size=max_size)
                if kind == NEED_MORE:
                    break
                if kind == FAST and not self._fragmented:
                    text = decode_text(buf, start, end, masked=masked)
                    if text is not None:
                        pos = end
                        await sink(text)
                        self._until_checkpoint -= 1
                        if not self._until_checkpoint:
                            await self._checkpoint()
                        continue
                    # Not UTF-8: wsproto parses the frame and reports it (1007).
                # wsproto's frame: track fragmentation from its header, then hand it over.
                opcode = buf[pos] & 0x0F
                if opcode in (0x1, 0x2) or (opcode == 0x0 and self._fragmented):
                    self._fragmented = not buf[pos] & 0x80
                self._owed = end - pos
        finally:
            if pos < size:  # a partial frame: keep it for the next read, copying only if cheap
                if isinstance(buf, bytearray):
                    del buf[:pos]
                    self._rx = buf
                else:
                    self._rx = bytearray(buf[pos:])
        return True

    async def _drain(self, sink: Sink) -> bool:
        """Act on every event wsproto has; False when the reader should stop.

        wsproto parses lazily, one event at a time: stopping here (a failed connection)
        leaves the rest of a flood unparsed.
        """
        for event in self._proto.events():
            if not await self._on_event(event, sink) or self._aborted:
                return False
            self._until_checkpoint -= 1
            if not self._until_checkpoint:
                await self._checkpoint()
        return True

    async def _checkpoint(self) -> None:
        """Let other tasks run: the reader has acted on `FRAMES_PER_CHECKPOINT` frames.

        The callers count down ``_until_checkpoint`` themselves, so a frame costs no
        coroutine call until the count runs out.
        """
        self._until_checkpoint = FRAMES_PER_CHECKPOINT
        await trio.lowlevel.checkpoint()

    async def _on_event(self, event: Event, sink: Sink) -> bool:
        """Act on one wsproto event; False when the reader should stop."""
        if isinstance(event, (TextMessage, BytesMessage)):
            await self._on_data(event, sink)
        elif isinstance(event, Ping):
            await self._answer(event.response())
        elif isinstance(event, Pong):
            answered = self._pings.get(bytes(event.payload))
            if answered is not None:
                answered.set()
        elif isinstance(event, CloseConnection):
            return await self._on_close(event)
        else:  # pragma: no cover - wsproto yields no other events once open
            logger.debug("%r: ignoring %r", self, event)
        return True

    async def _on_data(self, event: TextMessage | BytesMessage, sink: Sink) -> None:
        if self._local_close is not None:
            return  # closing: whatever still arrives is discarded
        data = event.data
        # Count bytes, not characters; isascii() is O(1) for CPython strings.
        self._size += len(data) if not isinstance(data, str) or data.isascii() else len(data.encode())
        if event.frame_finished:
            self._frames += 1
            if self._frames > 1:
                self._size += FRAME_OVERHEAD
        limits = self.limits
        if self._size > limits.max_message_size or self._frames > limits.max_frames_per_message:
            too_many = self._frames > limits.max_frames_per_message
            self._parts, self._size, self._frames = [], 0, 0
            await self.close(
                CLOSE_MESSAGE_TOO_BIG,
                f"message in more than {limits.max_frames_per_message} frames"
                if too_many
                else f"message exceeds the limit of {limits.max_message_size} bytes",
            )
            if not self.client:
                # Fail the connection (RFC 6455 section 7.1.7): read no more of what may be a
                # flood; the client has our 1009 and learns nothing more from the rest.
                await self.abort()
            return
        self._parts.append(data if isinstance(data, str) else bytes(data))
        if not event.message_finished:
            return
        parts, self._parts, self._size, self._frames = self._parts, [], 0, 0
        message: str | bytes
        if len(parts) == 1:
            message = parts[0]
        elif isinstance(event, TextMessage):
            message = "".join(part for part in parts if isinstance(part, str))
        else:
            message = b"".join(part for part in parts if isinstance(part, bytes))
        del parts
        await sink(message)

    async def _on_close(self, event: CloseConnection) -> bool:
        state = self._proto.state
        if state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse (1002, 1007 invalid UTF-8, ...) as a
            # close event without changing state, and parses nothing after it.
            await self.close(event.code, event.reason or "protocol error")
            # As a server, close TCP now (RFC 6455 section 7.1.7) rather than wait for an
            # answer we could not read; as a client, wait for the server to close it.
            return self.client
        if state is ConnectionState.LOCAL_CLOSING:  # pragma: no cover - wsproto moves to CLOSED
            return False
        if state is ConnectionState.REMOTE_CLOSING:
            if self.close_record is None:
                self._remote_close = CloseRecord(int(event.code), event.reason or None)
            await self._answer(event.response())
        # CLOSED: the peer answered our close, or we just answered theirs. A server closes
        # TCP now; a client waits (within close_timeout) for the server to close it.
        if self._deadline == float("inf"):
            self._deadline = trio.current_time() + self.limits.close_timeout
        return self.client


class PendingHandshake:
    """A client's opening-handshake request, read by `read_request`, awaiting our answer."""

    def __init__(
        self, stream: trio.abc.Stream, proto: WSConnection, request: Request, limits: Limits
    ) -> None:
        self.stream = stream
        self.request = request
        """The wsproto request event: ``host``, ``target``, ``subprotocols``, ``extra_headers``."""
        self.limits = limits
        self._proto = proto

    async def accept(
        self,
        *,
        subprotocol: str | None,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
        compression: Deflate | None = None,
    ) -> WsConnection:
        """Send the 101 upgrade and return the open connection.

        With ``compression``, the client's first valid permessage-deflate offer (if any) is
        accepted; invalid offers are declined, never refused.

        Raises:
            HandshakeError: The client left before the answer could be sent.
        """
        deflate = None
        if compression is not None:
            deflate = DeflateExtension(compression, max_message_size=self.limits.max_message_size)
        data = self._proto.send(
            AcceptConnection(
                subprotocol=subprotocol,
                extensions=[deflate] if deflate is not None else [],
                extra_headers=list(extra_headers),
            )
        )
        await _send_all(self.stream, data, "accepting the handshake")
        return WsConnection(
            self.stream,
            self._proto,
            self.limits,
            subprotocol=subprotocol,
            client=False,
            resource=self.request.target,
            extensions=[deflate] if deflate is not None and deflate.enabled() else (),
        )

    async def reject(self, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> None:
        """Answer with an HTTP error response, then close the stream. Never raises."""
        await _answer_and_close(self.stream, http_response(status, headers, body))


async def read_request(
    stream: trio.abc.Stream,
    *,
    limits: Limits,
    plain_http: Callable[[str, str], Awaitable[bytes | None]] | None = None,
) -> PendingHandshake:
    """Read a client's opening-handshake request from ``stream`` (the server side).

    Besides what wsproto checks, the request must be HTTP/1.1 or later, carry exactly one
    ``Sec-WebSocket-Key`` that is 16 bytes in base64, fit in `MAX_REQUEST_HEAD` bytes, and
    be followed by nothing before our answer.

    Args:
        stream: The accepted connection.
        limits: The limits the connection will run with.
        plain_http: Called as ``plain_http(method, target)`` for a well-formed HTTP
            request that is not a WebSocket upgrade; the bytes it returns (a whole HTTP
            response) are sent instead of the 400 such a request otherwise gets.

    Raises:
        HandshakeError: The client left, or sent something that is not a valid upgrade
            request; it has been answered (400, 426 or 431) where possible and the stream
            closed.
    """
    proto = WSConnection(ConnectionType.SERVER)
    head = bytearray()
    while True:
        data = await _receive(stream, limits.receive_buffer_size)
        if not data:
            await trio.aclose_forcefully(stream)
            raise HandshakeError("the client closed the connection before its handshake")
        head += data
        if len(head) > MAX_REQUEST_HEAD:
            await _refuse(stream, 431, "Request Header Fields Too Large: the request head exceeds 16 KiB")
        try:
            proto.receive_data(data)
            request = next((event for event in proto.events() if isinstance(event, Request)), None)
        except RemoteProtocolError as exc:
            hint = exc.event_hint
            if plain_http is not None and _is_plain_request(head):
                method, target = _request_line(head)
                response = await plain_http(method, target)
                if response is not None:
                    await _answer_and_close(stream, response)
                    raise HandshakeError(f"answered a plain HTTP {method} request") from None
            if isinstance(hint, RejectConnection) and hint.status_code == 426:
                await _refuse(stream, 426, "Upgrade Required: WebSocket version 13", hint.headers)
            await _refuse(stream, 400, f"Bad Request: not a valid WebSocket upgrade request ({exc})")
        except (h11.ProtocolError, LocalProtocolError, UnicodeError) as exc:
            # UnicodeError: wsproto decodes the Host header as IDNA and lets the error escape.
            await _refuse(stream, 400, f"Bad Request: not a valid WebSocket upgrade request ({exc})")
        if request is not None:
            problem = _strictness_problem(head, request)
            if problem is not None:
                await _refuse(stream, 400, f"Bad Request: {problem}")
            return PendingHandshake(stream, proto, request, limits)


def _strictness_problem(head: bytes | bytearray, request: Request) -> str | None:
    """What RFC 6455 section 4.2.1 requires beyond what wsproto checks, or None."""
    version = bytes(head).split(b"\r\n", 1)[0].rpartition(b" ")[2]
    if version not in (b"HTTP/1.1",):
        return "the WebSocket handshake needs HTTP/1.1"
    keys = [value for name, value in request.extra_headers if name.lower() == b"sec-websocket-key"]
    if len(keys) != 1:
        return "exactly one Sec-WebSocket-Key header is required"
    try:
        decoded = base64.b64decode(keys[0].strip(), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != 16:
        return "Sec-WebSocket-Key must be 16 bytes in base64"
    end = bytes(head).find(b"\r\n\r\n")
    lines = bytes(head[:end]).split(b"\r\n")[1:]
    if any(line[:1] in (b" ", b"\t") for line in lines):
        return "folded header lines are not allowed"
    if sum(1 for line in lines if line.lower().startswith(b"host:")) != 1:
        return "exactly one Host header is required"
    if len(head) > end + 4:
        return "data sent before the handshake was answered"
    return None


def _is_plain_request(head: bytes | bytearray) -> bool:
    end = bytes(head).find(b"\r\n\r\n")
    if end < 0:
        return False
    lowered = bytes(head[:end]).lower()
    return b"\r\nupgrade:" not in lowered


def _request_line(head: bytes | bytearray) -> tuple[str, str]:
    line = bytes(head).split(b"\r\n", 1)[0].decode("latin-1")
    method, _, rest = line.partition(" ")
    return method, rest.rpartition(" ")[0]


def http_response(status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bytes:
    """A complete ``HTTP/1.1`` response that closes the connection, with ``Content-Length``."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    lines = [f"HTTP/1.1 {status} {phrase}".encode("ascii")]
    names = {name.lower() for name, _ in headers}
    lines.extend(name + b": " + value for name, value in headers)
    if b"content-type" not in names:
        lines.append(b"Content-Type: text/plain; charset=utf-8")
    if b"connection" not in names:
        lines.append(b"Connection: close")
    lines.append(b"Content-Length: " + str(len(body)).encode("ascii"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def _refuse(
    stream: trio.abc.Stream, status: int, text: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> NoReturn:
    """Answer a malformed handshake, close the stream, and raise `HandshakeError`."""
    await _answer_and_close(stream, http_response(status, headers, (text + "\n").encode("utf-8")))
    raise HandshakeError(f"refused the handshake with {status}: {text}")


# Seconds allowed for sending a rejection: a few hundred bytes, so this only matters for a
# client that stopped reading with a full receive window.
REJECT_TIMEOUT: Final = 5.0


async def _answer_and_close(stream: trio.abc.Stream, response: bytes) -> None:
    with trio.move_on_after(REJECT_TIMEOUT):
        try:
            await stream.send_all(response)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client left; nothing to tell it
    with trio.CancelScope(shield=True):
        await trio.aclose_forcefully(stream)


async def _receive(stream: trio.abc.Stream, size: int) -> bytes:
    """``receive_some``, with a broken or closed stream read as EOF."""
    try:
        data = await stream.receive_some(size)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        return b""
    return data if isinstance(data, bytes) else bytes(data)


async def _send_all(stream: trio.abc.Stream, data: bytes, doing: str) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise HandshakeError(f"connection lost while {doing}: {exc}") from exc


def peer_address(stream: trio.abc.Stream) -> tuple[str, int] | None:
    """The client's ``(address, port)`` behind ``stream`` (under TLS too), or None."""
    inner: object = getattr(stream, "transport_stream", stream)
    if isinstance(inner, trio.SocketStream):
        try:
            host, port, *_ = inner.socket.getpeername()
        except OSError:
            return None
        return str(host), int(port)
    return None
