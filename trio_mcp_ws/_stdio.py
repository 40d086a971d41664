"""Bridging newline-delimited JSON-RPC (MCP's stdio transport) to our channel pair.

Used by the CLI's ``connect`` (a WebSocket MCP server, seen from a stdio-only host) and
``serve`` (a stdio MCP server command, exposed over WebSocket).
"""

from __future__ import annotations

import logging
import os
import subprocess
from typing import TYPE_CHECKING, Final

import trio
from mcp.shared.message import SessionMessage

from ._codec import decode, encode
from ._errors import MessageDecodeError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._pump import ReadChannel, WriteChannel

__all__ = ["channel_to_lines", "lines_to_channel", "run_stdio_command"]

logger = logging.getLogger("trio_mcp_ws.stdio")

# A stdio peer gets this long to exit after its stdin closes, then SIGTERM, then SIGKILL
# after the same again (the SDK's stdio client waits 2 s at each step too).
PROCESS_GRACE: Final = 2.0

_MAX_LINE: Final = 64 * 1024 * 1024  # a line longer than this is not MCP; stop buffering


async def lines_to_channel(source: trio.abc.ReceiveStream, write: WriteChannel, *, label: str) -> None:
    """Decode each line from ``source`` and send it on ``write``; bad lines are logged and skipped."""
    buffer = b""
    async with write:
        while True:
            data = await source.receive_some(65536)
            if not data:
                break
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    await _send_line(line, write, label)
            if len(buffer) > _MAX_LINE:
                logger.error("%s: line longer than %d bytes, dropped", label, _MAX_LINE)
                buffer = b""
        if buffer.strip():
            await _send_line(buffer, write, label)


async def _send_line(line: bytes, write: WriteChannel, label: str) -> None:
    try:
        message = decode(line)
    except MessageDecodeError as exc:
        logger.warning("%s: skipped a line that is not a JSON-RPC message: %s", label, exc)
        return
    await write.send(SessionMessage(message))


async def channel_to_lines(read: ReadChannel, sink: trio.abc.SendStream, *, label: str) -> None:
    """Write each message from ``read`` to ``sink`` as one line; errors are logged."""
    async with read:
        async for item in read:
            if isinstance(item, Exception):
                logger.warning("%s: %s", label, item)
                continue
            await sink.send_all(encode(item.message).encode() + b"\n")


async def run_stdio_command(command: Sequence[str], read: ReadChannel, write: WriteChannel) -> None:
    """Run a stdio MCP server ``command`` for one connection, bridged to ``(read, write)``.

    The process gets the connection's messages on stdin and its stdout lines go back;
    its stderr is inherited. When the connection ends its stdin is closed, and it is
    terminated (then killed) if it does not exit within `PROCESS_GRACE` seconds.
    """
    label = os.path.basename(command[0])
    process = await trio.lowlevel.open_process(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdin is not None
    assert process.stdout is not None
    stdin, stdout = process.stdin, process.stdout
    try:
        async with trio.open_nursery() as nursery:

            async def to_process() -> None:
                try:
                    await channel_to_lines(read, stdin, label=label)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    logger.info("%s: stdin closed by the process", label)
                finally:
                    await stdin.aclose()

            async def from_process() -> None:
                await lines_to_channel(stdout, write, label=label)
                nursery.cancel_scope.cancel()  # the process is done talking

            nursery.start_soon(to_process)
            nursery.start_soon(from_process)
    finally:
        with trio.CancelScope(shield=True):
            await stdin.aclose()
            with trio.move_on_after(PROCESS_GRACE):
                await process.wait()
            if process.returncode is None:
                process.terminate()
                with trio.move_on_after(PROCESS_GRACE):
                    await process.wait()
            if process.returncode is None:  # pragma: no cover - needs a process that ignores SIGTERM
                process.kill()
                await process.wait()
            await stdout.aclose()
