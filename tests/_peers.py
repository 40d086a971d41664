"""Test peers: a pump server built from our parts, and raw WebSocket servers that misbehave.

The raw servers speak WebSocket by hand (wsproto for the parts that must be right, raw
bytes for the parts that must be wrong), so tests can see exactly what our client puts on
the wire: close codes, and whether it closes the TCP connection in time.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Event, Request, TextMessage

from trio_mcp_ws._options import Limits
from trio_mcp_ws._pump import ReadChannel, WriteChannel, open_pump
from trio_mcp_ws._wsconn import WsConnection, read_request

PumpHandler = Callable[[ReadChannel, WriteChannel, WsConnection], Awaitable[None]]
RawHandler = Callable[["RawConnection"], Awaitable[None]]
StreamHandler = Callable[[trio.SocketStream], Awaitable[None]]

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    """One unmasked (server-to-client) frame, valid or not, exactly as given."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def url(port: int, path: str = "/mcp") -> str:
    return f"ws://127.0.0.1:{port}{path}"


async def serve_streams(nursery: trio.Nursery, handler: StreamHandler) -> int:
    """Listen on 127.0.0.1:0, run ``handler(stream)`` per connection; return the port."""

    async def run(stream: trio.SocketStream) -> None:
        async with stream:
            await handler(stream)

    listeners: list[trio.SocketListener] = await nursery.start(
        partial(trio.serve_tcp, run, 0, host="127.0.0.1")
    )
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def serve_pump(nursery: trio.Nursery, handler: PumpHandler, *, limits: Limits | None = None) -> int:
    """A minimal server built from our connection and pump (no policy); return the port."""

    async def run(stream: trio.SocketStream) -> None:
        chosen = limits or Limits(ping_interval=None)
        pending = await read_request(stream, limits=chosen)
        offered = pending.request.subprotocols
        conn = await pending.accept(subprotocol="mcp" if "mcp" in offered else None)
        async with open_pump(conn, chosen) as (read, write):
            await handler(read, write, conn)

    return await serve_streams(nursery, run)


@dataclass
class RawConnection:
    """The server end of one connection, after a correct opening handshake."""

    stream: trio.SocketStream
    ws: WSConnection
    request: Request
    pending: list[Event] = field(default_factory=list[Event])
    eof: bool = False

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send_text(self, text: str) -> None:
        await self.send(frame(OP_TEXT, text.encode()))

    async def next_event(self) -> Event | None:
        """The next event from the client; None once it closed TCP."""
        while not self.pending:
            if self.eof:
                return None
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self.eof = True
                if self.ws.state is not ConnectionState.CLOSED:
                    self.ws.receive_data(None)
            else:
                self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    async def next_message(self) -> str | bytes | None:
        """The next complete message; None at a close frame or EOF."""
        parts: list[str | bytes] = []
        while True:
            event = await self.next_event()
            if event is None or isinstance(event, CloseConnection):
                if event is not None:
                    self.pending.insert(0, event)
                return None
            if isinstance(event, (TextMessage, BytesMessage)):
                data = event.data
                parts.append(data if isinstance(data, str) else bytes(data))
                if event.message_finished:
                    if isinstance(parts[0], str):
                        return "".join(p for p in parts if isinstance(p, str))
                    return b"".join(p for p in parts if isinstance(p, bytes))

    async def wait_close(self) -> CloseConnection | None:
        """Skip to the client's close frame (None if TCP closed without one)."""
        while True:
            event = await self.next_event()
            if event is None or isinstance(event, CloseConnection):
                return event

    async def wait_eof(self) -> None:
        """Wait until the client closes TCP, answering nothing."""
        while not self.eof:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self.eof = True


async def serve_raw(nursery: trio.Nursery, handler: RawHandler, *, subprotocol: str | None = "mcp") -> int:
    """A server that does the opening handshake correctly, then lets ``handler`` misbehave."""

    async def run(stream: trio.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        request: Request | None = None
        while request is None:
            data = await stream.receive_some(65536)
            if not data:
                return
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    request = event
        chosen = subprotocol if subprotocol in request.subprotocols else None
        await stream.send_all(ws.send(AcceptConnection(subprotocol=chosen)))
        await handler(RawConnection(stream, ws, request))

    return await serve_streams(nursery, run)
