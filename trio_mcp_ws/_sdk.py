"""The one place that reaches into the MCP SDK beyond its public API.

``MCPServer`` (mcp 2.x) builds a low-level ``mcp.server.lowlevel.Server`` and keeps it in
the private attribute ``_lowlevel_server``; it has no public accessor (checked on mcp 2.3:
its own transports, ``run_stdio_async`` and ``sse_app``, read the attribute directly). To
drive an ``MCPServer`` over our transport we need that ``Server``, so `lowlevel_server`
reads it here and nowhere else. ``tests/test_sdk_adapter.py`` fails loudly if an SDK
release renames or retypes it.

Everything else `serve_mcp` uses is public: ``Server.lifespan``,
``Server.create_initialization_options`` and ``mcp.server.runner.serve_dual_era_loop``.
"""

from __future__ import annotations

from typing import Any, Final

from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer

__all__ = ["LOWLEVEL_ATTRIBUTE", "lowlevel_server"]

LOWLEVEL_ATTRIBUTE: Final = "_lowlevel_server"
"""The private ``MCPServer`` attribute holding its low-level ``Server``."""


def lowlevel_server(server: Server[Any] | MCPServer[Any]) -> Server[Any]:
    """The low-level ``Server`` that runs ``server``: itself, or the one an ``MCPServer`` wraps.

    Raises:
        TypeError: ``server`` is neither, or this SDK version no longer keeps the
            low-level server where we expect it.
    """
    if isinstance(server, Server):
        return server
    if isinstance(server, MCPServer):  # pyright: ignore[reportUnnecessaryIsInstance] - checked at run time
        inner: object = getattr(server, LOWLEVEL_ATTRIBUTE, None)
        if isinstance(inner, Server):
            return inner  # pyright: ignore[reportUnknownVariableType]
        raise TypeError(
            f"this MCP SDK version keeps no low-level Server in MCPServer.{LOWLEVEL_ATTRIBUTE}; "
            "trio-mcp-ws needs an update to serve it"
        )
    raise TypeError(
        "serve_mcp needs an mcp.server.lowlevel.Server or mcp.server.mcpserver.MCPServer, "
        f"not {type(server).__name__}"
    )
