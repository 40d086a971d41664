"""The opening handshake as `serve` and `websocket_server` answer it, over real loopback sockets.

Every malformed handshake is followed by a good client, which must still be served: no
handshake, however broken, may take the listener down.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from functools import partial

import pytest
import trio
import trio_websocket
from trio_websocket import WebSocketRequest
from wsproto.events import Request

from tests.test_server_helpers import (
    ACCEPT,
    KEY,
    echo,
    exchange,
    read_response,
    round_trip,
    running,
    upgrade_request,
    wait_closed,
)
from trio_mcp_ws import (
    ConnectionInfo,
    HandshakeRejectedError,
    ReadChannel,
    WriteChannel,
    connection_info,
    websocket_server,
)


def test_sample_key_answer() -> None:
    digest = hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    assert base64.b64encode(digest).decode() == ACCEPT


async def test_upgrade_is_accepted_with_the_mcp_subprotocol() -> None:
    with trio.fail_after(10):
        async with running() as info:
            response = await exchange(info.port, upgrade_request(info.port))
            assert response is not None
            assert response.status == 101
            assert response.header("Sec-WebSocket-Accept") == ACCEPT
            assert response.header("Sec-WebSocket-Protocol") == "mcp"


@pytest.mark.parametrize(
    ("offered", "selected"),
    [
        (("mcp",), "mcp"),
        (("chat", "mcp"), "mcp"),
        ((), None),
        (("chat", "superchat"), None),
    ],
)
async def test_subprotocol_selection(offered: tuple[str, ...], selected: str | None) -> None:
    with trio.fail_after(10):
        async with running() as info:
            response = await exchange(info.port, upgrade_request(info.port, subprotocols=offered))
            assert response is not None
            assert response.status == 101
            assert response.header("Sec-WebSocket-Protocol") == selected


@pytest.mark.parametrize("offered", [(), ("chat",)])
async def test_require_subprotocol_refuses_clients_without_mcp(offered: tuple[str, ...]) -> None:
    with trio.fail_after(10):
        async with running(require_subprotocol=True) as info:
            response = await exchange(info.port, upgrade_request(info.port, subprotocols=offered))
            assert response is not None
            assert response.status == 400
            assert b"subprotocol 'mcp'" in response.body
            assert response.header("Content-Type") == "text/plain; charset=utf-8"
            await round_trip(info.url)  # our client offers mcp


async def test_handler_sees_the_selected_subprotocol() -> None:
    seen: list[ConnectionInfo] = []

    async def record(read: ReadChannel, write: WriteChannel) -> None:
        seen.append(connection_info())
        await echo(read, write)

    with trio.fail_after(10):
        async with running(record) as info:
            await round_trip(info.url)
            response = await exchange(info.port, upgrade_request(info.port, subprotocols=()))
            assert response is not None
            assert response.status == 101
    assert [entry.subprotocol for entry in seen] == ["mcp", None]
    assert seen[0].request.path == "/mcp"
    assert seen[0].headers["HOST"] == f"127.0.0.1:{seen[0].request.headers['host'].split(':')[1]}"


async def test_other_paths_get_404() -> None:
    with trio.fail_after(10):
        async with running(path="/rpc") as info:
            assert info.url.endswith("/rpc")
            for path in ("/mcp", "/", "/rpc/", "/rpcx"):
                response = await exchange(info.port, upgrade_request(info.port, path=path))
                assert response is not None
                assert response.status == 404, path
                assert b"/rpc" in response.body
            # The query string is not part of the path.
            response = await exchange(info.port, upgrade_request(info.port, path="/rpc?session=1"))
            assert response is not None
            assert response.status == 101
            with pytest.raises(HandshakeRejectedError) as rejected:
                await round_trip(info.url.replace("/rpc", "/elsewhere"))
            assert rejected.value.status_code == 404
            await round_trip(info.url)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\x02\x03 definitely not HTTP\r\n\r\n",
        b"GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n",  # plain HTTP, no upgrade
        b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"GET /mcp HTTP/1.1\r\nHost: a\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        b"GET /mcp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",  # no key
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS hello to a plain server
    ],
)
async def test_malformed_handshakes_get_400_and_the_listener_serves_on(garbage: bytes) -> None:
    with trio.fail_after(10):
        async with running() as info:
            response = await exchange(info.port, garbage)
            assert response is not None
            assert response.status == 400
            await round_trip(info.url)


@pytest.mark.parametrize("host", ["xn--zz", "\xff\xfe", "a\xe9.example"])
async def test_a_host_that_is_not_idna_gets_400_without_an_error_log(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    """wsproto decodes Host as IDNA and lets UnicodeError escape; our reader answers 400."""
    with trio.fail_after(10):
        async with running() as info:
            response = await exchange(info.port, upgrade_request(info.port, host=host))
            assert response is not None
            assert response.status == 400
            await round_trip(info.url)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_clients_that_leave_mid_handshake_do_not_hurt_the_listener() -> None:
    with trio.fail_after(10):
        async with running() as info:
            for data in (b"", b"GET /mcp HTT", upgrade_request(info.port)[:-10]):
                stream = await trio.open_tcp_stream("127.0.0.1", info.port)
                await stream.send_all(data)
                await stream.aclose()
            # A client that sends a full request and leaves before reading the answer.
            stream = await trio.open_tcp_stream("127.0.0.1", info.port)
            await stream.send_all(upgrade_request(info.port))
            await stream.aclose()
            await round_trip(info.url)


async def test_oversized_request_head_is_refused_without_buffering_it() -> None:
    """A request head that never ends: answered with 4xx once it passes the h11 limit (16 KiB).

    The request is left incomplete, so only a server that refuses it early can answer; one
    that buffered it waiting for the end would say nothing until handshake_timeout.
    """
    with trio.fail_after(10):
        async with running(handshake_timeout=60) as info:
            stream = await trio.open_tcp_stream("127.0.0.1", info.port)
            async with stream:
                await stream.send_all(upgrade_request(info.port)[:-2])  # no blank line yet
                for _ in range(4):
                    await stream.send_all(b"X-Filler: " + b"a" * 8000 + b"\r\n")
                response = await read_response(stream)
            assert response is not None
            assert 400 <= response.status < 500
            await round_trip(info.url)


async def test_oversized_request_line_is_refused() -> None:
    with trio.fail_after(10):
        async with running(handshake_timeout=60) as info:
            stream = await trio.open_tcp_stream("127.0.0.1", info.port)
            async with stream:
                await stream.send_all(b"GET /" + b"a" * 40000)
                response = await read_response(stream)
            assert response is not None
            assert 400 <= response.status < 500
            await round_trip(info.url)


async def test_half_a_request_is_dropped_after_handshake_timeout_without_slowing_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with running(handshake_timeout=5) as info:
            slow = await trio.open_tcp_stream("127.0.0.1", info.port)
            await slow.send_all(upgrade_request(info.port)[:40])
            start = trio.current_time()
            for _ in range(3):
                await round_trip(info.url)
            assert trio.current_time() - start < 0.5  # served at once, not after the slow one
            assert await wait_closed(slow) == b""  # dropped, no answer
            assert 5 <= trio.current_time() - start < 6
            await slow.aclose()
            await round_trip(info.url)


async def test_a_silent_client_is_dropped_after_handshake_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with running(handshake_timeout=3) as info:
            silent = await trio.open_tcp_stream("127.0.0.1", info.port)
            start = trio.current_time()
            assert await wait_closed(silent) == b""
            assert 3 <= trio.current_time() - start < 4
            await silent.aclose()


async def test_slow_authenticate_counts_against_handshake_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stuck(request: object) -> None:
        await trio.sleep_forever()

    with trio.fail_after(60):
        async with running(handshake_timeout=2, authenticate=stuck) as info:
            stream = await trio.open_tcp_stream("127.0.0.1", info.port)
            async with stream:
                await stream.send_all(upgrade_request(info.port))
                assert await wait_closed(stream) == b""
            assert info.connections == 0


# -- websocket_server with requests from elsewhere -----------------------------------------


async def test_websocket_server_under_trio_websockets_own_server() -> None:
    """A request from trio_websocket.serve_websocket: accepted, adopted, served by our pump."""
    infos: list[ConnectionInfo] = []

    async def handler(request: WebSocketRequest) -> None:
        async with websocket_server(request, ping_interval=None) as (read, write):
            infos.append(connection_info())
            await echo(read, write)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: trio_websocket.WebSocketServer = await nursery.start(
                partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, ssl_context=None)
            )
            url = f"ws://127.0.0.1:{server.port}/anything"
            await round_trip(url)
            nursery.cancel_scope.cancel()
    assert [info.subprotocol for info in infos] == ["mcp"]
    assert infos[0].request.path == "/anything"
    assert infos[0].client is not None
    assert infos[0].client[0] == "127.0.0.1"


async def test_websocket_server_rejection_raises_and_answers_the_client() -> None:
    outcomes: list[BaseException] = []

    async def handler(request: WebSocketRequest) -> None:
        try:
            async with websocket_server(request, require_subprotocol=True):
                pytest.fail("the body must not run")  # pragma: no cover
        except HandshakeRejectedError as exc:
            outcomes.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: trio_websocket.WebSocketServer = await nursery.start(
                partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, ssl_context=None)
            )
            response = await exchange(server.port, upgrade_request(server.port, subprotocols=()))
            assert response is not None
            assert response.status == 400
            nursery.cancel_scope.cancel()
    assert len(outcomes) == 1
    assert isinstance(outcomes[0], HandshakeRejectedError)
    assert outcomes[0].status_code == 400


def test_trio_websocket_request_keeps_the_wsproto_event() -> None:
    """The one trio-websocket internal the server reads: the request's wsproto event (for Host)."""
    event = Request(host="example.com:8000", target="/mcp?x=1", subprotocols=["mcp"])
    request = WebSocketRequest(None, event)  # type: ignore[arg-type]
    assert request._event is event  # pyright: ignore[reportPrivateUsage]
    assert request._event.host == "example.com:8000"  # pyright: ignore[reportPrivateUsage]
