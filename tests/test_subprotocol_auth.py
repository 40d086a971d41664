"""Tokens in the subprotocol list (the SEP-1288 draft's browser authentication), both ends.

Over real loopback sockets: our client sends the token in a header or as ``mcp.auth.<token>``,
`bearer_auth` accepts either, the server selects plain ``mcp`` and never echoes, logs or shows
the token; ``mcp.version.<v>`` reaches `connection_info()`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import mcp_types as t
import pytest
import trio
from mcp.server.auth.provider import AccessToken
from mcp.shared.message import SessionMessage

from tests.test_server_helpers import exchange, running, upgrade_request
from trio_mcp_ws import (
    ConnectionInfo,
    HandshakeRejectedError,
    bearer_auth,
    connection_info,
    websocket_client,
)

if TYPE_CHECKING:
    from trio_mcp_ws import ReadChannel, WriteChannel

TOKEN = "s3cr3t-Token.JWT-like_value"


class Verifier:
    """A TokenVerifier that knows one token."""

    async def verify_token(self, token: str) -> AccessToken | None:
        if token == TOKEN:
            return AccessToken(token=token, client_id="tester", scopes=[])
        return None


def ping(id_: int = 1) -> SessionMessage:
    return SessionMessage(t.JSONRPCRequest(jsonrpc="2.0", id=id_, method="ping"))


async def answer_and_report(seen: list[ConnectionInfo], read: ReadChannel, write: WriteChannel) -> None:
    info = connection_info()
    seen.append(info)
    async with write:
        async for item in read:
            if isinstance(item, SessionMessage):
                await write.send(item)


async def round_trip(url: str, **options: object) -> None:
    async with websocket_client(url, ping_interval=None, **options) as (read, write):  # type: ignore[arg-type]
        await write.send(ping())
        item = await read.receive()
        assert isinstance(item, SessionMessage)


@pytest.mark.parametrize("in_subprotocol", [False, True])
async def test_bearer_auth_accepts_the_token_from_either_place(
    in_subprotocol: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[ConnectionInfo] = []

    async def handler(read: ReadChannel, write: WriteChannel) -> None:
        await answer_and_report(seen, read, write)

    with trio.fail_after(10):
        async with running(handler, authenticate=bearer_auth(Verifier())) as info:
            await round_trip(info.url, token=TOKEN, token_in_subprotocol=in_subprotocol)
            with pytest.raises(HandshakeRejectedError) as refused:
                await round_trip(info.url, token="wrong", token_in_subprotocol=in_subprotocol)
            assert refused.value.status_code == 401
    (accepted,) = seen
    assert accepted.subprotocol == "mcp"
    assert accepted.principal.client_id == "tester"
    for text in (repr(accepted), repr(accepted.request), repr(accepted.headers), caplog.text):
        assert TOKEN not in text


async def test_the_server_selects_mcp_and_never_echoes_the_token() -> None:
    with trio.fail_after(10):
        async with running(authenticate=bearer_auth(Verifier())) as info:
            offered = ("mcp", f"mcp.auth.{TOKEN}")
            response = await exchange(info.port, upgrade_request(info.port, subprotocols=offered))
    assert response is not None
    assert response.status == 101
    assert response.header("Sec-WebSocket-Protocol") == "mcp"
    assert all(TOKEN not in value for _, value in response.headers)


@pytest.mark.parametrize(
    "offered",
    [(f"mcp.auth.{TOKEN}",), ("mcp.version.2025-11-25",), ("mcp", "mcp.auth.a", "mcp.auth.b")],
    ids=["auth-without-mcp", "version-without-mcp", "two-tokens"],
)
async def test_malformed_offers_are_refused_with_400(offered: tuple[str, ...]) -> None:
    with trio.fail_after(10):
        async with running() as info:
            response = await exchange(info.port, upgrade_request(info.port, subprotocols=offered))
    assert response is not None
    assert response.status == 400
    assert TOKEN not in response.body.decode()


async def test_two_different_tokens_are_refused() -> None:
    """A token in the header and another in the subprotocol: ambiguous, so 401."""
    with trio.fail_after(10):
        async with running(authenticate=bearer_auth(Verifier())) as info:
            request = upgrade_request(
                info.port,
                subprotocols=("mcp", "mcp.auth.other"),
                headers=[("Authorization", f"Bearer {TOKEN}")],
            )
            response = await exchange(info.port, request)
    assert response is not None
    assert response.status == 401


async def test_the_announced_protocol_version_reaches_connection_info() -> None:
    seen: list[ConnectionInfo] = []

    async def handler(read: ReadChannel, write: WriteChannel) -> None:
        await answer_and_report(seen, read, write)

    with trio.fail_after(10):
        async with running(handler) as info:
            await round_trip(info.url, protocol_version="2025-11-25")
            await round_trip(info.url)
    assert [item.protocol_version for item in seen] == ["2025-11-25", None]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"token": "has space", "token_in_subprotocol": True}, "cannot be sent as a WebSocket subprotocol"),
        ({"token": "x\r\ny"}, "HTTP header cannot carry"),
        ({"token": TOKEN, "headers": {"Authorization": "Bearer x"}}, "not both"),
        ({"token_in_subprotocol": True}, "needs a token"),
    ],
)
async def test_tokens_that_cannot_travel_are_a_clear_value_error(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as error:
        await round_trip("ws://127.0.0.1:9/mcp", **options)
    assert "has space" not in str(error.value)


async def test_binary_frames_can_be_rejected_with_1003() -> None:
    async def handler(read: ReadChannel, write: WriteChannel) -> None:
        async with write:
            async for _item in read:
                pass

    with trio.fail_after(10):
        async with running(handler, binary_frames="reject") as info:
            stream = await trio.open_tcp_stream("127.0.0.1", info.port)
            async with stream:
                await stream.send_all(upgrade_request(info.port))
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await stream.receive_some(4096)
                # A masked binary frame holding a valid JSON-RPC ping.
                payload = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
                mask = b"\x01\x02\x03\x04"
                masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
                await stream.send_all(bytes([0x82, 0x80 | len(payload)]) + mask + masked)
                reply = await stream.receive_some(4096)
    assert reply[0] == 0x88  # a close frame ...
    assert int.from_bytes(reply[2:4], "big") == 1003  # ... with 1003 unsupported data
