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
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from benchmarks._markdown import table, verdict
from benchmarks._probe import idle_median, ping_round_trips, probe_cells, worst
from benchmarks._process import Peer, RssSampler, spawn
from benchmarks._rawws import INITIALIZE, INITIALIZED, connect, text_frame
from benchmarks._spec import percentile
from benchmarks._target import KINDS, run_target
from trio_mcp_ws._offload import INLINE_CONTAINERS, INLINE_MEMBERS, THREAD_LIMIT
from trio_mcp_ws._options import SERVER_MAX_CONTAINERS, SERVER_MAX_MEMBERS

if TYPE_CHECKING:
    import socket

MiB: Final = 1024 * 1024
# Hostile frames stay just under the servers' default max_message_size (4 MiB), so they are
# decoded rather than refused with 1009.
FRAME_SIZE: Final = 4 * MiB - 1024
ATTACKERS: Final = 8
# Seconds per shape: attack, and the warm-up before the measurement starts.
FULL_SECONDS: Final = 12.0
SMOKE_SECONDS: Final = 3.0
WARMUP: Final = 1.0
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


def _padded(prefix: str, suffix: str, size: int = FRAME_SIZE) -> str:
    """``prefix``, a ``"pad"`` string member filling the frame to ``size``, ``suffix``."""
    head = prefix + ',"pad":"'
    return head + "x" * (size - len(head) - 1 - len(suffix)) + '"' + suffix


# Frames tuned to pass the structural budget a server applies (SERVER_MAX_*): as many containers or
# members as it admits, the rest of the 4 MiB a string, so every one is decoded in full.
_REQUEST: Final = '{"jsonrpc":"2.0","id":1,"method":"hostile","params":{'
_AT_CONTAINERS: Final = (SERVER_MAX_CONTAINERS - 3) // 3  # "[[],[]]" units, beside 2 "{" and 1 "["
_AT_MEMBERS: Final = SERVER_MAX_MEMBERS - 5  # beside jsonrpc, id, method, params and pad
_AT_TOOL_MEMBERS: Final = SERVER_MAX_MEMBERS - 7  # beside those, name and arguments


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
        if self.key in ("lists-budget", "lists-inline"):
            size = FRAME_SIZE if self.key == "lists-budget" else THREAD_LIMIT
            return _padded(_REQUEST + '"a":[' + ",".join(["[[],[]]"] * _AT_CONTAINERS) + "]", "}}", size)
        if self.key in ("keys-budget", "keys-inline"):
            size = FRAME_SIZE if self.key == "keys-budget" else THREAD_LIMIT
            return _padded(_keys(_REQUEST, "", _AT_MEMBERS), "}}", size)
        if self.key == "inline-max":
            # INLINE_CONTAINERS and INLINE_MEMBERS exactly: lists of one-member objects.
            units = (INLINE_CONTAINERS - 3) // 3
            body = ",".join(['[{"k":0},{"k":0}]'] * units)
            keys = "".join(f',"k{i}":0' for i in range(INLINE_MEMBERS - 6 - 2 * units))
            return _padded(_REQUEST + '"a":[' + body + "]" + keys, "}}", THREAD_LIMIT)
        if self.key == "scalars":
            return _fill(_REQUEST + '"a":[', "0", "]}}")
        if self.key == "tool-keys-budget":
            return _padded(
                _keys(
                    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{',
                    "}",
                    _AT_TOOL_MEMBERS,
                ),
                "}}",
            )
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
    Shape("lists-budget", f"{_AT_CONTAINERS * 3:,} containers, padded (at the budget)", "echo"),
    Shape("keys-budget", f"{_AT_MEMBERS:,} object keys, padded (at the budget)", "echo"),
    Shape("lists-inline", f"{_AT_CONTAINERS * 3:,} containers in a 1 MiB frame", "echo"),
    Shape("keys-inline", f"{_AT_MEMBERS:,} object keys in a 1 MiB frame", "echo"),
    Shape("inline-max", "the heaviest 1 MiB frame still decoded inline", "echo"),
    Shape("scalars", "2 million numbers in one array (no budget applies)", "echo"),
    Shape("tool-keys-budget", f"{_AT_TOOL_MEMBERS:,} keys in tools/call arguments (serve_mcp)", "mcp"),
)

# -- the attacker process ---------------------------------------------------------------------


def run_attacker(shape_key: str, port: int, seconds: float) -> None:
    """Send hostile frames on `ATTACKERS` connections for ``seconds``; print ``SENT <n>``."""
    shape = next(shape for shape in SHAPES if shape.key == shape_key)
    frame = text_frame(shape.frame())
    deadline = time.monotonic() + min(seconds, LIFETIME)
    sent = [0] * ATTACKERS
    socks = [connect(port, timeout=30)[0] for _ in range(ATTACKERS)]
    if shape.server == "mcp":
        for sock in socks:
            sock.sendall(text_frame(INITIALIZE) + text_frame(INITIALIZED))
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


def _child(*args: str) -> Peer:
    """This module run as a child process (stderr inherited)."""
    return spawn("benchmarks.case_hostile_frames", *args)


@dataclass
class Row:
    """The figures of one shape."""

    shape: Shape
    sent: int
    rtts: list[float]
    peak_rss: int
    baseline: float

    def cells(self) -> list[str]:
        """The table cells of this row."""
        p99 = percentile(self.rtts, 0.99)
        ok = p99 < TARGET_P99 and worst(self.rtts) < TARGET_WORST and self.peak_rss < TARGET_RSS
        return [
            self.shape.label,
            str(self.sent),
            *probe_cells(self.rtts, self.baseline),
            f"{self.peak_rss / MiB:.0f}",
            verdict(ok),
        ]


def measure(shape: Shape, seconds: float, *, freeze: bool) -> Row:
    """One shape: fresh server, a baseline, then the attack with the probe alongside."""
    mcp = shape.server == "mcp"
    server = _child("--serve", shape.server, *([] if freeze else ["--no-freeze"]))
    attacker: Peer | None = None
    try:
        port = int(server.expect("READY", START_TIMEOUT))
        baseline = idle_median(port, 0.5, mcp=mcp)
        with RssSampler(server.pid) as sampler:
            attacker = _child("--attack", shape.key, "--port", str(port), "--seconds", str(seconds + WARMUP))
            attacker.expect("ATTACKING", START_TIMEOUT)
            time.sleep(WARMUP)  # let the attack reach full speed before measuring
            rtts = ping_round_trips(port, seconds, mcp=mcp)
            sent = int(attacker.expect("SENT", START_TIMEOUT))
        return Row(shape, sent, rtts, sampler.peak, baseline)
    finally:
        if attacker is not None:
            attacker.stop()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Run every shape (or act as one of the child processes) and print the markdown."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_hostile_frames")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_SECONDS:.0f} s per shape")
    parser.add_argument("--shape", action="append", choices=[shape.key for shape in SHAPES])
    parser.add_argument(
        "--no-freeze", action="store_true", help="servers do not freeze their heap once listening"
    )
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--attack", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_target(args.serve, name="hostile-bench", lifetime=LIFETIME, freeze=not args.no_freeze)
        return 0
    if args.attack:
        run_attacker(args.attack, args.port, args.seconds)
        return 0
    seconds = SMOKE_SECONDS if args.smoke else FULL_SECONDS
    shapes = [shape for shape in SHAPES if not args.shape or shape.key in args.shape]
    rows = [measure(shape, seconds, freeze=not args.no_freeze) for shape in shapes]
    print(f"## Hostile 4 MiB frames ({ATTACKERS} attackers, {seconds:.0f} s per shape)\n")
    print(
        "Round trips of a ninth client (`ping`) while the attackers send nonstop; targets: "
        f"p99 < {TARGET_P99 * 1000:.0f} ms, worst < {TARGET_WORST * 1000:.0f} ms, "
        f"server peak RSS < {TARGET_RSS // MiB} MiB. The servers "
        + ("do not freeze their heap" if args.no_freeze else "freeze their heap once listening")
        + " (`gc.freeze()`, as docs/server.md advises).\n"
    )
    header = ["shape", "frames sent", "round trips", "idle p50 ms", "p50 ms", "p99 ms", "worst ms"]
    header += ["peak RSS MiB", "on target"]
    print(table(header, (row.cells() for row in rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
