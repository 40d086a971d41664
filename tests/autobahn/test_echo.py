"""The Autobahn echo programs on our driver, against real trio-websocket peers.

The suite itself runs in ``nox -s autobahn``; these check the programs it drives: the echo
server answers a trio-websocket client message for message (text stays text, binary stays
binary, above our 4 MiB default limit), and the echo client walks a stand-in fuzzing server
(trio-websocket's server) through the suite's three endpoints.
"""

from __future__ import annotations

from functools import partial

import pytest
import trio
from trio_websocket import WebSocketRequest, open_websocket_url, serve_websocket

from tests.autobahn.echo_client import run_all
from tests.autobahn.echo_server import MAX_MESSAGE_SIZE, serve

BIG = 5 * 1024 * 1024
"""Above our 4 MiB default: the echo programs take the suite's 16 MiB messages."""

both_echoes = pytest.mark.parametrize("direct", [False, True], ids=["writer", "direct"])


@both_echoes
async def test_echo_server_returns_each_message_as_it_came(direct: bool) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, "127.0.0.1", 0, direct=direct))
            async with open_websocket_url(f"ws://127.0.0.1:{port}/", max_message_size=MAX_MESSAGE_SIZE) as ws:
                for message in ("héllo", b"\x00\xff", "", b"", "x" * BIG):
                    await ws.send_message(message)
                    assert await ws.get_message() == message
            nursery.cancel_scope.cancel()


@both_echoes
async def test_echo_client_runs_every_case_then_updates_reports(direct: bool) -> None:
    seen: list[tuple[str, str | bytes]] = []
    updated = trio.Event()

    async def fuzzing_server(request: WebSocketRequest) -> None:
        ws = await request.accept()
        path = request.path
        if path == "/getCaseCount":
            await ws.send_message("2")
        elif path.startswith("/runCase?case="):
            for message in (f"case {path}", b"\x01" * BIG):
                await ws.send_message(message)
                seen.append((path, await ws.get_message()))
        elif path == "/updateReports?agent=tester":
            updated.set()
        await ws.aclose()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                partial(serve_websocket, fuzzing_server, "127.0.0.1", 0, None, max_message_size=BIG * 2)
            )
            assert await run_all(f"ws://127.0.0.1:{server.port}", "tester", direct=direct) == 2
            await updated.wait()
            nursery.cancel_scope.cancel()
    runs = [f"/runCase?case={n}&agent=tester" for n in (1, 2)]
    assert seen == [(run, message) for run in runs for message in (f"case {run}", b"\x01" * BIG)]


@both_echoes
async def test_echo_client_goes_on_after_a_case_the_server_fails(direct: bool) -> None:
    updated = trio.Event()

    async def fuzzing_server(request: WebSocketRequest) -> None:
        if request.path.startswith("/runCase?case=1&"):
            await request.reject(500, body=b"case 1 broke")  # the handshake fails: go on
            return
        ws = await request.accept()
        if request.path == "/getCaseCount":
            await ws.send_message("2")
        elif request.path.startswith("/runCase?case=2&"):
            await ws.aclose(1002, "protocol error")  # the suite failing the connection at once
            return
        elif request.path.startswith("/updateReports"):
            updated.set()
        await ws.aclose()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve_websocket, fuzzing_server, "127.0.0.1", 0, None))
            assert await run_all(f"ws://127.0.0.1:{server.port}", "tester", direct=direct) == 2
            await updated.wait()
            nursery.cancel_scope.cancel()


async def test_echo_client_refuses_a_case_count_that_is_not_a_number() -> None:
    async def fuzzing_server(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("many")
        await ws.aclose()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve_websocket, fuzzing_server, "127.0.0.1", 0, None))
            with pytest.raises(ValueError, match="getCaseCount answered"):
                await run_all(f"ws://127.0.0.1:{server.port}", "tester")
            nursery.cancel_scope.cancel()
