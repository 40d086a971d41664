"""`serve_mcp`: an official MCP SDK server behind `serve`, one SDK session per connection.

The MCP glue: the only module besides ``_sdk.py`` that knows the SDK's server side. Each
connection runs the SDK's public dual-era loop (``mcp.server.runner.serve_dual_era_loop``),
so clients of both protocol eras are served; ``_sdk.lowlevel_server`` finds the low-level
``Server`` inside an ``MCPServer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import trio
from mcp.server.runner import serve_dual_era_loop
from mcp.shared.message import ServerMessageMetadata, SessionMessage

from ._listener import (
    DEFAULT_FIRST_MESSAGE_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    ServerInfo,
    serve,
)
from ._options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    SERVER_MAX_CONTAINERS,
    SERVER_MAX_MEMBERS,
)
from ._policy import ConnectionInfo, connection_info
from ._sdk import lowlevel_server
from ._trio_only import require_trio

if TYPE_CHECKING:
    import ssl
    from collections.abc import Sequence
    from types import TracebackType

    from mcp.server.lowlevel import Server
    from mcp.server.mcpserver import MCPServer
    from mcp.server.transport_security import TransportSecuritySettings
    from typing_extensions import Self

    from ._auth import Authenticate
    from ._deflate import Compression
    from ._pump import BinaryFrames, ReadChannel, WriteChannel

__all__ = ["serve_mcp"]


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
    """Serve an official MCP SDK server over WebSocket, one session per connection.

    ``server`` is an ``mcp.server.mcpserver.MCPServer`` or a low-level
    ``mcp.server.lowlevel.Server`` (mcp >= 2). Each connection runs the SDK's dual-era
    loop, so clients of both protocol eras are served: the ``initialize`` handshake and
    the 2026-07-28 stateless ``server/discover``.

    ```python
    mcp = MCPServer("demo")

    @mcp.tool()
    def add(a: int, b: int) -> int:
        return a + b

    trio.run(serve_mcp, mcp)  # ws://127.0.0.1:8000/mcp
    ```

    The server's lifespan is entered once, before listening, and shared by every
    connection (as the SDK's streamable-HTTP transport does). In a tool, the connection's
    `ConnectionInfo` is ``ctx.request_context.request`` (so ``ctx.headers`` works) and
    `connection_info()`.

    Args:
        server: The SDK server to run for every connection.
        host: As `serve`.
        port: As `serve`.
        path: As `serve`.
        ssl_context: As `serve`.
        security: As `serve`.
        authenticate: As `serve`.
        require_subprotocol: As `serve`.
        binary_frames: As `serve`.
        compression: As `serve`.
        max_connections: As `serve`.
        max_connections_per_client: As `serve`.
        max_message_size: As `serve`.
        max_containers: As `serve`.
        max_members: As `serve`.
        handshake_timeout: As `serve`.
        first_message_timeout: As `serve`.
        close_timeout: As `serve`.
        ping_interval: As `serve`.
        ping_timeout: As `serve`.
        health_path: As `serve`.
        reuse_port: As `serve`.
        trusted_proxies: As `serve`.
        handler_nursery: As `serve`.
        task_status: As `serve`.

    Raises:
        TypeError: ``server`` is neither kind of SDK server.
        ValueError: As `serve`.
        OSError: As `serve`.
    """
    require_trio("serve_mcp")
    lowlevel = lowlevel_server(server)

    async with lowlevel.lifespan(lowlevel) as lifespan_state:

        async def run_session(read: ReadChannel, write: WriteChannel) -> None:
            await serve_dual_era_loop(
                lowlevel,
                StampedReader(read, connection_info()),
                write,
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
            binary_frames=binary_frames,
            compression=compression,
            max_connections=max_connections,
            max_connections_per_client=max_connections_per_client,
            max_message_size=max_message_size,
            max_containers=max_containers,
            max_members=max_members,
            handshake_timeout=handshake_timeout,
            first_message_timeout=first_message_timeout,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            health_path=health_path,
            reuse_port=reuse_port,
            trusted_proxies=trusted_proxies,
            handler_nursery=handler_nursery,
            task_status=task_status,
        )


class StampedReader:
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
        """The next message or error, stamped."""
        return self._stamp(await self._channel.receive())

    async def aclose(self) -> None:
        """Close the channel under it, without raising Cancelled.

        The SDK awaits this in ``finally`` blocks with synchronous cleanup after it
        (``mcp.server.runner._replay_from_opening_request``). anyio's ``aclose`` never
        raises Cancelled; Trio's checkpoints, so under cancellation the SDK would skip that
        cleanup and leak its anyio streams. Close, then a shielded checkpoint.
        """
        self._channel.close()
        await trio.lowlevel.cancel_shielded_checkpoint()

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
