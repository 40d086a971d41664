"""The trio-mcp-ws command line, run as a real subprocess."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import mcp_types as types
import trio
from mcp import Client
from mcp.shared.message import SessionMessage

from tests._peers import serve_pump, url
from tests._sdk import as_transport
from trio_mcp_ws import websocket_client
from trio_mcp_ws._cli import main

if TYPE_CHECKING:
    import pytest

    from trio_mcp_ws import ReadChannel, WriteChannel
    from trio_mcp_ws._wsconn import WsConnection


async def echo(read: ReadChannel, write: WriteChannel, conn: WsConnection) -> None:
    async with write:
        async for item in read:
            if isinstance(item, SessionMessage):
                await write.send(item)


async def read_lines(stream: trio.abc.ReceiveStream, count: int) -> list[bytes]:
    """``count`` lines, however the pipe splits or joins them."""
    data = b""
    while data.count(b"\n") < count:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data.splitlines(keepends=True)


async def test_connect_bridges_stdio_to_a_websocket_server() -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await serve_pump(nursery, echo)
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "trio_mcp_ws", "connect", url(port), "-H", "X-Test: 1"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert process.stdin is not None
            assert process.stdout is not None
            try:
                await process.stdin.send_all(b'{"jsonrpc":"2.0","id":7,"method":"ping"}\n')
                await process.stdin.send_all(b"this line is not JSON and is skipped\n")
                await process.stdin.send_all(b'{"jsonrpc":"2.0","method":"notifications/x"}\n')
                lines = await read_lines(process.stdout, 2)
                await process.stdin.aclose()
                assert await process.wait() == 0
            finally:
                process.kill()
                await process.stdin.aclose()
                await process.stdout.aclose()
                with trio.CancelScope(shield=True):
                    await process.wait()
            nursery.cancel_scope.cancel()
    assert lines == [
        b'{"jsonrpc":"2.0","id":7,"method":"ping"}\n',
        b'{"jsonrpc":"2.0","method":"notifications/x"}\n',
    ]


def test_connect_refused_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    assert main(["connect", f"ws://127.0.0.1:{port}/mcp"]) == 1
    assert "refused" in capsys.readouterr().err


def test_connect_bad_header(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connect", "ws://127.0.0.1:1/mcp", "-H", "no-colon"]) == 2
    assert "NAME:VALUE" in capsys.readouterr().err


def test_serve_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0"]) == 2
    assert "command" in capsys.readouterr().err


def test_demo_runs_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "[legacy] connected with protocol 2025-11-25" in out
    assert "[auto] connected with protocol 2026-07-28" in out
    assert "6 tool calls, 0 failed" in out


async def test_serve_exposes_a_stdio_server_over_websocket() -> None:
    server_script = str(Path(__file__).with_name("_stdio_server.py"))
    command = [
        sys.executable,
        "-m",
        "trio_mcp_ws",
        "serve",
        "--port",
        "0",
        "--",
        sys.executable,
        server_script,
    ]
    process = await trio.lowlevel.open_process(command, stderr=subprocess.PIPE)
    assert process.stderr is not None
    try:
        with trio.fail_after(30):
            banner = b""
            while b"\n" not in banner:
                chunk = await process.stderr.receive_some(4096)
                assert chunk, f"serve exited early: {banner!r}"
                banner += chunk
            served_url = banner.split(b" on ", 1)[1].split(b"\n", 1)[0].decode()
            assert served_url.startswith("ws://127.0.0.1:")
            for mode in ("legacy", "auto"):
                async with Client(as_transport(websocket_client(served_url)), mode=mode) as client:
                    result = await client.call_tool("greet", {"name": "trio"})
                    assert result.content == [types.TextContent(type="text", text="hello, trio")]
    finally:
        process.terminate()
        with trio.move_on_after(10):
            await process.wait()
        process.kill()
        await process.stderr.aclose()
        with trio.CancelScope(shield=True):
            await process.wait()
