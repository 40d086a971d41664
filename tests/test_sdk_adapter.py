"""What serve_mcp needs from the MCP SDK: fails loudly when an SDK release changes it.

One private attribute (``MCPServer._lowlevel_server``, read only in ``trio_mcp_ws/_sdk.py``)
and a few public names.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import serve_dual_era_loop
from mcp.shared.message import ServerMessageMetadata

from trio_mcp_ws._sdk import LOWLEVEL_ATTRIBUTE, lowlevel_server


def test_mcpserver_still_keeps_its_lowlevel_server_where_we_read_it() -> None:
    server = MCPServer("adapter-test")
    inner = getattr(server, LOWLEVEL_ATTRIBUTE)
    assert isinstance(inner, Server)
    assert lowlevel_server(server) is inner
    assert inner.name == "adapter-test"


def test_mcpserver_has_no_public_accessor_yet() -> None:
    """If the SDK adds one, switch _sdk.py to it (and drop the private read)."""
    candidates = {"lowlevel_server", "lowlevel", "server", "get_lowlevel_server"}
    assert not candidates & set(dir(MCPServer))


def test_a_lowlevel_server_is_used_as_is() -> None:
    server: Server[Any] = Server("plain")
    assert lowlevel_server(server) is server


def test_missing_attribute_fails_loudly() -> None:
    server = MCPServer("adapter-test")
    delattr(server, LOWLEVEL_ATTRIBUTE)
    with pytest.raises(TypeError, match="needs an update"):
        lowlevel_server(server)


def test_other_objects_are_refused() -> None:
    with pytest.raises(TypeError, match="not str"):
        lowlevel_server("server")  # type: ignore[arg-type]


def test_the_public_pieces_serve_mcp_uses() -> None:
    server: Server[Any] = Server("plain")
    assert callable(server.lifespan)
    assert callable(server.create_initialization_options)
    parameters = inspect.signature(serve_dual_era_loop).parameters
    assert list(parameters)[:3] == ["server", "read_stream", "write_stream"]
    assert {"lifespan_state", "init_options"} <= set(parameters)
    assert "request_context" in inspect.signature(ServerMessageMetadata).parameters
