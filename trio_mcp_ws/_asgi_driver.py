"""The ASGI driver: a `MessageConnection` over an ASGI ``websocket`` scope's ``receive``/``send``.

The third driver behind the pump (``_connection.py``), for `trio_mcp_ws.asgi`. The ASGI
server (Hypercorn's trio worker, or whatever runs a Starlette/FastAPI app on Trio) owns the
socket and the WebSocket protocol; this driver speaks public ASGI only (the WebSocket
sub-protocol of the ASGI spec, and its ``websocket.http.response`` extension):

- the opening handshake: `read_connect` takes ``websocket.connect``, `handshake_from_scope`
  turns the scope into the `HandshakeRequest` the policy reads, `accept` and `reject` answer;
- after it, `AsgiConnection`: ``websocket.receive`` messages go to the pump's sink one at a
  time (the ASGI server's queue to the app is bounded, Hypercorn's holds 10 messages, so a
  consumer that stops reading stops the server reading the socket); ``websocket.send`` and
  ``websocket.close`` go out; ``websocket.disconnect`` ends the reader.

What ASGI does not offer, and so this driver cannot do: ping (no ASGI message sends one;
`can_ping` is False, so the pump runs no keepalive), abort the TCP connection (the server
closes it once the app returns), or learn the peer's close code from every server (Hypercorn
0.18 reports a peer's clean close as 1006, its issue 127).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final

import trio
from starlette.websockets import WebSocketDisconnect

from ._connection import (
    CLOSE_ABNORMAL,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_POLICY_VIOLATION,
    CloseRecord,
    ConnectionGone,
    Sink,
)
from ._request import HandshakeRequest, RequestHeaders

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._options import Limits
    from ._request import Rejection

__all__ = [
    "HTTP_RESPONSE_EXTENSION",
    "AsgiConnection",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "accept",
    "handshake_from_scope",
    "read_connect",
    "reject",
    "supports_http_response",
]

logger = logging.getLogger("trio_mcp_ws")

# The ASGI types, as Starlette spells them, so a Starlette ``WebSocket``'s ``scope``,
# ``receive`` and ``send`` (and FastAPI's) type-check where ours are expected.
Scope = MutableMapping[str, Any]
"""An ASGI connection scope."""
Message = MutableMapping[str, Any]
"""One ASGI event, received or sent."""
Receive = Callable[[], Awaitable[Message]]
"""The ASGI ``receive`` callable."""
Send = Callable[[Message], Awaitable[None]]
"""The ASGI ``send`` callable."""

HTTP_RESPONSE_EXTENSION: Final = "websocket.http.response"
"""The ASGI extension that lets an app refuse a handshake with a real HTTP response."""

# Close reasons are at most 123 bytes of UTF-8 (RFC 6455 section 5.5: a 125-byte control
# frame payload, 2 of them the code).
_MAX_REASON: Final = 123


class AsgiProtocolError(Exception):
    """The ASGI server sent an event the WebSocket sub-protocol does not allow here."""


def supports_http_response(scope: Scope) -> bool:
    """Whether the server offers the ``websocket.http.response`` extension for this scope."""
    extensions: object = scope.get("extensions")
    return isinstance(extensions, dict) and HTTP_RESPONSE_EXTENSION in extensions


async def read_connect(receive: Receive) -> bool:
    """Take the ASGI ``websocket.connect``; False if the client left first (``websocket.disconnect``).

    Raises:
        AsgiProtocolError: The server sent something else.
    """
    message = await receive()
    kind = message.get("type")
    if kind == "websocket.connect":
        return True
    if kind == "websocket.disconnect":
        return False
    raise AsgiProtocolError(f"expected the ASGI event 'websocket.connect' first, not {kind!r}")


def handshake_from_scope(scope: Scope) -> HandshakeRequest:
    """Our view of the client's handshake, from the scope (whose headers include ``Host``).

    ``path`` is the request path as sent (``raw_path``, still percent-encoded) when the
    server gives it, else the decoded ``path``: the full path, whatever a framework's
    ``Mount`` took off it (that is in ``root_path``).
    """
    raw_path: object = scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else str(scope.get("path", "/"))
    query_string: object = scope.get("query_string", b"")
    query = query_string.decode("latin-1") if isinstance(query_string, bytes) else ""
    headers = RequestHeaders(
        (bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
        for name, value in scope.get("headers", ())
    )
    client_field: object = scope.get("client")
    client: tuple[str, int] | None = None
    if isinstance(client_field, (tuple, list)) and len(client_field) == 2:  # pyright: ignore[reportUnknownArgumentType]
        host, port = client_field  # pyright: ignore[reportUnknownVariableType]
        if isinstance(host, str) and isinstance(port, int):
            client = (host, port)
    return HandshakeRequest(
        path=path,
        query=query,
        headers=headers,
        subprotocols=tuple(str(name) for name in scope.get("subprotocols", ())),
        client=client,
        secure=scope.get("scheme") == "wss",
    )


async def accept(send: Send, subprotocol: str | None) -> None:
    """Accept the handshake, selecting ``subprotocol`` (``None``: no subprotocol header)."""
    await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": []})


async def reject(scope: Scope, send: Send, rejection: Rejection) -> None:
    """Refuse the handshake: a real HTTP response where the server allows it, else close 1008.

    With the ``websocket.http.response`` extension (Hypercorn, Uvicorn) the client
    gets the status, headers and body a `serve` client would. Without it the only refusal
    ASGI has is ``websocket.close`` before ``websocket.accept``, which servers answer with
    a bare 403; its code (1008) and reason reach the client only on servers that accept
    the handshake to send them.
    """
    try:
        if supports_http_response(scope):
            headers = [(name.lower(), value) for name, value in rejection.header_bytes()]
            await send(
                {"type": "websocket.http.response.start", "status": rejection.status, "headers": headers}
            )
            await send({"type": "websocket.http.response.body", "body": rejection.body_bytes()})
        else:
            await send(
                {
                    "type": "websocket.close",
                    "code": CLOSE_POLICY_VIOLATION,
                    "reason": _truncate_reason(f"{rejection.status} {rejection.body}"),
                }
            )
    except (OSError, WebSocketDisconnect):
        pass  # the client left; nothing to tell it


def _truncate_reason(reason: str) -> str:
    encoded = reason.encode("utf-8")
    if len(encoded) <= _MAX_REASON:
        return reason
    return encoded[:_MAX_REASON].decode("utf-8", "ignore")


class AsgiConnection:
    """A `MessageConnection` over an accepted ASGI WebSocket: ``receive`` in, ``send`` out."""

    def __init__(self, receive: Receive, send: Send, limits: Limits, *, name: str = "asgi") -> None:
        self._receive = receive
        self._send = send
        self.limits = limits
        self._name = name
        self._local_close: CloseRecord | None = None
        self._peer_close: CloseRecord | None = None
        self._aborted = False
        self._reading = trio.CancelScope()

    def __repr__(self) -> str:
        return f"<AsgiConnection {self._name}>"

    @property
    def close_record(self) -> CloseRecord | None:
        """How the connection ended; a close we decided takes precedence."""
        if self._local_close is not None:
            return self._local_close
        if self._peer_close is not None:
            return self._peer_close
        if self._aborted:
            return CloseRecord(CLOSE_ABNORMAL, "connection aborted")
        return None

    @property
    def can_ping(self) -> bool:
        """ASGI has no ping event: the pump runs no keepalive over this driver."""
        return False

    async def run_reader(self, sink: Sink) -> None:
        """Hand each ``websocket.receive`` to ``sink`` until ``websocket.disconnect``.

        A message over ``max_message_size`` bytes closes with 1009; after our close the
        reader keeps draining until the server reports the disconnect, so the peer's
        answer to our close frame can be read. Never raises but `trio.Cancelled`: an ASGI
        event the protocol does not allow is logged and ends the connection as 1006.
        """
        limit = self.limits.max_message_size
        with self._reading:
            while True:
                try:
                    message = await self._receive()
                except (OSError, WebSocketDisconnect):
                    self._peer_close = CloseRecord(CLOSE_ABNORMAL, "the ASGI server lost the connection")
                    return
                kind = message.get("type")
                if kind == "websocket.disconnect":
                    code = message.get("code", 1005)
                    reason = message.get("reason") or None
                    self._peer_close = CloseRecord(int(code), str(reason) if reason else None)
                    return
                if kind != "websocket.receive":
                    logger.error("%r: unexpected ASGI event %r, dropping the connection", self, kind)
                    self._peer_close = CloseRecord(CLOSE_ABNORMAL, f"unexpected ASGI event {kind!r}")
                    return
                if self._local_close is not None:
                    continue  # closing: drain until the server reports the disconnect
                data: str | bytes | None = message.get("text")
                if data is None:
                    data = message.get("bytes")
                if data is None:
                    continue  # a receive event with neither field: nothing to deliver
                if _size(data) > limit:
                    await self.close(CLOSE_MESSAGE_TOO_BIG, f"message exceeds the limit of {limit} bytes")
                    continue
                await sink(data)

    async def send_texts(self, texts: Sequence[str]) -> None:
        """Send each text as one ``websocket.send`` event (ASGI has no batched send).

        Raises:
            ConnectionGone: The connection is closing or closed.
        """
        if self.close_record is not None:
            raise ConnectionGone
        try:
            for text in texts:
                await self._send({"type": "websocket.send", "text": text})
        except (OSError, WebSocketDisconnect):
            # ASGI 2.4: send after the client left raises OSError (Starlette wraps it in
            # WebSocketDisconnect); Hypercorn drops such sends silently instead.
            raise ConnectionGone from None

    async def ping(self) -> None:
        """ASGI cannot send a ping (`can_ping` is False, so the pump never calls this).

        Raises:
            ConnectionGone: Always: no ping can be sent over this connection.
        """
        raise ConnectionGone("ASGI offers no ping control")

    async def close(self, code: int, reason: str = "") -> None:
        """Record the close and send ``websocket.close``; the server sends the close frame."""
        if self.close_record is not None:
            return
        self._local_close = CloseRecord(code, reason or None)
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": _truncate_reason(reason)})
        except (OSError, WebSocketDisconnect, RuntimeError):
            # Gone already; or Starlette's WebSocket refusing a second close (RuntimeError).
            logger.debug("%r: could not send the close (%d)", self, code)

    async def abort(self) -> None:
        """Stop our reader; the ASGI server closes TCP once the app returns. Never raises."""
        self._aborted = True
        self._reading.cancel()


def _size(message: str | bytes) -> int:
    """A message's size in bytes; ``isascii()`` is O(1) for CPython strings."""
    if isinstance(message, bytes) or message.isascii():
        return len(message)
    return len(message.encode("utf-8", "surrogatepass"))
