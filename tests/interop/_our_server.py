"""The official MCPServer (mcp 2.x) our ``serve_mcp`` puts in front of client peers.

Its tools mirror the mcp 1.30 server peer's, so every client peer runs the same scenario
against either side: ``echo``, ``add``, ``fail`` (a tool error), ``length`` (for a large
request), ``big`` (a large text result), ``progress`` (progress and log notifications
before the answer) and ``slow`` (never answers; `SlowProbe` tells the test when it started
and when it was cancelled).
`start_ours` runs it with ``serve_mcp`` on 127.0.0.1 and a port the OS picks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import partial

import trio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning

from trio_mcp_ws import ServerInfo, serve_mcp


@dataclass
class SlowProbe:
    """What happened to calls of the ``slow`` tool: started, and ended (cancelled) when."""

    entered: trio.Event = field(default_factory=trio.Event)
    exited: trio.Event = field(default_factory=trio.Event)
    exited_at: float | None = None
    cancelled: bool = False


def make_server(probe: SlowProbe) -> MCPServer:
    """A fresh MCPServer with the interop tools; ``probe`` watches the ``slow`` tool."""
    server = MCPServer("trio-mcp-ws-interop-server")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def fail(message: str = "boom") -> str:
        """Always fail, so the client sees a tool error (isError: true)."""
        raise ToolError(message)

    @server.tool()
    def length(text: str) -> int:
        """The length of the text: for large requests."""
        return len(text)

    @server.tool(structured_output=False)
    def big(size: int = 3 * 1024 * 1024) -> str:
        """A text result of ``size`` ASCII characters (default 3 MiB), as text content only."""
        return "x" * size

    @server.tool()
    async def progress(steps: int, ctx: Context) -> str:
        """Send a progress notification and a log message per step, then answer."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}")
            # Logging is deprecated in the 2026-07-28 era; these peers speak the handshake era.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await ctx.info(f"step {step} of {steps}")  # pyright: ignore[reportDeprecated]
        return f"done after {steps} steps"

    @server.tool()
    async def slow() -> str:
        """Never answer; record when the call started and when it was cancelled."""
        probe.entered.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            probe.cancelled = True
            raise
        finally:
            probe.exited_at = trio.current_time()
            probe.exited.set()

    return server


async def start_ours(nursery: trio.Nursery, probe: SlowProbe | None = None) -> ServerInfo:
    """Run ``serve_mcp(make_server(probe))`` in ``nursery`` on 127.0.0.1:0, once it listens."""
    server = make_server(probe or SlowProbe())
    info: ServerInfo = await nursery.start(partial(serve_mcp, server, "127.0.0.1", 0))
    return info
