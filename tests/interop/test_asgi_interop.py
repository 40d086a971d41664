"""trio_mcp_ws.asgi under a real ``hypercorn -k trio`` against other projects' clients.

The server is the interop ``MCPServer`` (tests/interop/_our_server.py) behind `mcp_app`,
mounted at ``/mcp`` in a Starlette app and in a FastAPI app, each run by a Hypercorn
process (started and stopped by pid, see tests/test_asgi_process.py). The clients are
mcp 1.30's asyncio ``websocket_client`` with its ``ClientSession`` and the TypeScript SDK's
``WebSocketClientTransport`` under Node (both WebSocket implementations), each in its own
environment, running the same "calls" scenario as against `serve_mcp`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import trio
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from tests.interop._our_server import SlowProbe, make_server
from tests.interop.setup_peers import PEERS_SRC
from tests.test_asgi_process import hypercorn_process
from trio_mcp_ws.asgi import mcp_app

if TYPE_CHECKING:
    from pathlib import Path

    from tests.interop._support import NodeClient, PeerLauncher

pytestmark = [pytest.mark.interop, pytest.mark.slow]

MIB = 1024 * 1024
WEBSOCKETS_MAX_SIZE = MIB
"""The ``websockets`` library's default ``max_size``, which mcp 1.30's client does not change."""


def _starlette() -> Starlette:
    app = mcp_app(make_server(SlowProbe()), path=None)
    return Starlette(routes=[WebSocketRoute("/mcp", app)], lifespan=app.lifespan)


def _fastapi() -> FastAPI:
    app = mcp_app(make_server(SlowProbe()))
    api = FastAPI(lifespan=app.lifespan)
    api.mount("/", app)
    return api


STARLETTE = _starlette()
FASTAPI = _fastapi()
APPS = ["STARLETTE", "FASTAPI"]


def check_calls(calls: dict[str, Any], big: int) -> None:
    """What the "calls" scenario must have seen, whoever the client."""
    assert calls["echo"]["text"] == ["héllo ✓"]
    assert calls["add"]["structuredContent"] == {"result": 42}
    assert calls["fail"]["isError"] is True
    assert calls["fail"]["text"] == ["Error executing tool fail: nope"]
    assert calls["big"]["textLength"] == big
    assert calls["length"]["structuredContent"] == {"result": 3 * MIB}
    assert calls["progress"]["text"] == ["done after 3 steps"]


@pytest.mark.parametrize("app", APPS)
async def test_mcp130_client(peers: PeerLauncher, mcp130: Path, app: str) -> None:
    with trio.fail_after(90):
        async with hypercorn_process(f"tests.interop.test_asgi_interop:{app}") as server:
            port = await server.port()
            big = WEBSOCKETS_MAX_SIZE - 4096
            url = f"ws://127.0.0.1:{port}/mcp"
            client = await peers.start(
                "mcp130-client",
                [mcp130, PEERS_SRC / "mcp130_client.py", url, "calls", "--big-size", str(big)],
            )
            status = await client.wait_exit()
    assert status == 0, client.report()
    initialized = client.find("initialized")
    assert initialized is not None
    assert initialized["protocolVersion"] == "2025-11-25"
    assert initialized["subprotocol"] == "mcp"
    assert initialized["server"]["name"] == "trio-mcp-ws-interop-server"
    check_calls({event["tool"]: event for event in client.all("call")}, big)
    # The client closed with 1000 and Hypercorn answered the close handshake with 1000.
    assert client.find("close", sent=1000, received=1000) is not None, client.report()


@pytest.mark.parametrize("app", APPS)
async def test_ts_client(peers: PeerLauncher, node_client: NodeClient, app: str) -> None:
    with trio.fail_after(90):
        async with hypercorn_process(f"tests.interop.test_asgi_interop:{app}") as server:
            port = await server.port()
            url = f"ws://127.0.0.1:{port}/mcp"
            argv = [*node_client.command, "--url", url, "--scenario", "calls", "--big-size", str(3 * MIB)]
            client = await peers.start(f"ts-client-{node_client.impl}", argv)
            status = await client.wait_exit()
    assert status == 0, client.report()
    connected = client.find("connected")
    assert connected is not None
    assert connected["subprotocol"] == "mcp"
    assert connected["protocolVersion"] == "2025-11-25"
    assert connected["server"]["name"] == "trio-mcp-ws-interop-server"
    check_calls({event["tool"]: event for event in client.all("call")}, 3 * MIB)
    close = client.find("close")
    assert close is not None
    # The SDK's close() sends a close frame without a status (1005); Hypercorn completes it.
    assert (close["code"], close["wasClean"]) == (1005, True), client.report()
