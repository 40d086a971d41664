"""Limits: max_connections (503), max_message_size (1009), and hostile frames that cost a lot to decode."""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

import mcp_types as t
import pytest
import trio
import trio.testing
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage
from trio_websocket import open_websocket_url

import trio_mcp_ws._offload as offload
from tests._sdk import as_transport
from tests.test_server_helpers import exchange, round_trip, rpc_request, running, upgrade_request
from trio_mcp_ws import (
    AuthenticationError,
    ConnectionClosedError,
    HandshakeRejectedError,
    MessageDecodeError,
    decode,
    serve,
    serve_mcp,
    websocket_client,
)
from trio_mcp_ws._options import MAX_CONTAINERS, SERVER_MAX_CONTAINERS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import NoReturn

    from mcp_types import JSONRPCMessage

    from trio_mcp_ws import ReadChannel, ServerInfo, WriteChannel

MiB = 1024 * 1024


def worst_case_frame(size: int = 4 * MiB - 64, unit: str = "[]", request_id: int = 1) -> str:
    """A valid request whose params hold ``unit`` repeated to ``size``: the costliest JSON we know.

    Every ``[]`` becomes a Python list, and a million of them trigger cyclic-GC pass after
    pass. (A batch, ``[{},{},...]``, is cheaper for us: the codec refuses it before parsing.)
    """
    prefix, suffix = f'{{"jsonrpc":"2.0","id":{request_id},"method":"hostile","params":{{"a":[', "]}}"
    count = (size - len(prefix) - len(suffix)) // (len(unit) + 1)
    return prefix + ",".join([unit] * count) + suffix


def many_keys_frame(keys: int, *, method: str = "hostile", request_id: int = 1) -> str:
    """A request whose params (or ``tools/call`` arguments) hold ``keys`` members."""
    members = ",".join(f'"k{i}":0' for i in range(keys))
    params = f'{{"name":"add","arguments":{{{members}}}}}' if method == "tools/call" else f"{{{members}}}"
    return f'{{"jsonrpc":"2.0","id":{request_id},"method":"{method}","params":{params}}}'


async def answer_small(read: ReadChannel, write: WriteChannel) -> None:
    """Answer every request with an empty result (never echo the hostile frame back)."""
    async with write:
        async for item in read:
            if isinstance(item, SessionMessage) and isinstance(item.message, t.JSONRPCRequest):
                reply = t.JSONRPCResponse(jsonrpc="2.0", id=item.message.id, result={})
                await write.send(SessionMessage(reply))


# -- max_connections ----------------------------------------------------------------------------


async def test_max_connections_answers_503_and_the_listener_stays_healthy() -> None:
    with trio.fail_after(20):
        async with running(max_connections=2) as info:
            async with (
                websocket_client(info.url) as (read1, write1),
                websocket_client(info.url) as (read2, write2),
            ):
                assert info.connections == 2
                for _ in range(5):
                    with pytest.raises(HandshakeRejectedError) as rejected:
                        await round_trip(info.url)
                    assert rejected.value.status_code == 503
                response = await exchange(info.port, upgrade_request(info.port))
                assert response is not None
                assert response.status == 503
                assert response.body == b"Service Unavailable: too many connections\n"
                # The two admitted connections still work.
                for read, write in ((read1, write1), (read2, write2)):
                    await write.send(rpc_request(7))
                    assert isinstance(await read.receive(), SessionMessage)
            await trio.testing.wait_all_tasks_blocked()
            assert info.connections == 0
            async with websocket_client(info.url), websocket_client(info.url):
                assert info.connections == 2


async def test_refused_handshakes_free_their_slot() -> None:
    """Rejected (policy, auth) and failed handshakes do not leak connection slots."""

    async def nobody(request: object) -> None:
        raise AuthenticationError

    with trio.fail_after(20):
        async with running(max_connections=1, authenticate=nobody) as info:
            for _ in range(5):
                response = await exchange(info.port, upgrade_request(info.port))
                assert response is not None
                assert response.status == 401
                response = await exchange(info.port, upgrade_request(info.port, host="evil.example"))
                assert response is not None
                assert response.status == 421
            assert info.connections == 0


# -- max_message_size ---------------------------------------------------------------------------


async def test_oversized_message_closes_with_1009_and_the_server_is_fine() -> None:
    with trio.fail_after(20):
        async with running(max_message_size=1024) as info:
            async with websocket_client(info.url) as (read, write):
                await write.send(rpc_request(1, params={"pad": "x" * 900}))  # under the limit
                assert isinstance(await read.receive(), SessionMessage)
                await write.send(rpc_request(2, params={"pad": "x" * 2000}))
                closed = await read.receive()
                assert isinstance(closed, ConnectionClosedError)
                assert closed.code == 1009
            await round_trip(info.url)


async def test_message_size_is_counted_in_bytes() -> None:
    with trio.fail_after(20):
        async with running(max_message_size=1024) as info, websocket_client(info.url) as (read, write):
            await write.send(rpc_request(1, params={"pad": "é" * 600}))  # 600 characters, 1200 bytes
            closed = await read.receive()
            assert isinstance(closed, ConnectionClosedError)
            assert closed.code == 1009


# -- hostile frames -----------------------------------------------------------------------------
#
# Behaviour only: which frames are refused, with which code, and that everyone is served on.
# How long other connections wait meanwhile is a benchmark figure
# (``python -m benchmarks.case_hostile_frames``), never an assertion here.


async def test_decodes_never_pause_the_collector_and_large_ones_run_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mechanism: light frames up to THREAD_LIMIT inline; larger ones, and heavy ones of
    any size, in a worker thread one at a time; over-budget ones refused without a decode;
    and the cyclic garbage collector enabled throughout."""
    calls: list[tuple[int, bool, bool]] = []
    running_now = 0
    overlap = 0
    lock = threading.Lock()
    original = decode

    def spy(frame: str | bytes, **budget: int) -> JSONRPCMessage:
        nonlocal running_now, overlap
        with lock:
            running_now += 1
            overlap = max(overlap, running_now)
        try:
            calls.append((len(frame), threading.current_thread() is threading.main_thread(), gc.isenabled()))
            return original(frame, **budget)
        finally:
            with lock:
                running_now -= 1

    monkeypatch.setattr(offload, "decode", spy)  # what decode_frame calls
    large = (
        '{"jsonrpc":"2.0","id":1,"method":"x","params":{"pad":"' + "x" * (offload.THREAD_LIMIT + 1) + '"}}'
    )
    medium = (
        '{"jsonrpc":"2.0","id":2,"method":"x","params":{"pad":"' + "x" * (offload.THREAD_LIMIT // 2) + '"}}'
    )
    heavy = (
        '{"jsonrpc":"2.0","id":3,"method":"x","params":{"a":['
        + ",".join(["[]"] * offload.INLINE_CONTAINERS)
        + "]}}"
    )
    refused = (
        '{"jsonrpc":"2.0","id":4,"method":"x","params":{"a":['
        + ",".join(["[]"] * SERVER_MAX_CONTAINERS)
        + "]}}"
    )
    assert gc.isenabled()
    with trio.fail_after(20):
        async with running(answer_small) as info:
            async with trio.open_nursery() as nursery:
                for _ in range(4):

                    async def send_large() -> None:
                        async with open_websocket_url(info.url) as ws:
                            await ws.send_message(large)
                            await ws.get_message()

                    nursery.start_soon(send_large)
            async with open_websocket_url(info.url) as ws:
                await ws.send_message(refused)  # answered by nobody: the handler drops errors
                for frame in (medium, heavy):
                    await ws.send_message(frame)
                    await ws.get_message()
            async with websocket_client(info.url) as (read, write):
                await write.send(rpc_request(5))
                assert isinstance(await read.receive(), SessionMessage)
    assert gc.isenabled()
    assert all(gc_on for _, _, gc_on in calls)
    large_calls = [call for call in calls if call[0] > offload.THREAD_LIMIT]
    assert len(large_calls) == 4
    assert not any(on_main for _, on_main, _ in large_calls)
    assert [on_main for size, on_main, _ in calls if size == len(medium)] == [True]
    assert [on_main for size, on_main, _ in calls if size == len(heavy)] == [False]
    assert not [call for call in calls if call[0] == len(refused)]  # refused before any decode
    assert overlap == 1  # the limiter: one large decode at a time


async def test_limiter_is_shared_within_a_run() -> None:
    assert offload.large_decode_limiter() is offload.large_decode_limiter()
    assert offload.large_decode_limiter().total_tokens == offload.LARGE_DECODES


HOSTILE = {
    "empty lists": worst_case_frame(request_id=11),
    "nested lists": worst_case_frame(unit="[[],[]]", request_id=12),
    "deeply nested arrays": worst_case_frame(unit="[" * 190 + "]" * 190, request_id=13),
    "nested id, payload not last": '{"jsonrpc":"2.0","method":"hostile","params":{"a":['
    + ",".join(['{"id":1}'] * 400_000)
    + ']},"id":14}',
    "330k keys": many_keys_frame(330_000, request_id=15),
}


async def test_hostile_frames_are_refused_with_32600_and_everyone_is_served_on() -> None:
    """Each costly shape is refused by the structural budget, as a value with its id; the
    sender's connection and another client's both keep working."""
    received: list[SessionMessage | Exception] = []

    async def record(read: ReadChannel, write: WriteChannel) -> None:
        async with write:
            async for item in read:
                received.append(item)
                if isinstance(item, SessionMessage):
                    await write.send(item)

    frames = list(HOSTILE.values())
    assert all(len(frame.encode()) <= 4 * MiB for frame in frames)
    with trio.fail_after(60):
        async with (
            running(record) as info,
            open_websocket_url(info.url, max_message_size=8 * MiB) as raw,
            websocket_client(info.url) as (read, write),
        ):
            for frame in frames:
                await raw.send_message(frame)
            await raw.send_message('{"jsonrpc":"2.0","id":99,"method":"ping"}')
            assert '"id":99' in str(await raw.get_message())
            await write.send(rpc_request(100))
            assert isinstance(await read.receive(), SessionMessage)
    errors = [item for item in received if isinstance(item, MessageDecodeError)]
    assert len(errors) == len(frames)
    assert all(error.code == -32600 for error in errors)
    assert all("message too complex to decode" in str(error) for error in errors)
    assert [error.request_id for error in errors] == [11, 12, 13, None, 15]
    assert len(received) == len(frames) + 2


async def test_servers_apply_a_tighter_structural_budget_than_clients() -> None:
    """A server refuses a request over SERVER_MAX_CONTAINERS; its client accepts a response as
    large, which is within MAX_CONTAINERS (a client chose its server; a server faces anyone)."""
    received: list[SessionMessage | Exception] = []
    lists: list[list[int]] = [[] for _ in range(SERVER_MAX_CONTAINERS)]

    async def answer_big(read: ReadChannel, write: WriteChannel) -> None:
        async with write:
            async for item in read:
                received.append(item)
                reply = t.JSONRPCResponse(jsonrpc="2.0", id=3, result={"a": lists})
                await write.send(SessionMessage(reply))

    over = (
        '{"jsonrpc":"2.0","id":3,"method":"x","params":{"a":['
        + ",".join(["[]"] * SERVER_MAX_CONTAINERS)
        + "]}}"
    )
    assert SERVER_MAX_CONTAINERS < over.count("[") + over.count("{") <= MAX_CONTAINERS
    with trio.fail_after(30):
        async with running(answer_big) as info, websocket_client(info.url) as (read, write):
            await write.send(SessionMessage(decode(over)))
            reply = await read.receive()
    assert isinstance(reply, SessionMessage)
    assert isinstance(reply.message, t.JSONRPCResponse)
    assert len(reply.message.result["a"]) == SERVER_MAX_CONTAINERS
    [error] = received
    assert isinstance(error, MessageDecodeError)
    assert error.code == -32600
    assert error.request_id == 3
    assert f"{SERVER_MAX_CONTAINERS + 3} objects and arrays (at most {SERVER_MAX_CONTAINERS})" in str(error)


async def test_the_budgets_are_options_of_server_and_client() -> None:
    """``serve(max_containers=..., max_members=...)`` and the same keywords of
    `websocket_client` replace the defaults, for what each side receives."""
    received: list[SessionMessage | Exception] = []

    async def answer_with_lists(read: ReadChannel, write: WriteChannel) -> None:
        async with write:
            async for item in read:
                received.append(item)
                reply = t.JSONRPCResponse(jsonrpc="2.0", id=len(received), result={"a": [[], [], []]})
                await write.send(SessionMessage(reply))

    def request(params: str) -> SessionMessage:
        return SessionMessage(decode('{"jsonrpc":"2.0","id":1,"method":"x","params":' + params + "}"))

    with trio.fail_after(30):
        async with (
            running(answer_with_lists, max_containers=5, max_members=8) as info,
            websocket_client(info.url, max_containers=5) as (read, write),
        ):
            await write.send(request('{"a":[[],[]]}'))  # 5 containers, 5 members: in
            await write.send(request('{"a":[[],[],[]]}'))  # 6 containers: refused
            await write.send(request('{"a":1,"b":2,"c":3,"d":4}'))  # 8 members: in
            await write.send(request('{"a":1,"b":2,"c":3,"d":4,"e":5}'))  # 9 members: refused
            # Each reply holds 6 containers: over the client's own budget of 5.
            replies = [await read.receive() for _ in range(4)]
    verdicts = [
        "ok" if isinstance(item, SessionMessage) else str(item).split(" (frame")[0] for item in received
    ]
    assert verdicts == [
        "ok",
        "message too complex to decode: 6 objects and arrays (at most 5)",
        "ok",
        "message too complex to decode: 9 object members (at most 8)",
    ]
    assert all(isinstance(reply, MessageDecodeError) for reply in replies)
    assert "6 objects and arrays (at most 5)" in str(replies[0])


@pytest.mark.parametrize(("containers", "members"), [(0, 8), (8, 0)])
async def test_a_budget_below_one_is_refused_at_start(containers: int, members: int) -> None:
    with pytest.raises(ValueError, match="max_containers and max_members must be at least 1"):
        await serve(answer_small, "127.0.0.1", 0, max_containers=containers, max_members=members)


async def test_hostile_tools_call_through_serve_mcp_is_refused_and_the_session_serves_on() -> None:
    """300k keys in tools/call arguments never reach the SDK; the attacker's connection and a
    real client's session both keep working."""
    server = MCPServer("hostile")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    initialize = (
        '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}'
    )
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info = await nursery.start(partial_serve_mcp(server))
            async with open_websocket_url(info.url, subprotocols=["mcp"], max_message_size=8 * MiB) as raw:
                await raw.send_message(initialize)
                assert '"id":0' in str(await raw.get_message())
                await raw.send_message('{"jsonrpc":"2.0","method":"notifications/initialized"}')
                await raw.send_message(many_keys_frame(300_000, method="tools/call", request_id=7))
                await raw.send_message(
                    '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}'
                )
                answer = str(await raw.get_message())
                while '"id":8' not in answer:  # the SDK may answer the refused frame first
                    answer = str(await raw.get_message())
                assert '"text":"5"' in answer
            async with Client(as_transport(websocket_client(info.url))) as client:
                result = await client.call_tool("add", {"a": 1, "b": 2})
                assert result.structured_content == {"result": 3}
            nursery.cancel_scope.cancel()


def partial_serve_mcp(server: MCPServer) -> Callable[..., Awaitable[NoReturn]]:
    async def start(*, task_status: trio.TaskStatus[ServerInfo] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        await serve_mcp(server, "127.0.0.1", 0, task_status=task_status)

    return start


async def test_bad_large_frames_arrive_as_values_and_the_connection_serves_on() -> None:
    received: list[SessionMessage | Exception] = []

    async def record(read: ReadChannel, write: WriteChannel) -> None:
        async with write:
            async for item in read:
                received.append(item)
                if isinstance(item, SessionMessage):
                    await write.send(item)

    with trio.fail_after(20):
        async with (
            running(record, max_message_size=8 * MiB) as info,
            open_websocket_url(info.url, max_message_size=8 * MiB) as raw,
        ):
            await raw.send_message('{"jsonrpc":"2.0","id":1,"method":"x","params":' + "0" * MiB)
            await raw.send_message(
                '{"jsonrpc":"2.0","id":2,"method":"x","params":{"a":[' + "0," * MiB + "0]}}"
            )
            assert '"id":2' in str(await raw.get_message())
    assert isinstance(received[0], MessageDecodeError)
    assert isinstance(received[1], SessionMessage)
