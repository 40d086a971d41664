"""The server an attack case aims at, run as a child process: it answers, and the attack goes on.

``kind`` ``"echo"`` is `trio_mcp_ws.serve` with a handler that answers each request with an
empty result; ``"mcp"`` is `trio_mcp_ws.serve_mcp` with an official ``MCPServer`` and one tool,
``echo``. Both listen on a free port of 127.0.0.1 with default limits, print ``READY <port>``
and serve until ``lifetime`` seconds have passed (or the parent stops them by pid).
"""

from __future__ import annotations

from typing import Final

# The servers, as ``--serve`` takes them.
KINDS: Final = ("echo", "mcp")


def run_target(kind: str, *, name: str, lifetime: float, freeze: bool = False) -> None:
    """Serve ``kind`` (MCPServer named ``name``), print ``READY <port>``, serve until ``lifetime``.

    With ``freeze``, the heap is frozen once listening (``gc.freeze()``), as docs/server.md
    advises and the CLI does.
    """
    import gc

    import trio
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCRequest, JSONRPCResponse

    import trio_mcp_ws

    async def answer(read: trio_mcp_ws.ReadChannel, write: trio_mcp_ws.WriteChannel) -> None:
        # Answer each request with an empty result; bad frames arrive as exceptions and are
        # dropped here, as a session would after answering them.
        async with write:
            async for item in read:
                if isinstance(item, SessionMessage) and isinstance(item.message, JSONRPCRequest):
                    reply = JSONRPCResponse(jsonrpc="2.0", id=item.message.id, result={})
                    await write.send(SessionMessage(reply))

    async def main() -> None:
        with trio.move_on_after(lifetime):
            async with trio.open_nursery() as nursery:
                if kind == "mcp":
                    from mcp.server.mcpserver import MCPServer

                    mcp = MCPServer(name, log_level="WARNING")

                    @mcp.tool()
                    def echo(text: str = "") -> str:
                        """Return the text unchanged."""
                        return text

                    info = await nursery.start(trio_mcp_ws.serve_mcp, mcp, "127.0.0.1", 0)
                else:
                    info = await nursery.start(trio_mcp_ws.serve, answer, "127.0.0.1", 0)
                if freeze:
                    gc.collect()
                    gc.freeze()
                print("READY", info.port, flush=True)

    trio.run(main)
