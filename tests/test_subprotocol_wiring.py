"""Server wiring of the subprotocol rules: mcp.auth.* in bearer_auth, 400 for malformed offers, no leaks."""

from __future__ import annotations

import logging

import pytest
import trio

from tests.test_security import Verifier
from tests.test_server_helpers import echo, exchange, round_trip, running, upgrade_request
from trio_mcp_ws import (
    ConnectionInfo,
    HandshakeRejectedError,
    ReadChannel,
    WriteChannel,
    bearer_auth,
    connection_info,
    websocket_client,
)


@pytest.mark.parametrize(
    "offered",
    [
        ("mcp.auth.good",),
        ("mcp.version.2025-11-25",),
        ("mcp", "mcp.auth.good", "mcp.auth.other"),
        ("mcp", "mcp.auth."),
    ],
)
async def test_malformed_mcp_offer_gets_400(offered: tuple[str, ...]) -> None:
    with trio.fail_after(10):
        async with running() as info:
            response = await exchange(info.port, upgrade_request(info.port, subprotocols=offered))
    assert response is not None
    assert response.status == 400
    assert b"good" not in response.body
    assert b"other" not in response.body


async def test_bearer_auth_takes_the_token_from_either_place_and_refuses_two_different_ones() -> None:
    hook = bearer_auth(Verifier())
    with trio.fail_after(10):
        async with running(authenticate=hook) as info:

            async def status(subprotocols: tuple[str, ...], *headers: tuple[str, str]) -> int:
                request = upgrade_request(info.port, subprotocols=subprotocols, headers=headers)
                response = await exchange(info.port, request)
                assert response is not None
                return response.status

            assert await status(("mcp", "mcp.auth.good")) == 101
            assert await status(("mcp",), ("Authorization", "Bearer good")) == 101
            assert await status(("mcp", "mcp.auth.good"), ("Authorization", "Bearer good")) == 101
            assert await status(("mcp", "mcp.auth.good"), ("Authorization", "Bearer readonly")) == 401
            assert await status(("mcp", "mcp.auth.good"), ("Authorization", "Basic Z29vZDo=")) == 401
            assert await status(("mcp", "mcp.auth.nope")) == 401


async def test_token_never_in_101_log_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[ConnectionInfo] = []
    served = trio.Event()

    async def handler(read: ReadChannel, write: WriteChannel) -> None:
        seen.append(connection_info())
        served.set()
        await echo(read, write)

    with trio.fail_after(10):
        async with running(handler, authenticate=bearer_auth(Verifier())) as info:
            offered = ("mcp", "mcp.auth.good", "mcp.version.2025-11-25")
            response = await exchange(info.port, upgrade_request(info.port, subprotocols=offered))
            assert response is not None
            assert response.status == 101
            assert response.header("Sec-WebSocket-Protocol") == "mcp"
            refused = await exchange(
                info.port, upgrade_request(info.port, subprotocols=("mcp", "mcp.auth.nope"))
            )
            assert refused is not None
            assert refused.status == 401
            assert b"nope" not in refused.body
            await served.wait()
    (conn,) = seen
    assert conn.protocol_version == "2025-11-25"
    assert conn.subprotocol == "mcp"
    for text in (repr(conn), repr(conn.request), repr(conn.headers), str(conn), caplog.text):
        assert "mcp.auth.good" not in text
        assert "'good'" not in text
        assert "nope" not in text


@pytest.mark.parametrize("in_subprotocol", [False, True])
async def test_client_token_reaches_bearer_auth(in_subprotocol: bool) -> None:
    principals: list[object] = []

    async def handler(read: ReadChannel, write: WriteChannel) -> None:
        principals.append(connection_info().principal)
        await echo(read, write)

    with trio.fail_after(10):
        async with running(handler, authenticate=bearer_auth(Verifier())) as info:
            await round_trip(info.url, token="good", token_in_subprotocol=in_subprotocol)
            with pytest.raises(HandshakeRejectedError) as refused:
                await round_trip(info.url, token="nope", token_in_subprotocol=in_subprotocol)
    assert refused.value.status_code == 401
    assert "nope" not in str(refused.value)
    assert [getattr(p, "client_id", None) for p in principals] == ["c1"]


def test_client_token_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="base64url"):
        trio.run(_open, "bad token", True)
    with pytest.raises(ValueError, match="not both"):
        trio.run(_open, "good", False, {"Authorization": "Bearer good"})


async def _open(token: str, in_subprotocol: bool, headers: dict[str, str] | None = None) -> None:
    async with websocket_client(
        "ws://127.0.0.1:9/mcp", token=token, token_in_subprotocol=in_subprotocol, headers=headers
    ):
        pass  # pragma: no cover - refused before connecting


async def test_client_disconnect_cancels_the_running_tool() -> None:
    """docs/protocol.md: a disconnect cancels the connection's work (no session outlives it).

    The client is raw and vanishes (TCP closed, no close frame, no notifications/cancelled),
    so only the disconnect itself can have stopped the tool.
    """
    import json
    from functools import partial

    from mcp.server.mcpserver import MCPServer

    from tests.test_server_helpers import raw_client
    from trio_mcp_ws import serve_mcp

    server = MCPServer("disconnect-test")
    entered = trio.Event()
    cancelled = trio.Event()

    @server.tool()
    async def slow() -> str:
        entered.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")  # pragma: no cover

    initialize: dict[str, object] = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    }
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            info = await nursery.start(partial(serve_mcp, server, "127.0.0.1", 0))
            async with raw_client(info.port) as client:
                messages: list[dict[str, object]] = [
                    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize},
                    {"jsonrpc": "2.0", "method": "notifications/initialized"},
                    {
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "tools/call",
                        "params": {"name": "slow", "arguments": {}},
                    },
                ]
                for message in messages:
                    await client.send_text(json.dumps(message))
                await entered.wait()
            # The raw client's stream is closed: the server sees 1006 and nothing else.
            await cancelled.wait()
            nursery.cancel_scope.cancel()
