"""`serve` and `serve_mcp`: a WebSocket MCP server with the policy and limits of a network service.

`serve` listens, runs its own accept loop (not trio-websocket's ``serve_websocket``, where
one handler's exception ends the whole server), and gives every connection its own task:

1. read the opening handshake with our reader, within ``handshake_timeout`` (together with
   steps 2 and 3; a client that sends half a request is dropped when it expires);
2. answer 404 for another path and 503 beyond ``max_connections``;
3. apply the policy of `websocket_server` (Host/Origin, subprotocol, ``authenticate``);
4. run ``handler(read, write)`` over the pump. An exception from it closes that
   connection with 1011 and is logged with the client's address; nothing else notices.

Cancelling `serve` closes every live connection with 1001 within ``close_timeout``, with
a complete close handshake: each connection's reader outlives its handler (see
`_Server.connection`).
At most `MAX_PENDING_HANDSHAKES` handshakes are read at once: beyond that the accept
loop waits, and new connections queue in the kernel's listen backlog instead of memory.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NoReturn

import trio
from mcp.server.runner import serve_dual_era_loop
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from trio_websocket import ConnectionClosed

from ._errors import HandshakeError
from ._pump import ReadChannel, WriteChannel, open_pump
from ._scope import background_nursery
from ._sdk import lowlevel_server
from ._security import Authenticate, Rejection, default_security
from ._server import (
    ConnectionInfo,
    Negotiated,
    Policy,
    accept,
    connection_info,
    decide,
    handshake_request,
    open_request,
    refuse,
    reject,
    serving,
)
from ._tws import DEFAULT_MAX_MESSAGE_SIZE, Limits

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

    from mcp.server.lowlevel import Server
    from mcp.server.mcpserver import MCPServer
    from mcp.server.transport_security import TransportSecuritySettings
    from trio_websocket import WebSocketRequest
    from typing_extensions import Self

__all__ = ["DEFAULT_MAX_CONNECTIONS", "MAX_PENDING_HANDSHAKES", "Handler", "ServerInfo", "serve", "serve_mcp"]

logger = logging.getLogger("trio_mcp_ws.server")

Handler = Callable[[ReadChannel, WriteChannel], Awaitable[object]]
"""A connection handler for `serve`: ``async def handler(read, write) -> None``."""

DEFAULT_MAX_CONNECTIONS: Final = 512
"""Default limit on open connections: with `MAX_PENDING_HANDSHAKES` more being read, the
server stays under the common 1024 open-files limit."""

MAX_PENDING_HANDSHAKES: Final = 256
"""Handshakes read at once. Each costs a task and at most ~80 KiB (h11 refuses a request
head over 16 KiB; one 64 KiB receive buffer), for at most ``handshake_timeout``."""

# Errors from accept() that mean "out of file descriptors or memory, try again soon", and
# how long to wait: trio.serve_listeners' values.
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_ACCEPT_RETRY_DELAY: Final = 0.1


class _Counters:
    """Live numbers shared between the connection tasks and `ServerInfo`."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = 0


@dataclass(frozen=True)
class ServerInfo:
    """What `serve` hands to ``nursery.start`` once it is listening.

    Attributes:
        listeners: The listeners accepting connections (one per bound address).
        host: The host given to `serve`.
        port: The port of the first listener (the one chosen, when `serve` was given 0).
        path: The path served.
        secure: Whether connections use TLS.
    """

    listeners: tuple[trio.abc.Listener[trio.abc.Stream], ...]
    host: str
    port: int
    path: str
    secure: bool
    _counters: _Counters = field(default_factory=_Counters, repr=False, compare=False)

    @property
    def url(self) -> str:
        """The URL clients connect to, e.g. ``ws://127.0.0.1:54321/mcp``."""
        scheme = "wss" if self.secure else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{self.path}"

    @property
    def connections(self) -> int:
        """How many connections are open now (handshakes being accepted included)."""
        return self._counters.active


@dataclass
class _Server:
    """One running `serve`: its settings and the per-connection logic."""

    handler: Handler
    path: str
    policy: Policy
    max_connections: int
    handshake_timeout: float
    counters: _Counters
    pending: trio.Semaphore = field(default_factory=lambda: trio.Semaphore(MAX_PENDING_HANDSHAKES))
    full: bool = False

    @property
    def active(self) -> int:
        return self.counters.active

    def _add(self, delta: int) -> None:
        self.counters.active += delta
        if self.full and self.active < self.max_connections:
            self.full = False
            logger.info("below max_connections (%d) again", self.max_connections)

    async def accept_loop(self, listener: trio.abc.Listener[trio.abc.Stream], nursery: trio.Nursery) -> None:
        async with listener:  # closed as soon as serve is cancelled: no new clients queue up
            while True:
                await self.pending.acquire()
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    self.pending.release()
                    if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    logger.error(
                        "accept() failed with %s (%s); retrying in %ss",
                        errno.errorcode.get(exc.errno or 0, exc.errno),
                        os.strerror(exc.errno or 0),
                        _ACCEPT_RETRY_DELAY,
                    )
                    await trio.sleep(_ACCEPT_RETRY_DELAY)
                    continue
                except BaseException:
                    self.pending.release()
                    raise
                nursery.start_soon(self.connection, stream)

    async def connection(self, stream: trio.abc.Stream) -> None:
        """Serve one TCP connection, from handshake to close.

        A cancellation from outside (serve cancelled, or the handler nursery) does not reach
        the connection's tasks directly: it cancels ``body``, so the handler is cancelled
        and the pump closes with 1001 while our WebSocket reader, outside ``body``, still
        reads the client's answering close frame. The close handshake completes (or
        ``close_timeout`` expires) before the TCP connection is closed.
        """
        body = trio.CancelScope()
        async with background_nursery() as watcher:
            watcher.start_soon(_cancel_when_cancelled, body)
            with trio.CancelScope(shield=True):
                await self._run_connection(stream, body)

    async def _run_connection(self, stream: trio.abc.Stream, body: trio.CancelScope) -> None:
        """Never raises (but KeyboardInterrupt): failures are logged with the client's address."""
        remote = _peer(stream)
        pending = True
        try:
            async with background_nursery() as nursery:  # our reader runs here, outside body
                with body:
                    negotiated: Negotiated | None = None
                    with trio.move_on_after(self.handshake_timeout) as timeout:
                        negotiated = await self._handshake(stream, nursery, remote)
                    self.pending.release()
                    pending = False
                    if timeout.cancelled_caught:
                        logger.debug("%s: no handshake within %ss; dropped", remote, self.handshake_timeout)
                    if negotiated is None:
                        return
                    assert negotiated.conn is not None
                    assert negotiated.info is not None
                    try:
                        with serving(negotiated.info):
                            async with open_pump(negotiated.conn) as (read, write):
                                await self.handler(read, write)
                    finally:
                        self._add(-1)
                logger.debug(
                    "%s: connection closed%s", remote, " (shutdown)" if body.cancelled_caught else ""
                )
        except Exception:
            logger.exception("%s: the connection handler failed; closed the connection with 1011", remote)
        finally:
            if pending:
                self.pending.release()
            await trio.aclose_forcefully(stream)

    async def _handshake(
        self, stream: trio.abc.Stream, nursery: trio.Nursery, remote: str
    ) -> Negotiated | None:
        """Read the request and apply path, capacity and policy; the accepted connection or None."""
        try:
            conn = await open_request(stream, nursery, self.policy.limits)
        except HandshakeError as exc:
            logger.debug("%s: %s", remote, exc)
            return None
        request: WebSocketRequest | None = conn.request
        assert request is not None
        requested = request.path.partition("?")[0]
        if requested != self.path:
            logger.debug("%s: no WebSocket endpoint at %r; answered 404", remote, requested)
            await reject(request, conn, Rejection(404, f"Not Found: the MCP endpoint is {self.path}"))
            return None
        if self.active >= self.max_connections:
            if not self.full:
                self.full = True
                logger.warning("max_connections (%d) reached; answering 503", self.max_connections)
            await reject(request, conn, Rejection(503, "Service Unavailable: too many connections"))
            return None
        self._add(1)  # reserved now, so concurrent handshakes cannot overshoot the limit
        reserved = True
        try:
            handshake = handshake_request(request)
            decision = await decide(handshake, self.policy)
            if isinstance(decision, Rejection):
                self._add(-1)  # before answering: the client may retry at once
                reserved = False
                await refuse(request, conn, handshake, decision)
                return None
            negotiated = await accept(request, conn, decision, self.policy)
            reserved = False  # now the connection's, released when it ends
            return negotiated
        except ConnectionClosed:
            logger.debug("%s: left before the handshake completed", remote)
            return None
        finally:
            if reserved:  # cancelled (handshake_timeout) or failed before the answer
                self._add(-1)
                await conn.abort()


async def serve(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    path: str = "/mcp",
    ssl_context: ssl.SSLContext | None = None,
    security: TransportSecuritySettings | None = None,
    authenticate: Authenticate | None = None,
    require_subprotocol: bool = False,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    handshake_timeout: float = 10.0,
    close_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float = 20.0,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[ServerInfo] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve MCP over WebSocket: call ``await handler(read, write)`` for every connection.

    Follows Trio's ``nursery.start`` protocol::

        async with trio.open_nursery() as nursery:
            info = await nursery.start(serve, handler, "127.0.0.1", 0)
            print(info.url)  # ws://127.0.0.1:54321/mcp

    The handler gets the same ``(read, write)`` channels as `websocket_client` yields;
    `connection_info()` tells it who connected (request headers, client address, the
    principal from ``authenticate``).

    Args:
        handler: ``async handler(read, write)``, run once per accepted connection.
        host: Address to bind; the default serves only this machine.
        port: Port to bind; 0 picks a free one (see `ServerInfo.port`).
        path: The only path served; other paths get 404.
        ssl_context: Serve ``wss://`` with this server-side TLS context.
        security: Allowed ``Host`` and ``Origin`` values, the SDK's
            ``TransportSecuritySettings``. ``None``: on for a loopback ``host`` (loopback
            hosts and origins only), off otherwise (as the SDK's HTTP apps).
        authenticate: ``async (HandshakeRequest) -> principal``; raise
            `AuthenticationError` to refuse with 401 or 403. See `bearer_auth`.
        require_subprotocol: Refuse (400) clients that do not offer ``mcp``.
        max_connections: Connections open at once; beyond it handshakes get 503.
        max_message_size: Largest incoming message in bytes; a bigger one closes its
            connection with 1009.
        handshake_timeout: Seconds for a client to complete its opening handshake
            (reading it, the policy, ``authenticate`` and the answer).
        close_timeout: Seconds for flushing and the close handshake per connection.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds a pong may take before the connection is declared dead.
        handler_nursery: Run connections in this nursery instead of serve's own; they
            then end with that nursery, not when `serve` is cancelled.
        task_status: For ``nursery.start``; receives the `ServerInfo`.

    Raises:
        ValueError: An argument is out of range.
        OSError: The address cannot be bound.

    Resource handling:
        Runs until cancelled. Cancelling it stops accepting, closes every connection in
        its own nursery with 1001 within ``close_timeout``, then closes the listeners.

    Error handling:
        A handler's exception closes only its connection (1011) and is logged with the
        client's address on the ``trio_mcp_ws.server`` logger. Bad handshakes are
        answered (400/404/421/403/401/503) or dropped; none reaches the accept loop.
    """
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', not {path!r}")
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, not {max_connections!r}")
    if handshake_timeout <= 0:
        raise ValueError(f"handshake_timeout must be positive, not {handshake_timeout!r}")
    limits = Limits(
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )
    if security is None:
        security = default_security(host)
        if not security.enable_dns_rebinding_protection:
            logger.warning(
                "serving on %s without Host/Origin checks (DNS-rebinding protection); "
                "pass security=TransportSecuritySettings(...) to enable them",
                host,
            )
    counters = _Counters()
    server = _Server(
        handler=handler,
        path=path,
        policy=Policy(
            security=security,
            authenticate=authenticate,
            require_subprotocol=require_subprotocol,
            limits=limits,
        ),
        max_connections=max_connections,
        handshake_timeout=handshake_timeout,
        counters=counters,
    )
    tcp_listeners = await trio.open_tcp_listeners(port, host=host)
    listeners: list[trio.abc.Listener[trio.abc.Stream]] = [
        _tls(listener, ssl_context) for listener in tcp_listeners
    ]
    try:
        async with background_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(server.accept_loop, listener, handler_nursery or nursery)
            info = ServerInfo(
                listeners=tuple(listeners),
                host=host,
                port=tcp_listeners[0].socket.getsockname()[1],
                path=path,
                secure=ssl_context is not None,
                _counters=counters,
            )
            logger.info("serving MCP over WebSocket at %s", info.url)
            task_status.started(info)
            await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            for listener in listeners:
                await trio.aclose_forcefully(listener)


async def serve_mcp(
    server: Server[Any] | MCPServer[Any],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    path: str = "/mcp",
    ssl_context: ssl.SSLContext | None = None,
    security: TransportSecuritySettings | None = None,
    authenticate: Authenticate | None = None,
    require_subprotocol: bool = False,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    handshake_timeout: float = 10.0,
    close_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float = 20.0,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[ServerInfo] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve an official MCP SDK server over WebSocket, one session per connection.

    ``server`` is an ``mcp.server.mcpserver.MCPServer`` or a low-level
    ``mcp.server.lowlevel.Server`` (mcp >= 2). Each connection runs the SDK's dual-era
    loop, so clients of both protocol eras are served: the ``initialize`` handshake and
    the 2026-07-28 stateless ``server/discover``::

        mcp = MCPServer("demo")

        @mcp.tool()
        def add(a: int, b: int) -> int:
            return a + b

        trio.run(serve_mcp, mcp)  # ws://127.0.0.1:8000/mcp

    The server's lifespan is entered once, before listening, and shared by every
    connection (as the SDK's streamable-HTTP transport does). In a tool, the connection's
    `ConnectionInfo` is ``ctx.request_context.request`` (so ``ctx.headers`` works) and
    `connection_info()`.

    The keyword arguments are `serve`'s. Raises what `serve` raises, plus ``TypeError``
    when ``server`` is neither kind of server.
    """
    lowlevel = lowlevel_server(server)

    async with lowlevel.lifespan(lowlevel) as lifespan_state:

        async def run_session(read: ReadChannel, write: WriteChannel) -> None:
            await serve_dual_era_loop(
                lowlevel,
                _StampedReader(read, connection_info()),
                write,  # pyright: ignore[reportArgumentType] - anyio's parameter names; same protocol
                lifespan_state=lifespan_state,
                init_options=lowlevel.create_initialization_options(),
            )

        await serve(
            run_session,
            host,
            port,
            path=path,
            ssl_context=ssl_context,
            security=security,
            authenticate=authenticate,
            require_subprotocol=require_subprotocol,
            max_connections=max_connections,
            max_message_size=max_message_size,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            handler_nursery=handler_nursery,
            task_status=task_status,
        )


async def _cancel_when_cancelled(scope: trio.CancelScope) -> None:
    """Sleep until cancelled, then cancel ``scope`` (which a shield keeps from seeing it)."""
    try:
        await trio.sleep_forever()
    finally:
        scope.cancel()


class _StampedReader:
    """The read channel, with each message's metadata naming the connection.

    The SDK hands ``ServerMessageMetadata.request_context`` to handlers as
    ``ctx.request_context.request``: its HTTP transports put the Starlette request there,
    we put the `ConnectionInfo`, so ``ctx.headers`` and the principal reach tool code.
    """

    def __init__(self, channel: ReadChannel, info: ConnectionInfo) -> None:
        self._channel = channel
        self._info = info

    def _stamp(self, item: SessionMessage | Exception) -> SessionMessage | Exception:
        if isinstance(item, SessionMessage) and item.metadata is None:
            item.metadata = ServerMessageMetadata(request_context=self._info)
        return item

    async def receive(self) -> SessionMessage | Exception:
        return self._stamp(await self._channel.receive())

    async def aclose(self) -> None:
        await self._channel.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _tls(
    listener: trio.SocketListener, ssl_context: ssl.SSLContext | None
) -> trio.abc.Listener[trio.abc.Stream]:
    if ssl_context is None:
        return listener
    return trio.SSLListener(listener, ssl_context, https_compatible=True)


def _peer(stream: trio.abc.Stream) -> str:
    """The client's address as ``host:port``, for logs."""
    inner: object = getattr(stream, "transport_stream", stream)  # under TLS, the TCP stream
    if isinstance(inner, trio.SocketStream):
        try:
            host, port, *_ = inner.socket.getpeername()
        except OSError:
            return "unknown client"
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return type(stream).__name__
