"""User-style code the typecheck session checks with mypy --strict and pyright strict (issue 15).

Not a test module (pytest does not collect it): the checkers are the test. Both lines a
new user writes first, ``Client(websocket_client(url))`` and ``Client(pair.client)``, must
type-check with no cast, and the channels must keep their Trio types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
from mcp import Client

from trio_mcp_ws import ReadChannel, WriteChannel, websocket_client
from trio_mcp_ws.testing import open_transport_pair

if TYPE_CHECKING:
    from mcp.shared.message import SessionMessage


async def list_tools(url: str) -> list[str]:
    async with Client(websocket_client(url)) as client:
        tools = await client.list_tools()
    return [tool.name for tool in tools.tools]


async def over_the_pair() -> None:
    async with open_transport_pair() as pair, Client(pair.client) as client:
        await client.list_tools()


async def raw(url: str) -> SessionMessage | Exception:
    async with websocket_client(url) as (read, write):
        receive: ReadChannel = read
        send: WriteChannel = write
        assert isinstance(receive, trio.MemoryReceiveChannel)
        assert isinstance(send, trio.MemorySendChannel)
        return await receive.receive()
