"""``trio-mcp-ws connect`` and ``demo``, run as the real console script in a subprocess.

The servers ``connect`` talks to are the public `serve` in this process (or a raw wsproto
server, to read the exact close code it sends), on 127.0.0.1 port 0. Processes are waited
for with ``trio.fail_after``; nothing sleeps to synchronise: a test that must know the
bridge saw stdin end waits for its debug log line.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import mcp_types as types
import pytest
import trio
from mcp.shared.message import SessionMessage
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request

from tests.test_cli_peers import child, cli, drain, request, run_gateway
from trio_mcp_ws import AuthenticationError, ServerInfo, serve
from trio_mcp_ws._cli import main

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

    from trio_mcp_ws import Authenticate, HandshakeRequest, ReadChannel, WriteChannel


async def answer_requests(read: ReadChannel, write: WriteChannel, *, hold: trio.Event | None = None) -> None:
    """Answer each request with ``{"method": ...}``; send notifications back as they are."""
    async with write:
        async for item in read:
            if not isinstance(item, SessionMessage):
                continue
            message = item.message
            if isinstance(message, types.JSONRPCRequest):
                if hold is not None:
                    await hold.wait()
                answer = types.JSONRPCResponse(
                    jsonrpc="2.0", id=message.id, result={"method": message.method}
                )
                await write.send(SessionMessage(answer))
            elif isinstance(message, types.JSONRPCNotification):
                await write.send(item)


async def never_answer(read: ReadChannel, write: WriteChannel) -> None:
    async with write:
        async for _ in read:
            pass


@asynccontextmanager
async def serving(
    handler: Callable[[ReadChannel, WriteChannel], Awaitable[object]],
    *,
    authenticate: Authenticate | None = None,
) -> AsyncGenerator[str, None]:
    async with trio.open_nursery() as nursery:
        info: ServerInfo = await nursery.start(
            partial(serve, handler, "127.0.0.1", 0, authenticate=authenticate)
        )
        yield info.url
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def connect(*args: str) -> AsyncGenerator[trio.Process, None]:
    """``trio-mcp-ws connect ARGS`` with stdin, stdout and stderr piped, in its own session."""
    process = await trio.lowlevel.open_process(
        cli("connect", *args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    await pipe.aclose()


async def read_lines(stream: trio.abc.ReceiveStream, count: int) -> list[bytes]:
    """``count`` lines, however the pipe splits or joins them."""
    data = b""
    while data.count(b"\n") < count:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data.splitlines(keepends=True)


async def read_until(stream: trio.abc.ReceiveStream, pattern: bytes, into: bytearray) -> None:
    while pattern not in into:
        chunk = await stream.receive_some(65536)
        assert chunk, f"EOF before {pattern!r}: {bytes(into)!r}"
        into += chunk


async def finish(process: trio.Process) -> tuple[int, bytes, bytes]:
    """Close stdin, read stdout and stderr to EOF; exit status, stdout, stderr."""
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    out, err = bytearray(), bytearray()
    await process.stdin.aclose()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain, process.stdout, out)
        nursery.start_soon(drain, process.stderr, err)
        status = await process.wait()
    return status, bytes(out), bytes(err)


def one_line_error(err: bytes) -> str:
    """The single line a failure prints; asserts there is exactly one, and no traceback."""
    lines = err.decode().splitlines()
    assert len(lines) == 1, err.decode()
    assert "Traceback" not in lines[0]
    return lines[0]


async def test_connect_bridges_stdio_and_writes_only_json_rpc_to_stdout() -> None:
    with trio.fail_after(30):
        async with serving(answer_requests) as url, connect(url, "-H", "X-Test: 1") as process:
            assert process.stdin is not None
            await process.stdin.send_all(request("ping", 7).encode() + b"\n")
            await process.stdin.send_all(b"this line is not JSON and is skipped\n")
            await process.stdin.send_all(b'{"jsonrpc":"2.0","method":"notifications/x"}\n')
            assert process.stdout is not None
            lines = await read_lines(process.stdout, 2)
            status, out, err = await finish(process)
    assert status == 0, err
    assert out == b""
    assert lines == [
        b'{"jsonrpc":"2.0","id":7,"result":{"method":"ping"}}\n',
        b'{"jsonrpc":"2.0","method":"notifications/x"}\n',
    ]
    assert b"not a JSON-RPC message" in err  # the bad line is reported on stderr, not stdout


async def test_connect_waits_for_answers_after_stdin_ends() -> None:
    """``echo '{...ping...}' | trio-mcp-ws connect URL`` prints the answer and exits 0."""
    hold = trio.Event()
    with trio.fail_after(30):
        async with serving(partial(answer_requests, hold=hold)) as url, connect(url, "-vv") as process:
            assert process.stdin is not None
            assert process.stderr is not None
            await process.stdin.send_all(request("ping").encode() + b"\n")
            await process.stdin.aclose()
            err = bytearray()
            await read_until(process.stderr, b"stdin ended; waiting", err)
            hold.set()  # answer only once the bridge has seen stdin end
            status, out, _ = await finish(process)
    assert status == 0, bytes(err)
    assert out == b'{"jsonrpc":"2.0","id":1,"result":{"method":"ping"}}\n'


async def test_connect_gives_up_after_linger_and_says_so() -> None:
    with trio.fail_after(30):
        async with serving(never_answer) as url, connect(url, "--linger", "0.2") as process:
            assert process.stdin is not None
            await process.stdin.send_all(request("ping").encode() + b"\n")
            status, out, err = await finish(process)
    assert status == 1
    assert out == b""
    assert "1 request(s) unanswered after --linger 0.2s" in one_line_error(err)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["http://127.0.0.1:8000/mcp"], "ws://127.0.0.1:8000/mcp"),
        (["127.0.0.1:8000"], "ws://127.0.0.1:8000/mcp"),
        (["ws://user:pw@127.0.0.1:8000/mcp"], "--token-env"),
        (["ws://127.0.0.1:8000/mcp", "--token-env", "CLI_TEST_UNSET_VARIABLE"], "not set"),
    ],
)
async def test_connect_usage_errors_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    with trio.fail_after(30):
        async with connect(*args) as process:
            status, out, err = await finish(process)
    assert status == 2
    assert out == b""
    assert expected in one_line_error(err)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["connect", "ws://127.0.0.1:8000/mcp", "-H", "no-colon"], "is not NAME:VALUE"),
        (["connect", "ws://127.0.0.1:8000/mcp", "-H", "Bad Name: x"], "not a valid HTTP header name"),
        (["connect", "ws://127.0.0.1:8000/mcp", "--linger", "soon"], "not a number of seconds"),
        (["serve", "--port", "70000", "--", "true"], "not a port number"),
        (["serve", "--path", "mcp", "--", "true"], "does not start with '/'"),
        (["serve", "--env", "NOEQUALS", "--", "true"], "is not NAME=VALUE"),
        (["serve", "--max-connections", "0", "--", "true"], "is not at least 1"),
    ],
)
def test_option_errors_are_one_line_and_exit_2(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process (argparse fails before anything starts); the real script is above.
    assert main(args) == 2
    assert expected in one_line_error(capsys.readouterr().err.encode())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connect_refused_is_one_line_and_exit_1() -> None:
    with trio.fail_after(30):
        async with connect(f"ws://127.0.0.1:{free_port()}/mcp") as process:
            status, _, err = await finish(process)
    assert status == 1
    assert "refused" in one_line_error(err)


async def test_connect_rejected_handshake_names_the_status_and_what_to_check() -> None:
    async def refuse(request: HandshakeRequest) -> None:
        raise AuthenticationError("bearer token required")

    with trio.fail_after(30):
        async with (
            serving(never_answer, authenticate=refuse) as url,
            connect(url, "--token", "nope") as process,
        ):
            status, _, err = await finish(process)
    assert status == 1
    line = one_line_error(err)
    assert "HTTP 401" in line
    assert "check --token" in line


@asynccontextmanager
async def close_recorder() -> AsyncGenerator[tuple[str, trio.MemoryReceiveChannel[int]], None]:
    """A raw WebSocket server that accepts one client and reports the close code it sends."""
    send, receive = trio.open_memory_channel[int](1)

    async def handle(stream: trio.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        while True:
            data = await stream.receive_some(65536)
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, Request):
                    await stream.send_all(ws.send(AcceptConnection(subprotocol="mcp")))
                elif isinstance(event, CloseConnection):
                    await stream.send_all(ws.send(event.response()))
                    await send.send(event.code)
                    return
            if not data:
                await send.send(1006)
                return

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"ws://127.0.0.1:{port}/mcp", receive
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_closes_connect_with_1001_and_exits_128_plus_signal(signum: signal.Signals) -> None:
    with trio.fail_after(30):
        async with close_recorder() as (url, codes), connect(url, "-vv") as process:
            assert process.stderr is not None
            err = bytearray()
            await read_until(process.stderr, b"connected to", err)
            process.send_signal(signum)
            assert await codes.receive() == 1001
            status, _, rest = await finish(process)
    assert status == 128 + signum
    assert b"Traceback" not in bytes(err) + rest


async def test_connect_exits_1_when_the_server_is_killed() -> None:
    with trio.fail_after(30):
        async with run_gateway(command=child("echo")) as gateway, connect(gateway.url) as process:
            assert process.stdin is not None
            assert process.stdout is not None
            await process.stdin.send_all(b'{"jsonrpc":"2.0","method":"notifications/x"}\n')
            assert await read_lines(process.stdout, 1) == [b'{"jsonrpc":"2.0","method":"notifications/x"}\n']
            gateway.interrupt(signal.SIGKILL)  # the whole gateway, children included
            assert process.stderr is not None
            err = bytearray()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, process.stderr, err)
                status = await process.wait()
    assert status == 1
    line = one_line_error(bytes(err))
    assert "closed the connection abnormally" in line
    assert "1006" in line


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("serve", ["--allow-host", "--allow-origin", "--token-file", "--tls-cert", "--grace-period"]),
        (
            "connect",
            ["--header", "--token-env", "--cacert", "--linger", "--connect-timeout", "--max-message-size"],
        ),
    ],
)
async def test_every_option_has_help(command: str, options: list[str]) -> None:
    with trio.fail_after(30):
        result = await trio.run_process(cli(command, "--help"), capture_stdout=True)
    text = result.stdout.decode()
    for option in options:
        assert re.search(rf"{option}\b.*\n?\s+\S", text), option


async def test_demo_runs_and_succeeds() -> None:
    with trio.fail_after(60):
        result = await trio.run_process(cli("demo"), capture_stdout=True, capture_stderr=True)
    out = result.stdout.decode()
    assert "[legacy] connected with protocol 2025-11-25" in out
    assert "[auto] connected with protocol 2026-07-28" in out
    assert "6 tool calls, 0 failed" in out
