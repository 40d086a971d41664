"""Connect and handshake failures: one typed error each, reported promptly."""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING, NoReturn

import pytest
import trio
import trio.testing
import trustme

from tests._peers import serve_streams, url
from trio_mcp_ws import (
    ConnectError,
    ConnectRefusedError,
    ConnectTimeoutError,
    HandshakeError,
    HandshakeRejectedError,
    NameResolutionError,
    TLSError,
    TransportError,
    websocket_client,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


async def free_port() -> int:
    """A port nothing listens on: bind, note the port, close."""
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def test_refused() -> None:
    port = await free_port()
    with trio.fail_after(10), pytest.raises(ConnectRefusedError) as info:
        async with websocket_client(url(port)):
            pass  # pragma: no cover
    assert isinstance(info.value, ConnectionRefusedError)
    assert isinstance(info.value, ConnectError)


class _FailingResolver(trio.abc.HostnameResolver):
    """Trio's own hook for name resolution: fail without sending any DNS query."""

    async def getaddrinfo(  # noqa: PLR0917 - the signature of trio.abc.HostnameResolver
        self,
        host: bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> NoReturn:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int
    ) -> NoReturn:
        raise NotImplementedError  # pragma: no cover


async def test_name_resolution_failure() -> None:
    previous = trio.socket.set_custom_hostname_resolver(_FailingResolver())
    try:
        with trio.fail_after(10), pytest.raises(NameResolutionError):
            async with websocket_client("ws://no-such-host.invalid/mcp"):
                pass  # pragma: no cover
    finally:
        trio.socket.set_custom_hostname_resolver(previous)


async def test_tls_failure_untrusted_certificate() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)  # pyright: ignore[reportUnknownMemberType]

    async def tls_then_nothing(stream: trio.SocketStream) -> None:
        tls = trio.SSLStream(stream, server_context, server_side=True)
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError:
            pass

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_streams(nursery, tls_then_nothing)
            with pytest.raises(TLSError):
                # The default context does not trust our throwaway CA.
                async with websocket_client(f"wss://127.0.0.1:{port}/mcp"):
                    pass  # pragma: no cover
            nursery.cancel_scope.cancel()


async def test_connect_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        port = await serve_streams(nursery, silent)
        start = trio.current_time()
        with pytest.raises(ConnectTimeoutError) as info:
            async with websocket_client(url(port), connect_timeout=7):
                pass  # pragma: no cover
        assert trio.current_time() - start == pytest.approx(7, abs=0.01)
        nursery.cancel_scope.cancel()
    assert isinstance(info.value, TimeoutError)


def responder(response: bytes, *, then_close: bool = True) -> Callable[[trio.SocketStream], Awaitable[None]]:
    async def respond(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        if response:
            await stream.send_all(response)
        if not then_close:
            await trio.sleep_forever()

    return respond


async def _expect(
    handler: Callable[[trio.SocketStream], Awaitable[None]], error: type[TransportError]
) -> TransportError:
    """Connect to ``handler`` and return the error, checking it came promptly (virtual time 0)."""
    async with trio.open_nursery() as nursery:
        port = await serve_streams(nursery, handler)
        start = trio.current_time()
        with pytest.raises(error) as info:
            async with websocket_client(url(port), connect_timeout=10):
                pass  # pragma: no cover
        # Long before connect_timeout: the failure is seen as it happens.
        assert trio.current_time() - start < 0.01
        nursery.cancel_scope.cancel()
    return info.value


async def test_server_closes_during_handshake_is_reported_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    error = await _expect(responder(b""), HandshakeError)
    assert not isinstance(error, HandshakeRejectedError)
    assert "closed" in str(error)


async def test_garbage_handshake_response_is_a_handshake_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    error = await _expect(
        responder(b"\x00\x01garbage that is not HTTP\r\n\r\n", then_close=False), HandshakeError
    )
    assert not isinstance(error, HandshakeRejectedError)


async def test_ok_without_upgrade_is_a_handshake_error(autojump_clock: trio.testing.MockClock) -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    await _expect(responder(response, then_close=False), HandshakeError)


async def test_rejection_carries_status_headers_and_body(autojump_clock: trio.testing.MockClock) -> None:
    response = (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n"
        b"X-Why: origin\r\n\r\nOrigin refused\n"
    )
    error = await _expect(responder(response, then_close=False), HandshakeRejectedError)
    assert isinstance(error, HandshakeRejectedError)
    assert error.status_code == 403
    assert error.body == b"Origin refused\n"
    assert (b"x-why", b"origin") in error.headers
    assert "403" in str(error)


async def test_rejection_without_body(autojump_clock: trio.testing.MockClock) -> None:
    response = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    error = await _expect(responder(response, then_close=False), HandshakeRejectedError)
    assert isinstance(error, HandshakeRejectedError)
    assert (error.status_code, error.body) == (503, b"")


@pytest.mark.parametrize(
    "bad_url",
    [
        "http://127.0.0.1/mcp",
        "https://example.invalid/",
        "tcp://x",
        "127.0.0.1:8000",
        "ws:///nohost",
        "ws://u:p@h/",
    ],
)
async def test_bad_urls_are_value_errors(bad_url: str) -> None:
    with pytest.raises(ValueError, match=r"ws://|host|credentials"):
        async with websocket_client(bad_url):
            pass  # pragma: no cover


@pytest.mark.parametrize(
    "headers",
    [
        {"Bad Name": "x"},
        {"X-Ok": "line\r\nInjected: yes"},
        {"Sec-WebSocket-Key": "x"},
        [("X-Ok", "caf\u00e9\u20ac")],
    ],
)
async def test_bad_headers_are_value_errors(headers: dict[str, str] | list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError, match="header"):
        async with websocket_client("ws://127.0.0.1:1/mcp", headers=headers):
            pass  # pragma: no cover


async def test_extra_headers_are_sent() -> None:
    seen: list[bytes] = []

    async def record(stream: trio.SocketStream) -> None:
        seen.append(await stream.receive_some(65536))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve_streams(nursery, record)
            with pytest.raises(HandshakeError):
                async with websocket_client(url(port, "/mcp?x=1"), headers={"Authorization": "Bearer abc"}):
                    pass  # pragma: no cover
            nursery.cancel_scope.cancel()
    request = seen[0].decode()
    assert request.startswith("GET /mcp?x=1 HTTP/1.1\r\n")
    assert "Authorization: Bearer abc\r\n" in request
    assert f"Host: 127.0.0.1:{port}\r\n" in request
