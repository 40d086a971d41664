"""serve's life: starting (nursery.start), handler failures staying local, logging, and shutdown (1001)."""

from __future__ import annotations

import logging
from functools import partial

import pytest
import trio
import trio.testing
from mcp.shared.message import SessionMessage

from tests.test_server_helpers import echo, raw_client, round_trip, rpc_request, running
from trio_mcp_ws import (
    ConnectionClosedError,
    ReadChannel,
    ServerInfo,
    WriteChannel,
    connection_info,
    serve,
    websocket_client,
)

SERVER_LOGGER = "trio_mcp_ws.server"


async def test_nursery_start_returns_the_server_info_once_listening() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            info: ServerInfo = await nursery.start(serve, echo, "127.0.0.1", 0)
            assert isinstance(info, ServerInfo)
            assert info.port > 0
            assert info.host == "127.0.0.1"
            assert info.path == "/mcp"
            assert not info.secure
            assert info.url == f"ws://127.0.0.1:{info.port}/mcp"
            assert len(info.listeners) == 1
            assert info.connections == 0
            await round_trip(info.url)  # listening already: no retry needed
            nursery.cancel_scope.cancel()


async def test_ipv6_loopback_url() -> None:
    try:
        with trio.socket.socket(trio.socket.AF_INET6) as probe:
            await probe.bind(("::1", 0))
    except OSError:  # pragma: no cover - no IPv6 here
        pytest.skip("no IPv6 loopback")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            info: ServerInfo = await nursery.start(serve, echo, "::1", 0)
            assert info.url == f"ws://[::1]:{info.port}/mcp"
            await round_trip(info.url)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("path", "mcp"),
        ("max_connections", 0),
        ("handshake_timeout", 0),
        ("max_message_size", 0),
        ("close_timeout", -1),
    ],
)
async def test_bad_arguments_are_refused_before_binding(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        await serve(echo, "127.0.0.1", 0, **{option: value})  # type: ignore[arg-type]


def test_connection_info_outside_a_connection() -> None:
    with pytest.raises(RuntimeError, match="outside a connection"):
        connection_info()


async def test_a_failing_handler_closes_only_its_connection_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fragile(read: ReadChannel, write: WriteChannel) -> None:
        async with write:
            async for item in read:
                if isinstance(item, SessionMessage) and getattr(item.message, "method", None) == "crash":
                    raise ValueError("handler bug")
                if isinstance(item, SessionMessage):
                    await write.send(item)

    caplog.set_level(logging.INFO, logger=SERVER_LOGGER)
    with trio.fail_after(20):
        async with running(fragile) as info, websocket_client(info.url) as (read_ok, write_ok):
            async with websocket_client(info.url) as (read, write):
                await write.send(rpc_request(1, "crash"))
                closed = await read.receive()
                assert isinstance(closed, ConnectionClosedError)
                assert closed.code == 1011
            # The other connection is untouched, and new ones are served.
            await write_ok.send(rpc_request(2))
            assert isinstance(await read_ok.receive(), SessionMessage)
            await round_trip(info.url)
    failures = [r for r in caplog.records if r.name == SERVER_LOGGER and r.levelno >= logging.ERROR]
    assert len(failures) == 1
    assert failures[0].message.startswith("127.0.0.1:")
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], ValueError)


async def test_a_handler_raising_an_exception_group_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    async def grouped(read: ReadChannel, write: WriteChannel) -> None:
        async def boom() -> None:
            raise KeyError("in a child task")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(boom)
            await trio.sleep_forever()

    with trio.fail_after(20):
        async with running(grouped) as info:
            async with websocket_client(info.url) as (read, _):
                closed = await read.receive()
                assert isinstance(closed, ConnectionClosedError)
                assert closed.code == 1011
            await trio.testing.wait_all_tasks_blocked()
            assert info.connections == 0
    assert any(r.name == SERVER_LOGGER and r.levelno >= logging.ERROR for r in caplog.records)


async def test_a_handler_that_returns_closes_normally() -> None:
    async def one_shot(read: ReadChannel, write: WriteChannel) -> None:
        item = await read.receive()
        assert isinstance(item, SessionMessage)
        await write.send(item)

    with trio.fail_after(20):
        async with running(one_shot) as info, websocket_client(info.url) as (read, write):
            await write.send(rpc_request(1))
            assert isinstance(await read.receive(), SessionMessage)
            with pytest.raises(trio.EndOfChannel):
                await read.receive()  # a clean close (1000): no error value


async def test_cancelling_serve_closes_every_connection_with_1001() -> None:
    """Every client gets a 1001 close frame, the close handshake completes, then TCP closes."""
    holding = trio.Semaphore(0)

    async def hold(read: ReadChannel, write: WriteChannel) -> None:
        holding.release()
        await echo(read, write)

    codes: list[int | None] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as outer:
            server_scope = trio.CancelScope()

            async def run_server(task_status: trio.TaskStatus[ServerInfo] = trio.TASK_STATUS_IGNORED) -> None:
                with server_scope:
                    await serve(hold, "127.0.0.1", 0, task_status=task_status)

            info: ServerInfo = await outer.start(run_server)

            async def client(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                async with raw_client(info.port) as raw:
                    task_status.started()
                    code, _ = await raw.wait_close()
                    codes.append(code)

            async with trio.open_nursery() as clients:
                for _ in range(3):
                    await clients.start(client)
                for _ in range(3):
                    await holding.acquire()
                # Our own client too: 1001 is a normal close, so its read channel just ends.
                async with websocket_client(info.url) as (read, _):
                    await holding.acquire()
                    server_scope.cancel()
                    with pytest.raises(trio.EndOfChannel):
                        await read.receive()
            with pytest.raises(OSError, match="connect"):
                await trio.open_tcp_stream("127.0.0.1", info.port)  # no longer listening
    assert codes == [1001, 1001, 1001]


async def test_shutdown_is_bounded_by_close_timeout_for_a_client_that_never_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A client that ignores the close frame: its TCP connection is closed after close_timeout."""
    with trio.fail_after(60):
        async with trio.open_nursery() as outer:
            server_scope = trio.CancelScope()

            async def run_server(task_status: trio.TaskStatus[ServerInfo] = trio.TASK_STATUS_IGNORED) -> None:
                with server_scope:
                    await serve(echo, "127.0.0.1", 0, close_timeout=3, task_status=task_status)

            info: ServerInfo = await outer.start(run_server)
            async with raw_client(info.port) as silent, raw_client(info.port) as polite:
                await trio.testing.wait_all_tasks_blocked()
                start = trio.current_time()
                server_scope.cancel()
                polite_code, polite_closed = await polite.wait_close()
                silent_code, silent_closed = await silent.wait_close(answer=False)
    assert polite_code == silent_code == 1001
    assert polite_closed - start < 0.5  # answered: closed at once
    assert 3 <= silent_closed - start < 4  # never answered: closed when close_timeout expired


async def test_connections_in_a_handler_nursery_outlive_serve() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as handlers:
            async with trio.open_nursery() as nursery:
                info: ServerInfo = await nursery.start(
                    partial(serve, echo, "127.0.0.1", 0, handler_nursery=handlers)
                )
                async with websocket_client(info.url) as (read, write):
                    nursery.cancel_scope.cancel()  # serve stops listening...
                    await trio.testing.wait_all_tasks_blocked()
                    await write.send(rpc_request(3))  # ...but its connection lives on
                    assert isinstance(await read.receive(), SessionMessage)
            handlers.cancel_scope.cancel()


async def test_logs_name_the_client_and_never_show_payloads_above_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = "PAYLOAD-7f3a9c"
    token = "TOKEN-51be02"
    caplog.set_level(logging.DEBUG)

    async def crash_on_request(read: ReadChannel, write: WriteChannel) -> None:
        async for item in read:
            if isinstance(item, SessionMessage):
                raise RuntimeError("failed")

    with trio.fail_after(20):
        async with running(crash_on_request) as info:
            async with websocket_client(info.url, headers={"Authorization": f"Bearer {token}"}) as (
                read,
                write,
            ):
                await write.send(rpc_request(1, params={"secret": payload}))
                assert isinstance(await read.receive(), ConnectionClosedError)
            async with raw_client(info.port) as raw:
                await raw.send_text('{"broken": "' + payload)  # undecodable
                await raw.send_text('{"jsonrpc": "2.0", "id": 2, "method": "' + payload + '"}')
                code, _ = await raw.wait_close()
                assert code == 1011

    def text(record: logging.LogRecord) -> str:
        exc = record.exc_info[1] if record.exc_info else None
        return record.getMessage() + (repr(exc) if exc is not None else "")

    loud = [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert any(r.name == SERVER_LOGGER and "127.0.0.1:" in r.getMessage() for r in loud)
    assert all(payload not in text(r) for r in loud)
    assert all(token not in text(r) for r in caplog.records if r.name.startswith("trio_mcp_ws"))
