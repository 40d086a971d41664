"""permessage-deflate against peers written by others: mcp 1.30 (``websockets``, both roles) and
the TypeScript SDK on Node's ``ws`` package (``perMessageDeflate`` is on by default there).

Each peer runs in its own environment (tests/interop/conftest.py). A byte-counting relay on
127.0.0.1 sits between the two ends, so every test shows compression on the wire, not just
in a header: with it the large result crosses in a fraction of its size; a control run
without it crosses in full.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import mcp_types as t
import pytest
import trio
from mcp import Client

from tests._sdk import as_transport
from tests.interop._our_server import SlowProbe, make_server
from tests.interop._relay import start_relay
from tests.interop._support import NodeClient, PeerLauncher, start_mcp130_server
from tests.interop.setup_peers import PEERS_SRC
from trio_mcp_ws import ServerInfo, serve_mcp, websocket_client

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.interop

BIG = 600_000
"""The ``big`` tool's result size: ``"x" * BIG`` deflates about a thousandfold."""


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_mcp130_client_to_our_server(
    peers: PeerLauncher, mcp130: Path, compression: str | None
) -> None:
    """mcp 1.30's client offers deflate (``websockets``' default); ours accepts it when asked to."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info: ServerInfo = await nursery.start(
                partial(serve_mcp, make_server(SlowProbe()), "127.0.0.1", 0, compression=compression)  # type: ignore[arg-type]
            )
            port, counts = await start_relay(nursery, info.port)
            client = await peers.start(
                "mcp130-client",
                [
                    mcp130,
                    PEERS_SRC / "mcp130_client.py",
                    f"ws://127.0.0.1:{port}/mcp",
                    "big",
                    "--big-size",
                    str(BIG),
                ],
            )
            status = await client.wait_exit()
            nursery.cancel_scope.cancel()
    assert status == 0, client.report()
    assert client.find("close", sent=1000, received=1000) is not None, client.report()
    if compression:
        assert counts.down < BIG / 20, counts
    else:
        assert counts.down > BIG, counts


async def test_ts_client_on_ws_to_our_server(peers: PeerLauncher, node_client: NodeClient) -> None:
    """The TypeScript SDK's client on ``ws`` negotiates deflate with ours (Node's built-in
    WebSocket is checked too: it must interoperate whether or not it offers deflate)."""
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            info: ServerInfo = await nursery.start(
                partial(serve_mcp, make_server(SlowProbe()), "127.0.0.1", 0, compression="deflate")
            )
            port, counts = await start_relay(nursery, info.port)
            client = await peers.start(
                f"ts-client-{node_client.impl}",
                [
                    *node_client.command,
                    "--url",
                    f"ws://127.0.0.1:{port}/mcp",
                    "--scenario",
                    "calls",
                    "--big-size",
                    str(BIG),
                ],
            )
            status = await client.wait_exit(within=60)
            nursery.cancel_scope.cancel()
    assert status == 0, client.report()
    big = next(event for event in client.all("call") if event["tool"] == "big")
    assert big["textLength"] == BIG
    if node_client.impl == "ws":
        assert counts.down < BIG / 20, counts  # ws offers permessage-deflate by default


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_our_client_to_mcp130_server(
    peers: PeerLauncher, mcp130: Path, compression: str | None
) -> None:
    """uvicorn under mcp 1.30's server accepts our offer (``websockets``' or wsproto's deflate)."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            _, url = await start_mcp130_server(peers, mcp130)
            target = int(url.rsplit(":", 1)[1].split("/", 1)[0])
            port, counts = await start_relay(nursery, target)
            transport = websocket_client(f"ws://127.0.0.1:{port}/mcp", compression=compression)  # type: ignore[arg-type]
            async with Client(as_transport(transport)) as client:
                result = await client.call_tool("big", {"size": BIG})
                content = result.content[0]
                assert isinstance(content, t.TextContent)
                assert content.text == "x" * BIG
                # And the other direction: a large request, compressed by us.
                result = await client.call_tool("length", {"text": "y" * BIG})
                assert result.structured_content == {"result": BIG}
            nursery.cancel_scope.cancel()
    if compression:
        assert counts.down < BIG / 20, counts
        assert counts.up < BIG / 20, counts
    else:
        assert counts.down > BIG, counts
        assert counts.up > BIG, counts
