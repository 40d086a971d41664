"""`websocket_client`: connect to an MCP server over WebSocket and yield ``(read, write)``."""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import trio

from ._deflate import Compression, Deflate, resolve_compression
from ._errors import (
    ConnectError,
    ConnectRefusedError,
    ConnectTimeoutError,
    NameResolutionError,
    TLSError,
)
from ._options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    MAX_CONTAINERS,
    MAX_MEMBERS,
    Limits,
)
from ._proxy import ProxySetting, open_tunnel, redact_proxy_url, resolve_proxy
from ._pump import ReadChannel, WriteChannel, open_pump
from ._subprotocol import offered_subprotocols
from ._trio_only import require_trio
from ._wsconn import WsConnection

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

__all__ = ["websocket_client"]

logger = logging.getLogger("trio_mcp_ws")

Headers = Mapping[str, str] | Sequence[tuple[str, str]]
"""Extra HTTP headers for the opening handshake, e.g. ``{"Authorization": "Bearer ..."}``."""

# RFC 9110 token characters, for header names; values may not hold CR, LF or NUL.
_TOKEN: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE: Final = re.compile(r"[\r\n\x00]")
# Headers the WebSocket handshake itself owns; letting users set them breaks it.
_RESERVED: Final = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)


@dataclass(frozen=True)
class _Target:
    secure: bool
    host: str
    port: int
    resource: str
    host_header: str


@asynccontextmanager
async def websocket_client(
    url: str,
    *,
    headers: Headers | None = None,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_containers: int = MAX_CONTAINERS,
    max_members: int = MAX_MEMBERS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float = DEFAULT_PING_TIMEOUT,
    token: str | None = None,
    token_in_subprotocol: bool = False,
    protocol_version: str | None = None,
    proxy: ProxySetting = None,
    proxy_ssl_context: ssl.SSLContext | None = None,
    compression: Compression = None,
) -> AsyncGenerator[tuple[ReadChannel, WriteChannel], None]:
    """Connect to an MCP server over WebSocket and yield ``(read, write)`` channels.

    A drop-in for the SDK's removed ``mcp.client.websocket.websocket_client``, and an
    ``mcp.Client`` transport (it type-checks as one under mypy and pyright, strict):

    ```python
    async with Client(websocket_client("ws://127.0.0.1:8000/mcp")) as client:
        await client.list_tools()
    ```

    The client offers the ``mcp`` subprotocol (plus ``mcp.auth.<token>`` and
    ``mcp.version.<version>`` when asked); a server that selects none is accepted (some
    real ones do).

    Args:
        url: A ``ws://`` or ``wss://`` URL.
        headers: Extra handshake headers, e.g. ``{"X-Tenant": "acme"}``.
        token: A bearer token for the server: sent as ``Authorization: Bearer <token>``, or
            as the subprotocol ``mcp.auth.<token>`` with ``token_in_subprotocol``. Never
            logged, and left out of every error message.
        token_in_subprotocol: Carry ``token`` in the subprotocol list, as browsers must (the
            SEP-1288 draft). The token must then be an RFC 9110 ``token`` (a JWT is one;
            base64url-encode anything else); a ``ValueError`` says so otherwise.
        protocol_version: An MCP protocol version to announce as ``mcp.version.<version>``.
        ssl_context: TLS settings for ``wss://``; default: ``ssl.create_default_context()``.
        max_message_size: Largest incoming message in bytes; a bigger one closes the
            connection with 1009 and puts a `ConnectionClosedError` on the read channel.
        max_containers: Most objects and arrays one incoming message may hold (counted as
            ``{`` and ``[`` in the raw frame, before parsing); more makes it a
            `MessageDecodeError` on the read channel and the connection carries on.
        max_members: Most object members (``:``) one incoming message may hold, likewise.
        connect_timeout: Seconds for TCP connect, TLS and the WebSocket handshake together.
        close_timeout: Seconds for flushing accepted messages and the close handshake on exit.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds a pong may take before the connection is declared dead.
        proxy: A proxy URL (``http://``, ``https://``, ``socks4://``, ``socks4a://``,
            ``socks5://``, ``socks5h://``; credentials in it go to the proxy only),
            ``False`` for none, or ``None`` to follow ``HTTPS_PROXY``/``HTTP_PROXY``/
            ``ALL_PROXY`` and ``NO_PROXY`` as curl does (see the proxies guide).
        proxy_ssl_context: TLS settings for the connection to an ``https://`` proxy;
            default: ``ssl.create_default_context()``.
        compression: ``"deflate"`` or a `Deflate` to offer permessage-deflate (used when
            the server accepts it); ``None``, the default, offers none (see the
            compression guide for when it pays).

    Yields:
        ``(read, write)``: a ``trio.MemoryReceiveChannel[SessionMessage | Exception]`` and
        a ``trio.MemorySendChannel[SessionMessage]``.

    Raises:
        ValueError: The URL is not ``ws://`` or ``wss://``, a header is invalid, or the
            token cannot travel where it was asked to (an ``Authorization`` header given
            as well, a line break, or not a subprotocol token).
        ConnectRefusedError: Nothing listens at the address.
        NameResolutionError: The host name does not resolve.
        TLSError: The TLS handshake failed.
        ConnectTimeoutError: Connecting took longer than ``connect_timeout``.
        HandshakeRejectedError: The server answered the upgrade with an HTTP error.
        HandshakeError: The server's answer was not a WebSocket upgrade.
        ProxyError: The proxy could not be reached, or refused or failed the tunnel.

    Resource handling:
        On exit every message accepted by ``write.send`` is sent, then the connection is
        closed with 1000 (clean exit), 1001 (cancelled) or 1011 (the body raised), within
        ``close_timeout``. No task outlives the ``async with``.

    Error handling:
        Undecodable frames arrive as `MessageDecodeError` values and the connection keeps
        serving; an abnormal close arrives as one `ConnectionClosedError`, then the read
        channel ends. A clean close by the peer just ends the read channel; later writes
        are dropped (and logged) rather than failing the session. The body's own
        exception propagates as itself, never inside an ExceptionGroup.
    """
    require_trio("websocket_client")
    target = _parse_url(url)
    extra_headers = _check_headers(headers)
    subprotocols = _offer(
        extra_headers, token, token_in_subprotocol=token_in_subprotocol, version=protocol_version
    )
    proxy_url = resolve_proxy(
        proxy, scheme="wss" if target.secure else "ws", host=target.host, port=target.port
    )
    limits = Limits(
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_containers=max_containers,
        max_members=max_members,
    )
    deflate = resolve_compression(compression)
    if target.secure and ssl_context is None:
        ssl_context = ssl.create_default_context()
    conn = await _connect(
        target,
        ssl_context=ssl_context if target.secure else None,
        extra_headers=extra_headers,
        subprotocols=subprotocols,
        limits=limits,
        connect_timeout=connect_timeout,
        proxy_url=proxy_url,
        proxy_ssl_context=proxy_ssl_context,
        compression=deflate,
    )
    logger.debug("connected to %s (subprotocol %r)", url, conn.subprotocol)
    async with open_pump(conn, limits) as channels:
        yield channels


async def _connect(
    target: _Target,
    *,
    ssl_context: ssl.SSLContext | None,
    extra_headers: list[tuple[bytes, bytes]],
    subprotocols: list[str],
    limits: Limits,
    connect_timeout: float,
    proxy_url: str | None,
    proxy_ssl_context: ssl.SSLContext | None,
    compression: Deflate | None = None,
) -> WsConnection:
    stream: trio.abc.Stream | None = None
    conn: WsConnection | None = None
    try:
        with trio.move_on_after(connect_timeout) as scope:
            if proxy_url is None:
                stream = await _open_stream(target, ssl_context)
            else:
                stream = await open_tunnel(
                    proxy_url,
                    target.host,
                    target.port,
                    ssl_context_for_proxy=proxy_ssl_context,
                    timeout=scope.deadline - trio.current_time(),
                )
                stream = await _start_tls(stream, target, ssl_context, via=redact_proxy_url(proxy_url))
            conn = await WsConnection.connect(
                stream,
                host=target.host_header,
                resource=target.resource,
                subprotocols=subprotocols,
                extra_headers=extra_headers,
                limits=limits,
                compression=compression,
            )
    finally:
        if conn is None and stream is not None:  # failed or timed out: release the socket
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
    if conn is None:
        raise ConnectTimeoutError(
            f"connecting to {target.host}:{target.port} took longer than {connect_timeout}s"
        )
    return conn


async def _open_stream(target: _Target, ssl_context: ssl.SSLContext | None) -> trio.abc.Stream:
    try:
        tcp = await trio.open_tcp_stream(target.host, target.port)
    except socket.gaierror as exc:
        raise NameResolutionError(exc.errno, f"cannot resolve {target.host!r}: {exc.strerror}") from exc
    except OSError as exc:
        if _refused(exc):
            raise ConnectRefusedError(
                exc.errno or 111, f"connection to {target.host}:{target.port} refused"
            ) from exc
        raise ConnectError(f"cannot connect to {target.host}:{target.port}: {exc}") from exc
    return await _start_tls(tcp, target, ssl_context)


async def _start_tls(
    stream: trio.abc.Stream, target: _Target, ssl_context: ssl.SSLContext | None, *, via: str | None = None
) -> trio.abc.Stream:
    """TLS with the server over ``stream`` (a socket, or a proxy's tunnel) for ``wss://``."""
    if ssl_context is None:
        return stream
    tls = trio.SSLStream(stream, ssl_context, server_hostname=target.host, https_compatible=True)
    try:
        await tls.do_handshake()
    except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
        await trio.aclose_forcefully(stream)
        cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) and exc.__cause__ else exc
        through = f" through proxy {via}" if via else ""
        raise TLSError(f"TLS handshake with {target.host}:{target.port}{through} failed: {cause}") from exc
    return tls


def _refused(exc: BaseException) -> bool:
    """Whether an OSError from trio.open_tcp_stream means every address refused us."""
    if isinstance(exc, ConnectionRefusedError):
        return True
    cause = exc.__cause__
    if cause is not None and hasattr(cause, "exceptions"):
        inner: Sequence[BaseException] = getattr(cause, "exceptions")  # noqa: B009 - an ExceptionGroup
        return bool(inner) and all(_refused(e) for e in inner)
    return False


def _parse_url(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"websocket_client needs a ws:// or wss:// URL, not {url!r}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not sent; pass an Authorization header instead")
    secure = scheme == "wss"
    default_port = 443 if secure else 80
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ValueError(f"invalid port in URL {url!r}") from exc
    host = parts.hostname
    host_text = f"[{host}]" if ":" in host else host
    host_header = host_text if port == default_port else f"{host_text}:{port}"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(secure=secure, host=host, port=port, resource=resource, host_header=host_header)


def _check_headers(headers: Headers | None) -> list[tuple[bytes, bytes]]:
    """Validate user headers up front, raising ValueError.

    trio-websocket would let a bad name escape later, as an h11 error inside an
    ExceptionGroup from its reader task.
    """
    if headers is None:
        return []
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    checked: list[tuple[bytes, bytes]] = []
    for name, value in items:
        if not _TOKEN.match(name):
            raise ValueError(f"invalid HTTP header name: {name!r}")
        if _BAD_VALUE.search(value):
            raise ValueError(f"invalid value for HTTP header {name!r}")
        if name.lower() in _RESERVED:
            raise ValueError(f"header {name!r} is set by the WebSocket handshake itself")
        try:
            checked.append((name.encode("ascii"), value.encode("latin-1")))
        except UnicodeEncodeError as exc:
            raise ValueError(f"header {name!r} has characters HTTP/1.1 cannot carry") from exc
    return checked


def _offer(
    extra_headers: list[tuple[bytes, bytes]],
    token: str | None,
    *,
    token_in_subprotocol: bool,
    version: str | None,
) -> list[str]:
    """The subprotocols to offer; a header token goes into ``extra_headers`` here.

    Raises:
        ValueError: The token cannot be sent as asked. The message never holds the token.
    """
    if token is not None and not token_in_subprotocol:
        if any(name.lower() == b"authorization" for name, _ in extra_headers):
            raise ValueError("pass the bearer token either as token= or in an Authorization header, not both")
        if not token or _BAD_VALUE.search(token) or not token.isascii():
            raise ValueError("the token is empty or holds characters an HTTP header cannot carry")
        extra_headers.append((b"Authorization", b"Bearer " + token.encode("ascii")))
        token = None
    elif token_in_subprotocol and token is None:
        raise ValueError("token_in_subprotocol=True needs a token")
    return offered_subprotocols(token=token, version=version)
