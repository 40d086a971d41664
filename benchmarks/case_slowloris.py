"""Slowloris: thousands of half-handshakes held open, and a real MCP client still gets in.

``python -m benchmarks.case_slowloris [--smoke]`` prints a markdown section and exits 0. It
starts a `serve_mcp` server process on 127.0.0.1 (defaults: ``handshake_timeout`` 10 s, at most
`MAX_PENDING_HANDSHAKES` pending, the oldest evicted), an attacker process holding `HELD`
connections that each sent half a request head and trickle a header line now and then (every
connection the server drops is reopened at once), and from this process times `TRIES` real
``mcp.Client`` sessions: connect, initialize, call a tool (issue 10, item 3: p99 under 1 s).
It also reports the server's RSS growth under the attack per pending handshake.

Bounded: the attack runs only while the tries do, every child exits by itself after `LIFETIME`
seconds, and both children are stopped by pid in a ``finally``.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import sys
import time
from typing import Final

from benchmarks._markdown import table, verdict
from benchmarks._process import Peer, raise_fd_limit, rss, spawn, stdin_closed
from benchmarks._spec import percentile

MiB: Final = 1024 * 1024
HELD: Final = {False: 2000, True: 300}
TRIES: Final = {False: 20, True: 5}
TARGET_P99: Final = 1.0
# Every child exits after this many seconds, whatever happens to this process.
LIFETIME: Final = 300.0
# Seconds for a child's first line (the server imports the SDK).
START_TIMEOUT: Final = 60.0
# Seconds between two header lines trickled on each held connection (slowloris keeps the
# request "in progress" far longer than a real client would ever take).
TRICKLE: Final = 2.0
# Seconds the attack runs before the first try, so the server is saturated.
SATURATE: Final = 3.0
HEAD: Final = b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"


def run_server() -> None:
    """`serve_mcp` with one tool on a free port; print ``READY <port>``; stop after `LIFETIME`."""
    import trio
    from mcp.server.mcpserver import MCPServer

    import trio_mcp_ws

    raise_fd_limit()
    mcp = MCPServer("slowloris-bench", log_level="WARNING")

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    async def main() -> None:
        with trio.move_on_after(LIFETIME):
            async with trio.open_nursery() as nursery:
                info = await nursery.start(trio_mcp_ws.serve_mcp, mcp, "127.0.0.1", 0)
                print("READY", info.port, flush=True)

    trio.run(main)


def run_attacker(port: int, held: int) -> None:
    """Hold ``held`` half-handshakes open, reopening each as soon as it is dropped.

    Prints ``HOLDING`` once all are open, then ``REOPENED <n>`` when its stdin closes.
    """
    raise_fd_limit()
    selector = selectors.DefaultSelector()
    reopened = 0

    def open_one() -> None:
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        selector.register(sock, selectors.EVENT_WRITE, "connecting")

    for _ in range(held):
        open_one()
    stop = stdin_closed()
    announced = False
    next_trickle = time.monotonic() + TRICKLE
    deadline = time.monotonic() + LIFETIME
    while not stop.is_set() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if key.data == "connecting":
                try:
                    sock.send(HEAD)
                    selector.modify(sock, selectors.EVENT_READ, "held")
                    continue
                except OSError:
                    pass
            else:
                try:
                    if sock.recv(4096):
                        continue  # an answer (none is expected before the head ends): keep reading
                except OSError:
                    pass
            selector.unregister(sock)  # dropped by the server: reopen at once
            sock.close()
            reopened += 1
            open_one()
        if not announced and sum(1 for k in selector.get_map().values() if k.data == "held") >= held:
            announced = True
            print("HOLDING", flush=True)
        if time.monotonic() >= next_trickle:
            next_trickle = time.monotonic() + TRICKLE
            for key in list(selector.get_map().values()):
                if key.data == "held":
                    try:
                        key.fileobj.send(b"X-Slow: 1\r\n")  # type: ignore[union-attr]
                    except OSError:
                        pass
    if not announced:
        print("HOLDING", flush=True)
    print("REOPENED", reopened, flush=True)


def _child(*args: str) -> Peer:
    """This module run as a child process (stderr inherited)."""
    return spawn("benchmarks.case_slowloris", *args)


def _tries(port: int, count: int) -> list[float]:
    """Seconds for each of ``count`` fresh mcp.Client sessions to connect and call a tool."""
    import trio
    from mcp import Client

    from trio_mcp_ws import websocket_client

    async def main() -> list[float]:
        times: list[float] = []
        for _ in range(count):
            with trio.fail_after(60):
                start = time.perf_counter()
                async with Client(websocket_client(f"ws://127.0.0.1:{port}/mcp")) as client:
                    result = await client.call_tool("add", {"a": 2, "b": 3})
                times.append(time.perf_counter() - start)
                if result.structured_content != {"result": 5}:
                    raise RuntimeError(f"unexpected result {result!r}")
            await trio.sleep(0.2)  # spread the tries over the attack (pacing only)
        return times

    return trio.run(main)


def main(argv: list[str] | None = None) -> int:
    """Run the case (or act as one of its child processes) and print the markdown."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_slowloris")
    parser.add_argument("--smoke", action="store_true", help="fewer half-handshakes and tries")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--attack", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--held", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_server()
        return 0
    if args.attack:
        run_attacker(args.attack, args.held)
        return 0
    raise_fd_limit()
    held, tries = HELD[args.smoke], TRIES[args.smoke]
    server = _child("--serve")
    attacker: Peer | None = None
    try:
        port = int(server.expect("READY", START_TIMEOUT))
        idle = _tries(port, 3)
        before = rss(server.pid)
        attacker = _child("--attack", str(port), "--held", str(held))
        attacker.expect("HOLDING", START_TIMEOUT)
        time.sleep(SATURATE)  # let evictions and reopenings reach a steady state
        during = rss(server.pid)
        times = _tries(port, tries)
        attacker.close_stdin()
        reopened = int(attacker.expect("REOPENED", START_TIMEOUT))
    finally:
        if attacker is not None:
            attacker.stop()
        server.stop()
    from trio_mcp_ws._listener import MAX_PENDING_HANDSHAKES

    p99, worst = percentile(times, 0.99), max(times)
    per_pending = (during - before) / MAX_PENDING_HANDSHAKES
    print(f"## Slowloris: {held:,} half-handshakes held open\n")
    print(
        f"An attacker holds {held:,} connections that sent half a request head (each reopened as "
        f"soon as the server drops it) while a real `mcp.Client` connects, initializes and calls "
        f"a tool, {tries} times; target p99 < {TARGET_P99:.0f} s.\n"
    )
    figures = [
        ["idle connect + call, median", f"{percentile(idle, 0.5) * 1000:.0f} ms"],
        ["under attack, p50", f"{percentile(times, 0.5) * 1000:.0f} ms"],
        ["under attack, p99", f"{p99 * 1000:.0f} ms"],
        ["under attack, worst", f"{worst * 1000:.0f} ms"],
        [f"on target (p99 < {TARGET_P99:.0f} s)", verdict(p99 < TARGET_P99)],
        ["held connections the server dropped (and the attacker reopened)", f"{reopened:,}"],
        ["server RSS before / during the attack", f"{before / MiB:.1f} / {during / MiB:.1f} MiB"],
        [
            f"RSS growth per pending handshake (at most {MAX_PENDING_HANDSHAKES} pending)",
            f"{per_pending / 1024:.1f} KiB",
        ],
    ]
    print(table(["figure", "value"], figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
