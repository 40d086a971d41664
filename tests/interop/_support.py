"""Running interop peers: finding them, starting them, reading what they say, stopping them.

A peer is a program from another project (mcp 1.30, the TypeScript SDK) run as a subprocess
in its own environment, on loopback. Every peer prints one JSON object per line on stdout;
`PeerProcess` collects them so a test can wait, with a bound, for the event it needs (a
readiness line, a close code). Peers are stopped by process id: terminate, then kill after
`STOP_GRACE` seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.events import Event as WsEvent

from tests.interop.setup_peers import (
    MCP130_VENV,
    MIN_NODE_MAJOR,
    NODE_MODULES,
    PEERS_SRC,
    STAMP_NAME,
    node_major,
    node_version,
    venv_python,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

Event = dict[str, Any]
"""One line a peer printed, parsed (``{"event": "ready", "port": 54321}``)."""

SETUP_HINT: Final = "run `python -m tests.interop.setup_peers` (or `nox -s interop`)"
REQUIRE_ENV: Final = "TRIO_MCP_WS_INTEROP_REQUIRE"
"""Set to 1 (as CI should) to fail, not skip, when a peer is missing."""

STARTUP_TIMEOUT: Final = 30.0
"""Seconds a peer may take to start (a cold Python import of mcp plus uvicorn, or Node)."""
STOP_GRACE: Final = 5.0
"""Seconds a peer has to exit after SIGTERM before it is killed."""
CLOSE_REPORT_BOUND: Final = 2.0
"""Seconds within which our side must report that a peer closed mid-call (issue 5)."""
STDERR_KEEP: Final = 64 * 1024
"""How much of a peer's stderr to keep for failure messages."""


def missing_peer(message: str) -> None:
    """Skip the test (or fail it, under ``TRIO_MCP_WS_INTEROP_REQUIRE=1``), naming the fix."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1 makes a missing peer an error)")
    pytest.skip(message)


def mcp130_python() -> Path:
    """The mcp 1.30 venv's interpreter, or skip saying how to create it."""
    python = venv_python(MCP130_VENV)
    if not python.exists() or not (MCP130_VENV / STAMP_NAME).exists():
        missing_peer(f"mcp 1.30 peer not installed in {MCP130_VENV}: {SETUP_HINT}")
    return python


def node_command(impl: str) -> list[str]:
    """The command that runs the TypeScript client with ``impl`` ("builtin" or "ws"), or skip."""
    version = node_version()
    node = shutil.which("node")
    if version is None or node is None:
        missing_peer(f"Node.js not found: install Node.js >= {MIN_NODE_MAJOR}, then {SETUP_HINT}")
        raise AssertionError("unreachable")  # pragma: no cover - missing_peer raises
    major = node_major(version)
    if major < MIN_NODE_MAJOR:
        missing_peer(f"Node.js {version} is too old: install Node.js >= {MIN_NODE_MAJOR}")
    if not (NODE_MODULES / STAMP_NAME).exists():
        missing_peer(f"TypeScript SDK not installed in {NODE_MODULES}: {SETUP_HINT}")
    flags = ["--experimental-websocket"] if impl == "builtin" and major < 22 else []
    return [node, *flags, str(PEERS_SRC / "ts_client.mjs"), "--impl", impl]


@dataclass(frozen=True)
class NodeClient:
    """How to run the TypeScript client with one WebSocket implementation."""

    impl: str
    """``"builtin"`` (Node's own WebSocket) or ``"ws"`` (the ``ws`` package)."""
    command: list[str]


@dataclass(eq=False)
class PeerProcess:
    """A running peer, with the JSON lines it printed so far."""

    name: str
    process: trio.Process
    events: list[Event] = field(default_factory=list[Event])
    stderr: bytearray = field(default_factory=bytearray)
    stdout_done: bool = False
    _changed: trio.Event = field(default_factory=trio.Event)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        try:
            async for chunk in self.process.stdout:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._add_line(line)
            if pending:
                self._add_line(pending)
        finally:
            self.stdout_done = True
            self._notify()

    def _add_line(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").strip()
        if not text:
            return
        try:
            parsed: object = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        event: Event = cast("Event", parsed) if isinstance(parsed, dict) else {"event": "text", "line": text}
        self.events.append(event)
        self._notify()

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for chunk in self.process.stderr:
            self.stderr += chunk
            del self.stderr[:-STDERR_KEEP]

    def find(self, name: str, **fields: Any) -> Event | None:
        """The first event called ``name`` whose fields match, if it arrived."""
        for event in self.events:
            if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
                return event
        return None

    def all(self, name: str) -> list[Event]:
        """Every event called ``name`` so far."""
        return [event for event in self.events if event.get("event") == name]

    async def wait_for(self, name: str, *, within: float = STARTUP_TIMEOUT, **fields: Any) -> Event:
        """Wait (at most ``within`` seconds) for an event; fail if the peer ends without it."""
        with trio.move_on_after(within):
            while True:
                event = self.find(name, **fields)
                if event is not None:
                    return event
                if self.stdout_done:
                    break
                await self._changed.wait()
        pytest.fail(f"{self.name}: no {name!r} event {fields or ''} within {within}s\n{self.report()}")

    async def wait_exit(self, *, within: float = STARTUP_TIMEOUT) -> int:
        """Wait for the process to exit and its output to be read; return its exit status."""
        with trio.move_on_after(within):
            status = await self.process.wait()
            while not self.stdout_done:
                await self._changed.wait()
            return status
        pytest.fail(f"{self.name}: still running after {within}s\n{self.report()}")

    async def send_line(self, line: str) -> None:
        """Write one line to the peer's stdin."""
        assert self.process.stdin is not None
        await self.process.stdin.send_all(line.encode() + b"\n")

    def kill(self) -> None:
        """SIGKILL, now: the kernel closes its sockets and no close frame is sent."""
        if self.process.returncode is None:
            self.process.kill()

    def report(self) -> str:
        """What the peer said, for failure messages."""
        lines = "\n".join(json.dumps(event)[:300] for event in self.events)
        tail = self.stderr.decode("utf-8", "replace")[-4000:]
        return f"--- {self.name} stdout events ---\n{lines}\n--- {self.name} stderr (tail) ---\n{tail}"

    async def stop(self) -> None:
        """Terminate by pid, kill after `STOP_GRACE` seconds, and reap; never raises."""
        with trio.CancelScope(shield=True):
            if self.process.returncode is None:
                self.process.terminate()
                with trio.move_on_after(STOP_GRACE):
                    await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            if self.process.stdin is not None:
                await self.process.stdin.aclose()


@dataclass
class PeerLauncher:
    """Starts peers in the fixture's nursery and stops every one of them at teardown."""

    nursery: trio.Nursery
    started: list[PeerProcess] = field(default_factory=list[PeerProcess])

    async def start(
        self, name: str, argv: Sequence[str | os.PathLike[str]], *, cwd: Path = PEERS_SRC
    ) -> PeerProcess:
        """Start ``argv`` with piped stdio; collect its stdout events in the background."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("VIRTUAL_ENV", None)  # the peer's interpreter is named by path; don't confuse it
        process = await trio.lowlevel.open_process(
            [os.fspath(arg) for arg in argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        peer = PeerProcess(name, process)
        self.started.append(peer)
        self.nursery.start_soon(peer._read_stdout)  # pyright: ignore[reportPrivateUsage]
        self.nursery.start_soon(peer._read_stderr)  # pyright: ignore[reportPrivateUsage]
        return peer

    async def stop_all(self) -> None:
        for peer in self.started:
            await peer.stop()


async def start_mcp130_server(peers: PeerLauncher, python: Path) -> tuple[PeerProcess, str]:
    """Start the mcp 1.30 server peer on a free loopback port; return it and its URL."""
    peer = await peers.start("mcp130-server", [python, PEERS_SRC / "mcp130_server.py", "--port", "0"])
    ready = await peer.wait_for("ready")
    return peer, f"ws://127.0.0.1:{ready['port']}/mcp"


@dataclass
class RawClient:
    """A WebSocket client by hand (wsproto over a trio stream), for frames our transport won't send.

    Used to show what a peer does with invalid JSON, binary frames and the like; it owns its
    TCP stream outright, so nothing leaks however the peer ends the connection.
    """

    stream: trio.SocketStream
    ws: WSConnection
    subprotocol: str | None
    pending: list[WsEvent] = field(default_factory=list[WsEvent])
    close_code: int | None = None
    """The code of the peer's close frame; 1006 when TCP ended without one."""

    @classmethod
    async def connect(
        cls, port: int, *, subprotocols: Sequence[str] = ("mcp",), path: str = "/mcp"
    ) -> RawClient:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(
            ws.send(Request(host=f"127.0.0.1:{port}", target=path, subprotocols=list(subprotocols)))
        )
        client = cls(stream, ws, None)
        while True:
            event = await client._next_event()
            if isinstance(event, AcceptConnection):
                client.subprotocol = event.subprotocol
                return client
            if event is None or isinstance(event, RejectConnection):
                await stream.aclose()
                raise AssertionError(f"handshake refused: {event!r}")

    async def _next_event(self) -> WsEvent | None:
        while not self.pending:
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                data = b""
            if not data:
                return None
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    async def send(self, message: str | bytes) -> None:
        event = TextMessage(data=message) if isinstance(message, str) else BytesMessage(data=message)
        await self.stream.send_all(self.ws.send(event))

    async def receive(self) -> str | bytes | None:
        """The next complete message; None once the peer closed (see `close_code`)."""
        parts: list[str | bytes] = []
        while True:
            event = await self._next_event()
            if event is None:
                self.close_code = self.close_code or 1006
                return None
            if isinstance(event, CloseConnection):
                self.close_code = event.code
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    await self.stream.send_all(self.ws.send(event.response()))
                return None
            if isinstance(event, TextMessage):
                parts.append(event.data)
            elif isinstance(event, BytesMessage):
                parts.append(bytes(event.data))
            else:
                continue
            if event.message_finished:
                if isinstance(parts[0], str):
                    return "".join(p for p in parts if isinstance(p, str))
                return b"".join(p for p in parts if isinstance(p, bytes))

    async def aclose(self) -> None:
        await self.stream.aclose()
