"""Bridging newline-delimited JSON-RPC (MCP's stdio transport) to our channel pair.

Used by the CLI's ``connect`` (a WebSocket MCP server, seen from a stdio-only host) and
``serve`` (a stdio MCP server command, exposed over WebSocket, one child per connection).

A child is untrusted in the ways that matter to a gateway: it may write garbage to
stdout, exit while its client is still connected, flood stderr or ignore its stdin
closing. Each of those ends only its own connection, with one `ChildError` (which `serve`
turns into close code 1011 and one log line); the child is then stopped in order: stdin
closed, SIGTERM to its process group, SIGKILL after the grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import trio
from mcp.shared.message import SessionMessage

if sys.version_info < (3, 11):  # pragma: no cover - exercised by the 3.10 CI job
    from exceptiongroup import BaseExceptionGroup

from . import ConnectionClosedError, MessageDecodeError, decode, encode

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

    from . import ReadChannel, WriteChannel

__all__ = [
    "DEFAULT_GRACE",
    "ChildError",
    "ChildSpec",
    "LineReader",
    "lines_to_channel",
    "message_line",
    "run_stdio_command",
    "single_cancelled",
]

logger = logging.getLogger("trio_mcp_ws.stdio")
child_logger = logging.getLogger("trio_mcp_ws.child")
"""Where a child's stderr lines go (the CLI shows them by default)."""

DEFAULT_GRACE: Final = 2.0
"""Seconds a child gets to exit after its stdin closes, and again after SIGTERM, before
SIGKILL: the SDK's stdio client waits 2 s at each step too."""

MAX_LINE: Final = 64 * 1024 * 1024
"""A line longer than this (64 MiB) is not an MCP message; a child that writes one is broken."""

# A child's stderr is relayed line by line, each line cut to this many characters.
_STDERR_LINE: Final = 2000
# Stderr budget: a token bucket of this many bytes, refilled at this rate. Ordinary logging
# (even chatty debug logs) stays far below it; a child writing faster than that for long is
# flooding and is stopped rather than allowed to drown the gateway's log.
_STDERR_BURST: Final = 4 * 1024 * 1024
_STDERR_RATE: Final = 1024 * 1024

_RECEIVE_SIZE: Final = 65536


class ChildError(Exception):
    """The stdio child broke the bridge: it could not start, wrote garbage, exited or flooded.

    Raised from `run_stdio_command`, so `serve` closes that one connection with 1011 and
    logs this message; other connections are untouched.
    """


@dataclass(frozen=True)
class ChildSpec:
    """How to start the stdio server for a connection.

    Attributes:
        argv: The command and its arguments.
        env: Variables added to (or replacing ones in) the gateway's environment.
        cwd: Working directory, or ``None`` for the gateway's own.
        grace: Seconds to wait after closing stdin, and again after SIGTERM.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict[str, str])
    cwd: str | None = None
    grace: float = DEFAULT_GRACE

    @property
    def label(self) -> str:
        """A short name for logs: the command's file name."""
        return os.path.basename(self.argv[0])


class LineReader:
    """Complete lines from a byte stream, at most ``limit`` bytes each."""

    def __init__(self, source: trio.abc.ReceiveStream, limit: int = MAX_LINE) -> None:
        self._source = source
        self._limit = limit
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer already known to hold no newline
        self._eof = False

    async def next(self) -> bytes | None:
        """The next line without its newline; the unterminated tail at EOF; None after that.

        Raises:
            ValueError: A line is longer than ``limit``.
        """
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self._scanned = 0
                return line
            self._scanned = len(self._buffer)
            if self._scanned > self._limit:
                raise ValueError(f"a line longer than {self._limit} bytes")
            if self._eof:
                if not self._buffer:
                    return None
                line = bytes(self._buffer)
                self._buffer.clear()
                self._scanned = 0
                return line
            data = await self._source.receive_some(_RECEIVE_SIZE)
            if data:
                self._buffer += data
            else:
                self._eof = True


def message_line(message: SessionMessage) -> bytes:
    r"""One message as a stdio line: compact JSON (never holding a raw newline) and ``\\n``."""
    return encode(message.message).encode() + b"\n"


async def lines_to_channel(
    source: trio.abc.ReceiveStream, send: Callable[[SessionMessage], Awaitable[object]], *, label: str
) -> int:
    """Pass each JSON-RPC line from ``source`` to ``send``; lines that are not are logged, skipped.

    For a trusted source (the host on ``connect``'s stdin), so a bad line is not fatal.
    Returns how many messages were sent.
    """
    reader = LineReader(source)
    sent = 0
    while True:
        try:
            line = await reader.next()
        except ValueError as exc:
            logger.warning("%s: %s; stopped reading", label, exc)
            return sent
        if line is None:
            return sent
        if not line.strip():
            continue
        try:
            message = decode(line)
        except MessageDecodeError as exc:
            logger.warning("%s: skipped a line that is not a JSON-RPC message: %s", label, exc)
            continue
        await send(SessionMessage(message))
        sent += 1


async def run_stdio_command(spec: ChildSpec, read: ReadChannel, write: WriteChannel) -> None:
    """Run the stdio MCP server ``spec`` for one connection, bridged to ``(read, write)``.

    The child gets the connection's messages on stdin, one per line; each line it writes
    to stdout goes back as a message; its stderr lines are relayed to the
    ``trio_mcp_ws.child`` logger. It runs in a session (process group) of its own, so a
    terminal's Ctrl-C reaches only the gateway, which then stops it in order.

    Raises:
        ChildError: The child could not be started, wrote a line that is not a JSON-RPC
            message, exited while the client was still connected, or flooded stderr.

    Resource handling:
        When the client leaves, or this is cancelled (the gateway shutting down), the
        child's stdin is closed; if it has not exited ``spec.grace`` seconds later its
        process group gets SIGTERM, and SIGKILL after ``spec.grace`` more. The child is
        reaped before this returns.
    """
    child = await _start(spec)
    label = f"{spec.label}[{child.process.pid}]"
    logger.debug("%s: started", label)
    failure: list[ChildError] = []
    try:
        async with single_cancelled(), trio.open_nursery() as nursery:

            def fail(message: str) -> None:
                if not failure:
                    failure.append(ChildError(f"{label} {message}"))
                nursery.cancel_scope.cancel()

            async def to_child() -> None:
                async for item in read:
                    if isinstance(item, ConnectionClosedError):
                        logger.debug("%s: client connection lost: %s", label, item)
                    elif isinstance(item, Exception):
                        logger.debug("%s: skipped a frame from the client: %s", label, item)
                    else:
                        try:
                            await child.stdin.send_all(message_line(item))
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            fail(f"closed its stdin ({await child.status(spec.grace)})")
                            return
                nursery.cancel_scope.cancel()  # the client left: stop the child (finally below)

            async def from_child() -> None:
                reader = LineReader(child.stdout)
                while True:
                    try:
                        line = await reader.next()
                    except ValueError as exc:
                        fail(f"wrote {exc} to stdout")
                        return
                    if line is None:
                        fail(f"exited while its client was connected ({await child.status(spec.grace)})")
                        return
                    if not line.strip():
                        continue
                    try:
                        message = decode(line)
                    except MessageDecodeError as exc:
                        fail(f"wrote a line that is not a JSON-RPC message to stdout: {exc}")
                        return
                    await write.send(SessionMessage(message))

            async def relay_stderr() -> None:
                if await _relay(child.stderr, label):
                    fail(f"flooded stderr (over {_STDERR_RATE} bytes/s)")

            nursery.start_soon(to_child)
            nursery.start_soon(from_child)
            nursery.start_soon(relay_stderr)
    finally:
        with trio.CancelScope(shield=True):
            await child.stop(spec.grace, label)
    if failure:
        raise failure[0]


@asynccontextmanager
async def single_cancelled() -> AsyncGenerator[None, None]:
    """Let a nursery's cancellation out as one ``Cancelled``, not a group of them.

    The close code comes from the exception leaving a transport's body (in `serve`'s
    handler or `websocket_client`'s ``async with``): ``Cancelled`` (shutdown) is 1001,
    anything else 1011, and a group of cancellations counts as anything else. Put this
    around a nursery whose tasks never raise, so its groups hold cancellations only.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        cancelled, rest = group.split(trio.Cancelled)
        if rest is not None or cancelled is None:
            raise
        leaf: BaseException = cancelled
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        raise leaf from None


@dataclass
class _Child:
    process: trio.Process
    stdin: trio.abc.SendStream
    stdout: trio.abc.ReceiveStream
    stderr: trio.abc.ReceiveStream

    async def status(self, wait: float) -> str:
        """How the process ended ("status 3", "signal 9"), waiting up to ``wait`` seconds."""
        with trio.move_on_after(wait):
            await self.process.wait()
        code = self.process.returncode
        if code is None:
            return "still running"
        return f"signal {-code}" if code < 0 else f"status {code}"

    def _signal(self, signum: int) -> None:
        """Send ``signum`` to the child's process group (its own session), or to it alone."""
        if self.process.returncode is not None:
            return
        try:
            if sys.platform != "win32":
                os.killpg(self.process.pid, signum)
            else:  # pragma: no cover - no process groups to signal
                self.process.send_signal(signum)
        except (ProcessLookupError, PermissionError):
            pass

    async def stop(self, grace: float, label: str) -> None:
        """Close stdin, wait; SIGTERM, wait; SIGKILL; reap. Call shielded."""
        await self.stdin.aclose()
        with trio.move_on_after(grace):
            await self.process.wait()
        if self.process.returncode is None:
            logger.info("%s: still running %ss after its stdin closed; sending SIGTERM", label, grace)
            self._signal(signal.SIGTERM)
            with trio.move_on_after(grace):
                await self.process.wait()
        if self.process.returncode is None:
            logger.warning("%s: still running %ss after SIGTERM; sending SIGKILL", label, grace)
            self._signal(signal.SIGKILL if sys.platform != "win32" else signal.SIGTERM)
            await self.process.wait()
        await self.stdout.aclose()
        await self.stderr.aclose()
        logger.debug("%s: ended with %s", label, await self.status(0))


async def _start(spec: ChildSpec) -> _Child:
    env = {**os.environ, **spec.env} if spec.env else None
    argv = list(spec.argv)
    pipe = subprocess.PIPE
    # A session (process group) of its own: a terminal's Ctrl-C (SIGINT to the foreground
    # process group) reaches the gateway only, which then stops each child in order.
    try:
        if sys.platform == "win32":  # pragma: no cover - the POSIX branch is the tested one
            process = await trio.lowlevel.open_process(
                argv,
                stdin=pipe,
                stdout=pipe,
                stderr=pipe,
                env=env,
                cwd=spec.cwd,
                creationflags=subprocess.CREATE_NEW_PROCESS_GROUP,
            )
        else:
            process = await trio.lowlevel.open_process(
                argv, stdin=pipe, stdout=pipe, stderr=pipe, env=env, cwd=spec.cwd, start_new_session=True
            )
    except OSError as exc:
        raise ChildError(f"cannot start {spec.argv[0]!r}: {exc.strerror or exc}") from exc
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    return _Child(process, process.stdin, process.stdout, process.stderr)


async def _relay(stderr: trio.abc.ReceiveStream, label: str) -> bool:
    """Log each stderr line; True if the child wrote faster than the budget allows."""
    tokens = float(_STDERR_BURST)
    last = trio.current_time()
    partial = b""
    while True:
        data = await stderr.receive_some(_RECEIVE_SIZE)
        if not data:
            if partial.strip():
                child_logger.info("%s: %s", label, _shown(partial))
            return False
        now = trio.current_time()
        tokens = min(float(_STDERR_BURST), tokens + (now - last) * _STDERR_RATE) - len(data)
        last = now
        if tokens < 0:
            return True
        *lines, partial = (partial + data).split(b"\n")
        if len(partial) > _STDERR_LINE:  # an endless line: show its start, drop the rest
            lines.append(partial)
            partial = b""
        for line in lines:
            if line.strip():
                child_logger.info("%s: %s", label, _shown(line))


def _shown(line: bytes) -> str:
    text = line.rstrip(b"\r").decode("utf-8", "replace")
    return text if len(text) <= _STDERR_LINE else text[:_STDERR_LINE] + "..."
