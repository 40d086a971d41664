"""A real headless Chromium runs MCP over `serve_mcp`: ``new WebSocket(url, ["mcp", "mcp.auth.<token>"])``.

The page (``page/index.html`` and ``page/client.js``) is served on 127.0.0.1 and speaks
JSON-RPC by hand over the browser's own ``WebSocket``: ``initialize`` (or ``server/discover``),
``tools/list``, ``tools/call``. The test reads the outcome from the page. A refused handshake
is only a failed connection to a page script (close code 1006), so the HTTP status is read
where the browser reports it, in its DevTools network events, and the server's side is
counted by the ``authenticate`` hook.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
import trio
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from trio_mcp_ws import AuthenticationError, HandshakeRequest, ServerInfo, bearer_auth, serve_mcp
from trio_mcp_ws._subprotocol import is_token, parse_offer

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

    from tests.browser._cdp import DevTools, Tab
    from tests.browser._page_server import PageServer

pytestmark = pytest.mark.browser

TOKEN = "browser-s3cret.token_1"
"""A bearer token made of RFC 9110 token characters, as a subprotocol must be."""

ERAS = [("legacy", "2025-11-25"), ("stateless", "2026-07-28")]

# How Chromium words a refused handshake other than a 401 (net/websockets).
UNEXPECTED_STATUS = re.compile(r"Unexpected response code: (\d{3})")

# Starting Chromium, loading a page and one MCP round trip take about a second here.
TEST_TIMEOUT = 60


def make_server() -> MCPServer:
    server = MCPServer("browser-test")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return server


@asynccontextmanager
async def serving(**options: Any) -> AsyncGenerator[ServerInfo, None]:
    async with trio.open_nursery() as nursery:
        info: ServerInfo = await nursery.start(partial(serve_mcp, make_server(), "127.0.0.1", 0, **options))
        yield info
        nursery.cancel_scope.cancel()


@dataclass
class CountingAuth:
    """An ``authenticate`` hook that takes the token from ``mcp.auth.<token>`` and counts calls.

    It accepts only `TOKEN` (compared in constant time) and records each request's offer,
    so a test can tell "refused by us, with this status" from "never reached us".
    """

    token: str = TOKEN
    calls: int = 0
    versions: list[str | None] = field(default_factory=list[str | None])

    async def __call__(self, request: HandshakeRequest) -> str:
        self.calls += 1
        offer = parse_offer(request.subprotocols)
        self.versions.append(offer.version)
        if offer.token is None or not hmac.compare_digest(offer.token.encode(), self.token.encode()):
            raise AuthenticationError("invalid token")
        return "browser-user"


@dataclass(frozen=True)
class Handshake:
    """What the browser's DevTools saw of the page's WebSocket.

    Attributes:
        url: The URL the page connected to.
        status: The handshake response's HTTP status, as Chromium reports it: in the
            response event for a 101, in its error text ("Unexpected response code: 403")
            for a refusal; None for a 401, which its network stack handles as an HTTP
            authentication challenge and reports without a status.
        response_headers: The handshake response's headers, names lower-cased.
        error: Chromium's own description of a failed connection (``webSocketFrameError``).
        sent: The opcode of each data frame the page sent (1 text, 2 binary).
        received: The opcode of each data frame the page received.
    """

    url: str
    status: int | None
    response_headers: dict[str, str]
    error: str | None
    sent: list[int] = field(default_factory=list[int])
    received: list[int] = field(default_factory=list[int])


async def open_page(
    devtools: DevTools, pages: PageServer, *, page: str = "index.html", **query: str
) -> tuple[dict[str, Any], Handshake]:
    """Load ``page`` with ``query``; return its outcome and what DevTools saw of its WebSocket."""
    tab = await devtools.new_tab()
    mark = await tab.goto(pages.url(page, **query))
    outcome: dict[str, Any] = await tab.evaluate("window.mcpResult")
    # The page writes the same outcome into its body: read it as a user would see it.
    shown = await tab.evaluate("document.getElementById('result').textContent")
    assert json.loads(shown) == outcome
    return outcome, await handshake_seen(tab, since=mark)


async def handshake_seen(tab: Tab, *, since: int) -> Handshake:
    created = await tab.wait_for("Network.webSocketCreated", since=since)
    request_id = created.params["requestId"]

    def ours(method: str) -> list[dict[str, Any]]:
        return [
            event.params
            for event in tab.events(method, since=since)
            if event.params["requestId"] == request_id
        ]

    # Every page run ends its socket (it closes it, or the server refused it), and
    # Chromium reports the close after the handshake's outcome.
    await tab.wait_for(
        "Network.webSocketClosed", since=since, where=lambda e: e.params["requestId"] == request_id
    )
    responses = [params["response"] for params in ours("Network.webSocketHandshakeResponseReceived")]
    errors = [str(params["errorMessage"]) for params in ours("Network.webSocketFrameError")]
    headers: dict[str, Any] = responses[0]["headers"] if responses else {}
    status = int(responses[0]["status"]) if responses else None
    if status is None and errors and (code := UNEXPECTED_STATUS.search(errors[0])):
        status = int(code.group(1))
    return Handshake(
        url=created.params["url"],
        status=status,
        response_headers={name.lower(): str(value) for name, value in headers.items()},
        error=errors[0] if errors else None,
        sent=[int(params["response"]["opcode"]) for params in ours("Network.webSocketFrameSent")],
        received=[int(params["response"]["opcode"]) for params in ours("Network.webSocketFrameReceived")],
    )


def refusals_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The server's log lines about refused handshakes."""
    return [record.getMessage() for record in caplog.records if "refused" in record.getMessage()]


async def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assert_called_add(outcome: dict[str, Any], version: str) -> None:
    assert outcome["ok"] is True, outcome
    assert outcome["protocolVersion"] == version
    assert outcome["subprotocol"] == "mcp"
    assert outcome["tools"] == ["add"]
    assert outcome["isError"] is False
    assert outcome["structuredContent"] == {"result": 42}
    assert outcome["content"] == [{"type": "text", "text": "42"}]
    assert outcome["frames"]["binary"] == 0


@pytest.mark.parametrize(("era", "version"), ERAS)
async def test_unauthenticated_page_calls_a_tool(
    devtools: DevTools, pages: PageServer, era: str, version: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with serving() as info:
            outcome, handshake = await open_page(devtools, pages, ws=info.url, era=era)
    assert_called_add(outcome, version)
    assert handshake.url == info.url
    assert handshake.status == 101
    assert handshake.response_headers["sec-websocket-protocol"] == "mcp"
    # Text frames both ways, as the wire saw them (the page's own count is the received side).
    assert set(handshake.sent) == {1}
    assert set(handshake.received) == {1}
    assert len(handshake.received) == outcome["frames"]["text"]


@pytest.mark.parametrize(("era", "version"), ERAS)
async def test_page_authenticates_with_the_subprotocol_token(
    devtools: DevTools, pages: PageServer, era: str, version: str
) -> None:
    auth = CountingAuth()
    with trio.fail_after(TEST_TIMEOUT):
        async with serving(authenticate=auth) as info:
            outcome, handshake = await open_page(
                devtools, pages, ws=info.url, era=era, token=TOKEN, version=version
            )
    assert_called_add(outcome, version)
    assert auth.calls == 1
    assert auth.versions == [version]
    assert handshake.status == 101
    # The server selects plain "mcp": the token is never echoed in the 101 response.
    assert handshake.response_headers["sec-websocket-protocol"] == "mcp"
    assert not any(TOKEN in value for value in handshake.response_headers.values())


async def test_wrong_token_is_refused_with_401(
    devtools: DevTools, pages: PageServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_mcp_ws")
    auth = CountingAuth()
    wrong = "not-the-token"
    with trio.fail_after(TEST_TIMEOUT):
        async with serving(authenticate=auth) as info:
            outcome, handshake = await open_page(devtools, pages, ws=info.url, token=wrong)
    assert outcome["ok"] is False
    assert outcome["stage"] == "connect"
    assert outcome["closeCode"] == 1006  # all a page script is told of a refused handshake
    # Chromium treats a 401 as an HTTP authentication challenge it cannot answer: this is
    # how it reports one (net::ERR_INVALID_AUTH_CREDENTIALS), with no status in DevTools.
    assert handshake.status is None
    assert handshake.error == "HTTP Authentication failed; no valid credentials available"
    assert auth.calls == 1
    (refusal,) = refusals_logged(caplog)
    assert ": 401 " in refusal
    assert wrong not in caplog.text


async def test_foreign_origin_is_refused_with_403(
    devtools: DevTools, pages: PageServer, other_pages: PageServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_mcp_ws")
    auth = CountingAuth()
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*"],
        allowed_origins=[pages.origin],
    )
    with trio.fail_after(TEST_TIMEOUT):
        async with serving(security=security, authenticate=auth) as info:
            refused, refusal = await open_page(devtools, other_pages, ws=info.url, token=TOKEN)
            assert auth.calls == 0  # Origin is checked before authentication
            allowed, _ = await open_page(devtools, pages, ws=info.url, token=TOKEN)
    assert refused["ok"] is False
    assert refused["closeCode"] == 1006
    assert refusal.status == 403
    assert refusal.error == "Error during WebSocket handshake: Unexpected response code: 403"
    (logged,) = refusals_logged(caplog)
    assert ": 403 " in logged
    assert TOKEN not in caplog.text
    assert_called_add(allowed, "2025-11-25")
    assert auth.calls == 1


class StaticVerifier:
    """The SDK's `TokenVerifier` protocol, knowing one token."""

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), TOKEN.encode()):
            return AccessToken(token=token, client_id="browser", scopes=[])
        return None


async def test_bearer_auth_accepts_the_subprotocol_token(devtools: DevTools, pages: PageServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with serving(authenticate=bearer_auth(StaticVerifier())) as info:
            outcome, handshake = await open_page(devtools, pages, ws=info.url, token=TOKEN)
    assert handshake.status == 101
    assert_called_add(outcome, "2025-11-25")


async def test_typescript_sdk_client_in_the_browser(
    devtools: DevTools, pages: PageServer, sdk_bundle: Path
) -> None:
    """The TypeScript SDK's own browser client (bundled from the interop pin) against serve_mcp."""
    with trio.fail_after(TEST_TIMEOUT):
        async with serving() as info:
            outcome, handshake = await open_page(devtools, pages, page="sdk.html", ws=info.url)
    assert outcome["ok"] is True, outcome
    assert outcome["server"] == "browser-test"
    assert outcome["tools"] == ["add"]
    assert outcome["isError"] is False
    assert outcome["content"] == [{"type": "text", "text": "42"}]
    assert handshake.status == 101
    assert handshake.response_headers["sec-websocket-protocol"] == "mcp"


async def test_chromium_accepts_exactly_the_tokens_we_accept(devtools: DevTools, pages: PageServer) -> None:
    """Our token rule is the browser's: ``new WebSocket`` throws SyntaxError for the rest.

    Each candidate is one character between two letters, for every printable ASCII
    character, space, and a few beyond ASCII; the page's ``WebSocket`` constructor decides
    synchronously, before any connection is made.
    """
    candidates = [f"a{chr(code)}b" for code in range(0x20, 0x7F)] + ["a\u00e9b", "a\u2603b", "a\tb"]
    probe = """
        (url, tokens) => tokens.map((token) => {
          try { new WebSocket(url, ["mcp", "mcp.auth." + token]).close(); return "ok"; }
          catch (error) { return error.name; }
        })
    """
    with trio.fail_after(TEST_TIMEOUT):
        url = f"ws://127.0.0.1:{await unused_port()}/mcp"
        tab = await devtools.new_tab()
        await tab.goto(pages.url("index.html"))  # any page of ours: an http origin
        answers = await tab.evaluate(f"({probe})({json.dumps(url)}, {json.dumps(candidates)})")
    browser = dict(zip(candidates, answers, strict=True))
    ours = {token: "ok" if is_token(token) else "SyntaxError" for token in candidates}
    assert browser == ours
    assert sum(answer == "ok" for answer in ours.values()) == 77  # the 77 tchars of RFC 9110


async def test_binary_frames_from_a_browser_are_accepted_by_default(
    devtools: DevTools, pages: PageServer
) -> None:
    """Requests sent as binary frames of UTF-8 JSON are served alike (``binary_frames="accept"``).

    The server still answers in text frames only.
    """
    with trio.fail_after(TEST_TIMEOUT):
        async with serving() as info:
            outcome, handshake = await open_page(devtools, pages, ws=info.url, binary="1")
    assert_called_add(outcome, "2025-11-25")
    assert outcome["frames"]["text"] == 3  # initialize, tools/list, tools/call answers
    # As Chromium saw the wire: three binary requests, one text notification, text answers.
    assert handshake.sent == [2, 1, 2, 2]
    assert handshake.received == [1, 1, 1]
