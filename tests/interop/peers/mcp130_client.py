"""Interop peer: mcp 1.30's asyncio WebSocket client transport with its ``ClientSession``.

Runs in its own virtual environment (``.peers/mcp130``, made by
``python -m tests.interop.setup_peers``): mcp 1.30 cannot share one with mcp 2.x.

Usage::

    python mcp130_client.py URL SCENARIO [--big-size BYTES]

Scenarios:
    calls   initialize, list tools, call ``echo``, ``add``, ``fail`` (a tool error), ``big``
            (a result of ``--big-size`` characters), ``length`` (a 3 MiB request) and
            ``progress`` (progress and log notifications), then leave the ``async with``
            blocks (a clean close).
    big     initialize, then call ``big`` only (to see what a large result does).
    hang    initialize, call ``slow`` (which never answers), then wait: until the server
            closes the connection, or stdin says ``close`` (leave the ``async with`` blocks:
            a clean close from this side) or ``exit`` (end the process at once: no close
            frame). End of stdin counts as ``exit``.

Output: one JSON object per line on stdout, e.g. ``{"event": "initialized", ...}``, then
``{"event": "close", "sent": 1000, "received": 1000, ...}`` with the close codes the
``websockets`` connection recorded, and ``{"event": "done"}``. Exit status 0 when the
scenario ran to its end, 1 when a step failed (printed as ``{"event": "error", ...}``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from typing import Any

import anyio
import mcp.client.websocket
import websockets
import websockets.asyncio.client
from mcp import ClientSession, types
from mcp.shared.exceptions import McpError

# mcp 1.30 marks its WebSocket transport deprecated (it is gone in mcp 2); that is the point here.
warnings.simplefilter("ignore", DeprecationWarning)

CONNECTIONS: list[websockets.asyncio.client.ClientConnection] = []


class RecordingConnect(websockets.asyncio.client.connect):
    """``websockets``' ``connect``, keeping the connection so its close codes can be reported.

    mcp 1.30's ``websocket_client`` keeps its connection to itself; this is the one seam.
    """

    async def __aenter__(self) -> websockets.asyncio.client.ClientConnection:
        connection = await super().__aenter__()
        CONNECTIONS.append(connection)
        return connection


mcp.client.websocket.ws_connect = RecordingConnect  # type: ignore[misc]


def emit(**event: Any) -> None:
    """One JSON line on stdout: the test reads these."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def summarize(result: types.CallToolResult) -> dict[str, Any]:
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    return {
        "isError": result.isError,
        "text": [t if len(t) <= 200 else t[:200] + "..." for t in texts],
        "textLength": sum(len(t) for t in texts),
        "structuredContent": result.structuredContent,
    }


def describe(exc: BaseException) -> dict[str, Any]:
    """An exception (or the leaves of an exception group) as JSON."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        inner = getattr(e, "exceptions", None)
        if inner:
            for sub in inner:
                walk(sub)
        else:
            leaves.append(e)

    walk(exc)
    return {"errors": [f"{type(e).__module__}.{type(e).__name__}: {e}" for e in leaves]}


async def calls(session: ClientSession, big_size: int, logs: list[Any]) -> None:
    tools = await session.list_tools()
    emit(event="tools", names=sorted(tool.name for tool in tools.tools))
    emit(event="call", tool="echo", **summarize(await session.call_tool("echo", {"text": "héllo ✓"})))
    emit(event="call", tool="add", **summarize(await session.call_tool("add", {"a": 2, "b": 40})))
    emit(event="call", tool="fail", **summarize(await session.call_tool("fail", {"message": "nope"})))
    emit(event="call", tool="big", **summarize(await session.call_tool("big", {"size": big_size})))
    result = await session.call_tool("length", {"text": "y" * (3 * 1024 * 1024)})
    emit(event="call", tool="length", **summarize(result))
    progress: list[list[Any]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append([value, total, message])

    result = await session.call_tool("progress", {"steps": 3}, progress_callback=on_progress)
    emit(event="call", tool="progress", progress=progress, logs=list(logs), **summarize(result))


async def hang(session: ClientSession) -> None:
    async def call_slow() -> None:
        emit(event="calling", tool="slow")
        try:
            result = await session.call_tool("slow", {})
        except McpError as exc:
            emit(event="call_failed", tool="slow", code=exc.error.code, message=exc.error.message)
        else:
            emit(event="call", tool="slow", **summarize(result))
        tg.cancel_scope.cancel()

    async def watch_stdin() -> None:
        # Polled on the event loop, not read in a worker thread: a thread blocked in
        # readline() would keep the process alive after the scenario ends.
        fd = sys.stdin.fileno()
        buffered = b""
        while True:
            await anyio.wait_readable(fd)
            chunk = os.read(fd, 4096)
            buffered += chunk
            command = buffered.split(b"\n", 1)[0].strip() if b"\n" in buffered or not chunk else b""
            if command == b"close":
                emit(event="closing")
                tg.cancel_scope.cancel()
                return
            if command == b"exit" or not chunk:
                os._exit(4)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call_slow)
        tg.start_soon(watch_stdin)


async def run(url: str, scenario: str, big_size: int) -> int:
    logs: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)
        emit(event="log", level=params.level, data=params.data)

    status = 0
    try:
        async with (
            mcp.client.websocket.websocket_client(url) as (read, write),
            ClientSession(read, write, logging_callback=on_log) as session,
        ):
            init = await session.initialize()
            emit(
                event="initialized",
                protocolVersion=init.protocolVersion,
                server=init.serverInfo.model_dump(exclude_none=True),
                subprotocol=CONNECTIONS[0].subprotocol if CONNECTIONS else None,
            )
            if scenario == "calls":
                await calls(session, big_size, logs)
            elif scenario == "big":
                result = await session.call_tool("big", {"size": big_size})
                emit(event="call", tool="big", **summarize(result))
            elif scenario == "hang":
                await hang(session)
            else:
                raise ValueError(f"unknown scenario {scenario!r}")
    except Exception as exc:  # report whatever ended the run, then exit 1
        emit(event="error", **describe(exc))
        traceback.print_exception(exc)
        status = 1
    for connection in CONNECTIONS:
        sent, received = connection.protocol.close_sent, connection.protocol.close_rcvd
        emit(
            event="close",
            sent=None if sent is None else sent.code,
            received=None if received is None else received.code,
            received_reason=None if received is None else received.reason,
        )
    emit(event="done")
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("scenario", choices=["calls", "big", "hang"])
    parser.add_argument("--big-size", type=int, default=3 * 1024 * 1024)
    args = parser.parse_args()
    sys.exit(anyio.run(run, args.url, args.scenario, args.big_size))


if __name__ == "__main__":
    main()
