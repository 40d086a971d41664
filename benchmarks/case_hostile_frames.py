"""Hostile 4 MiB frames against a live server: does everyone else still get served?

``python -m benchmarks.case_hostile_frames [--smoke]`` prints a markdown section (a heading
and a table) and exits 0. For each shape of hostile frame it starts a fresh server process on
127.0.0.1 (``serve`` with an echo handler, or ``serve_mcp`` with an official ``MCPServer``),
an attacker process holding `ATTACKERS` connections that send 4 MiB frames of that shape
nonstop, and measures, from this process, the round trips of a ninth, well-behaved client
(JSON-RPC ``ping``) and the server's peak resident memory. Targets (issue 10, item 5): p99
under 100 ms, worst under 250 ms, peak RSS under 512 MiB.

Everything is bounded: each shape runs for a fixed time (a few seconds in smoke mode), every
child process exits by itself after `LIFETIME` seconds, and every child is stopped by pid in a
``finally``. The attackers use plain blocking sockets and a zero masking key, so sending costs
them almost nothing and the server does all the work a real attack would cause.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
MiB: Final = 1024 * 1024
# Hostile frames stay just under the servers' default max_message_size (4 MiB), so they are
# decoded rather than refused with 1009.
FRAME_SIZE: Final = 4 * MiB - 1024
ATTACKERS: Final = 8
# Seconds per shape: attack, and the warm-up before the measurement starts.
FULL_SECONDS: Final = 12.0
SMOKE_SECONDS: Final = 3.0
WARMUP: Final = 1.0
# Pause between two probes: about 100 round trips a second per shape on an idle server.
PROBE_GAP: Final = 0.005
# Every child exits after this many seconds, whatever happens to this process.
LIFETIME: Final = 120.0
# Seconds to wait for a child's first line (the server imports the SDK).
START_TIMEOUT: Final = 60.0
TARGET_P99: Final = 0.100
TARGET_WORST: Final = 0.250
TARGET_RSS: Final = 512 * MiB
# How deep the "deeply nested" frames go: under pydantic-core's ~200 levels with the envelope,
# so that they are valid JSON the parser accepts.
NESTING: Final = 190


def _fill(prefix: str, unit: str, suffix: str) -> str:
    count = (FRAME_SIZE - len(prefix) - len(suffix)) // (len(unit) + 1)
    return prefix + ",".join([unit] * count) + suffix


def _keys(prefix: str, suffix: str, count: int) -> str:
    return prefix + ",".join(f'"k{i}":0' for i in range(count)) + suffix


@dataclass(frozen=True)
class Shape:
    """One kind of hostile frame, and the server it is sent to."""

    key: str
    label: str
    server: str  # "echo" (serve) or "mcp" (serve_mcp)

    def frame(self) -> str:
        """The frame's text (built on demand: each is 4 MiB)."""
        request = '{"jsonrpc":"2.0","id":1,"method":"hostile","params":{"a":['
        if self.key == "deep":
            return _fill(request, "[" * NESTING + "]" * NESTING, "]}}")
        if self.key == "lists":
            return _fill(request, "[[],[]]", "]}}")
        if self.key == "nested-id":
            return _fill('{"jsonrpc":"2.0","method":"hostile","params":{"a":[', '{"id":1}', ']},"id":1}')
        if self.key == "keys":
            return _keys('{"jsonrpc":"2.0","id":1,"method":"hostile","params":{', "}}", 330_000)
        if self.key == "tool-keys":
            return _keys(
                '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{',
                "}}}",
                300_000,
            )
        raise ValueError(self.key)


SHAPES: Final = (
    Shape("deep", f"deeply nested arrays ({NESTING} levels, repeated)", "echo"),
    Shape("lists", "nested lists ([[],[]] repeated)", "echo"),
    Shape("nested-id", 'payload not last, nested "id"', "echo"),
    Shape("keys", "330k object keys", "echo"),
    Shape("tool-keys", "300k keys in tools/call arguments (serve_mcp)", "mcp"),
)

INITIALIZE: Final = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    }
)
INITIALIZED: Final = '{"jsonrpc":"2.0","method":"notifications/initialized"}'


# -- the server process -----------------------------------------------------------------------


def run_server(kind: str) -> None:
    """Serve on a free port of 127.0.0.1, print ``READY <port>``, serve until `LIFETIME`."""
    import trio
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCRequest, JSONRPCResponse

    import trio_mcp_ws

    async def answer(read: trio_mcp_ws.ReadChannel, write: trio_mcp_ws.WriteChannel) -> None:
        # Answer each request with an empty result; bad frames arrive as exceptions and are
        # dropped here, as a session would after answering them.
        async with write:
            async for item in read:
                if isinstance(item, SessionMessage) and isinstance(item.message, JSONRPCRequest):
                    reply = JSONRPCResponse(jsonrpc="2.0", id=item.message.id, result={})
                    await write.send(SessionMessage(reply))

    async def main() -> None:
        with trio.move_on_after(LIFETIME):
            async with trio.open_nursery() as nursery:
                if kind == "mcp":
                    from mcp.server.mcpserver import MCPServer

                    mcp = MCPServer("hostile-bench", log_level="WARNING")

                    @mcp.tool()
                    def echo(text: str = "") -> str:
                        """Return the text unchanged."""
                        return text

                    info = await nursery.start(trio_mcp_ws.serve_mcp, mcp, "127.0.0.1", 0)
                else:
                    info = await nursery.start(trio_mcp_ws.serve, answer, "127.0.0.1", 0)
                print("READY", info.port, flush=True)

    trio.run(main)


# -- the attacker process ---------------------------------------------------------------------


def _wire(text: str) -> bytes:
    """One masked client text frame with a zero key (XOR with zeros leaves the payload as is)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        head = bytes((0x81, 0x80 | size))
    elif size < 1 << 16:
        head = bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def _open(port: int) -> socket.socket:
    """A WebSocket connection to the server, handshake done (no extension, subprotocol mcp)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        (
            f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp\r\n\r\n"
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


def run_attacker(shape_key: str, port: int, seconds: float) -> None:
    """Send hostile frames on `ATTACKERS` connections for ``seconds``; print ``SENT <n>``."""
    shape = next(shape for shape in SHAPES if shape.key == shape_key)
    frame = _wire(shape.frame())
    deadline = time.monotonic() + min(seconds, LIFETIME)
    sent = [0] * ATTACKERS
    socks = [_open(port) for _ in range(ATTACKERS)]
    if shape.server == "mcp":
        for sock in socks:
            sock.sendall(_wire(INITIALIZE) + _wire(INITIALIZED))
    print("ATTACKING", flush=True)

    def drain(sock: socket.socket) -> None:
        # Read and drop whatever the server answers, so its writes never back up.
        try:
            while sock.recv(1 << 16):
                pass
        except OSError:
            return

    def attack(index: int, sock: socket.socket) -> None:
        try:
            while time.monotonic() < deadline:
                sock.sendall(frame)
                sent[index] += 1
        except OSError:
            return  # the server closed this connection: it counts as refused load

    threads = [threading.Thread(target=drain, args=(sock,), daemon=True) for sock in socks]
    threads += [threading.Thread(target=attack, args=(i, sock), daemon=True) for i, sock in enumerate(socks)]
    for thread in threads:
        thread.start()
    for thread in threads[ATTACKERS:]:
        thread.join(timeout=seconds + 30)
    for sock in socks:
        sock.close()
    print("SENT", sum(sent), flush=True)


# -- the measuring side -----------------------------------------------------------------------


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.case_hostile_frames", *args],
        cwd=os.getcwd(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )


def _expect(proc: subprocess.Popen[str], word: str) -> str:
    """The rest of the child's first line starting with ``word`` (bounded by `START_TIMEOUT`)."""
    assert proc.stdout is not None
    result: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            head, _, rest = line.strip().partition(" ")
            if head == word:
                result.append(rest)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    if not result:
        raise RuntimeError(f"no {word} from {proc.args!r}")
    return result[0]


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()


def _probe(port: int, server: str, seconds: float) -> list[float]:
    """Round trips of ``ping`` requests for ``seconds``, from a fresh connection (trio)."""
    import mcp_types as t
    import trio
    from mcp.shared.message import SessionMessage

    from trio_mcp_ws import websocket_client

    async def main() -> list[float]:
        times: list[float] = []
        with trio.fail_after(seconds + 60):
            async with websocket_client(f"ws://127.0.0.1:{port}/mcp") as (read, write):
                if server == "mcp":
                    await write.send(SessionMessage(t.jsonrpc_message_adapter.validate_json(INITIALIZE)))
                    await read.receive()
                    await write.send(SessionMessage(t.jsonrpc_message_adapter.validate_json(INITIALIZED)))
                deadline = trio.current_time() + seconds
                request_id = 1
                while trio.current_time() < deadline:
                    start = time.perf_counter()
                    await write.send(
                        SessionMessage(t.JSONRPCRequest(jsonrpc="2.0", id=request_id, method="ping"))
                    )
                    reply = await read.receive()
                    times.append(time.perf_counter() - start)
                    if not isinstance(reply, SessionMessage):
                        raise RuntimeError(f"the probe's connection failed: {reply!r}")
                    request_id += 1
                    await trio.sleep(PROBE_GAP)  # pacing, not synchronisation
        return times

    return trio.run(main)


@dataclass
class Row:
    """The figures of one shape."""

    shape: Shape
    sent: int
    rtts: list[float]
    peak_rss: int
    baseline: float

    def cells(self) -> list[str]:
        from benchmarks._spec import percentile

        p50, p99 = percentile(self.rtts, 0.5), percentile(self.rtts, 0.99)
        worst = max(self.rtts) if self.rtts else float("nan")
        ok = p99 < TARGET_P99 and worst < TARGET_WORST and self.peak_rss < TARGET_RSS
        return [
            self.shape.label,
            str(self.sent),
            str(len(self.rtts)),
            f"{self.baseline * 1000:.1f}",
            f"{p50 * 1000:.1f}",
            f"{p99 * 1000:.1f}",
            f"{worst * 1000:.0f}",
            f"{self.peak_rss / MiB:.0f}",
            "yes" if ok else "**no**",
        ]


def measure(shape: Shape, seconds: float) -> Row:
    """One shape: fresh server, a baseline, then the attack with the probe alongside."""
    from benchmarks._process import RssSampler

    server = _child("--serve", shape.server)
    attacker: subprocess.Popen[str] | None = None
    try:
        port = int(_expect(server, "READY"))
        baseline = sorted(_probe(port, shape.server, 0.5))
        with RssSampler(server.pid) as sampler:
            attacker = _child("--attack", shape.key, "--port", str(port), "--seconds", str(seconds + WARMUP))
            _expect(attacker, "ATTACKING")
            time.sleep(WARMUP)  # let the attack reach full speed before measuring
            rtts = _probe(port, shape.server, seconds)
            sent = int(_expect(attacker, "SENT"))
        return Row(shape, sent, rtts, sampler.peak, baseline[len(baseline) // 2])
    finally:
        if attacker is not None:
            _stop(attacker)
        _stop(server)


def main(argv: list[str] | None = None) -> int:
    """Run every shape (or act as one of the child processes) and print the markdown."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_hostile_frames")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_SECONDS:.0f} s per shape")
    parser.add_argument("--shape", action="append", choices=[shape.key for shape in SHAPES])
    parser.add_argument("--serve", choices=["echo", "mcp"], help=argparse.SUPPRESS)
    parser.add_argument("--attack", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_server(args.serve)
        return 0
    if args.attack:
        run_attacker(args.attack, args.port, args.seconds)
        return 0
    seconds = SMOKE_SECONDS if args.smoke else FULL_SECONDS
    shapes = [shape for shape in SHAPES if not args.shape or shape.key in args.shape]
    rows = [measure(shape, seconds) for shape in shapes]
    print(f"## Hostile 4 MiB frames ({ATTACKERS} attackers, {seconds:.0f} s per shape)\n")
    print(
        "Round trips of a ninth client (`ping`) while the attackers send nonstop; targets: "
        f"p99 < {TARGET_P99 * 1000:.0f} ms, worst < {TARGET_WORST * 1000:.0f} ms, "
        f"server peak RSS < {TARGET_RSS // MiB} MiB.\n"
    )
    header = ["shape", "frames sent", "round trips", "idle p50 ms", "p50 ms", "p99 ms", "worst ms"]
    header += ["peak RSS MiB", "on target"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
