"""The real client address behind trusted proxies: ``Forwarded`` / ``X-Forwarded-For``.

Unit tests of the strict parser and the trust walk, one property (any header value at all
yields the peer or a real address, never an exception), then the option end to end: a
real `serve` and `serve_mcp` on loopback, with our client sending the headers a proxy would.
"""

from __future__ import annotations

import ipaddress
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import mcp_types as t
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer

from tests._sdk import as_transport
from tests.test_server_helpers import echo, round_trip, running
from trio_mcp_ws import (
    ConnectionInfo,
    HandshakeRejectedError,
    ServerInfo,
    connection_info,
    serve_mcp,
    websocket_client,
)
from trio_mcp_ws._forwarded import TrustedProxies, real_client

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from trio_mcp_ws import ReadChannel, WriteChannel

PROXY = ("127.0.0.1", 40000)
TRUSTED = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


def client_of(*headers: tuple[str, str], peer: tuple[str, int] = PROXY) -> tuple[str, int] | None:
    return real_client(peer, [(name.encode(), value.encode()) for name, value in headers], TRUSTED)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("X-Forwarded-For", "203.0.113.7")], ("203.0.113.7", 0)),
        # A client's own header stays left of what the proxy appends: the spoof is skipped.
        ([("X-Forwarded-For", "6.6.6.6, 203.0.113.7")], ("203.0.113.7", 0)),
        # Trusted hops are skipped, right to left.
        ([("X-Forwarded-For", "203.0.113.7, 10.1.2.3")], ("203.0.113.7", 0)),
        # Repeated header lines are one list, in order.
        ([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.7")], ("203.0.113.7", 0)),
        # Every hop trusted: the leftmost.
        ([("X-Forwarded-For", "10.9.9.9, 10.1.2.3")], ("10.9.9.9", 0)),
        ([("X-Forwarded-For", "2001:db8::1")], ("2001:db8::1", 0)),
        ([("X-Forwarded-For", "[2001:db8::1]:4711")], ("2001:db8::1", 4711)),
        ([("X-Forwarded-For", "203.0.113.7:4711")], ("203.0.113.7", 4711)),
        ([("X-Forwarded-For", "::ffff:203.0.113.7")], ("203.0.113.7", 0)),
        ([("Forwarded", "for=203.0.113.7")], ("203.0.113.7", 0)),
        ([("Forwarded", 'for="203.0.113.7:4711";proto=https;host=mcp.example.com')], ("203.0.113.7", 4711)),
        ([("Forwarded", 'For="[2001:db8:cafe::17]:4711"')], ("2001:db8:cafe::17", 4711)),
        ([("Forwarded", "for=6.6.6.6, for=203.0.113.7;;proto=http, for=10.0.0.1")], ("203.0.113.7", 0)),
        # Both headers naming the same client: believed, the port from whichever has one.
        (
            [("Forwarded", 'for="203.0.113.7:4711"'), ("X-Forwarded-For", "203.0.113.7")],
            ("203.0.113.7", 4711),
        ),
    ],
)
def test_a_trusted_proxy_names_the_client(headers: list[tuple[str, str]], expected: tuple[str, int]) -> None:
    assert client_of(*headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("X-Forwarded-For", "")],
        [("X-Forwarded-For", "203.0.113.7,")],
        [("X-Forwarded-For", "203.0.113.7 10.0.0.1")],
        [("X-Forwarded-For", "mcp.example.com")],
        [("X-Forwarded-For", "203.0.113.7:99999")],
        [("X-Forwarded-For", "[203.0.113.7]")],
        [("X-Forwarded-For", "unknown")],
        [("Forwarded", "for=unknown")],
        [("Forwarded", "for=_hidden")],
        [("Forwarded", "proto=https")],  # an element without for=: a hop we cannot place
        [("Forwarded", "for=203.0.113.7;for=6.6.6.6")],
        [("Forwarded", 'for="[2001:db8::1]')],
        [("Forwarded", 'for="203.0.113.7')],
        [("Forwarded", "for=2001:db8::1")],
        [("Forwarded", 'for="2001:db8::1"')],  # IPv6 must be in brackets
        [("Forwarded", "for=203.0.113.7,")],
        [("Forwarded", "for = 203.0.113.7")],
        # A proxy passing a client's Forwarded through while appending X-Forwarded-For:
        # they disagree, so neither is believed.
        [("Forwarded", "for=6.6.6.6"), ("X-Forwarded-For", "203.0.113.7")],
    ],
)
def test_unusable_headers_leave_the_proxy_as_the_client(headers: list[tuple[str, str]]) -> None:
    assert client_of(*headers) == PROXY


def test_an_untrusted_peer_is_its_own_client_whatever_it_sends() -> None:
    peer = ("198.51.100.1", 5555)
    assert client_of(("X-Forwarded-For", "203.0.113.7"), peer=peer) == peer
    assert client_of(("Forwarded", "for=203.0.113.7"), peer=peer) == peer
    assert real_client(PROXY, [(b"x-forwarded-for", b"203.0.113.7")], TrustedProxies()) == PROXY
    assert real_client(None, [(b"x-forwarded-for", b"203.0.113.7")], TRUSTED) is None


def test_an_ipv4_mapped_peer_is_trusted_as_ipv4() -> None:
    assert client_of(("X-Forwarded-For", "203.0.113.7"), peer=("::ffff:127.0.0.1", 1)) == ("203.0.113.7", 0)
    assert TRUSTED.trusts("fd12::1")
    assert not TRUSTED.trusts("not an address")


@pytest.mark.parametrize("entries", [["10.0.0.0/33"], ["proxy.example.com"], ["10.0.0.1", ""]])
def test_a_bad_trusted_proxy_is_a_value_error_naming_it(entries: list[str]) -> None:
    with pytest.raises(ValueError, match="is not an IP address or CIDR range"):
        TrustedProxies(entries)


def test_one_string_is_not_a_list_of_proxies() -> None:
    with pytest.raises(ValueError, match="not one string"):
        TrustedProxies("10.0.0.1")  # a str is a Sequence[str] of characters


_HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=80)
_NEAR_MISS = st.lists(
    st.sampled_from(
        ["for=", "for", '"', "[", "]", ":", ";", ",", " ", "\\", "2001:db8::1", "10.0.0.1", "unknown", "80"]
    ),
    max_size=12,
).map("".join)


@given(
    name=st.sampled_from([b"forwarded", b"x-forwarded-for", b"X-Forwarded-For"]),
    value=st.one_of(_HEADER_TEXT, _NEAR_MISS),
)
def test_any_header_yields_the_peer_or_an_address(name: bytes, value: str) -> None:
    found = real_client(PROXY, [(name, value.encode("latin-1"))], TRUSTED)
    assert found is not None
    ipaddress.ip_address(found[0])
    assert 0 <= found[1] <= 65535


@asynccontextmanager
async def seen_clients(**options: Any) -> AsyncGenerator[tuple[ServerInfo, list[ConnectionInfo]], None]:
    seen: list[ConnectionInfo] = []

    async def handler(read: ReadChannel, write: WriteChannel) -> None:
        seen.append(connection_info())
        await echo(read, write)

    async with running(handler, **options) as info:
        yield info, seen


async def test_serve_shows_the_client_a_trusted_proxy_names() -> None:
    with trio.fail_after(10):
        async with seen_clients(trusted_proxies=["127.0.0.1"]) as (info, seen):
            await round_trip(info.url, headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
            await round_trip(info.url)
    assert seen[0].client == ("203.0.113.7", 0)
    second = seen[1].client
    assert second is not None
    assert second[0] == "127.0.0.1"
    assert second[1] > 0


async def test_serve_ignores_the_headers_of_an_untrusted_peer() -> None:
    with trio.fail_after(10):
        async with seen_clients(trusted_proxies=["10.0.0.0/8"]) as (info, seen):
            await round_trip(info.url, headers={"X-Forwarded-For": "203.0.113.7"})
    client = seen[0].client
    assert client is not None
    assert client[0] == "127.0.0.1"


async def test_the_per_client_limit_counts_real_clients_behind_the_proxy() -> None:
    entered = trio.Event()

    async def hold(read: ReadChannel, write: WriteChannel) -> None:
        entered.set()
        await echo(read, write)

    options: dict[str, Any] = {"trusted_proxies": ["127.0.0.1"], "max_connections_per_client": 1}
    with trio.fail_after(10):
        async with running(hold, **options) as info:
            alice = {"X-Forwarded-For": "203.0.113.7"}
            async with websocket_client(info.url, headers=alice):
                await entered.wait()
                await round_trip(info.url, headers={"X-Forwarded-For": "203.0.113.8"})  # another client
                with pytest.raises(HandshakeRejectedError) as refused:
                    await round_trip(info.url, headers=alice)  # alice's second: over her limit
    assert refused.value.status_code == 503


async def test_serve_mcp_passes_trusted_proxies_through() -> None:
    server = MCPServer("forwarded")

    @server.tool()
    def client() -> str:
        """The client's address as the server sees it."""
        seen = connection_info().client
        return f"{seen[0]}:{seen[1]}" if seen else "unknown"

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            info: ServerInfo = await nursery.start(
                partial(serve_mcp, server, "127.0.0.1", 0, trusted_proxies=["127.0.0.0/8"])
            )
            transport = websocket_client(info.url, headers={"Forwarded": 'for="[2001:db8::7]:4711"'})
            async with Client(as_transport(transport)) as session:
                result = await session.call_tool("client", {})
            nursery.cancel_scope.cancel()
    assert isinstance(result.content[0], t.TextContent)
    assert result.content[0].text == "2001:db8::7:4711"
