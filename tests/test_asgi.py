"""trio_mcp_ws.asgi under Hypercorn's trio worker, in-process (``hypercorn.trio.serve``).

Rules (on top of tests/conftest.py's): Hypercorn listens on 127.0.0.1, port 0; its real
server runs our ASGI app; clients are ours (`websocket_client`, the official `mcp.Client`)
or a raw wsproto client for frames ours will not send. Every test runs under
``trio.fail_after``; synchronisation is events and memory channels, never sleeps.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import mcp_types as t
import pytest
import trio
from fastapi import WebSocket  # noqa: TC002 - FastAPI reads the endpoint's annotation at run time
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve  # pyright: ignore[reportUnknownVariableType] - its WSGI type
from mcp import Client
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.message import SessionMessage

from tests._sdk import as_streams, as_transport
from tests.interop._support import RawClient
from trio_mcp_ws import (
    AuthenticationError,
    ConnectionClosedError,
    ConnectionInfo,
    HandshakeRejectedError,
    HandshakeRequest,
    MessageDecodeError,
    connection_info,
    websocket_client,
)
from trio_mcp_ws.asgi import MCPApp, Message, Receive, Scope, Send, mcp_app, websocket_server

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from mcp.server.context import ServerRequestContext

MODES = [("legacy", "2025-11-25"), ("auto", "2026-07-28")]


def make_server() -> MCPServer:
    server = MCPServer("asgi-test")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        """What the tool can see of its connection."""
        request = ctx.request_context.request
        assert isinstance(request, ConnectionInfo)
        assert connection_info() is request
        headers = ctx.headers or {}
        return {
            "tenant": headers.get("X-Tenant"),
            "principal": request.principal,
            "subprotocol": request.subprotocol,
            "path": request.request.path,
        }

    @server.tool()
    def explode() -> str:
        """A tool error: the session survives it."""
        raise ValueError("kaboom")

    return server


@asynccontextmanager
async def hypercorn(app: Any, **config: Any) -> AsyncGenerator[int, None]:
    """Run ``app`` under Hypercorn's trio worker on 127.0.0.1:0; yield the port."""
    cfg = Config()
    cfg.bind = ["127.0.0.1:0"]
    cfg.accesslog = None
    for name, value in config.items():
        setattr(cfg, name, value)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(partial(hypercorn_serve, app, cfg))
        yield int(binds[0].rsplit(":", 1)[1])
        nursery.cancel_scope.cancel()


def ws_url(port: int, path: str = "/mcp") -> str:
    return f"ws://127.0.0.1:{port}{path}"


def message(payload: dict[str, Any]) -> SessionMessage:
    return SessionMessage(t.jsonrpc_message_adapter.validate_python(payload))


def ping(n: int) -> SessionMessage:
    return message({"jsonrpc": "2.0", "id": n, "method": "ping"})


def request_id(item: SessionMessage | Exception) -> int | str:
    """The id of a request the echo sent back."""
    assert isinstance(item, SessionMessage)
    assert isinstance(item.message, t.JSONRPCRequest)
    return item.message.id


class Echo:
    """An ASGI app: `websocket_server` with ``options``, echoing every message (and error) it reads.

    ``seen`` collects what the body read, ``done`` is set when the body has ended, and
    ``errors`` holds what escaped `websocket_server`.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.seen: list[SessionMessage | Exception] = []
        self.done = trio.Event()
        self.errors: list[BaseException] = []
        self.infos: list[ConnectionInfo] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError("no lifespan here")
        try:
            async with websocket_server(scope, receive, send, **self.options) as (read, write):
                self.infos.append(connection_info())
                async for item in read:
                    self.seen.append(item)
                    if isinstance(item, SessionMessage):
                        await write.send(item)
        except Exception as exc:
            self.errors.append(exc)
        finally:
            self.done.set()


# -- mcp_app: the official client against an official server, both eras -----------------


@pytest.mark.parametrize(("mode", "version"), MODES)
async def test_mcp_app_serves_both_eras(mode: str, version: str) -> None:
    with trio.fail_after(20):
        async with hypercorn(mcp_app(make_server())) as port:
            transport = websocket_client(ws_url(port), headers={"X-Tenant": "acme"})
            async with Client(as_transport(transport), mode=mode) as client:
                assert client.protocol_version == version
                tools = await client.list_tools()
                assert sorted(tool.name for tool in tools.tools) == ["add", "explode", "whoami"]
                result = await client.call_tool("add", {"a": 2, "b": 40})
                assert result.structured_content == {"result": 42}
                failed = await client.call_tool("explode", {})
                assert failed.is_error
                who = await client.call_tool("whoami", {})
                assert who.structured_content == {
                    "tenant": "acme",
                    "principal": None,
                    "subprotocol": "mcp",
                    "path": "/mcp",
                }


async def test_mcp_app_lowlevel_server() -> None:
    async def list_tools(
        ctx: ServerRequestContext, params: t.PaginatedRequestParams | None
    ) -> t.ListToolsResult:
        return t.ListToolsResult(tools=[t.Tool(name="hello", input_schema={"type": "object"})])

    async def call_tool(ctx: ServerRequestContext, params: t.CallToolRequestParams) -> t.CallToolResult:
        return t.CallToolResult(content=[t.TextContent(text=f"hello {params.name}")])

    server: Server[Any] = Server("lowlevel-asgi", on_list_tools=list_tools, on_call_tool=call_tool)
    with trio.fail_after(20):
        async with (
            hypercorn(mcp_app(server)) as port,
            Client(as_transport(websocket_client(ws_url(port))), mode="legacy") as client,
        ):
            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == ["hello"]
            result = await client.call_tool("hello", {})
            assert isinstance(result.content[0], t.TextContent)
            assert result.content[0].text == "hello hello"


async def test_mcp_app_lifespan_entered_once_and_shared() -> None:
    entered: list[int] = []
    exited = trio.Event()

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncGenerator[dict[str, str], None]:
        entered.append(1)
        try:
            yield {"db": "connected"}
        finally:
            exited.set()

    server = MCPServer("lifespan-asgi", lifespan=lifespan)

    @server.tool()
    def db(ctx: Context) -> str:
        """The lifespan state."""
        state: dict[str, str] = ctx.request_context.lifespan_context
        return state["db"]

    with trio.fail_after(20):
        async with hypercorn(mcp_app(server)) as port:
            for _ in range(2):
                async with Client(as_transport(websocket_client(ws_url(port))), mode="legacy") as client:
                    result = await client.call_tool("db", {})
                    assert result.structured_content == {"result": "connected"}
            assert entered == [1]
        # Hypercorn was cancelled, not shut down gracefully: the lifespan still exited.
        assert exited.is_set()


async def test_mcp_app_http_and_other_paths() -> None:
    with trio.fail_after(20):
        async with hypercorn(mcp_app(make_server())) as port:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                response = await _read_all(stream)
            assert response.startswith(b"HTTP/1.1 426 ")
            assert b"serves MCP over WebSocket" in response
            with pytest.raises(HandshakeRejectedError) as refused:
                async with websocket_client(ws_url(port, "/elsewhere")):
                    pass
            assert refused.value.status_code == 404


async def _read_all(stream: trio.SocketStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    return data


# -- websocket_server(scope, receive, send) ----------------------------------------------


async def test_websocket_server_echo_subprotocol_and_info() -> None:
    app = Echo()
    with trio.fail_after(10):
        async with hypercorn(app) as port:
            async with websocket_client(ws_url(port, "/x?y=1"), headers={"X-Tenant": "t1"}) as (read, write):
                for n in range(20):
                    await write.send(ping(n))
                got = [await read.receive() for _ in range(20)]
            await app.done.wait()
    assert [request_id(item) for item in got] == list(range(20))
    (info,) = app.infos
    assert info.subprotocol == "mcp"
    assert info.request.path == "/x"
    assert info.request.query == "y=1"
    assert info.headers["x-tenant"] == "t1"
    assert info.headers["host"] == f"127.0.0.1:{port}"
    assert info.client is not None
    assert info.client[0] == "127.0.0.1"
    assert app.errors == []


async def test_no_subprotocol_offered_is_served_without_one() -> None:
    app = Echo()
    with trio.fail_after(10):
        async with hypercorn(app) as port:
            raw = await RawClient.connect(port, subprotocols=())
            try:
                assert raw.subprotocol is None
                await raw.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
                assert json.loads(await raw.receive() or "") == {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            finally:
                await raw.aclose()
            await app.done.wait()
    assert app.infos[0].subprotocol is None


async def test_bad_frames_are_errors_as_values_and_binary_json_is_accepted() -> None:
    app = Echo()
    with trio.fail_after(10):
        async with hypercorn(app) as port:
            raw = await RawClient.connect(port)
            try:
                await raw.send("{not json")
                await raw.send(json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]))
                await raw.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"}).encode())
                echoed = await raw.receive()
            finally:
                await raw.aclose()
            await app.done.wait()
    assert isinstance(echoed, str)
    assert json.loads(echoed)["id"] == 2  # we always send text
    assert isinstance(app.seen[0], MessageDecodeError)
    assert isinstance(app.seen[1], MessageDecodeError)
    assert isinstance(app.seen[2], SessionMessage)


async def test_binary_frames_rejected_close_1003() -> None:
    app = Echo(binary_frames="reject")
    with trio.fail_after(10):
        async with hypercorn(app) as port:
            raw = await RawClient.connect(port)
            try:
                await raw.send(b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}')
                assert await raw.receive() is None
            finally:
                await raw.aclose()
            await app.done.wait()
    assert raw.close_code == 1003
    # As over `serve`: the body reads how its connection ended.
    (closed,) = app.seen
    assert isinstance(closed, ConnectionClosedError)
    assert closed.code == 1003


async def test_message_over_limit_closes_1009() -> None:
    app = Echo(max_message_size=1000)
    with trio.fail_after(10):
        async with hypercorn(app) as port:
            raw = await RawClient.connect(port)
            try:
                # 600 characters, 1200 bytes of UTF-8: the limit is in bytes.
                text = json.dumps(
                    {"jsonrpc": "2.0", "method": "n", "params": {"s": "é" * 600}}, ensure_ascii=False
                )
                await raw.send(text)
                assert await raw.receive() is None
            finally:
                await raw.aclose()
            await app.done.wait()
    assert raw.close_code == 1009
    (closed,) = app.seen
    assert isinstance(closed, ConnectionClosedError)
    assert closed.code == 1009


async def test_everything_accepted_is_flushed_before_the_close() -> None:
    count = 500
    done = trio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError("no lifespan here")
        try:
            async with websocket_server(scope, receive, send) as (_read, write):
                for n in range(count):
                    await write.send(ping(n))
        finally:
            done.set()

    with trio.fail_after(10):
        async with hypercorn(app) as port:
            raw = await RawClient.connect(port)
            try:
                received: list[int] = []
                while (text := await raw.receive()) is not None:
                    received.append(json.loads(text)["id"])
            finally:
                await raw.aclose()
            await done.wait()
    assert received == list(range(count))
    assert raw.close_code == 1000


async def test_body_exception_closes_only_its_connection_with_1011() -> None:
    entered = trio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError("no lifespan here")
        async with websocket_server(scope, receive, send) as (read, write):
            if scope["path"] == "/boom":
                await entered.wait()
                raise KeyError("handler bug")
            async for item in read:
                if isinstance(item, SessionMessage):
                    await write.send(item)

    with trio.fail_after(10):
        async with hypercorn(app) as port, websocket_client(ws_url(port, "/fine")) as (read, write):
            raw = await RawClient.connect(port, path="/boom")
            try:
                entered.set()
                assert await raw.receive() is None
            finally:
                await raw.aclose()
            assert raw.close_code == 1011
            # The other connection is unaffected.
            await write.send(ping(7))
            assert request_id(await read.receive()) == 7


async def test_cancelled_body_closes_1001() -> None:
    cancel = trio.CancelScope()
    entered = trio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError("no lifespan here")
        with cancel:
            async with websocket_server(scope, receive, send):
                entered.set()
                await trio.sleep_forever()

    with trio.fail_after(10):
        async with hypercorn(app) as port:
            raw = await RawClient.connect(port)
            try:
                await entered.wait()
                cancel.cancel()
                assert await raw.receive() is None
            finally:
                await raw.aclose()
    assert raw.close_code == 1001


async def test_peer_close_ends_the_read_channel() -> None:
    """The client closes: the read channel ends and the body returns.

    Hypercorn 0.18 reports every client close to the app as 1006 (its issue 127), so what
    the read channel delivers before it ends is that one ConnectionClosedError, or nothing
    on a server that reports the real code.
    """
    app = Echo()
    with trio.fail_after(10):
        async with hypercorn(app) as port:
            async with websocket_client(ws_url(port)) as (read, write):
                await write.send(ping(1))
                assert isinstance(await read.receive(), SessionMessage)
            await app.done.wait()
    assert app.errors == []
    rest = app.seen[1:]
    assert all(isinstance(item, ConnectionClosedError) and item.code == 1006 for item in rest)
    assert len(rest) <= 1


# -- the policy: real HTTP statuses through websocket.http.response ---------------------


async def test_authenticate_refuses_with_401_and_accepts_a_principal() -> None:
    async def authenticate(request: HandshakeRequest) -> str:
        if request.headers.get("authorization") != "Bearer good":
            raise AuthenticationError("a valid token is required", challenge='Bearer realm="mcp"')
        return "alice"

    app = Echo(authenticate=authenticate)
    with trio.fail_after(10):
        async with hypercorn(app) as port:
            with pytest.raises(HandshakeRejectedError) as refused:
                async with websocket_client(ws_url(port), token="bad"):
                    pass
            async with websocket_client(ws_url(port), token="good") as (read, write):
                await write.send(ping(1))
                assert isinstance(await read.receive(), SessionMessage)
    assert refused.value.status_code == 401
    assert b"a valid token is required" in refused.value.body
    assert (b"www-authenticate", b'Bearer realm="mcp"') in [
        (name.lower(), value) for name, value in refused.value.headers
    ]
    assert [info.principal for info in app.infos] == ["alice"]
    assert any(isinstance(error, HandshakeRejectedError) for error in app.errors)


async def test_host_and_origin_checks() -> None:
    app = Echo()  # Hypercorn on 127.0.0.1: DNS-rebinding protection is on by default
    with trio.fail_after(10):
        async with hypercorn(app) as port:
            with pytest.raises(HandshakeRejectedError) as bad_origin:
                async with websocket_client(ws_url(port), headers={"Origin": "http://evil.example"}):
                    pass
            raw = await trio.open_tcp_stream("127.0.0.1", port)
            async with raw:
                await raw.send_all(
                    b"GET /mcp HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n"
                )
                response = await _read_all(raw)
    assert bad_origin.value.status_code == 403
    assert response.startswith(b"HTTP/1.1 421 ")
    assert app.infos == []


async def test_require_subprotocol_refuses_with_400() -> None:
    app = Echo(require_subprotocol=True)
    with trio.fail_after(10):
        async with hypercorn(app) as port:
            with pytest.raises(AssertionError, match="400"):
                await RawClient.connect(port, subprotocols=())


async def test_without_the_http_response_extension_refusal_is_a_close_before_accept() -> None:
    """A server without ``websocket.http.response``: the only refusal is a close before accept.

    Hypercorn answers such a close with a bare 403, whatever the policy's status was.
    """
    inner = Echo(security=TransportSecuritySettings(allowed_origins=["http://good.example"]))

    async def without_extension(scope: Scope, receive: Receive, send: Send) -> None:
        await inner({**scope, "extensions": {}}, receive, send)

    with trio.fail_after(10):
        async with hypercorn(without_extension) as port:
            with pytest.raises(HandshakeRejectedError) as refused:
                async with websocket_client(ws_url(port), headers={"Origin": "http://evil.example"}):
                    pass
    assert refused.value.status_code == 403
    assert inner.infos == []


# -- frameworks: Starlette and FastAPI ---------------------------------------------------


def make_lowlevel() -> Server[Any]:
    """A low-level server, for endpoints that run ``Server.run`` over `websocket_server` themselves."""

    async def list_tools(
        ctx: ServerRequestContext, params: t.PaginatedRequestParams | None
    ) -> t.ListToolsResult:
        return t.ListToolsResult(tools=[t.Tool(name="where", input_schema={"type": "object"})])

    async def call_tool(ctx: ServerRequestContext, params: t.CallToolRequestParams) -> t.CallToolResult:
        return t.CallToolResult(content=[t.TextContent(text=connection_info().request.path)])

    return Server("endpoint", on_list_tools=list_tools, on_call_tool=call_tool)


def starlette_app() -> Any:
    """Three ways in: an endpoint of ours, `mcp_app` as a route's ASGI app, `mcp_app` mounted."""
    from starlette.applications import Starlette
    from starlette.routing import Mount, WebSocketRoute

    lowlevel = make_lowlevel()

    async def endpoint(websocket: WebSocket) -> None:
        async with websocket_server(websocket.scope, websocket.receive, websocket.send) as (read, write):
            await lowlevel.run(*as_streams(read, write), lowlevel.create_initialization_options())

    mounted = mcp_app(make_server())
    return Starlette(
        routes=[
            WebSocketRoute("/ws", endpoint),
            WebSocketRoute("/direct", mcp_app(make_server(), path=None)),
            Mount("/tools", app=mounted),
        ],
        lifespan=mounted.lifespan,
    )


def fastapi_app() -> Any:
    """A FastAPI app with an HTTP route, an endpoint of ours and `mcp_app` mounted."""
    from fastapi import FastAPI

    lowlevel = make_lowlevel()
    mounted = mcp_app(make_server())
    app = FastAPI(lifespan=mounted.lifespan)

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        async with websocket_server(websocket.scope, websocket.receive, websocket.send) as (read, write):
            await lowlevel.run(*as_streams(read, write), lowlevel.create_initialization_options())

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.mount("/tools", mounted)
    return app


FRAMEWORKS = {"starlette": starlette_app, "fastapi": fastapi_app}


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
@pytest.mark.parametrize(("mode", "version"), MODES)
async def test_frameworks(framework: str, mode: str, version: str) -> None:
    with trio.fail_after(30):
        async with hypercorn(FRAMEWORKS[framework]()) as port:
            url = ws_url(port, "/ws")
            async with Client(as_transport(websocket_client(url)), mode=mode) as client:
                assert client.protocol_version == version
                result = await client.call_tool("where", {})
                assert isinstance(result.content[0], t.TextContent)
                assert result.content[0].text == "/ws"
            paths = ["/tools/mcp", "/direct"] if framework == "starlette" else ["/tools/mcp"]
            for path in paths:
                async with Client(as_transport(websocket_client(ws_url(port, path))), mode=mode) as client:
                    assert client.protocol_version == version
                    who = await client.call_tool("whoami", {})
                    assert who.structured_content is not None
                    assert who.structured_content["path"] == path
                    assert who.structured_content["subprotocol"] == "mcp"


async def test_mounted_app_refuses_other_paths_with_404() -> None:
    with trio.fail_after(20):
        async with hypercorn(starlette_app()) as port:
            with pytest.raises(HandshakeRejectedError) as refused:
                async with websocket_client(ws_url(port, "/tools/other")):
                    pass
    assert refused.value.status_code == 404


# -- not on Trio ---------------------------------------------------------------------------


def test_asyncio_server_gets_a_clear_error_naming_trio() -> None:
    """Under asyncio (as Uvicorn or ``hypercorn -k asyncio`` would run it) both entry points refuse.

    The ASGI callables are never reached: the check comes first.
    """

    async def receive() -> Message:
        raise AssertionError("receive must not be called")

    async def send(message: Message) -> None:
        raise AssertionError(f"send must not be called: {message}")

    scope: dict[str, Any] = {"type": "websocket", "path": "/mcp", "headers": []}

    async def use_websocket_server() -> None:
        async with websocket_server(scope, receive, send):
            pass

    with pytest.raises(RuntimeError, match=r"needs an ASGI server running on Trio .* runs on asyncio"):
        asyncio.run(use_websocket_server())
    app: MCPApp = mcp_app(make_server())
    with pytest.raises(RuntimeError, match=r"running on Trio .* runs on asyncio"):
        asyncio.run(app(scope, receive, send))

    sent: list[dict[str, Any]] = []
    lifespan_events: list[Message] = [{"type": "lifespan.startup"}]

    async def lifespan_receive() -> Message:
        return lifespan_events.pop(0)

    async def lifespan_send(message: Message) -> None:
        sent.append(dict(message))

    asyncio.run(app({"type": "lifespan"}, lifespan_receive, lifespan_send))
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "Trio" in sent[0]["message"]


def test_options_checked_when_the_app_is_made() -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        mcp_app(make_server(), max_message_size=0)
    with pytest.raises(TypeError):
        mcp_app(cast("Any", object()))


# -- Quart-Trio: a dispatcher in front of the Quart app -----------------------------------


def quart_trio_app() -> Any:
    """Quart routes WebSockets to its own handlers, so `mcp_app` goes in front of it."""
    from quart_trio import QuartTrio

    quart = QuartTrio(__name__)
    mcp = mcp_app(make_server())

    @quart.route("/hello")
    async def hello() -> str:
        return "hello from quart"

    # No lifespan wiring: Quart's lifespan does not reach mcp_app, so each connection enters
    # the MCP server's lifespan itself (a server without one, as here, loses nothing).

    # Any: Quart types the ASGI events as TypedDicts, Starlette (and we) as mappings.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/mcp":
            await mcp(scope, receive, send)
        else:
            await quart(scope, receive, send)

    return app


async def test_quart_trio_beside_mcp_app() -> None:
    with trio.fail_after(20):
        async with hypercorn(quart_trio_app()) as port:
            async with Client(as_transport(websocket_client(ws_url(port))), mode="legacy") as client:
                result = await client.call_tool("add", {"a": 1, "b": 2})
                assert result.structured_content == {"result": 3}
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                response = b""
                # Read up to the body (Quart keeps the connection open: no EOF to wait for).
                while not response.endswith(b"hello from quart"):
                    response += await stream.receive_some(65536)
    assert response.startswith(b"HTTP/1.1 200 ")


# -- the public surface ----------------------------------------------------------------------


def test_asgi_is_not_imported_by_default_and_its_names_are_documented() -> None:
    import subprocess
    import sys
    import typing
    from pathlib import Path

    import trio_mcp_ws.asgi

    code = "import sys, trio_mcp_ws; print('trio_mcp_ws.asgi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    api = (Path(__file__).parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    for name in trio_mcp_ws.asgi.__all__:
        obj = getattr(trio_mcp_ws.asgi, name)
        if typing.get_origin(obj) is not None:
            continue  # the ASGI type aliases (Scope, Receive, Send, Message) are Starlette's spelling
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
        assert f"::: trio_mcp_ws.asgi.{name}\n" in api, f"{name} is not in docs/api.md"
