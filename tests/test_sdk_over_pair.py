"""The official MCP SDK (mcp >= 2) on both ends of an in-memory pair, closed in every order.

The SDK's dispatcher catches anyio's resource errors, not Trio's: whatever order the peers
close in (client first, server first, server crashing, the connection dropping, either
side cancelled mid-call), no Trio resource error may reach it, neither raised nor logged.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import TYPE_CHECKING, Literal, cast

import mcp_types as t
import pytest
import trio
import trio.testing
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from tests._sdk import as_streams, as_transport
from trio_mcp_ws._sdk import lowlevel_server
from trio_mcp_ws.testing import Endpoint, open_transport_pair

if TYPE_CHECKING:
    from collections.abc import Iterator

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

LIMIT = 20

MODES = [("legacy", "2025-11-25"), ("auto", "2026-07-28")]

TRIO_RESOURCE_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, trio.EndOfChannel)
TRIO_RESOURCE_ERROR_NAMES = ("BrokenResourceError", "ClosedResourceError", "EndOfChannel")

CloseOrder = Literal[
    "client first",
    "server cancelled between calls",
    "server cancelled mid-call",
    "server crashes mid-call",
    "connection dropped mid-call",
    "client cancelled mid-call",
    "pair cancelled mid-call",
]
CLOSE_ORDERS: list[CloseOrder] = [
    "client first",
    "server cancelled between calls",
    "server cancelled mid-call",
    "server crashes mid-call",
    "connection dropped mid-call",
    "client cancelled mid-call",
    "pair cancelled mid-call",
]


class ServerCrash(Exception):
    pass


class World:
    """The server, and the events a test uses to act at a precise point of a call."""

    def __init__(self) -> None:
        self.call_started = trio.Event()
        self.release = trio.Event()
        self.server = MCPServer("pair-server")

        @self.server.tool()
        def add(a: int, b: int) -> int:
            """Add two integers."""
            return a + b

        @self.server.tool()
        async def wait() -> str:
            """Block until the test releases it."""
            self.call_started.set()
            await self.release.wait()
            return "released"

    async def serve(self, endpoint: Endpoint, *, crash: trio.Event | None = None) -> None:
        """Run the server on ``endpoint``; if ``crash`` is set, fail as a buggy handler would."""
        lowlevel = lowlevel_server(self.server)
        crashed = False
        async with endpoint as (read, write):
            async with trio.open_nursery() as nursery:

                async def crash_when_told() -> None:
                    nonlocal crashed
                    if crash is not None:
                        await crash.wait()
                        crashed = True
                        nursery.cancel_scope.cancel()

                nursery.start_soon(crash_when_told)
                await lowlevel.run(*as_streams(read, write), lowlevel.create_initialization_options())
                nursery.cancel_scope.cancel()
            if crashed:
                raise ServerCrash("the server's handler failed")


def walk(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its group members, causes and contexts."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(cast("BaseExceptionGroup[BaseException]", current).exceptions)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def assert_no_trio_resource_error(exc: BaseException | None, caplog: pytest.LogCaptureFixture) -> None:
    if exc is not None:
        leaked = [e for e in walk(exc) if isinstance(e, TRIO_RESOURCE_ERRORS)]
        assert not leaked, "".join(traceback.format_exception(exc))
    for record in caplog.records:
        assert not (record.name.startswith("trio_mcp_ws") and record.levelno >= logging.ERROR), record
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "".join(traceback.format_exception(record.exc_info[1]))
        for name in TRIO_RESOURCE_ERROR_NAMES:
            assert name not in text, f"log record from {record.name} mentions {name}:\n{text}"


async def run_session(order: CloseOrder, mode: str, version: str) -> list[str]:
    """One client session against one server, ended in ``order``; returns what the client saw."""
    world = World()
    seen: list[str] = []
    crash = trio.Event()
    async with open_transport_pair() as pair, trio.open_nursery() as nursery:
        server_scope = trio.CancelScope()

        async def server_task() -> None:
            with server_scope:
                try:
                    await world.serve(pair.server, crash=crash)
                except ServerCrash:
                    seen.append("server crashed")
            seen.append("server done")

        nursery.start_soon(server_task)
        with trio.CancelScope() as client_scope:
            async with Client(as_transport(pair.client), mode=mode) as client:
                assert client.protocol_version == version
                result = await client.call_tool("add", {"a": 2, "b": 40})
                assert result.structured_content == {"result": 42}
                if order == "client first":
                    seen.append("client leaving")
                elif order == "server cancelled between calls":
                    server_scope.cancel()
                    await trio.testing.wait_all_tasks_blocked()
                    await call_expecting_closed(client, seen)
                else:
                    async with trio.open_nursery() as calls:
                        calls.start_soon(call_expecting_closed, client, seen)
                        await world.call_started.wait()
                        if order == "server cancelled mid-call":
                            server_scope.cancel()
                        elif order == "server crashes mid-call":
                            crash.set()
                        elif order == "connection dropped mid-call":
                            await pair.drop()
                        elif order == "client cancelled mid-call":
                            client_scope.cancel()
                        else:
                            nursery.cancel_scope.cancel()
        if client_scope.cancelled_caught:
            seen.append("client cancelled")
        await trio.testing.wait_all_tasks_blocked()
    return seen


async def call_expecting_closed(client: Client, seen: list[str]) -> None:
    with pytest.raises(MCPError) as info:
        await client.call_tool("wait", {})
    assert info.value.error.code == t.CONNECTION_CLOSED, info.value
    seen.append("call failed: connection closed")


@pytest.mark.parametrize(("mode", "version"), MODES)
@pytest.mark.parametrize("order", CLOSE_ORDERS)
async def test_no_trio_resource_error_reaches_the_sdk(
    order: CloseOrder, mode: str, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    error: BaseException | None = None
    seen: list[str] = []
    with trio.fail_after(LIMIT):
        try:
            seen = await run_session(order, mode, version)
        except BaseException as exc:  # checked below, then re-raised
            error = exc
    assert_no_trio_resource_error(error, caplog)
    if error is not None:
        raise error
    expected = {
        "client first": ["client leaving", "server done"],
        "server cancelled between calls": ["server done", "call failed: connection closed"],
        "server cancelled mid-call": ["server done", "call failed: connection closed"],
        "server crashes mid-call": ["server crashed", "server done", "call failed: connection closed"],
        "connection dropped mid-call": ["call failed: connection closed", "server done"],
        "client cancelled mid-call": ["client cancelled", "server done"],
        "pair cancelled mid-call": [],
    }[order]
    assert sorted(seen) == sorted(expected)


@pytest.mark.parametrize(("mode", "version"), MODES)
async def test_many_sessions_over_one_pair_each(mode: str, version: str) -> None:
    """Several sessions in a row, each on a fresh pair: nothing accumulates, nothing leaks."""
    with trio.fail_after(LIMIT):
        for _ in range(5):
            seen = await run_session("client first", mode, version)
            assert seen == ["client leaving", "server done"]


async def test_sdk_transport_from_an_endpoint_typechecks_and_runs() -> None:
    """The documented way: an endpoint is an ``mcp.Client`` transport as it is."""
    world = World()
    with trio.fail_after(LIMIT):
        async with open_transport_pair() as pair, trio.open_nursery() as nursery:
            nursery.start_soon(world.serve, pair.server)
            async with Client(as_transport(pair.client)) as client:
                tools = await client.list_tools()
                assert sorted(tool.name for tool in tools.tools) == ["add", "wait"]
