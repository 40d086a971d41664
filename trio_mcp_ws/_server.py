"""`websocket_server`: serve one request from trio-websocket's own server with our policy and pump.

For applications built on ``trio_websocket.serve_websocket``: the request is checked by
`decide` (Host/Origin, subprotocol, ``authenticate``), accepted or rejected through
trio-websocket's public ``accept``/``reject``, and the accepted connection is driven by the
adopted driver (``_adopted.py``) under the same pump as everything else.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio
from trio_websocket import ConnectionClosed, Endpoint, WebSocketRequest

from ._adopted import AdoptedConnection
from ._errors import HandshakeError, HandshakeRejectedError
from ._options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    SERVER_MAX_CONTAINERS,
    SERVER_MAX_MEMBERS,
    Limits,
)
from ._policy import Policy, decide, default_security, serving
from ._pump import BinaryFrames, ReadChannel, WriteChannel, open_pump
from ._request import HandshakeRequest, Rejection, handshake_request
from ._trio_only import require_trio
from ._wsconn import REJECT_TIMEOUT

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from mcp.server.transport_security import TransportSecuritySettings
    from wsproto.events import Request

    from ._auth import Authenticate

__all__ = ["websocket_server"]

logger = logging.getLogger("trio_mcp_ws.server")


@asynccontextmanager
async def websocket_server(
    request: WebSocketRequest,
    *,
    security: TransportSecuritySettings | None = None,
    authenticate: Authenticate | None = None,
    require_subprotocol: bool = False,
    binary_frames: BinaryFrames = "accept",
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_containers: int = SERVER_MAX_CONTAINERS,
    max_members: int = SERVER_MAX_MEMBERS,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float = DEFAULT_PING_TIMEOUT,
) -> AsyncGenerator[tuple[ReadChannel, WriteChannel], None]:
    """Accept one trio-websocket handshake request and yield ``(read, write)`` channels.

    The server-side twin of `websocket_client` for applications that run
    ``trio_websocket.serve_websocket``: the request is checked against the policy, accepted
    with the ``mcp`` subprotocol when offered, and driven by the same pump as the client.

    ```python
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        async with websocket_server(request) as (read, write):
            await server.run(read, write, server.create_initialization_options())
    ```

    Prefer `serve`, which runs our own WebSocket connection throughout and adds the path
    check, connection limits, handshake timeout and handler isolation. Here trio-websocket's
    reader stays in charge: its own ``max_message_size`` (counted in characters, set on its
    server) applies first, then ours in bytes.

    Args:
        request: The client's opening handshake.
        security: Allowed ``Host`` and ``Origin`` values, the SDK's
            ``TransportSecuritySettings``. ``None``: protection on, with loopback hosts and
            origins only, when the connection arrived on a loopback address; off otherwise.
        authenticate: An optional hook, ``async (HandshakeRequest) -> principal``; raise
            `AuthenticationError` from it to refuse with 401 or 403.
        require_subprotocol: Refuse (400) clients that do not offer ``mcp``.
        binary_frames: ``"accept"`` binary messages holding UTF-8 JSON, or ``"reject"``
            them by closing with 1003.
        max_message_size: Largest incoming message in bytes; a bigger one closes the
            connection with 1009.
        max_containers: As `serve`: most objects and arrays one incoming message may hold.
        max_members: As `serve`: most object members one incoming message may hold.
        close_timeout: Seconds for flushing accepted messages and the close handshake.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds a pong may take before the connection is declared dead.

    Yields:
        The read channel (`ReadChannel`) and the write channel (`WriteChannel`), as
        `websocket_client` does. `connection_info()` gives the request, the selected
        subprotocol and the principal inside the block.

    Raises:
        HandshakeRejectedError: The request was refused (the client got its status and a
            short plain-text body); the body of the ``async with`` does not run.
        HandshakeError: The client left before the handshake completed.

    Resource handling:
        On exit every accepted message is sent, then the connection is closed with 1000
        (clean exit), 1001 (cancelled) or 1011 (the body raised), within
        ``close_timeout``. trio-websocket closes the TCP connection when its handler
        returns.

    Error handling:
        As `websocket_client`: bad frames and abnormal closes arrive as exception values
        on the read channel, and the body's exception propagates as itself.
    """
    require_trio("websocket_server")
    limits = Limits(
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_containers=max_containers,
        max_members=max_members,
    )
    if security is None:
        security = default_security(_local_host(request))
    policy = Policy(
        security=security, authenticate=authenticate, require_subprotocol=require_subprotocol, limits=limits
    )
    handshake = _handshake_request(request)
    decision = await decide(handshake, policy)
    if isinstance(decision, Rejection):
        logger.info(
            "refused a WebSocket handshake from %s for %s: %d %s",
            handshake.remote,
            handshake.path,
            decision.status,
            decision.body,
        )
        await _reject(request, decision)
        raise HandshakeRejectedError(decision.status, decision.header_bytes(), decision.body_bytes())
    try:
        ws = await request.accept(subprotocol=decision.subprotocol)
    except ConnectionClosed as exc:
        raise HandshakeError("the client left before the handshake completed") from exc
    conn = AdoptedConnection(ws, limits)
    with serving(decision):
        async with open_pump(conn, limits, binary_frames=binary_frames) as channels:
            yield channels


async def _reject(request: WebSocketRequest, rejection: Rejection) -> None:
    try:
        with trio.move_on_after(REJECT_TIMEOUT):
            await request.reject(
                rejection.status, extra_headers=rejection.header_bytes(), body=rejection.body_bytes()
            )
    except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # the client left; nothing to tell it


def _handshake_request(request: WebSocketRequest) -> HandshakeRequest:
    event = _event(request)
    client: tuple[str, int] | None = None
    secure = False
    try:
        remote = request.remote
    except OSError:  # getpeername() after the client left
        remote = None
    if isinstance(remote, Endpoint):
        client = (str(remote.address), remote.port)
        secure = remote.is_ssl
    return handshake_request(
        host=event.host,
        target=event.target,
        headers=event.extra_headers,
        subprotocols=event.subprotocols,
        client=client,
        secure=secure,
    )


def _event(request: WebSocketRequest) -> Request:
    """The wsproto event behind a trio-websocket request.

    PRIVATE NAME, the only one of another library in this package (listed in
    docs/design.md, guarded by ``tests/test_tws_private.py``): trio-websocket's
    `WebSocketRequest` exposes the path, the subprotocols and the headers other than
    ``Host``, which wsproto keeps apart; the ``Host`` check (DNS-rebinding protection) needs
    it, and no public attribute has it.
    """
    return request._event  # pyright: ignore[reportPrivateUsage]


def _local_host(request: WebSocketRequest) -> str | None:
    try:
        local = request.local
    except OSError:
        return None
    return str(local.address) if isinstance(local, Endpoint) else None
