"""No log flood (issue 10, item 8): nothing a peer does produces more than a few WARNING lines.

Every hostile behaviour of the other hardening tests, repeated many times against one server
within a few seconds (well inside one `SUMMARY_INTERVAL`): abrupt resets while the server is
writing, bad handshakes, stalled handshakes evicted, oversized and undecodable messages,
fragment floods, silent squatters, the connection limit filled and freed again and again.
Each kind of event the operator should hear about is logged as a rate-limited summary, so
the whole run may write at most one WARNING-or-above line per kind, whatever the counts.
"""

from __future__ import annotations

import logging
import socket
import struct
from contextlib import AsyncExitStack

import pytest
import trio
import trio.testing

import trio_mcp_ws._listener as listener
from tests.test_server_helpers import exchange, read_response, running, upgrade_request, wait_closed

# The pending-handshake bound these tests run with: small, so a test opens hundreds of
# sockets rather than thousands (the production bound is sized by the open-files limit).
PENDING = 256


@pytest.fixture(autouse=True)
def _small_pending_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listener, "MAX_PENDING_HANDSHAKES", PENDING)


ROUNDS = 200
PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
# The kinds of summary a peer can trigger: dropped writes, evicted handshakes, a full server.
SUMMARY_KINDS = 3


def masked_text(text: bytes) -> bytes:
    size = len(text)
    head = bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0x80 | 126)) + struct.pack("!H", size)
    return head + b"\0\0\0\0" + text


async def open_ws(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(upgrade_request(port))
    response = await read_response(stream)
    assert response is not None
    assert response.status == 101
    return stream


def reset(stream: trio.SocketStream) -> None:
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


def loud(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]


async def test_resets_while_the_server_writes_log_one_summary(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(120), caplog.at_level(logging.DEBUG, logger="trio_mcp_ws"):
        async with running() as info:
            for _ in range(ROUNDS):
                stream = await open_ws(info.port)
                await stream.send_all(masked_text(PING) * 50)  # 50 echoes on their way back
                reset(stream)
            await trio.testing.wait_all_tasks_blocked(0.05)
    assert len(loud(caplog)) <= 1, loud(caplog)


async def test_a_limit_filled_and_freed_again_and_again_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(120), caplog.at_level(logging.DEBUG, logger="trio_mcp_ws"):
        async with running(max_connections=1) as info:
            for _ in range(ROUNDS // 4):
                stream = await open_ws(info.port)
                response = await exchange(info.port, upgrade_request(info.port))
                assert response is not None
                assert response.status == 503
                reset(stream)
                await trio.testing.wait_all_tasks_blocked(0.01)
    assert len(loud(caplog)) <= 1, loud(caplog)


async def test_every_hostile_behaviour_together_logs_a_bounded_number_of_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(20), caplog.at_level(logging.DEBUG):
        # A short close_timeout: these raw peers never answer the server's close frames.
        async with running(
            max_connections=2, max_message_size=1024, first_message_timeout=0.05, close_timeout=0.05
        ) as info:
            port = info.port
            for _ in range(ROUNDS // 10):
                # Bad handshakes of every kind.
                for data in (
                    b"garbage\r\n\r\n",
                    upgrade_request(port).replace(b"HTTP/1.1", b"HTTP/1.0", 1),
                    upgrade_request(port, host="evil.example"),
                    upgrade_request(port, path="/elsewhere"),
                    upgrade_request(port, headers=[("X-Pad", "a" * 20_000)]),
                ):
                    await exchange(port, data)
                # Undecodable, then oversized.
                stream = await open_ws(port)
                await stream.send_all(masked_text(b"{not json") + masked_text(b"x" * 2000))
                await wait_closed(stream)
                await stream.aclose()
                # A fragment flood.
                stream = await open_ws(port)
                await stream.send_all(b"\x01\x80\0\0\0\0" + b"\x00\x80\0\0\0\0" * 5000)
                reset(stream)
                # A silent squatter closed with 1008, and two more filling the server (503).
                stream = await open_ws(port)
                await wait_closed(stream)
                await stream.aclose()
                async with AsyncExitStack() as stack:
                    for _ in range(2):
                        stack.push_async_callback((await open_ws(port)).aclose)
                    response = await exchange(port, upgrade_request(port))
                    assert response is not None
                    assert response.status == 503
                await trio.testing.wait_all_tasks_blocked(0.01)
            # Stalled handshakes, evicted.
            async with AsyncExitStack() as stack:
                for _ in range(PENDING + 50):
                    stalled = await trio.open_tcp_stream("127.0.0.1", port)
                    stack.push_async_callback(stalled.aclose)
                    await stalled.send_all(b"GET /mcp HTTP/1.1\r\n")
            await trio.testing.wait_all_tasks_blocked(0.05)
    assert len(loud(caplog)) <= SUMMARY_KINDS, loud(caplog)
