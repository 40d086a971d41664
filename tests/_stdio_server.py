"""A stdio MCP server for the CLI's ``serve`` test (run as its own process)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("stdio-test")


@server.tool()
def greet(name: str) -> str:
    """Greet someone."""
    return f"hello, {name}"


if __name__ == "__main__":
    server.run()
