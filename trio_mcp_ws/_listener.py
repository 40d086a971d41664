"""`serve`: the listener, its accept loop, and one task per connection from handshake to close.

`serve` runs its own accept loop (not trio-websocket's ``serve_websocket``, where one
handler's exception ends the whole server) and gives every connection its own task:

1. read the opening handshake with our own driver (``_wsconn.read_request``) within
   ``handshake_timeout``; a plain ``GET`` of ``health_path`` is answered here;
2. answer 404 for another path, and 503 when no connection slot is free;
3. apply the policy (``_policy.decide``: Host/Origin, subprotocol, ``authenticate``);
4. run ``handler(read, write)`` over the pump. An exception from it closes that connection
   with 1011 and is logged with the client's address; nothing else notices.

Pending handshakes are cheap and bounded: at most `MAX_PENDING_HANDSHAKES` (fewer under a
low open-files limit) are read at once, and when another connection arrives beyond that
the *oldest* pending one is dropped to make room (as nginx sheds slow clients), so clients
that never finish their request cannot lock real ones out: a real client sends its request
at once and is done long before it could become the oldest.

Cancelling `serve` closes every live connection with 1001 within ``close_timeout``, with a
complete close handshake (the pump's reader is shielded and outlives the handler).
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NoReturn

import trio

from ._deflate import Compression, Deflate, resolve_compression
from ._errors import HandshakeError
from ._forwarded import TrustedProxies, real_client
from ._logging import RateLimitedLog
from ._options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    SERVER_MAX_CONTAINERS,
    SERVER_MAX_MEMBERS,
    Limits,
)
from ._policy import ConnectionInfo, Policy, decide, default_security, serving
from ._pump import BinaryFrames, ReadChannel, WriteChannel, open_pump
from ._request import Rejection, describe_address, handshake_request
from ._scope import background_nursery
from ._trio_only import require_trio
from ._wsconn import PendingHandshake, WsConnection, http_response, peer_address, read_request

if TYPE_CHECKING:
    import ssl
    from collections.abc import Generator, Sequence

    from mcp.server.transport_security import TransportSecuritySettings

    from ._auth import Authenticate

__all__ = [
    "DEFAULT_FIRST_MESSAGE_TIMEOUT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "MAX_PENDING_HANDSHAKES",
    "Handler",
    "ServerInfo",
    "serve",
]

logger = logging.getLogger("trio_mcp_ws.server")

Handler = Callable[[ReadChannel, WriteChannel], Awaitable[object]]
"""A connection handler for `serve`: ``async def handler(read, write) -> None``."""

DEFAULT_MAX_CONNECTIONS: Final = 512
"""Default limit on open connections: with `MAX_PENDING_HANDSHAKES` more being read, the
server stays under the common 1024 open-files limit."""

MAX_PENDING_HANDSHAKES: Final = 4096
"""Most handshakes read at once; one more evicts the oldest. Each costs a task, a socket and
about 12 KiB (measured: `benchmarks/case_slowloris.py`), for at most ``handshake_timeout``, so
the bound costs under 50 MiB. It must exceed what an attacker can hold open: connections
beyond it wait in the kernel's listen backlog, and a real client waits behind them there.
`serve` lowers it to fit the process's open-files limit (`pending_limit`)."""

# File descriptors kept free for everything else the process opens (logs, listeners, files).
_SPARE_FDS: Final = 64
# Never fewer pending handshakes than this, however low the open-files limit.
_MIN_PENDING: Final = 16

DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds for a client to send its request and get our answer (policy and
``authenticate`` included)."""

DEFAULT_FIRST_MESSAGE_TIMEOUT: Final = 30.0
"""Seconds an accepted connection may stay silent before its first message: enough for any
client that means to talk (they send ``initialize`` or ``server/discover`` at once), short
enough that idle squatters cannot hold every slot."""

# Errors from accept() that mean "out of file descriptors or memory, try again soon", and
# how long to wait: trio.serve_listeners' values.
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_ACCEPT_RETRY_DELAY: Final = 0.1

_evictions = RateLimitedLog(logger, "pending handshakes dropped to make room for new connections")


class _NoSlot(Exception):
    """No connection slot is free (or the client's address has all it may use)."""


class _Slots:
    """Connection slots: `reserve` holds one for the life of its ``with`` block."""

    def __init__(self, limit: int, per_client: int | None) -> None:
        self.limit = limit
        self.per_client = per_client
        self.active = 0
        self.by_client: dict[str, int] = {}
        # A peer can fill and free the last slot any number of times: summarise, never a line each.
        self.refused = RateLimitedLog(logger, f"handshakes answered 503: max_connections ({limit}) reached")

    @contextmanager
    def reserve(self, client: str | None) -> Generator[None, None, None]:
        """Hold a slot (and one of ``client``'s) until the block ends.

        Raises:
            _NoSlot: None is free.
        """
        if self.active >= self.limit:
            self.refused.record()
            raise _NoSlot
        used = self.by_client.get(client, 0) if client is not None else 0
        if self.per_client is not None and used >= self.per_client:
            raise _NoSlot
        self.active += 1
        if client is not None:
            self.by_client[client] = used + 1
        try:
            yield
        finally:
            self.active -= 1
            if client is not None:
                left = self.by_client[client] - 1
                if left:
                    self.by_client[client] = left
                else:
                    del self.by_client[client]


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
    _connections: Callable[[], int] = field(repr=False, compare=False, default=lambda: 0)

    @property
    def url(self) -> str:
        """The URL clients connect to, e.g. ``ws://127.0.0.1:54321/mcp``."""
        scheme = "wss" if self.secure else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{self.path}"

    @property
    def connections(self) -> int:
        """How many connections are open now (handshakes being accepted included)."""
        return self._connections()


@dataclass
class _Server:
    """One running `serve`: its settings and the per-connection logic."""

    handler: Handler
    path: str
    policy: Policy
    slots: _Slots
    handshake_timeout: float
    health_path: str | None
    binary_frames: BinaryFrames
    pending_limit: int
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    compression: Deflate | None = None
    pending: OrderedDict[int, trio.CancelScope] = field(default_factory=OrderedDict[int, trio.CancelScope])
    ids: itertools.count[int] = field(default_factory=itertools.count)
    stopping: bool = False

    async def accept_loop(self, listener: trio.abc.Listener[trio.abc.Stream], nursery: trio.Nursery) -> None:
        async with listener:  # closed as soon as serve is cancelled: no new clients queue up
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
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
                if len(self.pending) >= self.pending_limit:
                    _, oldest = self.pending.popitem(last=False)
                    oldest.cancel()
                    _evictions.record()
                nursery.start_soon(self.connection, stream)

    async def connection(self, stream: trio.abc.Stream) -> None:
        """Serve one TCP connection, from handshake to close. Never raises (but Cancelled)."""
        client = peer_address(stream)
        remote = describe_address(client)
        try:
            pending = await self._read_handshake(stream, remote)
            if pending is None:
                return
            await self._serve(pending, client, remote)
        except Exception:
            logger.exception("%s: the connection handler failed; closed the connection with 1011", remote)
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    async def _read_handshake(self, stream: trio.abc.Stream, remote: str) -> PendingHandshake | None:
        """The client's request, read within handshake_timeout, or None (dropped or answered)."""
        key = next(self.ids)
        with trio.move_on_after(self.handshake_timeout) as scope:
            self.pending[key] = scope
            try:
                return await read_request(stream, limits=self.policy.limits, plain_http=self._plain_http)
            except HandshakeError as exc:
                logger.debug("%s: %s", remote, exc)
                return None
            finally:
                self.pending.pop(key, None)
        logger.debug("%s: no handshake within %ss (or evicted); dropped", remote, self.handshake_timeout)
        return None

    async def _plain_http(self, method: str, target: str) -> bytes | None:
        if self.health_path is None or method != "GET" or target.partition("?")[0] != self.health_path:
            return None
        if self.stopping:
            return http_response(503, [], b"shutting down\n")
        return http_response(200, [], b"ok\n")

    async def _serve(self, pending: PendingHandshake, client: tuple[str, int] | None, remote: str) -> None:
        event = pending.request
        client = real_client(client, event.extra_headers, self.trusted_proxies)
        handshake = handshake_request(
            host=event.host,
            target=event.target,
            headers=event.extra_headers,
            subprotocols=event.subprotocols,
            client=client,
            secure=isinstance(pending.stream, trio.SSLStream),
        )
        if handshake.path != self.path:
            logger.debug("%s: no WebSocket endpoint at %r; answered 404", remote, handshake.path)
            await _reject(pending, Rejection(404, f"Not Found: the MCP endpoint is {self.path}"))
            return
        rejection: Rejection
        try:
            with self.slots.reserve(client[0] if client is not None else None):
                decision: ConnectionInfo | Rejection | None = None
                with trio.move_on_after(self.handshake_timeout):
                    decision = await decide(handshake, self.policy)
                if decision is None:
                    logger.debug("%s: the policy took longer than handshake_timeout; dropped", remote)
                    return
                if isinstance(decision, Rejection):
                    rejection = decision
                else:
                    await self._run(pending, decision)
                    return
        except _NoSlot:
            rejection = Rejection(503, "Service Unavailable: too many connections")
        # INFO, not WARNING: a refusal is the policy working (and a peer can cause any number).
        logger.info(
            "refused a WebSocket handshake from %s for %s: %d %s",
            remote,
            handshake.path,
            rejection.status,
            rejection.body,
        )
        await _reject(pending, rejection)

    async def _run(self, pending: PendingHandshake, info: ConnectionInfo) -> None:
        limits = self.policy.limits
        conn: WsConnection | None = None
        with trio.move_on_after(self.handshake_timeout):
            try:
                conn = await pending.accept(subprotocol=info.subprotocol, compression=self.compression)
            except HandshakeError:
                pass
        if conn is None:
            return  # the client left (or stopped reading) before our answer
        with serving(info):
            async with open_pump(conn, limits, binary_frames=self.binary_frames) as (read, write):
                await self.handler(read, write)


async def _reject(pending: PendingHandshake, rejection: Rejection) -> None:
    await pending.reject(rejection.status, rejection.header_bytes(), rejection.body_bytes())


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
    binary_frames: BinaryFrames = "accept",
    compression: Compression = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_connections_per_client: int | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_containers: int = SERVER_MAX_CONTAINERS,
    max_members: int = SERVER_MAX_MEMBERS,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    first_message_timeout: float | None = DEFAULT_FIRST_MESSAGE_TIMEOUT,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float = DEFAULT_PING_TIMEOUT,
    health_path: str | None = None,
    reuse_port: bool = False,
    trusted_proxies: Sequence[str] = (),
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[ServerInfo] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve MCP over WebSocket: call ``await handler(read, write)`` for every connection.

    Follows Trio's ``nursery.start`` protocol:

    ```python
    async with trio.open_nursery() as nursery:
        info = await nursery.start(serve, handler, "127.0.0.1", 0)
        print(info.url)  # ws://127.0.0.1:54321/mcp
    ```

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
        binary_frames: ``"accept"`` binary messages holding UTF-8 JSON (mcp 1.30 peers
            send them), or ``"reject"`` them by closing with 1003 (the SEP-1288 draft).
        compression: ``"deflate"`` or a `Deflate` to accept clients' permessage-deflate
            offers; ``None``, the default, accepts none (see the compression guide).
            ``max_message_size`` bounds the decompressed size.
        max_connections: Connections open at once; beyond it handshakes get 503.
        max_connections_per_client: Connections one client address may hold open;
            beyond it its handshakes get 503. ``None``: no per-address cap (behind a
            proxy every client has the proxy's address).
        max_message_size: Largest incoming message in bytes; a bigger one closes its
            connection with 1009.
        max_containers: Most objects and arrays one incoming message may hold (counted
            as ``{`` and ``[`` in the raw frame, before parsing); more makes it a
            `MessageDecodeError` (-32600) on the read channel and the connection serves on.
            A server's default is a quarter of a client's: see the server guide.
        max_members: Most object members (``:``) one incoming message may hold, likewise.
        handshake_timeout: Seconds for a client to complete its opening handshake
            (reading it, the policy, ``authenticate`` and the answer).
        first_message_timeout: Seconds an accepted connection may wait before sending
            its first message; then it is closed with 1008. ``None`` disables it.
        close_timeout: Seconds for flushing and the close handshake per connection.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds a pong may take before the connection is declared dead.
        health_path: When given, a plain HTTP ``GET`` of this path (no upgrade) answers
            ``200 ok`` while serving and ``503`` while shutting down, for load balancers.
        reuse_port: Set ``SO_REUSEPORT`` so several processes can serve one port (the
            kernel spreads connections over them). Linux and the BSDs only.
        trusted_proxies: Addresses and CIDR ranges of reverse proxies whose
            ``Forwarded`` / ``X-Forwarded-For`` header names the real client (for
            `ConnectionInfo.client` and ``max_connections_per_client``); from anyone
            else those headers are ignored. Empty (the default): trust no one.
        handler_nursery: Run connections in this nursery instead of serve's own; they
            then end with that nursery, not when `serve` is cancelled.
        task_status: For ``nursery.start``; receives the `ServerInfo`.

    Raises:
        ValueError: An argument is out of range, or ``reuse_port`` is not supported here.
        OSError: The address cannot be bound.

    Resource handling:
        Runs until cancelled. Cancelling it stops accepting, closes every connection in
        its own nursery with 1001 within ``close_timeout``, then closes the listeners.

    Error handling:
        A handler's exception closes only its connection (1011) and is logged with the
        client's address on the ``trio_mcp_ws.server`` logger. Bad handshakes are
        answered (400/404/421/403/401/426/431/503) or dropped; none reaches the accept
        loop, and none is logged above DEBUG except in rate-limited summaries.
    """
    require_trio("serve")
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', not {path!r}")
    if health_path is not None and (not health_path.startswith("/") or health_path == path):
        raise ValueError(f"health_path must start with '/' and differ from path, not {health_path!r}")
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, not {max_connections!r}")
    if max_connections_per_client is not None and max_connections_per_client < 1:
        raise ValueError(f"max_connections_per_client must be at least 1, not {max_connections_per_client!r}")
    if handshake_timeout <= 0:
        raise ValueError(f"handshake_timeout must be positive, not {handshake_timeout!r}")
    proxies = TrustedProxies(trusted_proxies)
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port needs SO_REUSEPORT, which this platform does not have")
    limits = Limits(
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        first_message_timeout=first_message_timeout,
        max_containers=max_containers,
        max_members=max_members,
    )
    if security is None:
        security = default_security(host)
        if not security.enable_dns_rebinding_protection:
            logger.warning(
                "serving on %s without Host/Origin checks (DNS-rebinding protection); "
                "pass security=TransportSecuritySettings(...) to enable them",
                host,
            )
    slots = _Slots(max_connections, max_connections_per_client)
    server = _Server(
        handler=handler,
        path=path,
        policy=Policy(
            security=security,
            authenticate=authenticate,
            require_subprotocol=require_subprotocol,
            limits=limits,
        ),
        slots=slots,
        handshake_timeout=handshake_timeout,
        health_path=health_path,
        binary_frames=binary_frames,
        trusted_proxies=proxies,
        compression=resolve_compression(compression),
        pending_limit=pending_limit(max_connections),
    )
    tcp_listeners = await _open_listeners(port, host, reuse_port=reuse_port)
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
                _connections=lambda: slots.active,
            )
            logger.info("serving MCP over WebSocket at %s", info.url)
            task_status.started(info)
            try:
                await trio.sleep_forever()
            finally:
                server.stopping = True
    finally:
        with trio.CancelScope(shield=True):
            for listener in listeners:
                await trio.aclose_forcefully(listener)


def pending_limit(max_connections: int) -> int:
    """`MAX_PENDING_HANDSHAKES`, or fewer when the open-files limit could not hold them.

    With the common soft limit of 1024 and 512 connections that is 448; raise the limit
    (``ulimit -n``; the CLI raises its soft limit to the hard one) to read more at once.
    """
    try:
        import resource  # noqa: PLC0415 - POSIX only

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        return _MIN_PENDING * 16
    if soft == resource.RLIM_INFINITY:
        return MAX_PENDING_HANDSHAKES
    return max(_MIN_PENDING, min(MAX_PENDING_HANDSHAKES, soft - max_connections - _SPARE_FDS))


async def _open_listeners(port: int, host: str, *, reuse_port: bool) -> list[trio.SocketListener]:
    if not reuse_port:
        return await trio.open_tcp_listeners(port, host=host)
    # trio.open_tcp_listeners offers no socket options; bind by hand with SO_REUSEPORT.
    listeners: list[trio.SocketListener] = []
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    for family, kind, proto, _, address in infos:
        sock = trio.socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            await sock.bind(address)
            sock.listen(socket.SOMAXCONN)
        except BaseException:
            sock.close()
            for listener in listeners:
                listener.socket.close()
            raise
        listeners.append(trio.SocketListener(sock))
    return listeners


def _tls(
    listener: trio.SocketListener, ssl_context: ssl.SSLContext | None
) -> trio.abc.Listener[trio.abc.Stream]:
    if ssl_context is None:
        return listener
    return trio.SSLListener(listener, ssl_context, https_compatible=True)
