"""Shutdown under overload: cancelling `serve_mcp` while hundreds of clients call tools.

``python -m benchmarks.case_shutdown [--smoke]`` prints a markdown section and exits 0. For each
``close_timeout`` in `CLOSE_TIMEOUTS` (the default, then 3 s) it starts a server process on
127.0.0.1 (`serve_mcp` with an official ``MCPServer`` and two tools: ``add`` and ``nap``, which
sleeps 50 ms so calls are always in flight) and a client process holding `CONNECTIONS`
WebSocket connections (raw sockets, a minimal handshake and frame parser: the client API does not
tell 1000 from 1001) that initialize and then call the tools, paced to `RATE` calls a second in
all. After `LOAD` seconds of load this process writes ``STOP`` to the server, which cancels its
serve scope and prints ``STOPPED <seconds>`` (cancel to nursery exit) and ``WARNINGS <n>`` (log
records at WARNING or above, counted by a root handler). Measured: those two, the wall time from
``STOP`` until the server process exited, the close code every connection saw (a histogram), and
the calls answered in the second before the stop. Targets (issue 10, item 7): shutdown within
``close_timeout`` + 1 s, every client sees 1001.

Bounded: every child exits by itself after `LIFETIME` seconds, every wait has a deadline, and
every child is stopped by pid in a ``finally``. Smoke mode: `SMOKE_CONNECTIONS` connections and
a short load.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import json
import os
import resource
import selectors
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from benchmarks._markdown import table, verdict
from benchmarks._process import Peer, raise_fd_limit, spawn, stdin_closed
from benchmarks._rawws import (
    INITIALIZE,
    INITIALIZED,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_payload,
    frame,
    handshake_request,
    parse_frame,
    text_frame,
)

if TYPE_CHECKING:
    import threading

# None: serve_mcp's default close_timeout (10 s).
CLOSE_TIMEOUTS: Final = (None, 3.0)
CONNECTIONS: Final = 500
SMOKE_CONNECTIONS: Final = 50
# Calls a second over all connections, and the most one connection keeps unanswered.
RATE: Final = 1000.0
SMOKE_RATE: Final = 500.0
MAX_IN_FLIGHT: Final = 4
# Seconds ``nap`` sleeps: about RATE / 2 * NAP calls are in flight at any time.
NAP: Final = 0.05
# Seconds of load, after every connection is up, before the stop.
LOAD: Final = 5.0
SMOKE_LOAD: Final = 1.5
# Every child exits after this many seconds, whatever happens to this process.
LIFETIME: Final = 120.0
# Seconds for a child's first line (the server imports the SDK) and for all connections to open.
START_TIMEOUT: Final = 60.0
# Seconds beyond close_timeout that a shutdown, and the clients' last reports, may take before
# this process gives up on them (a miss is still reported).
STOP_SLACK: Final = 30.0
TARGET_SLACK: Final = 1.0
ABNORMAL: Final = 1006  # no close frame before the TCP connection ended
BUCKET: Final = 0.1  # seconds per bucket of the clients' answer timestamps

# -- the server process -----------------------------------------------------------------------


def run_server(close_timeout: float | None) -> None:
    """Serve until ``STOP`` (or EOF) on stdin; print ``READY``, then ``STOPPED`` and ``WARNINGS``."""
    import logging

    import anyio
    import trio
    from mcp.server.mcpserver import MCPServer

    import trio_mcp_ws

    raise_fd_limit()
    mcp = MCPServer("shutdown-bench", log_level="WARNING")

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool()
    async def nap(seconds: float) -> str:
        """Sleep, then answer: keeps calls in flight."""
        await anyio.sleep(min(seconds, 1.0))
        return "rested"

    class Counting(logging.Handler):
        """Counts the records at WARNING or above, by logger and message template."""

        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.kinds: Counter[str] = Counter()

        def emit(self, record: logging.LogRecord) -> None:
            self.kinds[f"{record.name}: {str(record.msg)[:60]}"] += 1

    # After MCPServer(): its logging.basicConfig adds a handler only to a root that has none.
    counting = Counting()
    logging.getLogger().addHandler(counting)

    async def main() -> float | None:
        with trio.move_on_after(LIFETIME):
            serving = trio.CancelScope()
            async with trio.open_nursery() as nursery:

                async def serve(*, task_status: trio.TaskStatus[trio_mcp_ws.ServerInfo]) -> None:
                    with serving:
                        if close_timeout is None:  # serve_mcp's own default
                            await trio_mcp_ws.serve_mcp(mcp, "127.0.0.1", 0, task_status=task_status)
                        else:
                            await trio_mcp_ws.serve_mcp(
                                mcp, "127.0.0.1", 0, close_timeout=close_timeout, task_status=task_status
                            )

                info = await nursery.start(serve)
                print("READY", info.port, flush=True)
                # A thread reads stdin: any line (STOP) or EOF stops the server.
                await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
                start = time.perf_counter()
                serving.cancel()
            return time.perf_counter() - start
        return None

    elapsed = trio.run(main)
    if elapsed is not None:
        print("STOPPED", f"{elapsed:.3f}", flush=True)
    print("WARNINGS", sum(counting.kinds.values()), json.dumps(counting.kinds.most_common(3)), flush=True)


# -- the client process -----------------------------------------------------------------------


def _call(request_id: int) -> bytes:
    """A ``tools/call`` frame: even ids call ``add``, odd ones ``nap``."""
    if request_id % 2:
        params = f'{{"name":"nap","arguments":{{"seconds":{NAP}}}}}'
    else:
        params = f'{{"name":"add","arguments":{{"a":{request_id},"b":1}}}}'
    text = f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call","params":{params}}}'
    return text_frame(text)


@dataclass
class Conn:
    """One client connection's socket, buffers and state."""

    sock: socket.socket
    state: str = "connecting"  # connecting, handshake, initializing, running, closing, done
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    fragments: bytearray = field(default_factory=bytearray)
    next_id: int = 1
    in_flight: int = 0
    close_code: int | None = None
    close_at: float | None = None


class Load:
    """The client side: `CONNECTIONS` raw WebSocket connections in one selector loop."""

    def __init__(self, port: int, count: int, rate: float) -> None:
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.conns: list[Conn] = []
        self.period = count / rate  # seconds between two calls on one connection
        self.due: list[tuple[float, int]] = []
        self.connected = 0
        self.failed = 0
        self.sent = 0
        self.answered = 0
        self.errors: list[float] = []  # when each error answer came
        self.first_error: str | None = None
        self.answers: Counter[int] = Counter()  # time bucket -> calls answered
        self.request = handshake_request(port, base64.b64encode(os.urandom(16)).decode())
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            self.conns.append(Conn(sock))
            self.selector.register(sock, selectors.EVENT_WRITE, len(self.conns) - 1)

    def _send(self, index: int, data: bytes) -> None:
        """Queue ``data`` and write as much as the socket takes now."""
        conn = self.conns[index]
        conn.outbuf += data
        self._flush(index)

    def _flush(self, index: int) -> None:
        conn = self.conns[index]
        try:
            sent = conn.sock.send(conn.outbuf)
            del conn.outbuf[:sent]
        except BlockingIOError:
            pass
        except OSError:
            conn.outbuf.clear()  # the peer is gone; the read side sees the end
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        self.selector.modify(conn.sock, events, index)

    def _finish(self, index: int, code: int) -> None:
        """The connection is over: record ``code`` unless a close frame already did."""
        conn = self.conns[index]
        if conn.close_code is None:
            conn.close_code, conn.close_at = code, time.monotonic()
        if conn.state in ("connecting", "handshake", "initializing"):
            self.failed += 1
        conn.state = "done"
        self.selector.unregister(conn.sock)
        conn.sock.close()

    def _on_message(self, index: int, text: bytes) -> None:
        conn = self.conns[index]
        if conn.state == "initializing":
            conn.state = "running"
            self.connected += 1
            self._send(index, text_frame(INITIALIZED))
            # Stagger the first calls over one period, so the load is even.
            heapq.heappush(self.due, (time.monotonic() + self.period * index / len(self.conns), index))
            return
        reply = json.loads(text)
        if "id" not in reply:
            return  # a notification
        conn.in_flight -= 1
        self.answered += 1
        self.answers[int(time.monotonic() / BUCKET)] += 1
        if "error" in reply or reply.get("result", {}).get("isError"):
            self.errors.append(time.monotonic())
            self.first_error = self.first_error or text.decode(errors="replace")[:200]

    def _on_readable(self, index: int) -> None:
        conn = self.conns[index]
        try:
            data = conn.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._finish(index, ABNORMAL)
            return
        conn.inbuf += data
        if conn.state == "handshake":
            end = conn.inbuf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not conn.inbuf.startswith(b"HTTP/1.1 101"):
                status = bytes(conn.inbuf[9:12])
                self._finish(index, int(status) if status.isdigit() else 0)  # the HTTP status
                return
            del conn.inbuf[: end + 4]
            conn.state = "initializing"
            self._send(index, text_frame(INITIALIZE))
        self._parse(index)

    def _parse(self, index: int) -> None:
        """Handle every complete server frame in the connection's buffer (server frames are unmasked)."""
        conn = self.conns[index]
        buf = conn.inbuf
        while conn.state != "done" and (parsed := parse_frame(buf)) is not None:
            first, start, end = parsed
            payload = bytes(buf[start:end])
            del buf[:end]
            opcode = first & 0x0F
            if opcode == OP_CLOSE:  # record the code, answer it, wait for the TCP end
                if conn.close_code is None:
                    conn.close_code, conn.close_at = close_payload(payload)[0], time.monotonic()
                    self._send(index, frame(OP_CLOSE, payload[:2]))
                conn.state = "closing"
            elif opcode == OP_PING:
                self._send(index, frame(OP_PONG, payload))
            elif opcode in (OP_CONT, OP_TEXT, OP_BINARY):
                conn.fragments += payload
                if first & 0x80:
                    message = bytes(conn.fragments)
                    conn.fragments.clear()
                    if conn.state in ("initializing", "running"):
                        self._on_message(index, message)

    def _send_due_calls(self, now: float) -> None:
        """Send a call on each connection whose turn it is (skipped while it has too many in flight)."""
        while self.due and self.due[0][0] <= now:
            when, index = heapq.heappop(self.due)
            conn = self.conns[index]
            if conn.state != "running":
                continue
            if conn.in_flight < MAX_IN_FLIGHT:
                conn.in_flight += 1
                self.sent += 1
                self._send(index, _call(conn.next_id))
                conn.next_id += 1
            # Pacing: the next turn is one period later (or now + period if far behind).
            heapq.heappush(self.due, (max(when + self.period, now), index))

    def run(self, stop: threading.Event) -> None:
        """Drive every connection until all are done, ``stop`` is set, or `LIFETIME` passes."""
        deadline = time.monotonic() + LIFETIME
        announced = False
        while not stop.is_set() and (now := time.monotonic()) < deadline:
            if all(conn.state == "done" for conn in self.conns):
                break
            self._send_due_calls(now)
            timeout = min(0.1, max(0.0, self.due[0][0] - now) if self.due else 0.1)
            for key, events in self.selector.select(timeout):
                index = key.data
                assert isinstance(index, int)
                conn = self.conns[index]
                if conn.state == "connecting":
                    if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self._finish(index, 0)
                        continue
                    conn.state = "handshake"
                    self._send(index, self.request)
                    continue
                if events & selectors.EVENT_WRITE and conn.state != "done":
                    self._flush(index)
                if events & selectors.EVENT_READ and conn.state != "done":
                    self._on_readable(index)
            if not announced and self.connected + self.failed == len(self.conns):
                announced = True
                print("CONNECTED", self.connected, flush=True)
        for index, conn in enumerate(self.conns):
            if conn.state != "done":
                self._finish(index, 0)  # 0: still open when the client gave up

    def result(self) -> dict[str, object]:
        """What the measuring process needs, as JSON-ready values."""
        return {
            "codes": Counter(str(conn.close_code) for conn in self.conns),
            "close_at": [conn.close_at for conn in self.conns if conn.close_at is not None],
            "answers": sorted(self.answers.items()),
            "sent": self.sent,
            "answered": self.answered,
            "errors": self.errors,
            "first_error": self.first_error,
            "unanswered": sum(conn.in_flight for conn in self.conns),
        }


def run_client(port: int, count: int, rate: float) -> None:
    """Open ``count`` connections and call tools at ``rate``; print ``CONNECTED``, then ``RESULT``.

    Runs until the server has closed every connection, or its stdin closes, or `LIFETIME`.
    """
    raise_fd_limit()
    stop = stdin_closed()
    began = time.monotonic()
    load = Load(port, count, rate)
    load.run(stop)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = load.result()
    result["cpu"] = (usage.ru_utime + usage.ru_stime) / (time.monotonic() - began)
    print("RESULT", json.dumps(result), flush=True)


# -- the measuring side -----------------------------------------------------------------------


def _peer(logs: Path, name: str, *args: str) -> Peer:
    """This module run as a child process, its stderr in ``logs``/``name``.log."""
    return spawn("benchmarks.case_shutdown", *args, log=logs / f"{name}.log")


@dataclass
class Row:
    """The figures of one close_timeout."""

    close_timeout: float
    connections: int
    connected: int
    rate: float
    stopped: float | None
    exited: float | None
    last_close: float | None
    codes: Counter[str]
    warnings: int
    kinds: list[tuple[str, int]]
    sent: int
    answered: int
    errors_before: int
    errors_after: int
    first_error: str | None
    unanswered: int
    stderr_lines: int
    client_cpu: float

    @property
    def target(self) -> float:
        """The shutdown target, in seconds."""
        return self.close_timeout + TARGET_SLACK

    def on_target(self) -> bool:
        """Both shutdown figures within target, and every connection saw 1001."""
        return (
            self.stopped is not None
            and self.exited is not None
            and max(self.stopped, self.exited) <= self.target
            and self.codes.get("1001", 0) == self.connections
        )

    def cells(self) -> list[str]:
        """The table row."""

        def seconds(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.2f}"

        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.codes.items()))
        return [
            f"{self.close_timeout:g}",
            f"{self.connected} / {self.connections}",
            f"{self.rate:,.0f}",
            seconds(self.stopped),
            seconds(self.exited),
            seconds(self.last_close),
            f"{self.target:g}",
            f"{self.codes.get('1001', 0)} / {self.connections}",
            codes,
            "n/a" if self.warnings < 0 else f"{self.warnings:,}",
            verdict(self.on_target()),
        ]


def measure(close_timeout: float | None, connections: int, rate: float, load: float) -> Row:
    """One close_timeout: fresh server and client, load, STOP, and the figures."""
    from trio_mcp_ws._options import DEFAULT_CLOSE_TIMEOUT

    effective = DEFAULT_CLOSE_TIMEOUT if close_timeout is None else close_timeout
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        server_args = ["--serve"] + ([] if close_timeout is None else ["--close-timeout", str(close_timeout)])
        server = _peer(logs, "server", *server_args)
        client: Peer | None = None
        try:
            port = server.expect("READY", START_TIMEOUT)
            client = _peer(logs, "client", "--client", port, "--count", str(connections), "--rate", str(rate))
            connected = int(client.expect("CONNECTED", START_TIMEOUT))
            time.sleep(load)  # the load runs: this is the measured window, not synchronisation
            stop_at = time.monotonic()
            server.send_line("STOP")
            stopped: float | None = None
            exited: float | None = None
            warnings, kinds = -1, "[]"
            try:
                stopped = float(server.expect("STOPPED", effective + STOP_SLACK))
                server.proc.wait(STOP_SLACK)
                exited = time.monotonic() - stop_at
                count, _, kinds = server.expect("WARNINGS", STOP_SLACK).partition(" ")
                warnings = int(count)
            except Exception as exc:  # a shutdown that hangs is a miss, reported as such
                print(f"server did not stop: {exc}", file=sys.stderr)
                server.stop()  # its connections end, so the client reports
            result = json.loads(client.expect("RESULT", STOP_SLACK))
            stderr_lines = len((logs / "server.log").read_text(errors="replace").splitlines())
        finally:
            if client is not None:
                client.stop()
            server.stop()
    first = int((stop_at - 1.0) / BUCKET)
    last = int(stop_at / BUCKET)
    answered_before = sum(n for bucket, n in result["answers"] if first <= bucket < last)
    close_at = [at - stop_at for at in result["close_at"] if at >= stop_at]
    return Row(
        close_timeout=effective,
        connections=connections,
        connected=connected,
        rate=answered_before / ((last - first) * BUCKET),
        stopped=stopped,
        exited=exited,
        last_close=max(close_at) if close_at else None,
        codes=Counter(result["codes"]),
        warnings=warnings,
        kinds=[(kind, n) for kind, n in json.loads(kinds)],
        sent=result["sent"],
        answered=result["answered"],
        errors_before=sum(1 for at in result["errors"] if at < stop_at),
        errors_after=sum(1 for at in result["errors"] if at >= stop_at),
        first_error=result["first_error"],
        unanswered=result["unanswered"],
        stderr_lines=stderr_lines,
        client_cpu=result["cpu"],
    )


def main(argv: list[str] | None = None) -> int:
    """Run the case (or act as one of its child processes) and print the markdown."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_shutdown")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_CONNECTIONS} connections, short load")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--close-timeout", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_server(args.close_timeout)
        return 0
    if args.client:
        run_client(args.client, args.count, args.rate)
        return 0
    raise_fd_limit()
    connections = SMOKE_CONNECTIONS if args.smoke else CONNECTIONS
    rate = SMOKE_RATE if args.smoke else RATE
    load = SMOKE_LOAD if args.smoke else LOAD
    rows = [measure(close_timeout, connections, rate, load) for close_timeout in CLOSE_TIMEOUTS]
    print(f"## Shutdown under load ({connections} connections, ~{rate:,.0f} tool calls/s)\n")
    print(
        f"`serve_mcp` is cancelled after {load:g} s of tool calls (half of them sleep "
        f"{NAP * 1000:.0f} ms, so calls are in flight); targets: shutdown within close_timeout "
        f"+ {TARGET_SLACK:g} s, every client sees close code 1001.\n"
    )
    header = [
        "close_timeout s",
        "connected",
        "calls answered/s, last s before STOP",
        "cancel to serve exit s",
    ]
    header += ["STOP to process exit s", "STOP to last close frame s", "target s", "saw 1001"]
    header += ["close codes", "WARNING+ log records", "on target"]
    print(table(header, (row.cells() for row in rows)))
    print()
    for row in rows:
        kinds = "; ".join(f"{n} x `{kind}`" for kind, n in row.kinds) or "none"
        print(
            f"- close_timeout {row.close_timeout:g} s: {row.sent:,} calls sent, {row.answered:,} "
            f"answered ({row.errors_before:,} with an error before the stop, "
            f"{row.errors_after:,} after it), {row.unanswered:,} unanswered at the close; "
            f"most frequent warnings: {kinds}; server stderr: {row.stderr_lines:,} lines; "
            f"the client process used {row.client_cpu:.0%} of a core."
        )
        if row.first_error:
            print(f"  The first error answer: `{row.first_error}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
