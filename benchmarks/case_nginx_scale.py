"""Scale-out behind nginx: 1, 2 and 4 worker processes, through nginx and directly.

``python -m benchmarks.case_nginx_scale [--smoke]`` prints a markdown section (a heading
and a table) and exits 0. For each worker count it starts that many worker processes on
127.0.0.1 sharing two ports with ``SO_REUSEPORT`` (``serve_mcp`` with an official
``MCPServer`` on one, ``serve`` with an echo handler on the other: what ``serve --workers``
does, without a stdio child per connection, so the figures are the transport's and the
proxy's, not process spawning's), then measures from this process, first directly and then
through nginx (docs/deploy.md's configuration, tests/deploy/nginx-mcp.conf, without TLS so
both paths do the same work):

- **call_tool rate**: `CALL_CLIENTS` official ``mcp.Client`` sessions (mode ``auto``, so the
  2026-07-28 era) calling a tool back to back for a fixed time; calls per second.
- **streaming**: `STREAM_CONNECTIONS` connections (our ``websocket_client``) opened at once,
  then each sending `STREAM_MESSAGES` small JSON-RPC notifications, echoed back, windowed;
  messages per second both ways, and the time the connections took to open.

Every row carries the CPU each process used over its phases (workers one by one, nginx,
this client process), in % of one core. The machine this is written on has 2 cores, so
past 2 workers there is nothing left to gain and the client competes with the workers:
the table says so rather than hide it. Without nginx the nginx rows say why and the rest
still runs. Every child is stopped by pid in a ``finally``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks._markdown import table
from benchmarks._process import ROOT, cpu_seconds, spawn, stop_all

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmarks._process import Peer

NGINX_SITE: Final = ROOT / "tests" / "deploy" / "nginx-mcp.conf"
WORKER_COUNTS: Final = (1, 2, 4)
CALL_CLIENTS: Final = 32
CALL_SECONDS: Final = 5.0
STREAM_CONNECTIONS: Final = 1000
STREAM_MESSAGES: Final = 50
# Smoke mode: the same phases, small enough for a few seconds per configuration.
SMOKE_CALL_CLIENTS: Final = 4
SMOKE_CALL_SECONDS: Final = 1.0
SMOKE_STREAM_CONNECTIONS: Final = 50
SMOKE_STREAM_MESSAGES: Final = 10
# Messages a connection may have in flight before it waits for echoes.
WINDOW: Final = 10
# Seconds for a worker to import the SDK and listen, and for nginx to listen.
START_TIMEOUT: Final = 60.0
# Seconds for opening every connection of the streaming phase (1,000 handshakes on 2 cores).
CONNECT_TIMEOUT: Final = 120.0
# Handshakes in flight at once, so the figure is about streaming, not a connect storm: a
# server reads a bounded number at once and drops the oldest beyond that (its defence
# against slow-handshake squatters; it was 256 when an unpaced burst of 1,000 against one
# worker lost hundreds).
HANDSHAKES_IN_FLIGHT: Final = 128


@dataclass
class Row:
    """One configuration's figures."""

    workers: int
    path: str
    calls_per_s: float | None = None
    connect_s: float | None = None
    messages_per_s: float | None = None
    worker_cpu: list[float] = field(default_factory=list[float])
    nginx_cpu: float | None = None
    client_cpu: float | None = None
    note: str = ""

    def cells(self) -> list[str]:
        def num(value: float | None, digits: int = 0) -> str:
            return "-" if value is None else f"{value:,.{digits}f}"

        cpu = " / ".join(f"{value:.0f}" for value in self.worker_cpu) or "-"
        return [
            str(self.workers),
            self.path,
            num(self.calls_per_s),
            num(self.connect_s, 2),
            num(self.messages_per_s),
            cpu,
            num(self.nginx_cpu),
            num(self.client_cpu),
            self.note,
        ]


# --- the worker process ------------------------------------------------------------------


def run_worker(mcp_port: int, echo_port: int) -> None:
    """Serve MCP and echo on the shared ports with SO_REUSEPORT; print ``READY``; serve until killed."""
    import trio
    from mcp.server.mcpserver import MCPServer

    from trio_mcp_ws import ReadChannel, WriteChannel, serve, serve_mcp

    server = MCPServer("nginx-scale")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    async def echo_handler(read: ReadChannel, write: WriteChannel) -> None:
        async for item in read:
            if not isinstance(item, Exception):
                await write.send(item)

    async def main() -> None:
        common: dict[str, Any] = {
            "reuse_port": True,
            "trusted_proxies": ["127.0.0.1"],
            "max_connections": 4096,
            "first_message_timeout": None,
            "ping_interval": None,
        }
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve_mcp, server, "127.0.0.1", mcp_port, **common))
            await nursery.start(partial(serve, echo_handler, "127.0.0.1", echo_port, path="/echo", **common))
            print("READY", os.getpid(), flush=True)

    trio.run(main)


# --- the client (this process) -----------------------------------------------------------


async def call_rate(url: str, clients: int, seconds: float) -> float:
    """Calls per second of ``clients`` mcp.Client sessions calling ``echo`` back to back."""
    import trio
    from mcp import Client

    from trio_mcp_ws import websocket_client

    calls = 0
    ready = trio.Event()
    entered = 0
    window: list[float] = []

    async def one() -> None:
        nonlocal calls, entered
        async with Client(websocket_client(url, connect_timeout=CONNECT_TIMEOUT), mode="auto") as client:
            entered += 1
            if entered == clients:
                window.append(trio.current_time())
                ready.set()
            await ready.wait()
            deadline = window[0] + seconds
            while trio.current_time() < deadline:
                result = await client.call_tool("echo", {"text": "hi"})
                assert not result.is_error
                calls += 1

    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(one)
    return calls / seconds


async def stream(url: str, connections: int, messages: int) -> tuple[float, float]:
    """Open ``connections`` at once, then stream; (seconds to open them all, messages per second)."""
    import mcp_types as types
    import trio
    from mcp.shared.message import SessionMessage

    from trio_mcp_ws import websocket_client

    opened = 0
    all_open = trio.Event()
    handshakes = trio.CapacityLimiter(HANDSHAKES_IN_FLIGHT)
    marks: dict[str, float] = {"start": trio.current_time()}
    finished = 0

    async def one() -> None:
        nonlocal opened, finished
        async with AsyncExitStack() as stack:
            async with handshakes:
                connection = websocket_client(url, connect_timeout=CONNECT_TIMEOUT, ping_interval=None)
                read, write = await stack.enter_async_context(connection)
            opened += 1
            if opened == connections:
                marks["open"] = trio.current_time()
                all_open.set()
            await all_open.wait()
            credit = trio.Semaphore(WINDOW)

            async def send() -> None:
                for i in range(messages):
                    await credit.acquire()
                    note = types.JSONRPCNotification(
                        jsonrpc="2.0", method="notifications/message", params={"i": i}
                    )
                    await write.send(SessionMessage(note))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                for _ in range(messages):
                    item = await read.receive()
                    assert isinstance(item, SessionMessage), item
                    credit.release()
            finished += 1
            if finished == connections:
                marks["done"] = trio.current_time()

    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(one)
    elapsed = marks["done"] - marks["open"]
    return marks["open"] - marks["start"], 2 * connections * messages / elapsed


# --- processes ---------------------------------------------------------------------------


def reserve_ports(count: int) -> list[socket.socket]:
    """Sockets bound with SO_REUSEPORT that never listen: they hold free ports for the workers."""
    held: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        held.append(sock)
    return held


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def nginx_config(prefix: Path, listen: int, mcp_port: int, echo_port: int) -> Path:
    """docs/deploy.md's site file without TLS, plus an /echo location, in a foreground main config."""
    site = NGINX_SITE.read_text(encoding="utf-8")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{listen} backlog=4096;")
    site = re.sub(r"\n\s*ssl_certificate(_key)? [^\n]*;", "", site)
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{mcp_port};")
    site += f"\nupstream echo {{ server 127.0.0.1:{echo_port}; }}\n"
    echo = site[site.index("    location = /mcp {") : site.index("    # The workers' health")]
    echo = echo.replace("location = /mcp", "location = /echo").replace("http://trio_mcp_ws", "http://echo")
    site = site.replace("    # The workers' health", echo + "    # The workers' health")
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    (prefix / "logs").mkdir(exist_ok=True)
    (prefix / "site.conf").write_text(site, encoding="utf-8")
    main = prefix / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = prefix / "temp"
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\nworker_rlimit_nofile 16384;\n"
        f"pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 8192; }\n"
        + "http {\n  access_log off;\n"
        + "".join(
            f"  {kind}_temp_path {temp / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi")
        )
        + f"  scgi_temp_path {temp / 'scgi'};\n  include {prefix / 'site.conf'};\n}}\n",
        encoding="utf-8",
    )
    return main


def start_nginx(binary: str, prefix: Path, config: Path, port: int) -> subprocess.Popen[bytes]:
    log = (prefix / "nginx.out").open("wb")
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:  # an external process: a bounded poll is the only way
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(prefix / 'error.log').read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not listen in time")


def stop_nginx(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(rows: list[Row], workers: int, *, smoke: bool, work: Path) -> None:
    """Run both paths (direct, then nginx) for ``workers`` worker processes; append their rows."""
    import trio

    held = reserve_ports(2)
    mcp_port, echo_port = (sock.getsockname()[1] for sock in held)
    peers: list[Peer] = []
    nginx: subprocess.Popen[bytes] | None = None
    try:
        me = ("benchmarks.case_nginx_scale", "--worker", str(mcp_port), str(echo_port))
        peers = [spawn(*me, log=work / f"worker-{workers}-{i}.log") for i in range(workers)]
        for peer in peers:
            peer.expect("READY", START_TIMEOUT)
        paths: list[tuple[str, str, str]] = [
            ("direct", f"ws://127.0.0.1:{mcp_port}/mcp", f"ws://127.0.0.1:{echo_port}/echo")
        ]
        binary = nginx_binary()
        if binary is not None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                listen = probe.getsockname()[1]
            prefix = work / f"nginx-{workers}"
            nginx = start_nginx(binary, prefix, nginx_config(prefix, listen, mcp_port, echo_port), listen)
            paths.append(("nginx", f"ws://127.0.0.1:{listen}/mcp", f"ws://127.0.0.1:{listen}/echo"))
        for name, mcp_url, echo_url in paths:
            row = Row(workers, name)
            pids = [peer.pid for peer in peers]
            before = [cpu_seconds(pid) for pid in pids]
            through = nginx if name == "nginx" else None
            nginx_before = cpu_seconds(through.pid, children=True) if through is not None else None
            client_before = cpu_seconds(os.getpid())
            start = time.monotonic()
            clients, seconds = (
                (SMOKE_CALL_CLIENTS, SMOKE_CALL_SECONDS) if smoke else (CALL_CLIENTS, CALL_SECONDS)
            )
            row.calls_per_s = trio.run(call_rate, mcp_url, clients, seconds)
            connections, messages = (
                (SMOKE_STREAM_CONNECTIONS, SMOKE_STREAM_MESSAGES)
                if smoke
                else (STREAM_CONNECTIONS, STREAM_MESSAGES)
            )
            row.connect_s, row.messages_per_s = trio.run(stream, echo_url, connections, messages)
            wall = time.monotonic() - start
            row.worker_cpu = [
                100 * (cpu_seconds(pid) - was) / wall for pid, was in zip(pids, before, strict=True)
            ]
            if nginx is not None and nginx_before is not None:
                row.nginx_cpu = 100 * (cpu_seconds(nginx.pid, children=True) - nginx_before) / wall
            row.client_cpu = 100 * (cpu_seconds(os.getpid()) - client_before) / wall
            rows.append(row)
        if binary is None:
            rows.append(Row(workers, "nginx", note="skipped: nginx not found (apt-get install nginx)"))
    finally:
        if nginx is not None:
            stop_nginx(nginx)
        for peer in peers:
            peer.stop()
        for sock in held:
            sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every configuration (or act as a worker) and print the markdown."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_nginx_scale", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="small phases: a few seconds per configuration")
    parser.add_argument(
        "--worker", nargs=2, type=int, metavar=("MCP_PORT", "ECHO_PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(*args.worker)
        return 0
    smoke: bool = args.smoke
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory(prefix="nginx-scale-") as work:
            for workers in WORKER_COUNTS:
                measure(rows, workers, smoke=smoke, work=Path(work))
    finally:
        stop_all()
    clients = SMOKE_CALL_CLIENTS if smoke else CALL_CLIENTS
    connections = SMOKE_STREAM_CONNECTIONS if smoke else STREAM_CONNECTIONS
    messages = SMOKE_STREAM_MESSAGES if smoke else STREAM_MESSAGES
    print(
        f"## Scale-out: worker processes behind nginx ({os.cpu_count()} cores{', smoke' if smoke else ''})\n"
    )
    print(
        f"`call_tool` rate of {clients} `mcp.Client` sessions (auto mode, `serve_mcp`), and "
        f"{connections} connections opened at once, then each streaming {messages} notifications "
        f"echoed back (window {WINDOW}; rate counts both ways). Workers share the port with "
        "`SO_REUSEPORT`; nginx runs docs/deploy.md's configuration without TLS, one nginx "
        "worker process. CPU in % of one core over both phases; the client is this one "
        "process, on the same cores.\n"
    )
    header = ["workers", "path", "call_tool/s", "open all s", "messages/s", "worker CPU %", "nginx CPU %"]
    header += ["client CPU %", "note"]
    print(table(header, (row.cells() for row in rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
