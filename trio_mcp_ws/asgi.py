"""MCP over WebSocket inside an ASGI application: Hypercorn's trio worker, Starlette, FastAPI.

Not imported by ``import trio_mcp_ws``: ``from trio_mcp_ws.asgi import websocket_server, mcp_app``.

- `websocket_server(scope, receive, send)` is the SDK's removed ASGI transport, under the
  same name and argument order: an async context manager yielding ``(read, write)``, for a
  Starlette ``WebSocketRoute`` endpoint or any ASGI app of your own;
- `mcp_app(server)` is a whole ASGI application serving an official ``MCPServer`` or
  low-level ``Server`` (both protocol eras), to run directly (``hypercorn -k trio
  module:app``) or to mount in a Starlette/FastAPI app.

Both need an ASGI server running on Trio (Hypercorn with ``-k trio``, or
``hypercorn.trio.serve``): under an asyncio server they refuse with a `RuntimeError`
saying so. The handshake policy, the limits and the close codes are `serve`'s; what ASGI
cannot do (keepalive pings, a real HTTP status on every server) is described in the
"ASGI and frameworks" page of the docs.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import sniffio
from mcp.server.runner import serve_dual_era_loop

from ._asgi_driver import (
    AsgiConnection,
    Message,
    Receive,
    Scope,
    Send,
    handshake_from_scope,
    read_connect,
    reject,
)
from ._asgi_driver import accept as _accept
from ._errors import HandshakeError, HandshakeRejectedError
from ._options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    SERVER_MAX_CONTAINERS,
    SERVER_MAX_MEMBERS,
    Limits,
)
from ._policy import Policy, connection_info, decide, default_security, serving
from ._pump import BinaryFrames, ReadChannel, WriteChannel, open_pump
from ._request import Rejection
from ._sdk import lowlevel_server
from ._serve_mcp import StampedReader

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from mcp.server.lowlevel import Server
    from mcp.server.mcpserver import MCPServer
    from mcp.server.transport_security import TransportSecuritySettings

    from ._auth import Authenticate

__all__ = ["MCPApp", "Message", "Receive", "Scope", "Send", "mcp_app", "websocket_server"]

logger = logging.getLogger("trio_mcp_ws.server")


def _require_trio(what: str) -> None:
    """Refuse, naming Trio, when the ASGI server runs on another event loop."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = "no async library"
    if library != "trio":
        raise RuntimeError(
            f"{what} needs an ASGI server running on Trio (e.g. `hypercorn -k trio` or "
            f"hypercorn.trio.serve), but this one runs on {library}"
        )


@asynccontextmanager
async def websocket_server(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    security: TransportSecuritySettings | None = None,
    authenticate: Authenticate | None = None,
    require_subprotocol: bool = False,
    binary_frames: BinaryFrames = "accept",
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_containers: int = SERVER_MAX_CONTAINERS,
    max_members: int = SERVER_MAX_MEMBERS,
    first_message_timeout: float | None = None,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> AsyncGenerator[tuple[ReadChannel, WriteChannel], None]:
    """Accept one ASGI WebSocket connection and yield ``(read, write)`` channels.

    The SDK's removed ``mcp.server.websocket.websocket_server``, same name and argument
    order, so code migrating from mcp 1.x changes one import. In a Starlette endpoint:

    ```python
    async def mcp_endpoint(websocket: WebSocket) -> None:
        async with websocket_server(websocket.scope, websocket.receive, websocket.send) as (read, write):
            await server.run(read, write, server.create_initialization_options())

    app = Starlette(routes=[WebSocketRoute("/mcp", mcp_endpoint)])
    ```

    The handshake goes through `serve`'s policy: Host/Origin, the ``mcp`` subprotocol
    (selected when offered), ``authenticate``. A refusal is a real HTTP response (401,
    403, 421, ...) where the server supports the ``websocket.http.response`` extension,
    else a close with 1008 before accepting (which clients see as a 403).

    Keepalive: ASGI has no event to send a ping, so there is none here (use the ASGI
    server's own pings, e.g. Hypercorn's ``websocket_ping_interval``, to keep proxies and
    NATs from dropping an idle connection).

    Args:
        scope: The ASGI ``websocket`` scope.
        receive: The ASGI ``receive`` callable.
        send: The ASGI ``send`` callable.
        security: Allowed ``Host`` and ``Origin`` values, the SDK's
            ``TransportSecuritySettings``. ``None``: protection on, with loopback hosts and
            origins only, when the server listens on a loopback address (``scope["server"]``);
            off otherwise.
        authenticate: An optional hook, ``async (HandshakeRequest) -> principal``; raise
            `AuthenticationError` from it to refuse with 401 or 403.
        require_subprotocol: Refuse (400) clients that do not offer ``mcp``.
        binary_frames: ``"accept"`` binary messages holding UTF-8 JSON, or ``"reject"``
            them by closing with 1003.
        max_message_size: Largest incoming message in bytes; a bigger one closes the
            connection with 1009. The ASGI server buffers a whole message before the app
            sees it, up to its own limit (Hypercorn: ``websocket_max_message_size``, 16 MiB).
        max_containers: Most objects and arrays one incoming message may hold (counted
            as ``{`` and ``[`` in the raw frame, before parsing); more makes it a
            `MessageDecodeError` (-32600) on the read channel and the connection serves on.
            As `trio_mcp_ws.serve`, with the same defaults.
        max_members: Most object members (``:``) one incoming message may hold, likewise.
        first_message_timeout: Seconds the client may stay silent after the handshake
            before it is closed with 1008; ``None``: no limit.
        close_timeout: Seconds for flushing accepted messages and the close handshake.

    Yields:
        The read channel (`ReadChannel`) and the write channel (`WriteChannel`), as
        `websocket_client` does. `connection_info()` gives the request, the selected
        subprotocol and the principal inside the block.

    Raises:
        RuntimeError: The ASGI server does not run on Trio.
        ValueError: ``scope`` is not a ``websocket`` scope.
        HandshakeRejectedError: The request was refused (the client got the answer); the
            body of the ``async with`` does not run.
        HandshakeError: The client left before the handshake completed.

    Resource handling:
        On exit every accepted message is sent, then the connection is closed with 1000
        (clean exit), 1001 (cancelled) or 1011 (the body raised), within
        ``close_timeout``. No task outlives the ``async with``; the ASGI server closes the
        TCP connection once the app returns.

    Error handling:
        As `websocket_client`: bad frames and abnormal closes arrive as exception values
        on the read channel, and the body's exception propagates as itself.
    """
    _require_trio("trio_mcp_ws.asgi.websocket_server")
    if scope.get("type") != "websocket":
        raise ValueError(f"websocket_server needs an ASGI 'websocket' scope, not {scope.get('type')!r}")
    limits = Limits(
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        ping_interval=None,  # ASGI has no ping event
        first_message_timeout=first_message_timeout,
        max_containers=max_containers,
        max_members=max_members,
    )
    if not await read_connect(receive):
        raise HandshakeError("the client left before the handshake completed")
    request = handshake_from_scope(scope)
    if security is None:
        security = default_security(_local_host(scope))
    policy = Policy(
        security=security, authenticate=authenticate, require_subprotocol=require_subprotocol, limits=limits
    )
    decision = await decide(request, policy)
    if isinstance(decision, Rejection):
        logger.info(
            "refused a WebSocket handshake from %s for %s: %d %s",
            request.remote,
            request.path,
            decision.status,
            decision.body,
        )
        await reject(scope, send, decision)
        raise HandshakeRejectedError(decision.status, decision.header_bytes(), decision.body_bytes())
    await _accept(send, decision.subprotocol)
    conn = AsgiConnection(receive, send, limits, name=request.remote)
    with serving(decision):
        async with open_pump(conn, limits, binary_frames=binary_frames) as channels:
            yield channels


def _local_host(scope: Scope) -> str | None:
    server: object = scope.get("server")
    if isinstance(server, (tuple, list)) and server:
        host: object = server[0]  # pyright: ignore[reportUnknownVariableType]
        return host if isinstance(host, str) else None
    return None


def _route_path(scope: Scope) -> str:
    """The path below ``root_path``, where a framework's ``Mount`` routes (as Starlette does)."""
    path = str(scope.get("path", ""))
    root_path = str(scope.get("root_path", ""))
    if root_path and path.startswith(root_path):
        return path[len(root_path) :] or "/"
    return path


class MCPApp:
    """The ASGI application `mcp_app` returns: an MCP SDK server on one WebSocket path.

    Call it as an ASGI app (it handles ``websocket``, ``http`` and ``lifespan`` scopes).
    The server's lifespan is entered once when the ASGI server sends the lifespan events
    (running it directly under Hypercorn does); mounted in a Starlette/FastAPI app, whose
    lifespan does not reach mounted apps, pass `lifespan` to the framework
    (``Starlette(lifespan=app.lifespan)``) or each connection enters the lifespan itself.
    """

    def __init__(
        self, server: Server[Any] | MCPServer[Any], *, path: str | None, options: dict[str, Any]
    ) -> None:
        self._lowlevel = lowlevel_server(server)
        self.path = path
        """The WebSocket path served (below ``root_path``); ``None`` serves every path."""
        self._options = options
        self._lifespan_state: Any = None
        self._lifespan_active = False

    @asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncGenerator[None, None]:
        """Enter the SDK server's lifespan for every connection served inside this block.

        Args:
            app: Ignored; there so Starlette's and FastAPI's ``lifespan=`` can take this
                method as it is.

        Raises:
            RuntimeError: The lifespan is already active.
        """
        del app
        if self._lifespan_active:
            raise RuntimeError("the MCP server's lifespan is already active")
        lowlevel = self._lowlevel
        async with lowlevel.lifespan(lowlevel) as state:
            self._lifespan_state = state
            self._lifespan_active = True
            try:
                yield
            finally:
                self._lifespan_active = False
                self._lifespan_state = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: a WebSocket MCP session, an HTTP answer, or the lifespan."""
        kind = scope.get("type")
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            await self._http(scope, send)
        elif kind == "lifespan":
            await self._run_lifespan(receive, send)
        else:
            raise ValueError(f"mcp_app cannot serve an ASGI {kind!r} scope")

    def _matches(self, scope: Scope) -> bool:
        return self.path is None or _route_path(scope) == self.path

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        _require_trio("trio_mcp_ws.asgi.mcp_app")
        if not self._matches(scope):
            if await read_connect(receive):
                not_found = Rejection(404, "Not Found")
                logger.info("refused a WebSocket handshake for %s: 404", scope.get("path"))
                await reject(scope, send, not_found)
            return
        try:
            async with websocket_server(scope, receive, send, **self._options) as (read, write):
                await self._session(read, write)
        except HandshakeError:
            return  # refused (and logged) or the client left: nothing more to do

    async def _session(self, read: ReadChannel, write: WriteChannel) -> None:
        lowlevel = self._lowlevel
        if self._lifespan_active:
            await self._serve(read, write, self._lifespan_state)
            return
        async with lowlevel.lifespan(lowlevel) as state:
            await self._serve(read, write, state)

    async def _serve(self, read: ReadChannel, write: WriteChannel, state: Any) -> None:
        lowlevel = self._lowlevel
        await serve_dual_era_loop(
            lowlevel,
            StampedReader(read, connection_info()),
            write,
            lifespan_state=state,
            init_options=lowlevel.create_initialization_options(),
        )

    async def _http(self, scope: Scope, send: Send) -> None:
        if self._matches(scope):
            status, body = 426, b"Upgrade Required: this endpoint serves MCP over WebSocket\n"
            extra = [(b"upgrade", b"websocket")]
        else:
            status, body, extra = 404, b"Not Found\n", []
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        """The ASGI lifespan protocol: the SDK server's lifespan from startup to shutdown."""
        message = await receive()
        if message.get("type") != "lifespan.startup":
            return
        started = False
        try:
            _require_trio("trio_mcp_ws.asgi.mcp_app")
            async with self.lifespan():
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except Exception as exc:
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})


def mcp_app(
    server: Server[Any] | MCPServer[Any],
    *,
    path: str | None = "/mcp",
    security: TransportSecuritySettings | None = None,
    authenticate: Authenticate | None = None,
    require_subprotocol: bool = False,
    binary_frames: BinaryFrames = "accept",
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_containers: int = SERVER_MAX_CONTAINERS,
    max_members: int = SERVER_MAX_MEMBERS,
    first_message_timeout: float | None = None,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> MCPApp:
    """An ASGI application serving an official MCP SDK server over WebSocket.

    ``server`` is an ``mcp.server.mcpserver.MCPServer`` or a low-level
    ``mcp.server.lowlevel.Server`` (mcp >= 2); each connection runs the SDK's dual-era loop,
    so clients of both protocol eras are served, as `serve_mcp` does.

    ```python
    mcp = MCPServer("demo")
    app = mcp_app(mcp)  # hypercorn -k trio module:app  ->  ws://127.0.0.1:8000/mcp
    ```

    Or in Starlette/FastAPI: ``WebSocketRoute("/mcp", mcp_app(mcp, path=None))``, or
    ``Mount("/tools", mcp_app(mcp))`` for ``/tools/mcp``. An HTTP request for the path gets
    426 Upgrade Required; any other path, 404 (a WebSocket handshake for one is refused
    with 404 as well).

    Args:
        server: The SDK server to run for every connection.
        path: The WebSocket path, below any ``root_path`` a framework's ``Mount`` set;
            ``None`` serves every path (for a ``WebSocketRoute`` that already routed).
        security: As `websocket_server`.
        authenticate: As `websocket_server`.
        require_subprotocol: As `websocket_server`.
        binary_frames: As `websocket_server`.
        max_message_size: As `websocket_server`.
        max_containers: As `websocket_server`.
        max_members: As `websocket_server`.
        first_message_timeout: As `websocket_server`.
        close_timeout: As `websocket_server`.

    Returns:
        The ASGI application (an `MCPApp`).

    Raises:
        TypeError: ``server`` is neither kind of SDK server.
        ValueError: An option is out of range.
    """
    # Check the limits now, not on the first connection.
    Limits(
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        first_message_timeout=first_message_timeout,
        max_containers=max_containers,
        max_members=max_members,
    )
    options: dict[str, Any] = {
        "security": security,
        "authenticate": authenticate,
        "require_subprotocol": require_subprotocol,
        "binary_frames": binary_frames,
        "max_message_size": max_message_size,
        "max_containers": max_containers,
        "max_members": max_members,
        "first_message_timeout": first_message_timeout,
        "close_timeout": close_timeout,
    }
    return MCPApp(server, path=path, options=options)
