"""``trio-mcp-ws demo``: an official MCPServer and mcp.Client talking over a loopback WebSocket."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO, cast

import mcp_types as types
import trio
from mcp import Client
from mcp.server.mcpserver import MCPServer

from . import serve_mcp, websocket_client

if TYPE_CHECKING:
    import argparse

    from mcp.client._transport import Transport

logger = logging.getLogger("trio_mcp_ws.demo")

MODES = ("legacy", "auto")
"""The two protocol eras: the initialize handshake, and 2026-07-28's stateless discover."""


def build_server() -> MCPServer:
    """The demo's MCP server: a few small tools."""
    server = MCPServer("trio-mcp-ws-demo", instructions="A tiny server for the trio-mcp-ws demo.")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def word_count(text: str) -> dict[str, int]:
        """Count the words and characters in a text."""
        return {"words": len(text.split()), "characters": len(text)}

    @server.tool()
    async def countdown(start: int) -> list[int]:
        """Count down to zero, yielding to the event loop between steps."""
        numbers: list[int] = []
        for n in range(start, -1, -1):
            numbers.append(n)
            await trio.lowlevel.checkpoint()
        return numbers

    return server


CALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("add", {"a": 2, "b": 40}),
    ("word_count", {"text": "Trio speaks MCP over WebSocket"}),
    ("countdown", {"start": 3}),
)


async def run_demo(out: TextIO) -> int:
    """Serve, connect in each protocol era, list and call the tools; return the exit status."""

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    server = build_server()
    failures = 0
    calls = 0
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info = await nursery.start(serve_mcp, server, "127.0.0.1", 0)
            say(f"MCP server {server.name!r} listening on {info.url}")
            for mode in MODES:
                transport = cast("Transport", websocket_client(info.url))
                async with Client(transport, mode=mode) as client:
                    say()
                    say(f"[{mode}] connected with protocol {client.protocol_version}")
                    listed = await client.list_tools()
                    for tool in listed.tools:
                        say(f"  tool {tool.name}: {tool.description}")
                    for name, arguments in CALLS:
                        result = await client.call_tool(name, arguments)
                        calls += 1
                        shown = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
                        status = "error" if result.is_error else "ok"
                        failures += bool(result.is_error)
                        say(f"  call {name}({shown}) -> {_describe(result)} [{status}]")
            nursery.cancel_scope.cancel()
    say()
    say(f"{len(MODES)} sessions, {calls} tool calls, {failures} failed")
    return 1 if failures else 0


def _describe(result: types.CallToolResult) -> str:
    if result.structured_content is not None:
        value = result.structured_content.get("result", result.structured_content)
        return repr(value)
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    return " ".join(texts) or "(no content)"


async def run_demo_command(args: argparse.Namespace) -> int:
    """``trio-mcp-ws demo``: `run_demo` on stdout."""
    return await run_demo(sys.stdout)
