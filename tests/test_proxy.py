"""Client proxies: choosing one (environment, NO_PROXY) and tunnelling through real ones.

The proxies are real programs started on 127.0.0.1 by `tests._proxies` (pproxy for HTTP,
HTTPS, SOCKS4 and SOCKS5; tinyproxy for a C proxy's 407 and 403). The server behind them
is ours (`trio_mcp_ws.serve`), and the WebSocket part over the tunnel is trio-websocket's
public client, until ``websocket_client(proxy=...)`` is wired. Lying proxies are small Trio
listeners here that answer what no real proxy should. Every I/O test runs under
``trio.fail_after``.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import struct
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import mcp_types as t
import pytest
import trio
import trio_websocket
import trustme
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage

from tests._proxies import RunningProxy, pproxy, tinyproxy
from tests._sdk import as_transport
from trio_mcp_ws import (
    ConnectError,
    NameResolutionError,
    ProxyError,
    ServerInfo,
    TLSError,
    serve,
    serve_mcp,
    websocket_client,
)
from trio_mcp_ws._proxy import (
    ProxyURL,
    bypasses_proxy,
    open_tunnel,
    parse_proxy_url,
    redact_proxy_url,
    resolve_proxy,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
    from pathlib import Path

    from trio_mcp_ws import ReadChannel, WriteChannel

USER = "alice"
PASSWORD = "s3cr:t@pw"  # needs percent-encoding in a URL: checks the decoding too
TIMEOUT = 10.0
"""open_tunnel's budget in tests that expect success: generous, the machine is shared."""


# --- choosing a proxy: resolve_proxy, NO_PROXY --------------------------------------------


def test_false_never_uses_a_proxy() -> None:
    environ = {"https_proxy": "http://proxy:3128", "all_proxy": "socks5://proxy:1080"}
    assert resolve_proxy(False, scheme="wss", host="example.com", port=443, environ=environ) is None


def test_an_explicit_url_wins_over_the_environment_and_no_proxy() -> None:
    environ = {"https_proxy": "http://other:3128", "no_proxy": "*"}
    url = "socks5h://u:p@proxy:1080"
    assert resolve_proxy(url, scheme="wss", host="example.com", port=443, environ=environ) == url


def test_no_environment_means_no_proxy() -> None:
    assert resolve_proxy(None, scheme="ws", host="example.com", port=80, environ={}) is None


@pytest.mark.parametrize(
    ("environ", "scheme", "expected"),
    [
        ({"https_proxy": "http://s:1", "http_proxy": "http://p:1"}, "wss", "http://s:1"),
        ({"https_proxy": "http://s:1", "http_proxy": "http://p:1"}, "ws", "http://p:1"),
        ({"HTTPS_PROXY": "http://S:1"}, "wss", "http://S:1"),
        ({"HTTP_PROXY": "http://P:1"}, "ws", "http://P:1"),
        ({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:1"}, "wss", "http://lower:1"),
        ({"http_proxy": "http://p:1"}, "wss", None),  # a ws:// proxy is not used for wss://
        ({"all_proxy": "socks5://a:1"}, "wss", "socks5://a:1"),
        ({"ALL_PROXY": "socks5://A:1"}, "ws", "socks5://A:1"),
        ({"https_proxy": "", "all_proxy": "socks5://a:1"}, "wss", "socks5://a:1"),  # empty is unset
        ({"https_proxy": "  ", "ALL_PROXY": "socks5://A:1"}, "wss", "socks5://A:1"),
        ({"https_proxy": "proxy.corp:3128"}, "wss", "http://proxy.corp:3128"),  # no scheme: http
        # httpoxy: under CGI, HTTP_PROXY may come from a request header; never trust it there.
        ({"HTTP_PROXY": "http://evil:1", "REQUEST_METHOD": "GET"}, "ws", None),
        ({"http_proxy": "http://p:1", "REQUEST_METHOD": "GET"}, "ws", "http://p:1"),
    ],
)
def test_environment_variables(environ: dict[str, str], scheme: str, expected: str | None) -> None:
    assert resolve_proxy(None, scheme=scheme, host="example.com", port=443, environ=environ) == expected


def test_no_proxy_bypasses_an_environment_proxy() -> None:
    environ = {"http_proxy": "http://p:1", "no_proxy": "internal.corp, 10.0.0.0/8"}
    resolve = partial(resolve_proxy, None, scheme="ws", port=80, environ=environ)
    assert resolve(host="api.internal.corp") is None
    assert resolve(host="10.1.2.3") is None
    assert resolve(host="example.com") == "http://p:1"
    upper = {"HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"}
    assert resolve_proxy(None, scheme="ws", host="example.com", port=80, environ=upper) is None


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        ("*", "anything.example", 443, True),
        ("", "example.com", 443, False),
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        (".example.com", "example.com", 443, True),
        (".example.com", "api.example.com", 443, True),
        ("*.example.com", "api.example.com", 443, True),
        ("EXAMPLE.com.", "Api.Example.COM.", 443, True),  # case and a trailing dot do not matter
        ("other.org,example.com", "example.com", 443, True),
        ("other.org example.com", "example.com", 443, True),  # spaces separate too
        (" other.org , example.com ", "example.com", 443, True),
        ("example.com:8443", "example.com", 8443, True),
        ("example.com:8443", "example.com", 443, False),
        ("example.com:http", "example.com", 80, False),  # an unreadable port matches nothing
        ("127.0.0.1", "127.0.0.1", 80, True),
        ("127.0.0.1", "127.0.0.2", 80, False),
        ("127.0.0.1", "localhost", 80, False),  # nothing is resolved
        ("127.0.0.1:8000", "127.0.0.1", 8000, True),
        ("127.0.0.1:8000", "127.0.0.1", 9000, False),
        ("10.0.0.0/8", "10.20.30.40", 443, True),
        ("10.0.0.0/8", "11.0.0.1", 443, False),
        ("10.0.0.0/8", "ten.example", 443, False),
        ("192.168.1.7/24", "192.168.1.200", 443, True),  # host bits set: still the /24
        ("::1", "::1", 443, True),
        ("::1", "[::1]", 443, True),
        ("[::1]", "::1", 443, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 443, False),
        ("fd00::/8", "fd12:3456::1", 443, True),
        ("fd00::/8", "10.0.0.1", 443, False),
        ("10.0.0.0/99", "10.0.0.1", 443, False),  # an invalid range is ignored
        (".", "example.com", 443, False),
    ],
)
def test_no_proxy_rules(no_proxy: str, host: str, port: int, bypass: bool) -> None:
    assert bypasses_proxy(no_proxy, host, port) is bypass


def test_invalid_environment_proxy_is_a_value_error_without_credentials() -> None:
    with pytest.raises(ValueError, match="unsupported proxy scheme") as raised:
        resolve_proxy(None, scheme="wss", host="h", port=1, environ={"https_proxy": "ftp://me:hunter2@p:1"})
    assert "hunter2" not in str(raised.value)
    with pytest.raises(ValueError, match="'ws' or 'wss'"):
        resolve_proxy(None, scheme="http", host="h", port=1, environ={})


def test_true_is_not_a_proxy_setting() -> None:
    with pytest.raises(TypeError, match="URL, False or None"):
        resolve_proxy(cast("Any", True), scheme="ws", host="h", port=1, environ={})


# --- parsing a proxy URL ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("http://p", 80),
        ("https://p", 443),
        ("socks4://p", 1080),
        ("socks4a://p", 1080),
        ("socks5://p", 1080),
        ("SOCKS5H://p", 1080),
        ("http://p:3128/", 3128),
    ],
)
def test_default_ports(url: str, port: int) -> None:
    assert parse_proxy_url(url).port == port


def test_credentials_are_decoded_and_kept_out_of_reprs() -> None:
    proxy = parse_proxy_url("http://al%40ice:pa%3Ass@[::1]:3128")
    assert (proxy.username, proxy.password, proxy.host) == ("al@ice", "pa:ss", "::1")
    assert proxy.redacted == "http://[::1]:3128"
    assert "pa" not in repr(proxy).replace("ProxyURL", "")
    assert ProxyURL("socks5", "p", 1, "u", "secret") == parse_proxy_url("socks5://u:secret@p:1")
    assert redact_proxy_url("socks5://u:secret@p:1/x") == "socks5://p:1/x"
    assert redact_proxy_url("not a url: secret") == "not a url: secret"


@pytest.mark.parametrize("url", ["ftp://u:hunter2@p:1", "http://u:hunter2@:1", "http://u:hunter2@p:99999"])
def test_invalid_proxy_urls(url: str) -> None:
    with pytest.raises(ValueError, match="proxy") as raised:
        parse_proxy_url(url)
    assert "hunter2" not in str(raised.value)


# --- fixtures: certificates, a server, real proxies -------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, as files for pproxy."""
    directory = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = directory / "chain.pem", directory / "key.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return chain, key


@pytest.fixture
def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts our test CA (and nothing else)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks host names, loads no CAs
    ca.configure_trust(context)  # pyright: ignore[reportUnknownMemberType]
    return context


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)  # pyright: ignore[reportUnknownMemberType]
    return context


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy-logs")


@pytest.fixture(scope="module")
def http_proxy(logs: Path) -> Iterator[RunningProxy]:
    with pproxy("http", logs) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def http_proxy_auth(logs: Path) -> Iterator[RunningProxy]:
    with pproxy("http", logs, credentials=(USER, PASSWORD)) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def https_proxy(logs: Path, tls_files: tuple[Path, Path]) -> Iterator[RunningProxy]:
    with pproxy("http", logs, tls_files=tls_files) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def socks5_proxy(logs: Path) -> Iterator[RunningProxy]:
    with pproxy("socks5", logs) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def socks5_proxy_auth(logs: Path) -> Iterator[RunningProxy]:
    with pproxy("socks5", logs, credentials=(USER, PASSWORD)) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def socks4_proxy(logs: Path) -> Iterator[RunningProxy]:
    with pproxy("socks4", logs) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def tiny_auth(logs: Path) -> Iterator[RunningProxy]:
    with tinyproxy(logs, credentials=(USER, "tinysecret")) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def tiny_port_443_only(logs: Path) -> Iterator[RunningProxy]:
    with tinyproxy(logs, connect_ports=[443]) as proxy:
        yield proxy


async def _echo(read: ReadChannel, write: WriteChannel) -> None:
    async with write:
        async for item in read:
            if isinstance(item, SessionMessage):
                await write.send(item)


@asynccontextmanager
async def _server(ssl_context: ssl.SSLContext | None = None) -> AsyncGenerator[ServerInfo, None]:
    async with trio.open_nursery() as nursery:
        info: ServerInfo = await nursery.start(partial(serve, _echo, "127.0.0.1", 0, ssl_context=ssl_context))
        yield info
        nursery.cancel_scope.cancel()


async def _websocket_ping(stream: trio.abc.Stream, port: int) -> None:
    """The WebSocket handshake and one MCP request over ``stream``; check the echo; close it."""
    async with stream, trio.open_nursery() as nursery:
        # trio-websocket annotates SocketStream | SSLStream but needs only a trio Stream.
        ws = await trio_websocket.wrap_client_stream(
            nursery, cast("trio.SocketStream", stream), f"127.0.0.1:{port}", "/mcp", subprotocols=["mcp"]
        )
        assert ws.subprotocol == "mcp"
        await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"}))
        reply = json.loads(await ws.get_message())
        assert reply == {"jsonrpc": "2.0", "id": 7, "method": "ping"}
        await ws.aclose()


def _peer_port(stream: trio.abc.Stream) -> int:
    """The port the stream's socket is connected to (the proxy's, for a tunnel)."""
    assert isinstance(stream, trio.SocketStream)
    port: int = stream.socket.getpeername()[1]
    return port


# --- tunnels through real proxies ------------------------------------------------------


@pytest.mark.parametrize("fixture", ["http_proxy", "socks5_proxy", "socks4_proxy"])
async def test_ws_through_a_proxy(fixture: str, request: pytest.FixtureRequest) -> None:
    proxy: RunningProxy = request.getfixturevalue(fixture)
    with trio.fail_after(20):
        async with _server() as info:
            tunnel = await open_tunnel(proxy.url, "127.0.0.1", info.port, timeout=TIMEOUT)
            assert _peer_port(tunnel) == proxy.port
            await _websocket_ping(tunnel, info.port)


async def test_socks5h_lets_the_proxy_resolve_the_name(socks5_proxy: RunningProxy) -> None:
    with trio.fail_after(20):
        async with _server() as info:
            url = socks5_proxy.url.replace("socks5://", "socks5h://")
            tunnel = await open_tunnel(url, "localhost", info.port, timeout=TIMEOUT)
            await _websocket_ping(tunnel, info.port)


async def test_socks5_resolves_here_and_maps_a_bad_name(socks5_proxy: RunningProxy) -> None:
    with trio.fail_after(20), pytest.raises(NameResolutionError):
        await open_tunnel(socks5_proxy.url, "no-such-host.invalid", 80, timeout=TIMEOUT)


@pytest.mark.parametrize("fixture", ["http_proxy_auth", "socks5_proxy_auth"])
async def test_credentials_open_the_tunnel(fixture: str, request: pytest.FixtureRequest) -> None:
    proxy: RunningProxy = request.getfixturevalue(fixture)
    with trio.fail_after(20):
        async with _server() as info:
            tunnel = await open_tunnel(
                proxy.url_with(USER, PASSWORD), "127.0.0.1", info.port, timeout=TIMEOUT
            )
            await _websocket_ping(tunnel, info.port)


async def test_http_proxy_without_credentials_is_407(http_proxy_auth: RunningProxy) -> None:
    with trio.fail_after(20), pytest.raises(ProxyError) as raised:
        await open_tunnel(http_proxy_auth.url, "127.0.0.1", 9, timeout=TIMEOUT)
    assert raised.value.status == 407
    assert raised.value.proxy == http_proxy_auth.url
    assert "wants credentials" in str(raised.value)


@pytest.mark.parametrize("fixture", ["http_proxy_auth", "socks5_proxy_auth", "tiny_auth"])
async def test_wrong_credentials_are_refused_and_never_shown(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    proxy: RunningProxy = request.getfixturevalue(fixture)
    url = proxy.url_with(USER, "wrong-Pa55word")
    with trio.fail_after(20), pytest.raises(ProxyError) as raised:
        await open_tunnel(url, "127.0.0.1", 9, timeout=TIMEOUT)
    error = raised.value
    assert isinstance(error, ConnectError)
    assert error.proxy == proxy.url
    if fixture == "http_proxy_auth":
        assert error.status == 407
    elif fixture == "tiny_auth":
        assert error.status == 401  # tinyproxy's answer to wrong credentials (407 to none)
    if error.status is not None:
        assert "rejected the credentials" in str(error)
    for text in (str(error), repr(error), repr(error.args)):
        assert "wrong-Pa55word" not in text
        assert USER not in text


async def test_socks5_without_credentials_is_refused(socks5_proxy_auth: RunningProxy) -> None:
    with trio.fail_after(20), pytest.raises(ProxyError, match="refused") as raised:
        await open_tunnel(socks5_proxy_auth.url, "127.0.0.1", 9, timeout=TIMEOUT)
    assert raised.value.proxy == socks5_proxy_auth.url


async def test_tinyproxy_tunnel_with_credentials(tiny_auth: RunningProxy) -> None:
    with trio.fail_after(20):
        async with _server() as info:
            tunnel = await open_tunnel(
                tiny_auth.url_with(USER, "tinysecret"), "127.0.0.1", info.port, timeout=TIMEOUT
            )
            assert _peer_port(tunnel) == tiny_auth.port
            await _websocket_ping(tunnel, info.port)


async def test_tinyproxy_refuses_with_407_and_403(
    tiny_auth: RunningProxy, tiny_port_443_only: RunningProxy
) -> None:
    with trio.fail_after(20):
        with pytest.raises(ProxyError) as unauthenticated:
            await open_tunnel(tiny_auth.url, "127.0.0.1", 9, timeout=TIMEOUT)
        assert unauthenticated.value.status == 407
        with pytest.raises(ProxyError, match="403") as forbidden:
            await open_tunnel(tiny_port_443_only.url, "127.0.0.1", 9, timeout=TIMEOUT)
        assert forbidden.value.status == 403


@pytest.mark.parametrize("fixture", ["http_proxy", "socks5_proxy"])
async def test_wss_through_a_proxy_checks_the_servers_certificate(
    fixture: str, request: pytest.FixtureRequest, server_context: ssl.SSLContext, trusting: ssl.SSLContext
) -> None:
    http_proxy: RunningProxy = request.getfixturevalue(fixture)
    with trio.fail_after(20):
        async with _server(ssl_context=server_context) as info:
            tunnel = await open_tunnel(http_proxy.url, "127.0.0.1", info.port, timeout=TIMEOUT)
            tls = trio.SSLStream(tunnel, trusting, server_hostname="127.0.0.1", https_compatible=True)
            await tls.do_handshake()
            assert tls.getpeercert() is not None
            await _websocket_ping(tls, info.port)
            # The same tunnel to a client that does not trust the server's CA: TLS is end
            # to end, so the proxy cannot make it succeed.
            tunnel = await open_tunnel(http_proxy.url, "127.0.0.1", info.port, timeout=TIMEOUT)
            untrusting = trio.SSLStream(tunnel, ssl.create_default_context(), server_hostname="127.0.0.1")
            with pytest.raises(trio.BrokenResourceError) as broken:
                await untrusting.do_handshake()
            assert isinstance(broken.value.__cause__, ssl.SSLCertVerificationError)
            await trio.aclose_forcefully(untrusting)


async def test_https_proxy(https_proxy: RunningProxy, trusting: ssl.SSLContext) -> None:
    with trio.fail_after(20):
        async with _server() as info:
            tunnel = await open_tunnel(
                https_proxy.url, "127.0.0.1", info.port, ssl_context_for_proxy=trusting, timeout=TIMEOUT
            )
            assert isinstance(tunnel, trio.SSLStream)  # TLS to the proxy, under the tunnel
            await _websocket_ping(cast("trio.abc.Stream", tunnel), info.port)


async def test_https_proxy_with_an_untrusted_certificate(https_proxy: RunningProxy) -> None:
    with trio.fail_after(20), pytest.raises(ProxyError, match="TLS handshake with proxy") as raised:
        await open_tunnel(https_proxy.url, "127.0.0.1", 9, timeout=TIMEOUT)  # system CAs only
    assert raised.value.status is None


async def test_environment_proxy_end_to_end(http_proxy: RunningProxy) -> None:
    with trio.fail_after(20):
        async with _server() as info:
            environ = {"http_proxy": http_proxy.url, "no_proxy": "example.com,localhost"}
            chosen = resolve_proxy(None, scheme="ws", host="127.0.0.1", port=info.port, environ=environ)
            assert chosen is not None
            assert chosen == http_proxy.url
            tunnel = await open_tunnel(chosen, "127.0.0.1", info.port, timeout=TIMEOUT)
            assert _peer_port(tunnel) == http_proxy.port
            await _websocket_ping(tunnel, info.port)
            environ["no_proxy"] += f",127.0.0.1:{info.port}"
            assert resolve_proxy(None, scheme="ws", host="127.0.0.1", port=info.port, environ=environ) is None


# --- proxies that fail, refuse or lie --------------------------------------------------


async def test_nothing_listening_at_the_proxy() -> None:
    with trio.socket.socket() as probe:  # a port that was free a moment ago
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for scheme in ("http", "socks5"):
        with (
            trio.fail_after(20),
            pytest.raises(ProxyError, match=r"cannot connect to proxy .*refused") as raised,
        ):
            await open_tunnel(f"{scheme}://u:hunter2@127.0.0.1:{port}", "127.0.0.1", 9, timeout=TIMEOUT)
        assert raised.value.status is None
        assert raised.value.proxy == f"{scheme}://127.0.0.1:{port}"
        assert "hunter2" not in str(raised.value)


@asynccontextmanager
async def _liar(script: Callable[[trio.SocketStream], Awaitable[None]]) -> AsyncGenerator[int, None]:
    """A listener on 127.0.0.1 that runs ``script`` on every connection; yields its port."""

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                await script(stream)
            except trio.BrokenResourceError:
                pass

    async with trio.open_nursery() as nursery:
        listeners: list[trio.SocketListener] = await nursery.start(
            partial(trio.serve_tcp, handle, 0, host="127.0.0.1")
        )
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def _read_head(stream: trio.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        data += chunk
    return data


def _answer(*chunks: bytes) -> Callable[[trio.SocketStream], Awaitable[None]]:
    """A liar that reads the CONNECT request, then sends ``chunks`` one by one."""

    async def script(stream: trio.SocketStream) -> None:
        await _read_head(stream)
        for chunk in chunks:
            await stream.send_all(chunk)
        await trio.sleep_forever()  # hold the connection open: the client decides

    return script


async def test_a_reply_in_one_byte_segments_is_read_whole() -> None:
    reply = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: slow\r\n\r\n"
    seen: list[bytes] = []

    async def tunnel_then_echo(stream: trio.SocketStream) -> None:
        seen.append(await _read_head(stream))
        for byte in reply:
            await stream.send_all(bytes([byte]))
        seen.append(await stream.receive_some(100))
        await stream.send_all(b"pong")

    with trio.fail_after(20):
        async with _liar(tunnel_then_echo) as port:
            tunnel = await open_tunnel(
                f"http://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}",
                "example.com",
                443,
                timeout=TIMEOUT,
            )
            async with tunnel:
                await tunnel.send_all(b"ping")
                assert await tunnel.receive_some(100) == b"pong"
    head = seen[0].decode()
    assert head.startswith("CONNECT example.com:443 HTTP/1.1\r\n")
    assert "Host: example.com:443\r\n" in head
    assert "Proxy-Authorization: Basic YWxpY2U6czNjcjp0QHB3\r\n" in head  # alice:s3cr:t@pw
    assert seen[1] == b"ping"


@pytest.mark.parametrize(
    ("chunks", "match", "status"),
    [
        ((b"SSH-2.0-OpenSSH_9.2\r\n\r\n",), "not HTTP", None),
        ((b"\x05\x00\x00\x01garbage\r\n\r\n",), "not HTTP", None),
        ((b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 20000,), "not HTTP", None),  # endless head
        ((b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",), "502 Bad Gateway", 502),
        ((b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\n\r\n",), "403 Forbidden", 403),
        ((b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01early",), "unexpected bytes", 200),
    ],
)
async def test_lying_http_proxies(chunks: tuple[bytes, ...], match: str, status: int | None) -> None:
    with trio.fail_after(20):
        async with _liar(_answer(*chunks)) as port:
            with pytest.raises(ProxyError, match=match) as raised:
                await open_tunnel(f"http://127.0.0.1:{port}", "127.0.0.1", 9, timeout=TIMEOUT)
    assert raised.value.status == status


async def test_a_proxy_that_closes_without_answering() -> None:
    async def hang_up(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)  # the request or greeting, whatever the protocol

    with trio.fail_after(20):
        async with _liar(hang_up) as port:
            for scheme in ("http", "socks5", "socks4"):
                with pytest.raises(ProxyError):
                    await open_tunnel(f"{scheme}://127.0.0.1:{port}", "127.0.0.1", 9, timeout=TIMEOUT)


@pytest.mark.parametrize("scheme", ["http", "https", "socks5", "socks4"])
async def test_a_silent_proxy_times_out(scheme: str) -> None:
    async def say_nothing(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with _liar(say_nothing) as port:
            with pytest.raises(ProxyError, match="did not open a tunnel") as raised:
                await open_tunnel(f"{scheme}://127.0.0.1:{port}", "127.0.0.1", 9, timeout=0.5)
    assert raised.value.status is None


async def test_200_then_tls_garbage_fails_the_servers_tls(trusting: ssl.SSLContext) -> None:
    async def lie(stream: trio.SocketStream) -> None:
        await _read_head(stream)
        await stream.send_all(b"HTTP/1.1 200 OK\r\n\r\n")
        await stream.receive_some(65536)  # the client's TLS hello, meant for the server
        await stream.send_all(b"HTTP/1.1 200 OK\r\n\r\n" * 4)  # not a TLS record
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with _liar(lie) as port:
            tunnel = await open_tunnel(f"http://127.0.0.1:{port}", "127.0.0.1", 9, timeout=TIMEOUT)
            tls = trio.SSLStream(tunnel, trusting, server_hostname="127.0.0.1")
            with pytest.raises(trio.BrokenResourceError) as broken:
                await tls.do_handshake()
            assert isinstance(broken.value.__cause__, ssl.SSLError)
            await trio.aclose_forcefully(tls)


async def test_an_https_proxy_that_speaks_garbage_tls() -> None:
    async def garbage(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        await stream.send_all(b"HTTP/1.1 200 OK\r\n\r\n" * 10)

    with trio.fail_after(20):
        async with _liar(garbage) as port:
            with pytest.raises(ProxyError, match="TLS handshake with proxy"):
                await open_tunnel(f"https://127.0.0.1:{port}", "127.0.0.1", 9, timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (b"\x05\x00" + b"\x05\x05\x00\x01" + bytes(6), 5),  # connection refused by the destination
        (b"\x05\x00" + b"\x05\x02\x00\x01" + bytes(6), 2),  # not allowed by ruleset
        (b"\x05\xff", None),  # no acceptable authentication method
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", None),  # not SOCKS at all
    ],
)
async def test_socks5_refusals_and_garbage(reply: bytes, status: int | None) -> None:
    async def socks(stream: trio.SocketStream) -> None:
        await stream.receive_some(3)  # the greeting
        await stream.send_all(reply[:2])
        if len(reply) > 2:
            await stream.receive_some(4096)  # the CONNECT request
            await stream.send_all(reply[2:])
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with _liar(socks) as port:
            with pytest.raises(ProxyError) as raised:
                await open_tunnel(f"socks5://127.0.0.1:{port}", "127.0.0.1", 9, timeout=TIMEOUT)
    assert raised.value.status == status


async def test_cancelled_while_waiting_for_the_proxy_closes_its_connection() -> None:
    asked = trio.Event()
    closed = trio.Event()

    async def wait_for_close(stream: trio.SocketStream) -> None:
        await _read_head(stream)
        asked.set()
        assert await stream.receive_some(10) == b""
        closed.set()

    with trio.fail_after(20):
        async with _liar(wait_for_close) as port, trio.open_nursery() as nursery:
            nursery.start_soon(
                partial(open_tunnel, f"http://127.0.0.1:{port}", "127.0.0.1", 9, timeout=TIMEOUT)
            )
            await asked.wait()
            nursery.cancel_scope.cancel()
        await closed.wait()


@pytest.mark.parametrize(
    ("host", "authority"),
    [("::1", "[::1]:8443"), ("example.com", "example.com:8443"), ("10.0.0.1", "10.0.0.1:8443")],
)
async def test_connect_request_names_the_target(host: str, authority: str) -> None:
    heads: list[bytes] = []

    async def record(stream: trio.SocketStream) -> None:
        heads.append(await _read_head(stream))
        await stream.send_all(b"HTTP/1.0 200 Connection established\r\n\r\n")

    with trio.fail_after(20):
        async with _liar(record) as port:
            tunnel = await open_tunnel(f"http://127.0.0.1:{port}", host, 8443, timeout=TIMEOUT)
            await tunnel.aclose()
    assert heads[0].startswith(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n".encode())
    assert b"Proxy-Authorization" not in heads[0]  # no credentials in the URL: none sent


async def test_a_host_http_cannot_carry_is_a_value_error() -> None:
    with trio.fail_after(20):
        async with _liar(_answer()) as port:
            with pytest.raises(ValueError, match="cannot go in a CONNECT request") as raised:
                await open_tunnel(
                    f"http://u:hunter2@127.0.0.1:{port}", "bad host\r\nX: y", 443, timeout=TIMEOUT
                )
    assert "hunter2" not in str(raised.value)
    assert raised.value.__cause__ is None


async def test_socks4a_sends_the_name_and_socks4_rejections_carry_the_code() -> None:
    requests: list[bytes] = []

    async def socks4(stream: trio.SocketStream) -> None:
        data = b""
        while data.count(b"\x00") < (3 if len(data) > 8 and data[4:7] == b"\x00\x00\x00" else 2):
            data += await stream.receive_some(4096)
        requests.append(data)
        granted = b"example.com" in data
        await stream.send_all((b"\x00\x5a" if granted else b"\x00\x5b") + bytes(6))
        if granted:
            await stream.send_all(await stream.receive_some(100))  # echo
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with _liar(socks4) as port:
            tunnel = await open_tunnel(f"socks4a://bob@127.0.0.1:{port}", "example.com", 80, timeout=TIMEOUT)
            async with tunnel:
                await tunnel.send_all(b"hello")
                assert await tunnel.receive_some(100) == b"hello"
            with pytest.raises(ProxyError) as raised:
                await open_tunnel(f"socks4://127.0.0.1:{port}", "127.0.0.1", 80, timeout=TIMEOUT)
    # SOCKS4a: version 4, CONNECT, port 80, the 0.0.0.x marker, the user id, then the name.
    assert requests[0] == b"\x04\x01\x00\x50\x00\x00\x00\x01bob\x00example.com\x00"
    assert requests[1] == b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00"  # SOCKS4: the address, no name
    assert raised.value.status == 0x5B


async def test_credentials_stay_out_of_the_logs(
    http_proxy_auth: RunningProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(20):
        async with _server() as info:
            tunnel = await open_tunnel(
                http_proxy_auth.url_with(USER, PASSWORD), "127.0.0.1", info.port, timeout=TIMEOUT
            )
            await _websocket_ping(tunnel, info.port)
        with pytest.raises(ProxyError):
            await open_tunnel(
                http_proxy_auth.url_with(USER, "wrong-Pa55word"), "127.0.0.1", 9, timeout=TIMEOUT
            )
    assert "opening a tunnel" in caplog.text
    for secret in (PASSWORD, "wrong-Pa55word", quote(PASSWORD, safe="")):
        assert secret not in caplog.text


async def test_a_proxy_name_that_does_not_resolve() -> None:
    with (
        trio.fail_after(20),
        pytest.raises(ProxyError, match="cannot resolve the proxy's host name") as raised,
    ):
        await open_tunnel("http://u:hunter2@no-such-proxy.invalid:3128", "127.0.0.1", 9, timeout=TIMEOUT)
    assert raised.value.proxy == "http://no-such-proxy.invalid:3128"
    assert raised.value.status is None


async def _reset(stream: trio.SocketStream) -> None:
    """Read what the client sent, then abort the connection (TCP RST, no FIN)."""
    await stream.receive_some(4096)
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


@pytest.mark.parametrize(("scheme", "match"), [("http", "dropped the connection"), ("socks5", "broke off")])
async def test_a_proxy_that_resets_mid_handshake(scheme: str, match: str) -> None:
    with trio.fail_after(20):
        async with _liar(_reset) as port:
            with pytest.raises(ProxyError, match=match) as raised:
                await open_tunnel(f"{scheme}://127.0.0.1:{port}", "127.0.0.1", 9, timeout=TIMEOUT)
    assert raised.value.status is None


# --- websocket_client(url, proxy=...) end to end ------------------------------------------


async def _client_ping(url: str, **options: Any) -> None:
    async with websocket_client(url, **options) as (read, write):
        await write.send(SessionMessage(t.JSONRPCRequest(jsonrpc="2.0", id=1, method="ping")))
        item = await read.receive()
        assert isinstance(item, SessionMessage)
        assert isinstance(item.message, t.JSONRPCRequest)


@pytest.mark.parametrize(
    ("fixture", "password"),
    [
        ("http_proxy", None),
        ("http_proxy_auth", PASSWORD),
        ("socks5_proxy", None),
        ("socks5_proxy_auth", PASSWORD),
        ("socks4_proxy", None),
        ("tiny_auth", "tinysecret"),
    ],
)
async def test_client_through_a_proxy(
    fixture: str, password: str | None, request: pytest.FixtureRequest
) -> None:
    proxy: RunningProxy = request.getfixturevalue(fixture)
    url = proxy.url_with(USER, password) if password else proxy.url
    with trio.fail_after(20):
        async with _server() as info:
            await _client_ping(info.url, proxy=url)


async def test_client_wss_through_an_https_proxy(
    https_proxy: RunningProxy, server_context: ssl.SSLContext, trusting: ssl.SSLContext
) -> None:
    with trio.fail_after(20):
        async with _server(ssl_context=server_context) as info:
            await _client_ping(
                info.url, proxy=https_proxy.url, ssl_context=trusting, proxy_ssl_context=trusting
            )
            # The proxy is trusted, the server is not: TLS is end to end, so this fails.
            with pytest.raises(TLSError, match="through proxy"):
                await _client_ping(info.url, proxy=https_proxy.url, proxy_ssl_context=trusting)


async def test_client_follows_the_environment(
    http_proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with trio.socket.socket() as probe:  # a proxy address where nothing listens
        await probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with trio.fail_after(20):
        async with _server() as info:
            monkeypatch.setenv("http_proxy", dead)
            with pytest.raises(ProxyError):  # the environment's proxy is used ...
                await _client_ping(info.url)
            await _client_ping(info.url, proxy=False)  # ... unless proxy=False
            monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
            await _client_ping(info.url)  # ... or NO_PROXY exempts the server
            monkeypatch.delenv("no_proxy")
            monkeypatch.setenv("http_proxy", http_proxy.url)
            await _client_ping(info.url)  # a live proxy from the environment


async def test_client_refused_by_proxies(
    http_proxy_auth: RunningProxy, tiny_port_443_only: RunningProxy
) -> None:
    with trio.fail_after(20):
        async with _server() as info:
            with pytest.raises(ProxyError) as unauthenticated:
                await _client_ping(info.url, proxy=http_proxy_auth.url)
            assert unauthenticated.value.status == 407
            with pytest.raises(ProxyError) as forbidden:
                await _client_ping(info.url, proxy=tiny_port_443_only.url)
            assert forbidden.value.status == 403


async def test_client_gives_up_on_a_silent_proxy_within_connect_timeout() -> None:
    async def say_nothing(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with _liar(say_nothing) as port:
            with pytest.raises(ConnectError):  # ConnectTimeoutError: the client's deadline fires
                await _client_ping(
                    "ws://127.0.0.1:9/mcp", proxy=f"http://127.0.0.1:{port}", connect_timeout=0.5
                )


async def test_mcp_client_reaches_serve_mcp_through_socks5h(socks5_proxy: RunningProxy) -> None:
    server = MCPServer("proxied")

    @server.tool()
    def add(a: int, b: int) -> int:
        return a + b

    proxy = socks5_proxy.url.replace("socks5://", "socks5h://")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            info: ServerInfo = await nursery.start(serve_mcp, server, "127.0.0.1", 0)
            async with Client(
                as_transport(websocket_client(info.url.replace("127.0.0.1", "localhost"), proxy=proxy))
            ) as client:
                result = await client.call_tool("add", {"a": 2, "b": 3})
            assert result.structured_content == {"result": 5}
            nursery.cancel_scope.cancel()
