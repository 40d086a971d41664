"""The package's exception hierarchy.

Every error this package raises or puts on a read channel is a `TransportError`, so one
``except TransportError`` covers the transport. Connection failures also derive from the
matching builtin (`ConnectionRefusedError`, `TimeoutError`, ...) so code written against
plain sockets keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mcp_types import RequestId

__all__ = [
    "ConnectError",
    "ConnectRefusedError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "HandshakeError",
    "HandshakeRejectedError",
    "MessageDecodeError",
    "NameResolutionError",
    "ProxyError",
    "TLSError",
    "TransportError",
]


class TransportError(Exception):
    """Base class of every error raised by trio-mcp-ws."""


class MessageDecodeError(TransportError, ValueError):
    """A frame that is not one valid MCP JSON-RPC message.

    Raised by [`decode`][trio_mcp_ws.decode] and delivered as a value on a transport's read
    channel; the connection keeps serving. The validation error that caused it, if any, is
    chained as ``__cause__``.

    Attributes:
        code: The JSON-RPC error code a peer should answer with: ``-32700`` (parse error)
            when the frame is not JSON, ``-32600`` (invalid request) when it is JSON but not
            a valid message.
        request_id: The id of the offending message when one could be recovered (a string
            or an integer), so a session can answer it with an error instead of leaving the
            sender waiting; ``None`` otherwise.
        excerpt: The start of the frame (at most `EXCERPT_LIMIT` characters), for logs.
    """

    EXCERPT_LIMIT = 200
    """How much of a bad frame `excerpt` keeps: enough to recognise it, never megabytes."""

    def __init__(
        self,
        reason: str,
        *,
        frame: str | bytes,
        code: int,
        request_id: RequestId | None = None,
    ) -> None:
        self.reason = reason
        self.code = code
        self.request_id = request_id
        self.excerpt = _excerpt(frame, self.EXCERPT_LIMIT)
        self.frame_size = len(frame)
        super().__init__(f"{reason} (frame of {self.frame_size} {_unit(frame)}: {self.excerpt})")


class ConnectionClosedError(TransportError):
    """The WebSocket connection ended abnormally.

    Put on a transport's read channel (just before it ends) when the peer closed with a code
    other than 1000/1001, the TCP connection dropped without a close frame (1006), a message
    was too big (1009), a keepalive ping went unanswered, or the peer broke the protocol.

    Attributes:
        code: The WebSocket close code (RFC 6455 section 7.4), e.g. 1006, 1009, 1011.
        reason: The close reason the peer sent, or our description of what happened.
    """

    def __init__(self, code: int, reason: str | None) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"WebSocket connection closed with code {code}" + (f": {reason}" if reason else ""))


class ConnectError(TransportError):
    """Opening the connection failed; nothing was exchanged with an MCP peer."""


class ConnectRefusedError(ConnectError, ConnectionRefusedError):
    """The server refused the TCP connection (nothing listens on that port)."""


class NameResolutionError(ConnectError, OSError):
    """The host name in the URL could not be resolved."""


class TLSError(ConnectError, OSError):
    """The TLS handshake failed (untrusted certificate, wrong host name, protocol mismatch)."""


class ConnectTimeoutError(ConnectError, TimeoutError):
    """Connecting (TCP, TLS and the WebSocket handshake) took longer than ``connect_timeout``."""


class ProxyError(ConnectError):
    """The proxy between us and the server failed or refused to open the tunnel.

    Attributes:
        proxy: The proxy's URL, without credentials.
        status: The HTTP status an HTTP proxy answered ``CONNECT`` with (e.g. 407, 403,
            502), or the SOCKS reply code; ``None`` when the proxy answered nothing usable.
    """

    def __init__(self, message: str, *, proxy: str, status: int | None = None) -> None:
        self.proxy = proxy
        self.status = status
        super().__init__(message)


class HandshakeError(ConnectError):
    """The server's answer to the WebSocket opening handshake was not a valid upgrade.

    For example: it closed the connection mid-handshake, or sent something that is not HTTP.
    """


class HandshakeRejectedError(HandshakeError):
    """An opening handshake was refused with an HTTP error instead of an upgrade.

    Raised by `websocket_client` when the server refused it, and by `websocket_server`
    after it refused a request (the client has been answered already).

    Attributes:
        status_code: The HTTP status (e.g. 401, 403, 404, 503).
        headers: The response headers as ``(name, value)`` byte pairs.
        body: The response body (at most what the server sent before closing).
    """

    def __init__(self, status_code: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status_code
        self.headers = tuple(headers)
        self.body = body
        text = body[:200].decode("utf-8", "replace").strip()
        super().__init__(
            f"server rejected the WebSocket handshake with HTTP {status_code}" + (f": {text}" if text else "")
        )


def _excerpt(frame: str | bytes, limit: int) -> str:
    if isinstance(frame, bytes):
        text = frame[: limit * 4].decode("utf-8", "backslashreplace")
    else:
        # Lone surrogates cannot be printed; make them visible instead of crashing a log handler.
        text = frame[:limit].encode("utf-8", "backslashreplace").decode("utf-8")
    text = text[:limit]
    return repr(text) + ("..." if len(frame) > limit else "")


def _unit(frame: str | bytes) -> str:
    return "bytes" if isinstance(frame, bytes) else "characters"
