"""Our raw ``websocket_client`` channels (no MCP session) against mcp 1.30's WebSocket server.

What the peer does with each kind of frame is recorded here as assertions, so a change in
either side shows up; docs/interop.md explains the consequences. Frames our write channel
cannot produce (invalid JSON, binary frames) are sent by `RawClient`, a WebSocket client
written by hand with wsproto.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import mcp_types as t
import pytest
import trio
from mcp.shared.message import SessionMessage

from tests.interop._support import CLOSE_REPORT_BOUND, PeerLauncher, RawClient, start_mcp130_server
from trio_mcp_ws import ConnectionClosedError, ReadChannel, websocket_client

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.interop

INITIALIZE: dict[str, Any] = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "trio-mcp-ws-raw", "version": "0"},
}


def request(request_id: t.RequestId, method: str, params: dict[str, Any] | None = None) -> SessionMessage:
    return SessionMessage(t.JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params))


def notification(method: str, params: dict[str, Any] | None = None) -> SessionMessage:
    return SessionMessage(t.JSONRPCNotification(jsonrpc="2.0", method=method, params=params))


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


async def next_message(read: ReadChannel) -> t.JSONRPCMessage:
    item = await read.receive()
    assert isinstance(item, SessionMessage), item
    return item.message


async def test_request_as_first_frame_is_answered(peers: PeerLauncher, mcp130: Path) -> None:
    """No initialize first: ``ping`` is answered; other requests get -32602; ids come back as sent."""
    with trio.fail_after(30):
        server, url = await start_mcp130_server(peers, mcp130)
        async with websocket_client(url) as (read, write):
            await write.send(request(1, "ping"))
            assert await next_message(read) == t.JSONRPCResponse(jsonrpc="2.0", id=1, result={})

            # Any other request before initialize: an error answer, not silence.
            await write.send(request("first", "tools/list"))
            answer = await next_message(read)
            assert isinstance(answer, t.JSONRPCError)
            assert (answer.id, answer.error.code) == ("first", t.INVALID_PARAMS)

            # Ids: strings, zero, negatives and integers beyond 2**53 come back unchanged.
            ids: list[t.RequestId] = ["abc", "", 0, -1, 2**53 + 1]
            for request_id in ids:
                await write.send(request(request_id, "ping"))
                answer = await next_message(read)
                assert isinstance(answer, t.JSONRPCResponse)
                assert answer.id == request_id
                assert type(answer.id) is type(request_id)

            # Then the handshake works as usual on the same connection.
            await write.send(request(2, "initialize", INITIALIZE))
            answer = await next_message(read)
            assert isinstance(answer, t.JSONRPCResponse)
            assert answer.id == 2
            assert answer.result["protocolVersion"] == "2025-11-25"
            await write.send(notification("notifications/initialized"))
            await write.send(request(3, "tools/list"))
            answer = await next_message(read)
            assert isinstance(answer, t.JSONRPCResponse)
            assert "echo" in {tool["name"] for tool in answer.result["tools"]}
        await server.wait_for("disconnect", code=1000)


async def test_invalid_mcp_messages_from_our_channels(peers: PeerLauncher, mcp130: Path) -> None:
    """Valid JSON-RPC our channels can send, that mcp 1.30 does not accept."""
    with trio.fail_after(30):
        _server, url = await start_mcp130_server(peers, mcp130)
        async with websocket_client(url) as (read, write):
            # An unknown method: -32602 "Invalid request parameters", not -32601.
            await write.send(request("u", "no/such/method"))
            answer = await next_message(read)
            assert isinstance(answer, t.JSONRPCError)
            assert (answer.id, answer.error.code, answer.error.message) == (
                "u",
                t.INVALID_PARAMS,
                "Invalid request parameters",
            )
            # An unknown notification: ignored (logged on the server's stderr).
            await write.send(notification("no/such/notification"))
            # A response to a request the server never sent: a log notification, no error.
            await write.send(SessionMessage(t.JSONRPCResponse(jsonrpc="2.0", id=99, result={})))
            log = await next_message(read)
            assert isinstance(log, t.JSONRPCNotification)
            assert log.method == "notifications/message"
            assert log.params is not None
            assert (log.params["level"], log.params["data"]) == ("error", "Internal Server Error")
            # The connection still serves.
            await write.send(request(5, "ping"))
            assert await next_message(read) == t.JSONRPCResponse(jsonrpc="2.0", id=5, result={})


PING = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"})
INTERNAL_ERROR_LOG = (
    '{"method":"notifications/message","params":{"level":"error",'
    '"logger":"mcp.server.exception_handler","data":"Internal Server Error"},"jsonrpc":"2.0"}'
)
PONG = '{"jsonrpc":"2.0","id":7,"result":{}}'


@pytest.mark.parametrize(
    ("frame", "answers"),
    [
        pytest.param("{not json", [INTERNAL_ERROR_LOG, PONG], id="invalid-json"),
        pytest.param('{"hello": 1}', [INTERNAL_ERROR_LOG, PONG], id="json-not-jsonrpc"),
        pytest.param('[{"jsonrpc":"2.0","id":1,"method":"ping"}]', [INTERNAL_ERROR_LOG, PONG], id="batch"),
        pytest.param('{"jsonrpc":"2.0","id":null,"method":"ping"}', [PONG], id="null-id-dropped"),
        pytest.param('{"jsonrpc":"2.0","id":1.5,"method":"ping"}', [PONG], id="float-id-dropped"),
    ],
)
async def test_bad_text_frames(peers: PeerLauncher, mcp130: Path, frame: str, answers: list[str]) -> None:
    """A bad text frame: an error *log notification* (never a -32700/-32600 answer), or nothing."""
    with trio.fail_after(30):
        _server, url = await start_mcp130_server(peers, mcp130)
        client = await RawClient.connect(port_of(url))
        try:
            assert client.subprotocol == "mcp"
            await client.send(frame)
            await client.send(PING)
            received = [await client.receive() for _ in answers]
            assert received == answers
        finally:
            await client.aclose()


async def test_binary_frame_drops_the_connection(peers: PeerLauncher, mcp130: Path) -> None:
    """mcp 1.30 cannot take a binary frame: its handler crashes and TCP closes with no close frame."""
    with trio.fail_after(30):
        server, url = await start_mcp130_server(peers, mcp130)
        client = await RawClient.connect(port_of(url))
        try:
            await client.send(PING.encode())
            assert await client.receive() is None
            assert client.close_code == 1006
        finally:
            await client.aclose()
        await server.wait_for("receive", kind="bytes")
        event = await server.wait_for("handler_error")
        assert event["error"].startswith("ExceptionGroup")


async def test_server_selects_mcp_even_when_not_offered(peers: PeerLauncher, mcp130: Path) -> None:
    """mcp 1.30 always answers ``Sec-WebSocket-Protocol: mcp``, even to a client that offered none.

    RFC 6455 section 4.1 says such a client must fail the connection (wsproto does, and
    trio-websocket then leaks its socket), so clients that offer no subprotocol cannot talk
    to mcp 1.30. Our client always offers ``mcp``. Checked with a hand-written handshake.
    """
    with trio.fail_after(30):
        server, url = await start_mcp130_server(peers, mcp130)
        port = port_of(url)
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            await stream.send_all(
                (
                    "GET /mcp HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{port}\r\n"
                    "Upgrade: websocket\r\n"
                    "Connection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n"
                    "\r\n"
                ).encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await stream.receive_some(4096)
                assert chunk, head
                head += chunk
        status, *header_lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip() for name, value in (h.split(":", 1) for h in header_lines)
        }
        assert status.startswith("HTTP/1.1 101")
        assert headers["sec-websocket-protocol"] == "mcp"
        await server.wait_for("connect", subprotocols=[])


@pytest.mark.parametrize("code", [1000, 1001, 1011, 4000])
async def test_peer_closes_with_code(peers: PeerLauncher, mcp130: Path, code: int) -> None:
    """The server closes mid-call: 1000/1001 end our read channel, others arrive as an error first."""
    with trio.fail_after(30):
        _server, url = await start_mcp130_server(peers, mcp130)
        async with websocket_client(url) as (read, write):
            await write.send(request(1, "initialize", INITIALIZE))
            assert isinstance(await next_message(read), t.JSONRPCResponse)
            await write.send(notification("notifications/initialized"))
            start = trio.current_time()
            await write.send(request(2, "tools/call", {"name": "hang_up", "arguments": {"code": code}}))
            items = [item async for item in read]
            elapsed = trio.current_time() - start
        assert elapsed < CLOSE_REPORT_BOUND
        if code in (1000, 1001):
            assert items == []
        else:
            assert len(items) == 1
            error = items[0]
            assert isinstance(error, ConnectionClosedError)
            assert error.code == code


async def test_peer_process_killed(peers: PeerLauncher, mcp130: Path) -> None:
    """The server process dies mid-call (no close frame): 1006 arrives within 2 s."""
    with trio.fail_after(30):
        server, url = await start_mcp130_server(peers, mcp130)
        async with websocket_client(url) as (read, write):
            await write.send(request(1, "initialize", INITIALIZE))
            assert isinstance(await next_message(read), t.JSONRPCResponse)
            await write.send(notification("notifications/initialized"))
            await write.send(request(2, "tools/call", {"name": "slow", "arguments": {}}))
            log = await next_message(read)  # "slow: started": the call is in flight
            assert isinstance(log, t.JSONRPCNotification)
            start = trio.current_time()
            server.kill()
            items = [item async for item in read]
            elapsed = trio.current_time() - start
        assert elapsed < CLOSE_REPORT_BOUND
        assert len(items) == 1
        assert isinstance(items[0], ConnectionClosedError)
        assert items[0].code == 1006
