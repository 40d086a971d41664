"""Fragment floods against a live server: refused with 1009 quickly, and everyone else served.

``python -m benchmarks.case_fragments [--smoke]`` prints a markdown section (a heading and a
table) and exits 0. For each row (issue 10, item 6) it starts a fresh server process on
127.0.0.1 with default limits (``serve`` with a handler answering each request with an empty
result, or ``serve_mcp`` with an official ``MCPServer``) and an attacker process with one or
several connections (`CONNECTIONS`), each of which sends one endless fragmented message and,
once the server closes it, reconnects and attacks again until the measured period ends, so
the figures show the server under sustained attack:

- "empty continuations": a text frame with FIN=0 and a one-byte payload, then up to
  5,000,000 empty continuation frames (30 MB of wire);
- "1-byte fragments": a 4 MiB text message in 4,194,304 one-byte frames (29 MB of wire).

A drain thread per connection parses the server's frames, so the close frame (code and
reason) is seen; a reset or broken pipe counts as closed too. Reported per row: the close codes
and reasons, the frames sent before the close arrived (an upper bound of what the server read:
it includes whatever was still in the socket buffers; the reason states the server's bound),
the time from the handshake to the close, the server's CPU time (user + system, from psutil,
over the whole attack, so it includes the handshakes and the probe's pings) divided by the
attack connections it closed, and the round trips of a well-behaved probe client (JSON-RPC
``ping`` through `trio_mcp_ws.websocket_client`) during the attack, next to its idle median
measured just before on the same server. Targets: every attack connection closed with 1009,
at most 1 s of server CPU per attack connection, probe p99 under 100 ms.

Everything is bounded: each row runs for a fixed time (two seconds in smoke mode, which runs
the ``serve`` rows only), each attack connection sends a bounded number of frames, every
socket has a timeout, every child process exits by itself after `LIFETIME` seconds, and every
child is stopped by pid in a ``finally``. The attackers use plain blocking sockets, a zero
masking key and pre-built buffers, so sending costs them almost nothing and the server does
all the work.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Final

from benchmarks._markdown import table, verdict
from benchmarks._probe import idle_median, ping_round_trips, probe_cells
from benchmarks._process import Peer, RssSampler, cpu_seconds, spawn
from benchmarks._rawws import OP_CONT, OP_TEXT, close_frame, connect, frame
from benchmarks._spec import percentile
from benchmarks._target import run_target

MiB: Final = 1024 * 1024
# Attacker connections at once: one, and a sustained attack by several.
CONNECTIONS: Final = (1, 4)
# Seconds per attack (measured), and the warm-up before the measurement starts.
FULL_SECONDS: Final = 10.0
SMOKE_SECONDS: Final = 2.0
WARMUP: Final = 1.0
# Seconds of idle round trips before the attack: the baseline.
IDLE_SECONDS: Final = 0.5
# Frames per pre-built buffer handed to one sendall.
CHUNK_FRAMES: Final = 8192
# Seconds any one socket operation of the attacker may block; and how long it waits for the
# close frame after it stopped sending.
SOCKET_TIMEOUT: Final = 10.0
CLOSE_WAIT: Final = 5.0
# Every child exits after this many seconds, whatever happens to this process.
LIFETIME: Final = 120.0
# Seconds to wait for a child's first line (the server imports the SDK).
START_TIMEOUT: Final = 60.0
TARGET_CODE: Final = 1009
TARGET_CPU: Final = 1.0
TARGET_P99: Final = 0.100


@dataclass(frozen=True)
class Attack:
    """One fragmented message: a first frame, ``fillers`` identical frames, a last frame."""

    key: str
    label: str
    first: bytes  # the text frame's payload (FIN=0)
    filler: bytes  # each continuation frame's payload (FIN=0)
    fillers: int
    last: bytes  # the final continuation frame's payload (FIN=1)


ATTACKS: Final = (
    # 1 text frame + 5,000,000 empty continuations (the last one with FIN=1).
    Attack("empty", "empty continuations", b"[", b"", 5_000_000 - 1, b""),
    # "[" + spaces + "]": 4 MiB of valid JSON, one byte per frame.
    Attack("bytes", "4 MiB in 1-byte fragments", b"[", b" ", 4 * MiB - 2, b"]"),
)
SERVERS: Final = {"echo": "`serve`", "mcp": "`serve_mcp`"}
# (attack, server, connections) of each row; smoke mode runs the `serve` rows only.
ROWS: Final = [(attack.key, "echo", connections) for attack in ATTACKS for connections in CONNECTIONS] + [
    (attack.key, "mcp", CONNECTIONS[-1]) for attack in ATTACKS
]

# -- the attacker process ---------------------------------------------------------------------


@dataclass
class Outcome:
    """What one attack connection saw."""

    code: int | None = None  # the server's close code; None: no close frame seen
    reason: str = ""  # the close frame's reason
    closed: bool = False  # the server closed it (close frame, EOF, reset or broken pipe)
    cut: bool = False  # still open when the measured period ended (neither closed nor refused)
    frames: int = 0  # frames sent before the close arrived
    seconds: float = 0.0  # from the handshake's end to the close

    def as_json(self) -> dict[str, object]:
        """The outcome as a JSON object (the keyword arguments of `Outcome`)."""
        return dict(vars(self))


def _attack_once(attack: Attack, port: int, chunk: bytes, deadline: float) -> Outcome:
    """One connection: send the fragmented message until the server closes it or ``deadline``."""
    outcome = Outcome()
    sock, rest = connect(port, timeout=SOCKET_TIMEOUT)
    sent = [0]  # frames handed to the kernel so far, read by the drain thread
    start = time.monotonic()
    seen = threading.Event()  # the server closed the connection
    stop = threading.Event()  # the sender gave up: the drain thread ends without a verdict

    def drain() -> None:
        # Parse the server's frames until its close frame, EOF or a reset.
        buffer = bytearray(rest)
        try:
            while not stop.is_set():
                close = close_frame(buffer)
                if close is not None:
                    outcome.code, outcome.reason = close
                    break
                try:
                    data = sock.recv(1 << 16)
                except TimeoutError:
                    continue
                if not data:
                    break
                buffer += data
        except OSError:
            pass  # ECONNRESET: closed
        if not stop.is_set():
            outcome.frames, outcome.seconds = sent[0], time.monotonic() - start
            seen.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    late = False  # sending stopped at the deadline, not because the server closed
    try:
        sock.sendall(frame(OP_TEXT, attack.first, fin=False))
        sent[0] = 1
        left = attack.fillers
        while left and not seen.is_set():
            if time.monotonic() >= deadline:
                late = True
                break
            count = min(left, CHUNK_FRAMES)
            sock.sendall(chunk if count == CHUNK_FRAMES else chunk[: len(chunk) // CHUNK_FRAMES * count])
            left -= count
            sent[0] += count
        if not left and not seen.is_set():
            sock.sendall(frame(OP_CONT, attack.last, fin=True))
            sent[0] += 1
    except OSError:
        pass  # EPIPE or ECONNRESET (the server closed; the drain thread sees it), or a timeout
    # The verdict: the close (or reset), which may take a moment to arrive after a failed send.
    seen.wait(0 if late else CLOSE_WAIT)
    stop.set()
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the drain thread's recv
    except OSError:
        pass
    reader.join(timeout=SOCKET_TIMEOUT)
    sock.close()
    if seen.is_set():
        outcome.closed = True
    else:
        outcome.cut, outcome.frames, outcome.seconds = late, sent[0], time.monotonic() - start
    return outcome


def run_attacker(attack_key: str, port: int, seconds: float, connections: int) -> None:
    """Attack on ``connections`` connections for ``seconds``, each reconnecting after each close.

    Prints ``ATTACKING``, then ``RESULT <json list of outcomes>``.
    """
    attack = next(attack for attack in ATTACKS if attack.key == attack_key)
    chunk = frame(OP_CONT, attack.filler, fin=False) * CHUNK_FRAMES
    deadline = time.monotonic() + min(seconds, LIFETIME)
    outcomes: list[Outcome] = []
    errors: list[str] = []

    def one() -> None:
        try:
            outcomes.append(_attack_once(attack, port, chunk, deadline))
        except OSError as exc:  # a connect or handshake that failed: note it, retry
            errors.append(repr(exc))

    def worker() -> None:
        while time.monotonic() < deadline and len(errors) < 1000:
            one()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    print("ATTACKING", flush=True)
    for thread in threads:
        thread.join(timeout=seconds + 2 * (SOCKET_TIMEOUT + CLOSE_WAIT) + 10)
    print("RESULT", json.dumps({"outcomes": [o.as_json() for o in outcomes], "errors": errors}), flush=True)


# -- the measuring side -----------------------------------------------------------------------


def _child(*args: str) -> Peer:
    """This module run as a child process (stderr inherited)."""
    return spawn("benchmarks.case_fragments", *args)


@dataclass
class Row:
    """The figures of one attack on one server."""

    attack: Attack
    server: str
    connections: int
    outcomes: list[Outcome]
    errors: list[str]
    cpu: float
    rtts: list[float]
    baseline: float
    peak_rss: int

    def cells(self) -> list[str]:
        """The table cells of this row."""
        closed = [o for o in self.outcomes if o.closed]
        done = [o for o in self.outcomes if not o.cut]
        codes = Counter("none" if o.code is None else str(o.code) for o in done)
        code_text = ", ".join(f"{code} x{count}" for code, count in codes.most_common()) or "-"
        reasons = Counter(o.reason for o in closed if o.reason)
        reason_text = "; ".join(f'"{reason}"' for reason, _ in reasons.most_common(2)) or "-"
        frames = [float(o.frames) for o in closed]
        walls = [o.seconds for o in closed]
        per_conn = self.cpu / len(closed) if closed else float("inf")
        p99 = percentile(self.rtts, 0.99)
        all_1009 = bool(done) and all(o.code == TARGET_CODE for o in done)
        ok = all_1009 and not self.errors and per_conn <= TARGET_CPU and p99 < TARGET_P99
        started = f"{len(closed)} (+{sum(o.cut for o in self.outcomes)} open at the end)"
        return [
            self.attack.label,
            SERVERS[self.server],
            str(self.connections),
            started + (f", {len(self.errors)} failed to connect" if self.errors else ""),
            code_text,
            reason_text,
            f"{percentile(frames, 0.5):,.0f} / {max(frames, default=float('nan')):,.0f}",
            f"{percentile(walls, 0.5) * 1000:.0f}",
            f"{per_conn * 1000:.1f}",
            *probe_cells(self.rtts, self.baseline),
            f"{self.peak_rss / MiB:.0f}",
            verdict(ok),
        ]


def measure(attack: Attack, server_kind: str, connections: int, seconds: float) -> Row:
    """One attack: fresh server, the idle baseline, then the attack with the probe alongside."""
    mcp = server_kind == "mcp"
    server = _child("--serve", server_kind)
    attacker: Peer | None = None
    try:
        port = int(server.expect("READY", START_TIMEOUT))
        baseline = idle_median(port, IDLE_SECONDS, mcp=mcp)
        with RssSampler(server.pid) as sampler:
            before = cpu_seconds(server.pid)
            duration = str(seconds + WARMUP)
            attacker = _child(
                "--attacker",
                attack.key,
                "--port",
                str(port),
                "--seconds",
                duration,
                "--connections",
                str(connections),
            )
            attacker.expect("ATTACKING", START_TIMEOUT)
            time.sleep(WARMUP)  # pacing: let the attack reach full speed before measuring
            rtts = ping_round_trips(port, seconds, mcp=mcp)
            result = json.loads(attacker.expect("RESULT", START_TIMEOUT))
            cpu = cpu_seconds(server.pid) - before
        outcomes = [Outcome(**o) for o in result["outcomes"]]
        return Row(
            attack, server_kind, connections, outcomes, result["errors"], cpu, rtts, baseline, sampler.peak
        )
    finally:
        if attacker is not None:
            attacker.stop()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Run every attack on every server (or act as one of the child processes); print markdown."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_fragments")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_SECONDS:.0f} s per attack")
    parser.add_argument("--attack", action="append", choices=[attack.key for attack in ATTACKS])
    parser.add_argument("--server", action="append", choices=list(SERVERS))
    parser.add_argument("--serve", choices=list(SERVERS), help=argparse.SUPPRESS)
    parser.add_argument("--attacker", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_target(args.serve, name="fragments-bench", lifetime=LIFETIME)
        return 0
    if args.attacker:
        run_attacker(args.attacker, args.port, args.seconds, args.connections)
        return 0
    seconds = SMOKE_SECONDS if args.smoke else FULL_SECONDS
    servers = args.server or (["echo"] if args.smoke else list(SERVERS))
    attacks = {attack.key: attack for attack in ATTACKS}
    rows = [
        measure(attacks[key], server, connections, seconds)
        for key, server, connections in ROWS
        if server in servers and (not args.attack or key in args.attack)
    ]
    print(f"## Fragment floods ({seconds:.0f} s per attack)\n")
    print(
        f"Each attacker connection sends one endless fragmented message (up to 5,000,000 empty "
        f"continuation frames, or 4 MiB in 1-byte frames) and reconnects whenever the server "
        f"closes it, while a probe client sends `ping`; frames sent before the close include what "
        f"was still in the socket buffers. Targets: every attack closed with {TARGET_CODE}, "
        f"server CPU <= {TARGET_CPU:.0f} s per attack connection, probe p99 < "
        f"{TARGET_P99 * 1000:.0f} ms.\n"
    )
    header = ["attack", "server", "attacker connections", "attacks closed", "close codes", "close reason"]
    header += ["frames sent before the close, p50 / max", "time to close p50 ms", "server CPU per attack ms"]
    header += [
        "probe round trips",
        "idle p50 ms",
        "p50 ms",
        "p99 ms",
        "worst ms",
        "peak RSS MiB",
        "on target",
    ]
    print(table(header, (row.cells() for row in rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
