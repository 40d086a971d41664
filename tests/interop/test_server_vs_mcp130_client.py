"""Our ``serve_mcp`` (an official mcp 2.x ``MCPServer``) against mcp 1.30's asyncio WebSocket client.

The peer is mcp 1.30's ``websocket_client`` with its ``ClientSession``
(tests/interop/peers/mcp130_client.py), in its own virtual environment, printing what it
saw as JSON lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from tests.interop._our_server import SlowProbe, start_ours
from tests.interop._support import CLOSE_REPORT_BOUND, PeerLauncher, PeerProcess
from tests.interop.setup_peers import PEERS_SRC

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.interop

MIB = 1024 * 1024
WEBSOCKETS_MAX_SIZE = MIB
"""The ``websockets`` library's default ``max_size``, which mcp 1.30's client does not change."""


async def start_client(
    peers: PeerLauncher, python: Path, url: str, scenario: str, *extra: str
) -> PeerProcess:
    return await peers.start("mcp130-client", [python, PEERS_SRC / "mcp130_client.py", url, scenario, *extra])


async def test_calls(peers: PeerLauncher, mcp130: Path) -> None:
    """Initialize, list tools, call tools, a tool error, a large result, notifications; clean close."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info = await start_ours(nursery)
            # Under websockets' 1 MiB default (see test_result_over_peer_limit).
            size = WEBSOCKETS_MAX_SIZE - 4096
            client = await start_client(peers, mcp130, info.url, "calls", "--big-size", str(size))
            status = await client.wait_exit()
            nursery.cancel_scope.cancel()
    assert status == 0, client.report()
    initialized = client.find("initialized")
    assert initialized is not None
    assert initialized["protocolVersion"] == "2025-11-25"
    assert initialized["subprotocol"] == "mcp"
    assert initialized["server"]["name"] == "trio-mcp-ws-interop-server"
    tools = client.find("tools")
    assert tools is not None
    assert {"echo", "add", "fail", "big", "progress", "slow"} <= set(tools["names"])
    calls = {event["tool"]: event for event in client.all("call")}
    assert calls["echo"]["text"] == ["héllo ✓"]
    assert calls["add"]["structuredContent"] == {"result": 42}
    assert calls["fail"]["isError"] is True
    assert calls["fail"]["text"] == ["Error executing tool fail: nope"]
    assert calls["big"]["textLength"] == size
    assert calls["length"]["structuredContent"] == {"result": 3 * MIB}
    assert calls["progress"]["text"] == ["done after 3 steps"]
    assert calls["progress"]["progress"] == [[1, 3, "step 1"], [2, 3, "step 2"], [3, 3, "step 3"]]
    assert calls["progress"]["logs"] == ["step 1 of 3", "step 2 of 3", "step 3 of 3"]
    # The peer closed cleanly: it sent 1000 and we answered the close handshake with 1000.
    assert client.find("close", sent=1000, received=1000) is not None, client.report()


async def test_result_over_peer_limit(peers: PeerLauncher, mcp130: Path) -> None:
    """mcp 1.30's client keeps websockets' 1 MiB limit: a 3 MiB result makes *it* close with 1009.

    Our server must survive that: the connection ends, the listener keeps serving.
    """
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info = await start_ours(nursery)
            client = await start_client(peers, mcp130, info.url, "big", "--big-size", str(3 * MIB))
            status = await client.wait_exit()
            assert status == 1, client.report()
            error = client.find("error")
            assert error is not None
            assert any("1009" in text for text in error["errors"]), client.report()
            assert client.find("close", sent=1009) is not None, client.report()

            again = await start_client(peers, mcp130, info.url, "big", "--big-size", "1000")
            assert await again.wait_exit() == 0, again.report()
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("how", ["close", "exit"])
async def test_peer_closes_during_call(peers: PeerLauncher, mcp130: Path, how: str) -> None:
    """The client goes away while our tool runs: clean close (1000) or process exit (no close frame).

    Our side must notice within 2 s: the in-flight tool call is cancelled.
    """
    probe = SlowProbe()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info = await start_ours(nursery, probe)
            client = await start_client(peers, mcp130, info.url, "hang")
            await probe.entered.wait()
            start = trio.current_time()
            await client.send_line(how)
            with trio.move_on_after(CLOSE_REPORT_BOUND + 3):
                await probe.exited.wait()
            status = await client.wait_exit()
            nursery.cancel_scope.cancel()
    assert probe.exited_at is not None, f"the slow call was never cancelled\n{client.report()}"
    assert probe.cancelled
    assert probe.exited_at - start < CLOSE_REPORT_BOUND
    if how == "close":
        assert status == 0, client.report()
        assert client.find("close", sent=1000) is not None, client.report()


async def test_our_shutdown_is_seen_by_peer(peers: PeerLauncher, mcp130: Path) -> None:
    """We stop the server while the client waits for an answer: it sees 1000 or 1001."""
    probe = SlowProbe()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info = await start_ours(nursery, probe)
            client = await start_client(peers, mcp130, info.url, "hang")
            await probe.entered.wait()
            nursery.cancel_scope.cancel()
        status = await client.wait_exit()
    assert status == 0, client.report()
    failed = client.find("call_failed")
    assert failed is not None, client.report()
    assert failed["message"] == "Connection closed"
    close = client.find("close")
    assert close is not None
    assert close["received"] in (1000, 1001), client.report()
