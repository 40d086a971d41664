"""Connection churn: RSS growth per connection over thousands of connect/close cycles.

``python -m benchmarks.case_churn [--smoke]`` prints a markdown section and exits 0. A server
process on 127.0.0.1 runs `serve` (an echo handler) and `serve_mcp` (an ``MCPServer`` whose one
tool blocks until cancelled); this process then runs `CYCLES` connections of each kind against
it, one after another, and reads the server's RSS after a warm-up and at the end (issue 10,
item 1: growth under 1 KiB per connection):

- clean: handshake, one request and its echo, close frame, close answered, TCP closed;
- reset: handshake, then a TCP reset (``SO_LINGER`` 0), no close frame;
- reset mid-frame: half of a 1,000-byte frame, then a reset;
- reset mid tool call (serve_mcp): initialize, a ``tools/call`` that blocks, then a reset.

The unit tests (``tests/test_hardening_leaks.py``) count the objects left; this measures the
memory. Bounded: a fixed number of cycles, the server exits by itself after `LIFETIME` seconds
and is stopped by pid in a ``finally``.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time
from typing import Final

from benchmarks._markdown import table, verdict
from benchmarks._process import rss, spawn
from benchmarks._rawws import INITIALIZE, INITIALIZED, OP_CLOSE, connect, frame, text_frame

KiB: Final = 1024
CYCLES: Final = {False: 10_000, True: 300}
WARMUP: Final = {False: 1_000, True: 100}
TARGET: Final = 1 * KiB
LIFETIME: Final = 1800.0
START_TIMEOUT: Final = 60.0
# Seconds any one socket operation of a cycle may block.
SOCKET_TIMEOUT: Final = 30.0
CALL: Final = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait","arguments":{}}}'
PING: Final = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
CLOSE_1000: Final = frame(OP_CLOSE, (1000).to_bytes(2, "big"))


def run_server() -> None:
    """Print ``READY <echo port> <mcp port>``; serve until `LIFETIME`."""
    import trio
    from mcp.server.mcpserver import MCPServer

    import trio_mcp_ws

    mcp = MCPServer("churn-bench", log_level="ERROR")

    @mcp.tool()
    async def wait() -> str:
        """Block until the connection goes away."""
        await trio.sleep_forever()

    async def echo(read: trio_mcp_ws.ReadChannel, write: trio_mcp_ws.WriteChannel) -> None:
        async with write:
            async for item in read:
                if not isinstance(item, Exception):
                    await write.send(item)

    async def main() -> None:
        with trio.move_on_after(LIFETIME):
            async with trio.open_nursery() as nursery:
                plain = await nursery.start(trio_mcp_ws.serve, echo, "127.0.0.1", 0)
                session = await nursery.start(trio_mcp_ws.serve_mcp, mcp, "127.0.0.1", 0)
                print("READY", plain.port, session.port, flush=True)

    trio.run(main)


def _open(port: int) -> socket.socket:
    """A WebSocket connection, handshake done (the server sends nothing before a request)."""
    return connect(port, timeout=SOCKET_TIMEOUT)[0]


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_until(sock: socket.socket, marker: bytes) -> None:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before {marker!r}")
        data += chunk


def clean(port: int) -> None:
    sock = _open(port)
    sock.sendall(text_frame(PING))
    _read_until(sock, b'"ping"')
    sock.sendall(CLOSE_1000)
    while sock.recv(65536):  # the close answer, then the server's TCP close
        pass
    sock.close()


def reset(port: int) -> None:
    _reset(_open(port))


def reset_mid_frame(port: int) -> None:
    sock = _open(port)
    sock.sendall(text_frame(b"x" * 1000)[:500])
    _reset(sock)


def reset_mid_call(port: int) -> None:
    sock = _open(port)
    sock.sendall(text_frame(INITIALIZE))
    _read_until(sock, b'"id":0')
    sock.sendall(text_frame(INITIALIZED) + text_frame(CALL))
    time.sleep(0.001)  # let the call start (pacing; the test checks this deterministically)
    _reset(sock)


KINDS: Final = (
    ("clean close", clean, "echo"),
    ("TCP reset after the handshake", reset, "echo"),
    ("reset mid-frame", reset_mid_frame, "echo"),
    ("reset mid tool call (serve_mcp)", reset_mid_call, "mcp"),
)


def main(argv: list[str] | None = None) -> int:
    """Run every kind (or serve, as the child) and print the markdown."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_churn")
    parser.add_argument("--smoke", action="store_true", help=f"{CYCLES[True]} cycles per kind")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_server()
        return 0
    cycles, warmup = CYCLES[args.smoke], WARMUP[args.smoke]
    server = spawn("benchmarks.case_churn", "--serve")
    rows: list[list[str]] = []
    try:
        echo_port, mcp_port = server.expect("READY", START_TIMEOUT).split()
        port = {"echo": int(echo_port), "mcp": int(mcp_port)}
        for label, cycle, kind in KINDS:
            for _ in range(warmup):
                cycle(port[kind])
            time.sleep(0.5)  # let the server finish the last connections before sampling
            before = rss(server.pid)
            start = time.perf_counter()
            for _ in range(cycles):
                cycle(port[kind])
            elapsed = time.perf_counter() - start
            time.sleep(0.5)
            after = rss(server.pid)
            per = (after - before) / cycles
            rows.append(
                [
                    label,
                    f"{cycles:,}",
                    f"{cycles / elapsed:,.0f}",
                    f"{before / KiB / KiB:.1f} / {after / KiB / KiB:.1f}",
                    f"{per:,.0f}",
                    verdict(per < TARGET),
                ]
            )
    finally:
        server.stop()
    print(f"## Connection churn: server RSS over {cycles:,} cycles of each kind\n")
    print(
        f"After {warmup:,} warm-up cycles, the server's RSS before and after {cycles:,} more; "
        f"target: growth under {TARGET // KiB} KiB per connection.\n"
    )
    header = ["kind", "cycles", "cycles/s", "RSS before / after MiB", "growth B/connection", "on target"]
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
