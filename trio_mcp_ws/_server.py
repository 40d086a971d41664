"""`websocket_server`: check one handshake request against the policy, accept it, yield ``(read, write)``.

The server-side twin of `websocket_client`, and of the SDK's removed
``mcp.server.websocket.websocket_server``: both end in the same pump. `serve` (in
``_serve.py``) runs the same negotiation for every connection it accepts.

The policy, in the order it is applied (the first failure answers):

1. ``Origin`` sent more than once: 403. ``Host`` / ``Origin`` not allowed: 421 / 403, the
   MCP SDK's own statuses (``_security.check_host_and_origin``).
2. Subprotocol: ``mcp`` is selected when offered; a client offering none (or only others)
   is accepted without one, or refused with 400 under ``require_subprotocol``.
3. ``authenticate(request)``: its return value is the connection's principal; an
   `AuthenticationError` answers 401 (with ``WWW-Authenticate``) or 403; any other
   exception answers 500 and is logged.

A refused request gets a short plain-text body, its TCP connection is closed, and
`websocket_server` raises `HandshakeRejectedError` instead of yielding.
"""

from __future__ import annotations

import contextvars
import logging
import weakref
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import trio
from trio_websocket import ConnectionClosed, Endpoint, WebSocketRequest

from ._client import SUBPROTOCOL
from ._errors import HandshakeError, HandshakeRejectedError
from ._pump import ReadChannel, WriteChannel, open_pump
from ._security import (
    Authenticate,
    AuthenticationError,
    HandshakeRequest,
    Rejection,
    RequestHeaders,
    check_host_and_origin,
    default_security,
)
from ._tws import DEFAULT_MAX_MESSAGE_SIZE, Connection, Limits

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Generator

    from mcp.server.transport_security import TransportSecuritySettings
    from wsproto.events import Request

__all__ = [
    "ConnectionInfo",
    "Negotiated",
    "Policy",
    "accept",
    "connection_info",
    "decide",
    "handshake_request",
    "negotiate",
    "open_request",
    "refuse",
    "reject",
    "serving",
    "websocket_server",
]

logger = logging.getLogger("trio_mcp_ws.server")

# Seconds allowed for sending a rejection; it is a few hundred bytes, so this only matters
# for a client that stopped reading with a full receive window.
REJECT_TIMEOUT: Final = 5.0

_current: contextvars.ContextVar[ConnectionInfo] = contextvars.ContextVar("trio_mcp_ws.connection")

# Requests read by our own Connection (see `open_request`), so `websocket_server` drives
# them with our reader instead of adopting them as trio-websocket's.
_own: weakref.WeakKeyDictionary[WebSocketRequest, Connection] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ConnectionInfo:
    """What the server knows about one accepted connection.

    Available to the handler through `connection_info()` (also from tasks it starts,
    including an MCP SDK server's tool handlers under `serve_mcp`, where it is also the
    ``request`` of the SDK's request context, so ``Context.headers`` works).

    Attributes:
        request: The handshake request the connection was accepted for.
        subprotocol: The subprotocol selected (``"mcp"``), or ``None``.
        principal: What the ``authenticate`` hook returned (e.g. the SDK's
            ``AccessToken`` from `bearer_auth`); ``None`` without a hook.
    """

    request: HandshakeRequest
    subprotocol: str | None
    principal: Any = None

    @property
    def headers(self) -> RequestHeaders:
        """The handshake request's headers (what the SDK's ``Context.headers`` reads)."""
        return self.request.headers

    @property
    def client(self) -> tuple[str, int] | None:
        """The client's ``(address, port)``, or ``None`` when unknown."""
        return self.request.client


def connection_info() -> ConnectionInfo:
    """The `ConnectionInfo` of the connection the calling task serves.

    Works inside `websocket_server`'s ``async with`` block and in a `serve` handler, and in
    every task started from there.

    Raises:
        RuntimeError: Called outside a connection served by trio-mcp-ws.
    """
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("connection_info() called outside a connection served by trio-mcp-ws") from None


@contextmanager
def serving(info: ConnectionInfo) -> Generator[None, None, None]:
    """Make ``info`` what `connection_info()` returns in this task (and tasks it starts)."""
    token = _current.set(info)
    try:
        yield
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class Policy:
    """The per-server handshake policy and limits, shared by every connection."""

    security: TransportSecuritySettings | None
    authenticate: Authenticate | None
    require_subprotocol: bool
    limits: Limits


@dataclass(frozen=True)
class Negotiated:
    """The outcome of `negotiate`: the accepted connection, or the rejection sent."""

    conn: Connection | None
    info: ConnectionInfo | None
    rejection: Rejection | None


@asynccontextmanager
async def websocket_server(
    request: WebSocketRequest,
    *,
    security: TransportSecuritySettings | None = None,
    authenticate: Authenticate | None = None,
    require_subprotocol: bool = False,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    close_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float = 20.0,
) -> AsyncGenerator[tuple[ReadChannel, WriteChannel], None]:
    """Accept one WebSocket handshake request and yield ``(read, write)`` channels.

    The server-side twin of `websocket_client` and a successor of the SDK's removed
    ``mcp.server.websocket.websocket_server``: the request (e.g. from
    ``trio_websocket.serve_websocket``) is checked against the policy, accepted with the
    ``mcp`` subprotocol when offered, and driven by the same pump as the client::

        async def handler(request: trio_websocket.WebSocketRequest) -> None:
            async with websocket_server(request) as (read, write):
                await server.run(read, write, server.create_initialization_options())

    Prefer `serve`, which adds the path check, limits, handshake timeout and handler
    isolation, and uses our own WebSocket reader throughout (with a request from
    trio-websocket's server, its reader stays in charge, and its ``max_message_size``
    applies, counted in characters, instead of ours).

    Args:
        request: The client's opening handshake.
        security: Allowed ``Host`` and ``Origin`` values, the SDK's
            ``TransportSecuritySettings``. ``None``: protection on, with loopback hosts and
            origins only, when the connection arrived on a loopback address; off otherwise.
        authenticate: An optional hook, ``async (HandshakeRequest) -> principal``; raise
            `AuthenticationError` from it to refuse with 401 or 403.
        require_subprotocol: Refuse (400) clients that do not offer ``mcp``.
        max_message_size: Largest incoming message in bytes; a bigger one closes the
            connection with 1009.
        close_timeout: Seconds for flushing accepted messages and the close handshake.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds a pong may take before the connection is declared dead.

    Yields:
        ``(read, write)``, as `websocket_client` does. `connection_info()` gives the
        request, the selected subprotocol and the principal inside the block.

    Raises:
        HandshakeRejectedError: The request was refused (the client got its status and a
            short plain-text body); the body of the ``async with`` does not run.
        HandshakeError: The client left before the handshake completed.

    Resource handling:
        On exit every accepted message is sent, then the connection is closed with 1000
        (clean exit), 1001 (cancelled) or 1011 (the body raised), within
        ``close_timeout``. After a rejection the TCP connection is closed (a request from
        trio-websocket's server: when its handler returns).

    Error handling:
        As `websocket_client`: bad frames and abnormal closes arrive as exception values
        on the read channel, and the body's exception propagates as itself.
    """
    limits = Limits(
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )
    if security is None:
        security = default_security(_local_host(request))
    policy = Policy(
        security=security, authenticate=authenticate, require_subprotocol=require_subprotocol, limits=limits
    )
    own = _own.get(request)
    if own is not None:
        own.limits = limits  # our reader reads its limits per message
    try:
        result = await negotiate(request, own, policy)
    except ConnectionClosed as exc:
        raise HandshakeError("the client left before the handshake completed") from exc
    if result.rejection is not None:
        raise _rejected(result.rejection)
    assert result.conn is not None
    assert result.info is not None
    with serving(result.info):
        async with open_pump(result.conn) as channels:
            yield channels


async def open_request(stream: trio.abc.Stream, nursery: trio.Nursery, limits: Limits) -> Connection:
    """Read a handshake request with our own reader (started in ``nursery``).

    Raises:
        HandshakeError: The client left or sent something that is not an upgrade request.
    """
    conn = await Connection.open_server(stream, nursery, limits=limits)
    assert conn.request is not None
    _own[conn.request] = conn
    return conn


async def negotiate(request: WebSocketRequest, conn: Connection | None, policy: Policy) -> Negotiated:
    """Apply the policy to ``request``, then accept or reject it.

    ``conn`` is our own connection that read the request, or ``None`` for a request from
    trio-websocket's server (accepted, then adopted). After a rejection our connection's
    TCP connection is closed.

    Raises:
        ConnectionClosed: The client left before the accept could be sent.
    """
    handshake = handshake_request(request)
    decision = await decide(handshake, policy)
    if isinstance(decision, Rejection):
        await refuse(request, conn, handshake, decision)
        return Negotiated(None, None, decision)
    return await accept(request, conn, decision, policy)


async def accept(
    request: WebSocketRequest, conn: Connection | None, info: ConnectionInfo, policy: Policy
) -> Negotiated:
    """Send the upgrade; adopt the connection when it is trio-websocket's.

    Raises:
        ConnectionClosed: The client left before the accept could be sent.
    """
    ws = await request.accept(subprotocol=info.subprotocol)
    if conn is None:
        conn = Connection.adopt(ws, policy.limits)
    logger.debug("accepted a connection from %s (subprotocol %r)", info.request.remote, info.subprotocol)
    return Negotiated(conn, info, None)


async def refuse(
    request: WebSocketRequest, conn: Connection | None, handshake: HandshakeRequest, rejection: Rejection
) -> None:
    """Log and send a policy rejection."""
    logger.info(
        "refused a WebSocket handshake from %s for %s: %d %s",
        handshake.remote,
        handshake.path,
        rejection.status,
        rejection.body,
    )
    await reject(request, conn, rejection)


async def reject(request: WebSocketRequest, conn: Connection | None, rejection: Rejection) -> None:
    """Send ``rejection`` as the HTTP answer to ``request``, then close our TCP connection."""
    try:
        with trio.move_on_after(REJECT_TIMEOUT):
            await request.reject(
                rejection.status, extra_headers=rejection.header_bytes(), body=rejection.body_bytes()
            )
    except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # the client left; nothing to tell it
    finally:
        if conn is not None:
            await conn.abort()


async def decide(request: HandshakeRequest, policy: Policy) -> ConnectionInfo | Rejection:
    """Apply the policy: Host/Origin, subprotocol, then ``authenticate``; the first refusal wins."""
    if policy.security is not None:
        refused = await check_host_and_origin(policy.security, request)
        if refused is not None:
            return refused
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in request.subprotocols else None
    if subprotocol is None and policy.require_subprotocol:
        return Rejection(400, f"Bad Request: this server requires the WebSocket subprotocol {SUBPROTOCOL!r}")
    principal: Any = None
    if policy.authenticate is not None:
        try:
            principal = await policy.authenticate(request)
        except AuthenticationError as exc:
            headers = (("WWW-Authenticate", exc.challenge),) if exc.challenge else ()
            title = "Unauthorized" if exc.status == 401 else "Forbidden"
            return Rejection(exc.status, f"{title}: {exc.reason}", headers)
        except Exception:
            logger.exception("the authenticate hook failed for a request from %s", request.remote)
            return Rejection(500, "Internal Server Error: authentication failed")
    return ConnectionInfo(request=request, subprotocol=subprotocol, principal=principal)


def _rejected(rejection: Rejection) -> HandshakeRejectedError:
    return HandshakeRejectedError(rejection.status, rejection.header_bytes(), rejection.body_bytes())


def handshake_request(request: WebSocketRequest) -> HandshakeRequest:
    """Our view of a trio-websocket request: decoded headers (Host included), path, client."""
    event = _event(request)
    headers: list[tuple[str, str]] = [("host", event.host)]
    headers.extend((name.decode("latin-1"), value.decode("latin-1")) for name, value in event.extra_headers)
    if event.subprotocols:
        headers.append(("sec-websocket-protocol", ", ".join(event.subprotocols)))
    path, _, query = event.target.partition("?")
    client: tuple[str, int] | None = None
    secure = False
    try:
        remote = request.remote
    except OSError:  # getpeername() after the client left
        remote = None
    if isinstance(remote, Endpoint):
        client = (str(remote.address), remote.port)
        secure = remote.is_ssl
    return HandshakeRequest(
        path=path,
        query=query,
        headers=RequestHeaders(headers),
        subprotocols=tuple(event.subprotocols),
        client=client,
        secure=secure,
    )


def _event(request: WebSocketRequest) -> Request:
    """The wsproto event behind a trio-websocket request.

    trio-websocket's `WebSocketRequest` exposes the path, the subprotocols and the headers
    other than ``Host``, which wsproto keeps apart; the ``Host`` check needs the event. The
    one trio-websocket internal the server reads (checked in
    ``tests/test_server_handshake.py``).
    """
    return request._event  # pyright: ignore[reportPrivateUsage]


def _local_host(request: WebSocketRequest) -> str | None:
    try:
        local = request.local
    except OSError:
        return None
    return str(local.address) if isinstance(local, Endpoint) else None
