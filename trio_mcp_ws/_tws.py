"""Our driver for trio-websocket connections: the one module that touches its internals.

trio-websocket provides the connection object (handshake state, sending, pings, the close
handshake), but its reader task, measured on 0.12.2, gets several things wrong that a
network service cannot live with:

- it counts the message size limit in characters, so 4 MB of emoji passes a 1 MiB limit;
- on a frame that breaks the protocol (invalid UTF-8 in a text frame, bad framing) it
  records the close code but never sends the close frame;
- after closing with 1009 it stops reading, so the close handshake can never finish and
  ``aclose`` waits for its timeout;
- a server that closes during the opening handshake is reported only when the connect
  timeout expires, and a garbage handshake response escapes as a wsproto exception.

So we run our own reader (`Connection.run_reader`) in place of
``WebSocketConnection._reader_task``. It feeds the same wsproto state machine and calls
the connection's own event handlers wherever they are right, and handles the cases above
itself. Everything private it uses is listed in `REQUIRED_INTERNALS`;
``tests/test_tws_adapter.py`` fails loudly if a trio-websocket release changes them (the
dependency is pinned to 0.12.x for the same reason).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import h11
import trio
import trio_websocket
from trio_websocket import ConnectionClosed, ConnectionRejected, WebSocketConnection, WebSocketRequest
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
from wsproto.utilities import ProtocolError, RemoteProtocolError

from ._errors import HandshakeError, HandshakeRejectedError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

__all__ = ["REQUIRED_INTERNALS", "REQUIRED_REQUEST_INTERNALS", "Connection", "Limits"]

logger = logging.getLogger("trio_mcp_ws")

# Private attributes of trio_websocket.WebSocketConnection that this module relies on.
REQUIRED_INTERNALS: Final = (
    "_wsproto",
    "_stream",
    "_send",
    "_send_channel",
    "_recv_channel",
    "_close_reason",
    "_close_handshake",
    "_open_handshake",
    "_reader_running",
    "_initial_request",
    "_connection_proposal",
    "_close_stream",
    "_stream_lock",
    "_reject",
    "_close_web_socket",
    "_abort_web_socket",
    "_handle_request_event",
    "_handle_accept_connection_event",
    "_handle_reject_connection_event",
    "_handle_reject_data_event",
    "_handle_close_connection_event",
    "_handle_pong_event",
)

# Private attributes of trio_websocket.WebSocketRequest that the server relies on: wsproto
# strips the Host header from the request's headers; only the event still has it.
REQUIRED_REQUEST_INTERNALS: Final = ("_event",)

DEFAULT_MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
"""4 MiB, the MCP SDK's own limit on an HTTP request body."""

# 64 KiB per receive call: trio-websocket's 4 KiB default halves large-message throughput,
# and staying below glibc's 128 KiB mmap threshold keeps each receive a cheap malloc.
RECEIVE_BUFFER_SIZE: Final = 64 * 1024

# Complete messages waiting between our reader and the pump. Small on purpose: a slow
# consumer must stop the reader (and so TCP) quickly instead of growing memory.
MESSAGE_QUEUE_SIZE: Final = 2

# 1005 ("no status code") is what an empty close frame reads as: browsers' and the
# TypeScript SDK's close() send one when closing normally.
_NORMAL_CLOSURES: Final = frozenset({1000, 1001, 1005})


@dataclass(frozen=True)
class Limits:
    """The per-connection limits and timeouts, shared by client, server and testing pair.

    Attributes:
        max_message_size: Largest incoming message, in bytes of UTF-8 (text) or bytes
            (binary); a bigger one closes the connection with 1009.
        close_timeout: Seconds allowed for flushing accepted messages and the close
            handshake before the TCP connection is closed regardless.
        ping_interval: Seconds between keepalive pings; ``None`` disables keepalive.
        ping_timeout: Seconds a pong may take before the peer is declared dead.
        receive_buffer_size: Bytes asked of the socket per receive call.
        message_queue_size: Complete messages buffered before the reader stops reading.
    """

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    close_timeout: float = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float = 20.0
    receive_buffer_size: int = RECEIVE_BUFFER_SIZE
    message_queue_size: int = MESSAGE_QUEUE_SIZE

    def __post_init__(self) -> None:
        if self.max_message_size <= 0:
            raise ValueError(f"max_message_size must be positive, not {self.max_message_size!r}")
        if self.close_timeout < 0:
            raise ValueError(f"close_timeout must not be negative, not {self.close_timeout!r}")
        if self.ping_interval is not None and self.ping_interval <= 0:
            raise ValueError(f"ping_interval must be positive or None, not {self.ping_interval!r}")
        if self.ping_timeout <= 0:
            raise ValueError(f"ping_timeout must be positive, not {self.ping_timeout!r}")


@dataclass(frozen=True)
class CloseRecord:
    """How a connection ended: the close code and reason, and whether that was normal."""

    code: int
    reason: str | None

    @property
    def normal(self) -> bool:
        """Whether this is a clean close (1000 normal, 1001 going away, 1005 no status)."""
        return self.code in _NORMAL_CLOSURES


class Connection:
    """A trio-websocket connection together with the reader that drives it.

    Create one with `open_client` or `open_server`; either starts `run_reader` in the
    given nursery. A connection adopted from elsewhere (`adopt`) keeps trio-websocket's
    own reader and so its limitations.
    """

    def __init__(
        self, ws: WebSocketConnection, stream: trio.abc.Stream, limits: Limits, *, owns_reader: bool
    ) -> None:
        self.ws = ws
        self.stream = stream
        self.limits = limits
        self.owns_reader = owns_reader
        self.reader_done = trio.Event()
        self.settled = trio.Event()
        """Set once the opening handshake is over, one way or the other."""
        self.handshake_failure: HandshakeError | None = None
        self.request: WebSocketRequest | None = None
        self._stalled = False
        self.messages_received = 0
        self._local_close: CloseRecord | None = None
        self._parts: list[str | bytes | bytearray] = []
        self._size = 0
        self._deadline = float("inf")
        self._sink: Callable[[str | bytes], Awaitable[None]] | None = None

    # -- construction -------------------------------------------------------------------

    @classmethod
    def adopt(cls, ws: WebSocketConnection, limits: Limits) -> Connection:
        """Wrap a connection whose reader trio-websocket already runs (e.g. from its server)."""
        conn = cls(ws, ws._stream, limits, owns_reader=False)  # pyright: ignore[reportPrivateUsage]
        conn.settled.set()
        return conn

    @classmethod
    async def open_client(
        cls,
        stream: trio.abc.Stream,
        nursery: trio.Nursery,
        *,
        host: str,
        resource: str,
        subprotocols: Sequence[str],
        extra_headers: list[tuple[bytes, bytes]],
        limits: Limits,
    ) -> Connection:
        """Run the client side of the opening handshake over ``stream``.

        Raises:
            HandshakeRejectedError: The server answered with an HTTP error.
            HandshakeError: The server closed the connection or answered with something
                that is not a WebSocket upgrade; reported as soon as it happens.
        """
        ws = WebSocketConnection(
            stream,
            WSConnection(ConnectionType.CLIENT),
            host=host,
            path=resource,
            client_subprotocols=list(subprotocols),
            client_extra_headers=extra_headers,
            message_queue_size=limits.message_queue_size,
            max_message_size=limits.max_message_size,
            receive_buffer_size=limits.receive_buffer_size,
        )
        return await cls._drive(ws, stream, nursery, limits)

    @classmethod
    async def open_server(
        cls, stream: trio.abc.Stream, nursery: trio.Nursery, *, limits: Limits
    ) -> Connection:
        """Read the client's opening handshake request from ``stream``.

        On return, ``conn.request`` is the `trio_websocket.WebSocketRequest` to accept or
        reject.

        Raises:
            HandshakeError: The client closed the connection or sent something that is not a
                WebSocket upgrade request (it has been answered with 400 where possible).
        """
        ws = WebSocketConnection(
            stream,
            WSConnection(ConnectionType.SERVER),
            message_queue_size=limits.message_queue_size,
            max_message_size=limits.max_message_size,
            receive_buffer_size=limits.receive_buffer_size,
        )
        return await cls._drive(ws, stream, nursery, limits)

    @classmethod
    async def _drive(
        cls, ws: WebSocketConnection, stream: trio.abc.Stream, nursery: trio.Nursery, limits: Limits
    ) -> Connection:
        """Start our reader on ``ws`` and wait until its opening handshake is settled."""
        conn = cls(ws, stream, limits, owns_reader=True)
        nursery.start_soon(conn.run_reader)
        await conn.settled.wait()
        if conn.handshake_failure is not None:
            raise conn.handshake_failure
        return conn

    # -- state --------------------------------------------------------------------------

    @property
    def stalled(self) -> bool:
        """True while the reader waits for the consumer to take a message (backpressure)."""
        return self._stalled

    def attach(self, sink: Callable[[str | bytes], Awaitable[None]]) -> list[str | bytes] | None:
        """Have our reader hand each complete message to ``sink`` instead of queueing it.

        Returns the messages queued before this call, to be delivered first; ``None`` (and
        nothing changes) when trio-websocket's own reader drives the connection. The end of
        the connection is still signalled by closing the queue (``get_message`` raises).
        """
        if not self.owns_reader:
            return None
        backlog: list[str | bytes] = []
        queue = self.ws._recv_channel  # pyright: ignore[reportPrivateUsage]
        while True:
            try:
                backlog.append(queue.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):  # noqa: PERF203
                break
        self._sink = sink
        return backlog

    def active_since(self, messages_received: int) -> bool:
        """Whether the peer showed signs of life since `messages_received` was read."""
        return self._stalled or self.messages_received != messages_received

    @property
    def close_record(self) -> CloseRecord | None:
        """How the connection ended, once it has; what we decided takes precedence."""
        if self._local_close is not None:
            return self._local_close
        reason = self.ws.closed
        if reason is None:
            return None
        return CloseRecord(reason.code, reason.reason)

    # -- closing ------------------------------------------------------------------------

    async def fail(self, code: int, reason: str) -> None:
        """Close because of an error on our side: record it, send the close frame, stop input.

        Idempotent; the first failure wins. The TCP connection is closed by the reader once
        the peer answers, or by `abort` when ``close_timeout`` expires.
        """
        if self._local_close is not None:
            return
        self._local_close = CloseRecord(code, reason)
        logger.debug("%s: closing with %d (%s)", self.ws, code, reason)
        self._deadline = trio.current_time() + self.limits.close_timeout
        ws = self.ws
        if ws._wsproto.state is ConnectionState.OPEN:  # pyright: ignore[reportPrivateUsage]
            # Set before sending so concurrent send_message() calls fail instead of
            # racing our close frame.
            ws._close_reason = trio_websocket.CloseReason(code, reason)  # pyright: ignore[reportPrivateUsage]
            with trio.move_on_after(self.limits.close_timeout):
                try:
                    await ws._send(CloseConnection(code=code, reason=reason))  # pyright: ignore[reportPrivateUsage]
                except ConnectionClosed:
                    pass
        # Messages already queued are still delivered; then get_message() reports the close.
        await ws._send_channel.aclose()  # pyright: ignore[reportPrivateUsage]

    async def send_texts(self, texts: Sequence[str]) -> None:
        """Send several text messages, in order, with one write to the stream.

        trio-websocket's ``send_message`` takes the stream lock and writes once per
        message; a burst of small messages (the common case when a session streams) then
        costs a lock round and a system call each. The frames are the same either way.

        Raises:
            ConnectionClosed: As ``send_message``: the connection is closed or closing.
        """
        ws = self.ws
        reason = ws.closed
        if reason is not None:
            raise ConnectionClosed(reason)
        proto = ws._wsproto  # pyright: ignore[reportPrivateUsage]
        data = b"".join([proto.send(TextMessage(data=text)) for text in texts])
        async with ws._stream_lock:  # pyright: ignore[reportPrivateUsage]
            try:
                await ws._stream.send_all(data)  # pyright: ignore[reportPrivateUsage]
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await ws._abort_web_socket()  # pyright: ignore[reportPrivateUsage]
                raise ConnectionClosed(ws.closed) from None

    async def abort(self) -> None:
        """Close the TCP connection now, whatever state the WebSocket is in. Idempotent."""
        with trio.CancelScope(shield=True):
            try:
                await self.ws._close_stream()  # pyright: ignore[reportPrivateUsage]
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            if self.ws.closed is None:
                await self.ws._close_web_socket(1006, "TCP connection closed")  # pyright: ignore[reportPrivateUsage]
            # No close handshake can finish now: wake anyone waiting for one in aclose().
            self.ws._close_handshake.set()  # pyright: ignore[reportPrivateUsage]

    # -- the reader ---------------------------------------------------------------------

    async def run_reader(self) -> None:
        """Read the socket, feed wsproto, and act on every event until the connection ends.

        Never raises (except Cancelled): every failure is recorded on the connection and
        the message queue is closed, so the pump sees the end through ``get_message``.
        """
        ws = self.ws
        try:
            async with ws._send_channel:  # pyright: ignore[reportPrivateUsage]
                await self._read_loop()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._handshake_failed(HandshakeError(f"connection lost during the opening handshake: {exc}"))
            await self.abort()
        except Exception as exc:
            # A bug here must not take the caller's nursery down; report it as an abnormal close.
            logger.exception("%s: reader failed", ws)
            self._handshake_failed(HandshakeError(f"internal error in the WebSocket reader: {exc!r}"))
            if self._local_close is None:
                self._local_close = CloseRecord(1011, f"internal error: {exc!r}")
            await self.abort()
        finally:
            self._handshake_failed(HandshakeError("connection closed during the opening handshake"))
            # However the reader ended (cancelled from outside, too), nobody can see the
            # peer's close frame now: wake aclose() instead of leaving it to close_timeout.
            ws._close_handshake.set()  # pyright: ignore[reportPrivateUsage]
            self.reader_done.set()

    def _handshake_failed(self, failure: HandshakeError) -> None:
        if not self.settled.is_set():
            self.handshake_failure = failure
            self.settled.set()

    async def _read_loop(self) -> None:
        ws = self.ws
        proto = ws._wsproto  # pyright: ignore[reportPrivateUsage]
        initial = ws._initial_request  # pyright: ignore[reportPrivateUsage]
        if initial is not None:
            try:
                await ws._send(initial)  # pyright: ignore[reportPrivateUsage]
            except ConnectionClosed:
                return
        while True:
            try:
                for event in proto.events():
                    if not await self._handle(event):
                        return
            except (ProtocolError, h11.ProtocolError) as exc:
                await self._protocol_error(exc)
                return
            if ws.closed is not None and proto.state is ConnectionState.CLOSED and not ws.is_client:
                return
            data: bytes | bytearray = b""
            with trio.move_on_at(self._deadline) as scope:
                try:
                    data = await self.stream.receive_some(self.limits.receive_buffer_size)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
            if scope.cancelled_caught:
                logger.debug("%s: peer did not finish the close within close_timeout", ws)
                await self.abort()
                return
            if not data:
                if not self.settled.is_set():
                    self._handshake_failed(
                        HandshakeError(
                            "the server closed the connection during the opening handshake"
                            if ws.is_client
                            else "the client closed the connection before its handshake"
                        )
                    )
                if proto.state is not ConnectionState.CLOSED:
                    await ws._abort_web_socket()  # pyright: ignore[reportPrivateUsage]
                await self.abort()
                return
            if proto.state is ConnectionState.CLOSED:
                continue  # the close handshake is done; we only wait for the TCP close
            try:
                proto.receive_data(data if isinstance(data, bytes) else bytes(data))
            except (ProtocolError, h11.ProtocolError, UnicodeError) as exc:
                # UnicodeError: wsproto decodes the Host header as IDNA and lets the error
                # escape (e.g. "Host: xn--zz"); it is a malformed request like any other.
                await self._protocol_error(exc)
                return

    async def _protocol_error(self, exc: Exception) -> None:
        """The peer broke HTTP or WebSocket framing where wsproto raises instead of closing."""
        ws = self.ws
        if not self.settled.is_set():
            if ws.is_server and (
                isinstance(exc, UnicodeError)
                or (isinstance(exc, RemoteProtocolError) and isinstance(exc.event_hint, RejectConnection))
            ):
                with trio.move_on_after(self.limits.close_timeout):
                    try:
                        await self._send_reject(400, b"Bad Request: not a valid WebSocket upgrade request\n")
                    except (ConnectionClosed, ProtocolError, h11.ProtocolError):
                        pass
            self._handshake_failed(HandshakeError(f"invalid WebSocket opening handshake: {exc}"))
        else:
            await self.fail(1002, f"protocol error: {exc}")
        await self.abort()

    async def _send_reject(self, status: int, body: bytes) -> None:
        headers = [(b"Content-Type", b"text/plain; charset=utf-8"), (b"Connection", b"close")]
        await self.ws._reject(status, headers, body)  # pyright: ignore[reportPrivateUsage]

    async def _handle(self, event: Event) -> bool:
        """Act on one wsproto event; return False when the reader should stop."""
        ws = self.ws
        if isinstance(event, (TextMessage, BytesMessage)):
            await self._on_message(event)
        elif isinstance(event, Ping):
            # No pong once our close frame is out: wsproto refuses it, and the reader took
            # that LocalProtocolError for the peer's protocol error (1002, close lost).
            if ws._wsproto.state is ConnectionState.OPEN:  # pyright: ignore[reportPrivateUsage]
                try:
                    await ws._send(event.response())  # pyright: ignore[reportPrivateUsage]
                except ConnectionClosed:
                    pass
        elif isinstance(event, Pong):
            await ws._handle_pong_event(event)  # pyright: ignore[reportPrivateUsage]
        elif isinstance(event, CloseConnection):
            return await self._on_close(event)
        elif isinstance(event, Request):
            await ws._handle_request_event(event)  # pyright: ignore[reportPrivateUsage]
            proposal = ws._connection_proposal  # pyright: ignore[reportPrivateUsage]
            assert proposal is not None
            self.request = await proposal.wait_value()
            ws._connection_proposal = None  # pyright: ignore[reportPrivateUsage]
            self.settled.set()
        elif isinstance(event, AcceptConnection):
            await ws._handle_accept_connection_event(event)  # pyright: ignore[reportPrivateUsage]
            self.settled.set()
        elif isinstance(event, (RejectConnection, RejectData)):
            try:
                if isinstance(event, RejectConnection):
                    await ws._handle_reject_connection_event(event)  # pyright: ignore[reportPrivateUsage]
                else:
                    await ws._handle_reject_data_event(event)  # pyright: ignore[reportPrivateUsage]
            except ConnectionRejected as rejected:
                self._handshake_failed(
                    HandshakeRejectedError(rejected.status_code, rejected.headers or (), rejected.body or b"")
                )
                await self.abort()
                return False
        else:  # pragma: no cover - wsproto has no other event types
            logger.warning("%s: unexpected wsproto event %r", ws, event)
        return True

    async def _on_message(self, event: TextMessage | BytesMessage) -> None:
        if self._local_close is not None:
            return  # closing: whatever still arrives is discarded
        data = event.data
        # Count bytes, not characters; isascii() is O(1) for CPython strings.
        size = len(data) if isinstance(data, (bytes, bytearray)) or data.isascii() else len(data.encode())
        self._size += size
        if self._size > self.limits.max_message_size:
            self._parts = []
            self._size = 0
            await self.fail(1009, f"message exceeds the limit of {self.limits.max_message_size} bytes")
            return
        self._parts.append(data)
        if not event.message_finished:
            return
        parts, self._parts, self._size = self._parts, [], 0
        message: str | bytes
        if isinstance(event, TextMessage):
            message = "".join(part for part in parts if isinstance(part, str))
        else:
            message = b"".join(part for part in parts if not isinstance(part, str))
        self.messages_received += 1
        self._stalled = True
        sink = self._sink
        try:
            if sink is not None:
                await sink(message)
            else:
                await self.ws._send_channel.send(message)  # pyright: ignore[reportPrivateUsage]
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # nobody reads any more; a late message is no error
        finally:
            self._stalled = False

    async def _on_close(self, event: CloseConnection) -> bool:
        ws = self.ws
        state = ws._wsproto.state  # pyright: ignore[reportPrivateUsage]
        if state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse (1002, 1007 invalid UTF-8, ...) as
            # a close event without changing state; nothing was sent. Send the close frame.
            await self.fail(event.code, event.reason or "protocol error")
            if ws.is_server:
                # wsproto parses nothing after a parse failure, so the client's answering
                # close frame can never be seen: close TCP now (RFC 6455 section 7.1.7)
                # instead of waiting close_timeout for a client that waits for us.
                await self.abort()
                return False
            return True
        if state is ConnectionState.LOCAL_CLOSING:
            # Another parse failure while we wait for the peer's close: the stream is garbage.
            await self.abort()
            return False
        # A real close frame: trio-websocket answers it (REMOTE_CLOSING) and, as a server,
        # closes TCP. As a client we wait for the server's TCP close, within close_timeout.
        if self._deadline == float("inf"):
            self._deadline = trio.current_time() + self.limits.close_timeout
        try:
            await ws._handle_close_connection_event(event)  # pyright: ignore[reportPrivateUsage]
        except ConnectionClosed:
            # The peer closed TCP right after its close frame, before our answer could go
            # out: the close is complete all the same (with the peer's code).
            await self.abort()
            return False
        return not ws.is_server
