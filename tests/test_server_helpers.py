"""Helpers shared by the server tests (this module holds no tests).

Raw HTTP peers speak the opening handshake byte by byte, so a test can send what no
well-behaved client would (duplicate headers, another Host, half a request, garbage) and
see the exact status, headers and body the server answers with.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import mcp_types as t
import trio
from mcp.shared.message import SessionMessage
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection
from wsproto.events import Request as WsRequest
from wsproto.events import TextMessage as WsMessage

from trio_mcp_ws import ServerInfo, serve, websocket_client

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence

    from trio_mcp_ws import Handler, ReadChannel, WriteChannel

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
"""The RFC 6455 sample key; the server must answer it with ACCEPT."""
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def upgrade_request(
    port: int,
    *,
    path: str = "/mcp",
    host: str | None = None,
    subprotocols: Sequence[str] = ("mcp",),
    headers: Sequence[tuple[str, str]] = (),
    method: str = "GET",
) -> bytes:
    """A WebSocket upgrade request, exactly as given (duplicate headers are kept)."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host if host is not None else f'127.0.0.1:{port}'}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Response:
    """An HTTP response head and body as read off the wire."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None


async def read_response(stream: trio.abc.ReceiveStream) -> Response | None:
    """Read one response (head, then a Content-Length body); None if the server closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            chunk = b""
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = [
        (name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in header_lines)
    ]
    length = int(next((value for name, value in headers if name.lower() == "content-length"), "0"))
    while status != 101 and len(body) < length:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            break
        if not chunk:
            break
        body += chunk
    return Response(status, headers, body)


async def exchange(port: int, data: bytes) -> Response | None:
    """Send ``data`` on a new connection and read the answer; None if it was dropped."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        return await read_response(stream)


async def wait_closed(stream: trio.abc.ReceiveStream) -> bytes:
    """Read until the server closes the connection; return everything it sent."""
    data = b""
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            return data
        if not chunk:
            return data
        data += chunk


async def echo(read: ReadChannel, write: WriteChannel) -> None:
    """Send every message back."""
    async with write:
        async for item in read:
            if isinstance(item, SessionMessage):
                await write.send(item)


@dataclass
class RawClient:
    """A WebSocket client spoken by hand (wsproto), to see exactly how the server closes."""

    stream: trio.SocketStream
    ws: WSConnection

    async def send_text(self, text: str) -> None:
        await self.stream.send_all(self.ws.send(WsMessage(data=text)))

    async def wait_close(self, *, answer: bool = True) -> tuple[int | None, float]:
        """Wait for the server's close frame (answering it unless told not to), then its TCP close.

        Returns the close code (None if TCP closed without one) and when TCP closed.
        """
        code: int | None = None
        while True:
            try:
                chunk = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                chunk = b""
            if not chunk:
                return code, trio.current_time()
            if code is not None:
                continue  # after the close frame: only wait for the TCP close
            self.ws.receive_data(chunk)
            for event in self.ws.events():
                if isinstance(event, CloseConnection):
                    code = event.code
                    if answer:
                        await self.stream.send_all(self.ws.send(event.response()))


@asynccontextmanager
async def raw_client(port: int, path: str = "/mcp") -> AsyncGenerator[RawClient, None]:
    """A connected `RawClient`, after a correct opening handshake."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(WsRequest(host=f"127.0.0.1:{port}", target=path, subprotocols=["mcp"])))
        accepted = False
        while not accepted:
            ws.receive_data(await stream.receive_some(65536))
            accepted = any(isinstance(event, AcceptConnection) for event in ws.events())
        yield RawClient(stream, ws)


def rpc_request(
    request_id: int, method: str = "ping", params: dict[str, Any] | None = None
) -> SessionMessage:
    return SessionMessage(t.JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params))


async def round_trip(url: str, **options: Any) -> None:
    """Connect, send one request to an echo server, check it comes back."""
    async with websocket_client(url, **options) as (read, write):
        await write.send(rpc_request(1))
        item = await read.receive()
        assert isinstance(item, SessionMessage)
        assert isinstance(item.message, t.JSONRPCRequest)
        assert item.message.id == 1


@asynccontextmanager
async def running(handler: Handler = echo, **options: Any) -> AsyncGenerator[ServerInfo, None]:
    """`serve` on 127.0.0.1 with a free port for the block; cancelled at its end."""
    async with trio.open_nursery() as nursery:
        info: ServerInfo = await nursery.start(partial(serve, handler, "127.0.0.1", 0, **options))
        yield info
        nursery.cancel_scope.cancel()
