"""Helpers for the CLI tests: the real console script in a subprocess, and a raw WebSocket client.

No tests here. The raw client speaks WebSocket with wsproto over a real loopback socket,
so a test reads the exact close code a gateway sends (1000, 1001, 1011), sets any ``Host``
header, and sees HTTP rejections as they are.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence

STDIO_SERVER = str(Path(__file__).with_name("_stdio_server.py"))
_SCRIPT = Path(sys.executable).with_name("trio-mcp-ws")
SERVING = re.compile(rb"serving on (wss?://\S+)")


def cli(*args: str) -> list[str]:
    """The argv running the real ``trio-mcp-ws`` console script (``-m`` if it is not installed)."""
    if _SCRIPT.exists():
        return [str(_SCRIPT), *args]
    return [sys.executable, "-m", "trio_mcp_ws", *args]


def child(*args: str) -> list[str]:
    """The argv of the test stdio server, e.g. ``child("echo")``."""
    return [sys.executable, STDIO_SERVER, *args]


def request(method: str, id_: int = 1) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method}, separators=(",", ":"))


async def drain(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    """Append everything from ``stream`` to ``into`` until EOF (so a pipe never fills)."""
    while True:
        try:
            data = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if not data:
            return
        into += data


@dataclass
class Gateway:
    """A running ``trio-mcp-ws serve`` process, in a session of its own (as under a terminal)."""

    process: trio.Process
    url: str
    log: bytearray

    def interrupt(self, signum: int) -> None:
        """Send ``signum`` to the gateway's whole process group, as a terminal's Ctrl-C does."""
        os.killpg(self.process.pid, signum)

    async def exit_status(self) -> int:
        """Wait (at most 15 s) for the gateway to exit; its status."""
        with trio.fail_after(15):
            return await self.process.wait()


@asynccontextmanager
async def run_gateway(*serve_args: str, command: Sequence[str]) -> AsyncGenerator[Gateway, None]:
    """Start ``trio-mcp-ws serve --port 0 ARGS -- COMMAND`` and wait for its "serving on" line."""
    process = await trio.lowlevel.open_process(
        cli("serve", "--port", "0", *serve_args, "--", *command),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stderr is not None
    log = bytearray()
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(20):
                while (found := SERVING.search(log)) is None:
                    data = await process.stderr.receive_some(65536)
                    assert data, f"serve exited before listening: {bytes(log)!r}"
                    log += data
            nursery.start_soon(drain, process.stderr, log)
            yield Gateway(process, found.group(1).decode(), log)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            await process.stderr.aclose()


@dataclass
class RawClient:
    """The client end of one WebSocket connection, driven by hand."""

    stream: trio.abc.Stream
    ws: WSConnection
    pending: list[Event] = field(default_factory=list[Event])

    async def next_event(self) -> Event | None:
        """The next event from the server; None once it closed TCP."""
        while not self.pending:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            self.ws.receive_data(bytes(data) if data else None)
            self.pending.extend(self.ws.events())
            if not data and not self.pending:
                return None
        return self.pending.pop(0)

    async def send_text(self, text: str) -> None:
        await self.stream.send_all(self.ws.send(TextMessage(text)))

    async def next_text(self) -> str | None:
        """The next text message; None at a close frame or EOF (the event stays queued)."""
        text = ""
        while True:
            event = await self.next_event()
            if event is None or isinstance(event, CloseConnection):
                if event is not None:
                    self.pending.insert(0, event)
                return None
            if isinstance(event, Ping):
                await self.stream.send_all(self.ws.send(event.response()))
            elif isinstance(event, TextMessage):
                text += event.data
                if event.message_finished:
                    return text

    async def close_code(self) -> int:
        """Wait for the server's close frame and answer it; its code, or 1006 for TCP EOF."""
        while True:
            event = await self.next_event()
            if event is None:
                return 1006
            if isinstance(event, CloseConnection):
                if event.code == 1006:  # wsproto's own event for TCP EOF: nothing to answer
                    return 1006
                try:
                    await self.stream.send_all(self.ws.send(event.response()))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                return event.code


@dataclass(frozen=True)
class Rejected:
    """An HTTP answer refusing the upgrade."""

    status: int
    body: bytes


@asynccontextmanager
async def raw_client(
    url: str, *, host: str | None = None, headers: Sequence[tuple[str, str]] = ()
) -> AsyncGenerator[RawClient | Rejected, None]:
    """Open a WebSocket to ``url`` (``ws://`` only), yielding the client or the HTTP rejection."""
    match = re.fullmatch(r"ws://([^/:]+):(\d+)(/.*)", url)
    assert match is not None, url
    stream = await trio.open_tcp_stream(match.group(1), int(match.group(2)))
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(
            ws.send(
                Request(
                    host=host or f"{match.group(1)}:{match.group(2)}",
                    target=match.group(3),
                    subprotocols=["mcp"],
                    extra_headers=[(k.encode(), v.encode()) for k, v in headers],
                )
            )
        )
        client = RawClient(stream, ws)
        status: int | None = None
        body = b""
        while True:
            event = await client.next_event()
            assert event is not None, "the server closed the connection during the handshake"
            if isinstance(event, AcceptConnection):
                break
            if isinstance(event, RejectConnection):
                status = event.status_code
                if not event.has_body:
                    break
            elif isinstance(event, RejectData):
                body += event.data
                if event.body_finished:
                    break
        yield client if status is None else Rejected(status, body)


async def wait_gone(pid: int) -> None:
    """Poll (at most 10 s) until no process ``pid`` exists: for processes not our children."""
    with trio.fail_after(10):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            await trio.sleep(0.02)


def record_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []
