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
import subprocess
import sys
import threading
import time
from typing import Final

KiB: Final = 1024
CYCLES: Final = {False: 10_000, True: 300}
WARMUP: Final = {False: 1_000, True: 100}
TARGET: Final = 1 * KiB
LIFETIME: Final = 1800.0
START_TIMEOUT: Final = 60.0
KEY: Final = "dGhlIHNhbXBsZSBub25jZQ=="
INITIALIZE: Final = (
    b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
    b'"capabilities":{},"clientInfo":{"name":"churn","version":"1"}}}'
)
INITIALIZED: Final = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
CALL: Final = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait","arguments":{}}}'
PING: Final = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
CLOSE_1000: Final = b"\x88\x82\0\0\0\0\x03\xe8"


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


def _frame(payload: bytes) -> bytes:
    """One masked client text frame (zero key)."""
    size = len(payload)
    head = bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0x80 | 126)) + struct.pack("!H", size)
    return head + b"\0\0\0\0" + payload


def _open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        (
            f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    return sock


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
    sock.sendall(_frame(PING))
    _read_until(sock, b'"ping"')
    sock.sendall(CLOSE_1000)
    while sock.recv(65536):  # the close answer, then the server's TCP close
        pass
    sock.close()


def reset(port: int) -> None:
    _reset(_open(port))


def reset_mid_frame(port: int) -> None:
    sock = _open(port)
    sock.sendall(_frame(b"x" * 1000)[:500])
    _reset(sock)


def reset_mid_call(port: int) -> None:
    sock = _open(port)
    sock.sendall(_frame(INITIALIZE))
    _read_until(sock, b'"id":0')
    sock.sendall(_frame(INITIALIZED) + _frame(CALL))
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
    from benchmarks._process import rss

    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_churn")
    parser.add_argument("--smoke", action="store_true", help=f"{CYCLES[True]} cycles per kind")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_server()
        return 0
    cycles, warmup = CYCLES[args.smoke], WARMUP[args.smoke]
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.case_churn", "--serve"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    rows: list[list[str]] = []
    try:
        ports: list[str] = []

        def read() -> None:
            assert server.stdout is not None
            for line in server.stdout:
                if line.startswith("READY "):
                    ports.extend(line.split()[1:])
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if not ports:
            raise RuntimeError("the server did not start")
        port = {"echo": int(ports[0]), "mcp": int(ports[1])}
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
                    "yes" if per < TARGET else "**no**",
                ]
            )
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)
        if server.stdout is not None:
            server.stdout.close()
    print(f"## Connection churn: server RSS over {cycles:,} cycles of each kind\n")
    print(
        f"After {warmup:,} warm-up cycles, the server's RSS before and after {cycles:,} more; "
        f"target: growth under {TARGET // KiB} KiB per connection.\n"
    )
    header = ["kind", "cycles", "cycles/s", "RSS before / after MiB", "growth B/connection", "on target"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
