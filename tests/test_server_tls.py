"""TLS: serve with an ssl_context serves wss://, with certificates from trustme."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import pytest
import trio
import trustme

from tests.test_server_helpers import echo, exchange, round_trip, running, upgrade_request
from trio_mcp_ws import ConnectionInfo, HandshakeError, HandshakeRejectedError, TLSError, connection_info

if TYPE_CHECKING:
    from trio_mcp_ws import ReadChannel, WriteChannel


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)  # pyright: ignore[reportUnknownMemberType]
    return context


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)  # pyright: ignore[reportUnknownMemberType]
    return context


async def test_wss_round_trip(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> None:
    seen: list[ConnectionInfo] = []

    async def record(read: ReadChannel, write: WriteChannel) -> None:
        seen.append(connection_info())
        await echo(read, write)

    with trio.fail_after(20):
        async with running(record, ssl_context=server_context) as info:
            assert info.secure
            assert info.url == f"wss://127.0.0.1:{info.port}/mcp"
            await round_trip(info.url, ssl_context=client_context)
            await round_trip(info.url.replace("127.0.0.1", "localhost"), ssl_context=client_context)
    assert [entry.request.secure for entry in seen] == [True, True]


async def test_untrusted_certificate_fails_the_client_not_the_server(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    with trio.fail_after(20):
        async with running(ssl_context=server_context) as info:
            with pytest.raises(TLSError):
                await round_trip(info.url, ssl_context=ssl.create_default_context())  # system CAs only
            await round_trip(info.url, ssl_context=client_context)


async def test_plain_clients_and_garbage_do_not_hurt_a_tls_listener(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    with trio.fail_after(20):
        async with running(ssl_context=server_context, handshake_timeout=5) as info:
            # Plain HTTP on the TLS port: dropped without an HTTP answer (it is not TLS).
            assert await exchange(info.port, upgrade_request(info.port)) is None
            assert await exchange(info.port, b"\x16\x03\x01garbage" * 100) is None
            with pytest.raises(HandshakeError):
                await round_trip(info.url.replace("wss://", "ws://"), connect_timeout=5)
            await round_trip(info.url, ssl_context=client_context)


async def test_policy_applies_over_tls(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    with trio.fail_after(20):
        async with running(ssl_context=server_context) as info:
            with pytest.raises(HandshakeRejectedError) as rejected:
                await round_trip(
                    info.url, ssl_context=client_context, headers={"Origin": "https://evil.example"}
                )
            assert rejected.value.status_code == 403
            # A page served over TLS from localhost may connect: https origins are allowed.
            await round_trip(
                info.url, ssl_context=client_context, headers={"Origin": "https://localhost:3000"}
            )
