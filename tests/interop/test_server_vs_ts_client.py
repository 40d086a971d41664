"""Our ``serve_mcp`` (an official mcp 2.x ``MCPServer``) against the TypeScript SDK's client.

The peer is ``WebSocketClientTransport`` with ``Client`` from ``@modelcontextprotocol/sdk``
under Node (tests/interop/peers/ts_client.mjs), with each WebSocket implementation: Node's
built-in one (undici; ``--experimental-websocket`` on Node 20) and the ``ws`` package
installed as ``globalThis.WebSocket``.
"""

from __future__ import annotations

import pytest
import trio

from tests.interop._our_server import SlowProbe, start_ours
from tests.interop._support import CLOSE_REPORT_BOUND, NodeClient, PeerLauncher, PeerProcess

pytestmark = pytest.mark.interop

MIB = 1024 * 1024


async def start_client(
    peers: PeerLauncher, node: NodeClient, url: str, scenario: str, *extra: str
) -> PeerProcess:
    argv = [*node.command, "--url", url, "--scenario", scenario, *extra]
    return await peers.start(f"ts-client-{node.impl}", argv)


async def test_calls(peers: PeerLauncher, node_client: NodeClient) -> None:
    """Initialize, list tools, call tools, a tool error, a 3 MiB result, notifications; subprotocol mcp."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info = await start_ours(nursery)
            client = await start_client(peers, node_client, info.url, "calls", "--big-size", str(3 * MIB))
            status = await client.wait_exit()
            nursery.cancel_scope.cancel()
    assert status == 0, client.report()
    connected = client.find("connected")
    assert connected is not None
    assert connected["subprotocol"] == "mcp"
    assert connected["protocolVersion"] == "2025-11-25"
    assert connected["server"]["name"] == "trio-mcp-ws-interop-server"
    tools = client.find("tools")
    assert tools is not None
    assert {"echo", "add", "fail", "big", "progress", "slow"} <= set(tools["names"])
    calls = {event["tool"]: event for event in client.all("call")}
    assert calls["echo"]["text"] == ["héllo ✓"]
    assert calls["add"]["structuredContent"] == {"result": 42}
    assert calls["fail"]["isError"] is True
    assert calls["fail"]["text"] == ["Error executing tool fail: nope"]
    assert calls["big"]["textLength"] == 3 * MIB
    assert calls["length"]["structuredContent"] == {"result": 3 * MIB}
    progress = calls["progress"]
    assert progress["text"] == ["done after 3 steps"]
    assert progress["logs"] == ["step 1 of 3", "step 2 of 3", "step 3 of 3"]
    # On the wire every notification came before the response, in order ...
    *notifications, response = progress["wire"]
    assert notifications == [
        *("notifications/progress 1", "notifications/message"),
        *("notifications/progress 2", "notifications/message"),
        *("notifications/progress 3", "notifications/message"),
    ]
    assert response.startswith("response ")
    # ... but the SDK dispatches notifications a microtask late and responses at once, so a
    # response arriving in the same read retires the progress handler first: onprogress sees
    # a prefix, the rest go to onerror as "unknown token" (typescript-sdk issue 2580).
    expected = [[1, 3, "step 1"], [2, 3, "step 2"], [3, 3, "step 3"]]
    delivered = progress["progress"]
    assert delivered == expected[: len(delivered)]
    late = [
        e
        for e in client.all("transport_error")
        if "progress notification for an unknown token" in e["message"]
    ]
    assert len(delivered) + len(late) == 3, client.report()
    # The SDK's close() calls WebSocket.close() with no code: its close frame has no status
    # (1005 on both ends), and we complete the handshake.
    close = client.find("close")
    assert close is not None
    assert (close["code"], close["wasClean"]) == (1005, True), client.report()


@pytest.mark.parametrize("how", ["close", "exit"])
async def test_peer_closes_during_call(peers: PeerLauncher, node_client: NodeClient, how: str) -> None:
    """The client goes away while our tool runs: close() (no status code) or process exit.

    Our side must notice within 2 s: the in-flight tool call is cancelled.
    """
    probe = SlowProbe()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info = await start_ours(nursery, probe)
            client = await start_client(peers, node_client, info.url, "hang")
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
        assert client.find("close", code=1005) is not None, client.report()
    else:
        assert status == 4, client.report()


async def test_our_shutdown_is_seen_by_peer(peers: PeerLauncher, node_client: NodeClient) -> None:
    """We stop the server while the client waits for an answer: it sees 1000 or 1001."""
    probe = SlowProbe()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info = await start_ours(nursery, probe)
            client = await start_client(peers, node_client, info.url, "hang")
            await probe.entered.wait()
            nursery.cancel_scope.cancel()
        status = await client.wait_exit()
    assert status == 0, client.report()
    failed = client.find("call_failed")
    assert failed is not None, client.report()
    assert failed["code"] == -32000  # the SDK's ErrorCode.ConnectionClosed
    close = client.find("close")
    assert close is not None
    assert close["code"] in (1000, 1001), client.report()
    assert close["wasClean"] is True
