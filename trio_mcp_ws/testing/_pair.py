"""`open_transport_pair`: a client and a server transport connected in memory.

Both ends are the production code path: our own WebSocket connection (``_wsconn``, the
opening handshake included) under the same pump as `websocket_client` and `serve`, over an
in-memory byte stream instead of a socket. Only the network is simulated.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Literal, NamedTuple

import trio

from .._options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PING_TIMEOUT,
    SUBPROTOCOL,
    Limits,
)
from .._pump import ReadChannel, WriteChannel, exit_close_code, open_pump
from .._scope import background_nursery
from .._trio_only import require_trio
from .._wsconn import WsConnection, read_request
from ._memory import DEFAULT_BUFFER_SIZE, bounded_stream_pair

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from types import TracebackType

__all__ = ["Endpoint", "TransportPair", "open_transport_pair"]

logger = logging.getLogger("trio_mcp_ws")

Role = Literal["client", "server"]

# Close codes an endpoint uses, matching what the pump sends when an `async with` ends.
_CLOSE_NORMAL = 1000
_CLOSE_GOING_AWAY = 1001


class _EndpointFailed(Exception):
    """Raised inside an endpoint's pump to make it close as after a failing body (1011)."""


class Endpoint:
    """One end of an in-memory WebSocket connection: an MCP transport.

    It is what `websocket_client` (or a server handler) gives your code, already connected:

    - ``endpoint.read`` and ``endpoint.write`` are the transport's channels, usable at once;
    - ``async with endpoint as (read, write):`` uses it as a transport (``mcp.Client``
      accepts it as one): when the block ends, this end closes the way a transport's own
      ``async with`` does, with 1000 on a clean exit, 1001 when cancelled, 1011 when the
      block raised. Enter it at most once.
    - ``await endpoint.aclose()`` closes this end cleanly (1000) without a block.

    The other end keeps running until it is closed too, or the pair's ``async with``
    ends. Create endpoints with `open_transport_pair` or `open_raw_peer`.
    """

    def __init__(self, role: Role, conn: WsConnection) -> None:
        self.role: Role = role
        """``"client"`` or ``"server"``: which side of the opening handshake this end played."""
        self._conn = conn
        self._channels: tuple[ReadChannel, WriteChannel] | None = None
        self._scope = trio.CancelScope()
        self._stop = trio.Event()
        self._fail = False
        self._entered = False
        self._done = trio.Event()

    def __repr__(self) -> str:
        state = "closed" if self._done.is_set() else "open"
        return f"<Endpoint {self.role} {state}>"

    @property
    def read(self) -> ReadChannel:
        """Received messages, and errors as values; ends when the connection does."""
        return self._started()[0]

    @property
    def write(self) -> WriteChannel:
        """Messages to send, each as one text frame, in order."""
        return self._started()[1]

    @property
    def closed(self) -> bool:
        """Whether this end has finished closing (its tasks have all ended)."""
        return self._done.is_set()

    @property
    def close_code(self) -> int | None:
        """How the connection ended for this end: the close code it sent or received.

        ``None`` while open; 1006 when the connection dropped without a close frame.
        """
        record = self._conn.close_record
        return None if record is None else record.code

    async def __aenter__(self) -> tuple[ReadChannel, WriteChannel]:
        if self._entered:
            raise RuntimeError(f"{self!r} was already entered; an endpoint is a one-shot transport")
        if self._done.is_set():
            raise RuntimeError(f"{self!r} is already closed")
        self._entered = True
        await trio.lowlevel.checkpoint()
        return self._started()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self._close(exit_close_code(exc_val))

    async def aclose(self) -> None:
        """Close this end as a clean exit would: flush, then close with 1000. Idempotent.

        Closing the channels under a task that still uses them makes that task's next
        ``receive`` or ``send`` raise `trio.ClosedResourceError`, as for any Trio channel;
        to close from the side that reads, end its ``async with`` instead.
        """
        await self._close(_CLOSE_NORMAL)

    # -- internals ----------------------------------------------------------------------

    def _started(self) -> tuple[ReadChannel, WriteChannel]:
        if self._channels is None:  # pragma: no cover - endpoints are only handed out running
            raise RuntimeError("endpoint is not running")
        return self._channels

    async def _close(self, code: int) -> None:
        """Ask the endpoint's task to close with ``code``, and wait until it has, shielded.

        Bounded: the pump finishes its close within ``close_timeout``, then drops TCP.
        """
        if not self._stop.is_set():
            if code == _CLOSE_GOING_AWAY:
                self._scope.cancel()
            self._fail = code not in (_CLOSE_NORMAL, _CLOSE_GOING_AWAY)
            self._stop.set()
        with trio.CancelScope(shield=True):
            await self._done.wait()

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The endpoint's task: its pump lives here, so it can close on its own."""
        try:
            with self._scope:
                try:
                    async with open_pump(self._conn, self._conn.limits) as channels:
                        self._channels = channels
                        task_status.started()
                        await self._stop.wait()
                        if self._fail:
                            raise _EndpointFailed
                except _EndpointFailed:
                    pass
        finally:
            self._done.set()


class TransportPair(NamedTuple):
    """A connected client and server, as yielded by `open_transport_pair`.

    A named tuple, so both spellings work:

    ```python
    async with open_transport_pair() as pair:
        await pair.client.write.send(message)
    async with open_transport_pair() as (client, server):
        ...
    ```
    """

    client: Endpoint
    """The end that sent the opening handshake, as `websocket_client`'s does."""
    server: Endpoint
    """The end that accepted it, as a server handler's does."""

    async def drop(self) -> None:
        """Drop the connection: no close frames, as if the network failed.

        Both ends see a `ConnectionClosedError` with code 1006 on their read channels,
        then the channels end; later writes are dropped (and logged), never raised.
        """
        for endpoint in self:
            await endpoint._conn.abort()  # pyright: ignore[reportPrivateUsage]


@asynccontextmanager
async def open_transport_pair(
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ping_interval: float | None = None,
    ping_timeout: float = DEFAULT_PING_TIMEOUT,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    resource: str = "/mcp",
) -> AsyncGenerator[TransportPair, None]:
    """Connect a client and a server transport in memory, with no sockets.

    Each end runs exactly what `websocket_client` runs (our WebSocket connection and pump,
    the opening handshake with the ``mcp`` subprotocol, close handshakes),
    over an in-memory connection whose buffers are bounded like a socket's, so
    backpressure behaves as it does over TCP:

    ```python
    async with open_transport_pair() as pair:
        await pair.client.write.send(SessionMessage(request))
        received = await pair.server.read.receive()
    ```

    Each end is also a transport in its own right (see `Endpoint`), so the official SDK
    can run on both:

    ```python
    async with open_transport_pair() as pair, trio.open_nursery() as nursery:
        nursery.start_soon(serve_on, pair.server)   # async with endpoint as (r, w): ...
        async with Client(pair.client) as client:
            await client.list_tools()
    ```

    Server-side policy (``Host``/``Origin`` checks, authentication, connection limits)
    is not involved; test it through the real server on a loopback socket.

    Args:
        max_message_size: Largest incoming message, in bytes, for both ends; a bigger one
            closes the connection with 1009.
        close_timeout: Seconds each end allows for flushing and the close handshake.
        ping_interval: Seconds between keepalive pings; ``None`` (the default here, unlike
            `websocket_client`) disables them so tests have no timers unless they ask.
        ping_timeout: Seconds a pong may take before the peer is declared dead.
        buffer_size: Bytes each direction of the in-memory connection holds before a
            sender blocks, standing in for the socket buffers.
        resource: The request path the client asks for in its opening handshake.

    Yields:
        A `TransportPair` of two connected `Endpoint` objects.

    Resource handling:
        When the block ends, every end still open closes as its own ``async with`` would
        (1000 on a clean exit, 1001 when cancelled, 1011 when the block raised), both at
        once, each flushing what it accepted first; then every task has finished.

    Error handling:
        Nothing is raised for what happens on the connection: bad frames and abnormal
        closes arrive as values on the read channels. The block's own exception
        propagates as itself, never inside an ExceptionGroup.
    """
    require_trio("open_transport_pair")
    limits = Limits(
        max_message_size=max_message_size,
        close_timeout=close_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )
    client_stream, server_stream = bounded_stream_pair(buffer_size)
    async with background_nursery() as nursery:
        try:
            server_conn, client_conn = await _handshake(
                client_stream, server_stream, limits=limits, resource=resource
            )
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(client_stream)
                await trio.aclose_forcefully(server_stream)
            raise
        pair = TransportPair(Endpoint("client", client_conn), Endpoint("server", server_conn))
        for endpoint in pair:
            await nursery.start(endpoint._run)  # pyright: ignore[reportPrivateUsage]
        async with close_on_exit(*pair):
            yield pair


async def _handshake(
    client_stream: trio.abc.Stream,
    server_stream: trio.abc.Stream,
    *,
    limits: Limits,
    resource: str,
) -> tuple[WsConnection, WsConnection]:
    """Run both sides of the opening handshake; return ``(server, client)`` connections."""
    accepted: list[WsConnection] = []

    async def accept() -> None:
        pending = await read_request(server_stream, limits=limits)
        offered = pending.request.subprotocols
        accepted.append(await pending.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        client_conn = await WsConnection.connect(
            client_stream,
            host="localhost",
            resource=resource,
            subprotocols=[SUBPROTOCOL],
            extra_headers=[],
            limits=limits,
        )
    return accepted[0], client_conn


@asynccontextmanager
async def close_on_exit(*endpoints: Endpoint) -> AsyncGenerator[None, None]:
    """Close every endpoint still open when the block ends, concurrently, as the block ended."""
    code = _CLOSE_NORMAL
    try:
        yield
    except BaseException as exc:
        code = exit_close_code(exc)
        raise
    finally:
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as closer:
                for endpoint in endpoints:
                    closer.start_soon(endpoint._close, code)  # pyright: ignore[reportPrivateUsage]
