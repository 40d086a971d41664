"""Every public entry point, called outside Trio, raises one clear error naming Trio."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from mcp.server.mcpserver import MCPServer

from trio_mcp_ws import serve, serve_mcp, websocket_client
from trio_mcp_ws.testing import open_raw_peer, open_transport_pair

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from trio_mcp_ws import ReadChannel, WriteChannel


async def _handler(read: ReadChannel, write: WriteChannel) -> None:
    pass  # pragma: no cover - never reached


async def _client() -> None:
    async with websocket_client("ws://127.0.0.1:9/mcp"):
        pass  # pragma: no cover


async def _pair() -> None:
    async with open_transport_pair():
        pass  # pragma: no cover


async def _raw() -> None:
    async with open_raw_peer():
        pass  # pragma: no cover


async def _serve() -> None:
    await serve(_handler, "127.0.0.1", 0)


async def _serve_mcp() -> None:
    await serve_mcp(MCPServer("x"), "127.0.0.1", 0)


ENTRY_POINTS: list[Callable[[], Coroutine[Any, Any, None]]] = [_client, _pair, _raw, _serve, _serve_mcp]


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda entry: entry.__name__.strip("_"))
def test_asyncio_gets_an_error_naming_trio(entry: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with pytest.raises(RuntimeError, match=r"runs on Trio only.*asyncio.*trio\.run"):
        asyncio.run(entry())


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda entry: entry.__name__.strip("_"))
def test_anyio_on_asyncio_gets_the_same_error(entry: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with pytest.raises(RuntimeError, match=r"backend='trio'"):
        anyio.run(entry, backend="asyncio")
