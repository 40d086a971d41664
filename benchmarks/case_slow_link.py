"""permessage-deflate over a slow link: is compression worth its CPU at 20 Mbit/s and 40 ms RTT?

``python -m benchmarks.case_slow_link [--smoke]`` prints a markdown section (a heading, how the
link was made, and a table) and exits 0. For each stack (ours; mcp 1.30's ``websockets`` client
and its ``websocket_server`` under uvicorn, from `benchmarks._mcp130env`) and each compression
setting (off, zlib level 1, level 6) it starts a server process and a client process and times
round trips of the realistic payloads of `benchmarks._spec`: a ``tools/call`` request (~200 B)
answered with a short result, and small requests answered with a ``tools/list`` result
(~40 KB), a text result (~100 KB) and a base64 image (~150 KB). Each round trip is timed on the
client; the bytes on the wire (both directions) are counted around the timed round trips.

The link, in order of preference:

1. **netem**: two network namespaces joined by a veth pair, each end shaped with
   ``tc qdisc ... netem delay 20ms rate 20mbit``; addresses exist inside the namespaces only,
   and both are deleted (with the veth) when the run ends, however it ends. Bytes on the wire
   are the veth's counters (IP and TCP headers and ACKs included).
2. **userspace shaper**, where namespaces or netem are not available (no root, or a kernel
   without ``sch_netem``): a relay on 127.0.0.1 that delivers each chunk 20 ms after the link
   (20 Mbit/s, serialised per direction) has carried it. It models a warm connection (no TCP
   slow start, no loss) and counts TCP payload bytes. The output says which link was used.

Compression settings map to each stack's knobs: ours ``Deflate(level=L)`` (12 window bits,
memory level 5) on both ends; mcp 1.30's ``websockets`` factories with ``{"level": L,
"memLevel": 5}`` on both ends (uvicorn's server factory patched for the level; 12 server window
bits as uvicorn's default), and ``compression=None`` / ``ws_per_message_deflate=False`` for off.

Every child exits on its own after `LIFETIME` seconds and is stopped by pid in a ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from benchmarks._spec import LIFETIME, PAYLOADS, payload

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

ROOT: Final = Path(__file__).resolve().parent.parent
CASE_PAYLOADS: Final = ("tools-call", "tools-list", "text", "image")
LEVELS: Final = ("off", "1", "6")
STACKS: Final = ("ours", "mcp130")
# The link: 20 Mbit/s each way, 20 ms each way (40 ms round trip).
RATE_BITS: Final = 20_000_000
ONE_WAY: Final = 0.020
# Round trips timed per cell, after warm-ups that open TCP's congestion window.
FULL_N: Final = 30
SMOKE_N: Final = 4
WARMUPS: Final = 3
# Seconds a child may take to start listening (mcp 1.30's imports plus uvicorn), and to finish.
START_TIMEOUT: Final = 60.0
CELL_TIMEOUT: Final = 120.0
# netem's queue, in packets: large enough that the shaped link never drops.
NETEM_LIMIT: Final = 100_000
CLIENT_ADDR: Final = "10.231.77.1"
SERVER_ADDR: Final = "10.231.77.2"

TOOLS_CALL_RESULT: Final = (
    '{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"12 open issues"}],"isError":false}}'
)


def request_for(name: str) -> str:
    """What the client sends for payload ``name``: the request itself, or a small request for it."""
    if name == "tools-call":
        return payload(name)
    return json.dumps({"jsonrpc": "2.0", "id": 7, "method": "bench/get", "params": {"name": name}})


def response_for(name: str) -> str:
    """What the server answers for payload ``name``: a short result to the ``tools/call``, else
    the payload itself (each answer then takes the id of the request it answers)."""
    return TOOLS_CALL_RESULT if name == "tools-call" else payload(name)


def asked_for(request: dict[str, Any]) -> str:
    """Which payload a request is for."""
    if request.get("method") == "tools/call":
        return "tools-call"
    return str(request["params"]["name"])


# -- the servers and clients (run as children; each imports only its own stack) ------------


def serve_ours(level: str, host: str) -> None:
    from functools import partial

    import trio
    from mcp.shared.message import SessionMessage

    import trio_mcp_ws

    answers = {name: trio_mcp_ws.decode(response_for(name)) for name in CASE_PAYLOADS}

    async def handler(read: trio_mcp_ws.ReadChannel, write: trio_mcp_ws.WriteChannel) -> None:
        async for item in read:
            if isinstance(item, SessionMessage):
                request = item.message.model_dump(by_alias=True, exclude_unset=True)
                answer = answers[asked_for(request)].model_copy(update={"id": request["id"]})
                await write.send(SessionMessage(answer))

    async def main() -> None:
        compression = None if level == "off" else trio_mcp_ws.Deflate(level=int(level))
        with trio.move_on_after(LIFETIME):
            async with trio.open_nursery() as nursery:
                info: trio_mcp_ws.ServerInfo = await nursery.start(
                    partial(trio_mcp_ws.serve, handler, host, 0, compression=compression, ping_interval=None)
                )
                print(f"READY {info.port}", flush=True)

    trio.run(main)


def serve_mcp130(level: str, host: str) -> None:
    import socket
    import warnings
    from functools import partial

    warnings.simplefilter("ignore")  # uvicorn's and mcp 1.30's deprecation warnings
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    impl: Any = importlib.import_module("uvicorn.protocols.websockets.websockets_impl")
    websocket_server = _sdk130("mcp.server.websocket", "websocket_server")
    SessionMessage = _sdk130("mcp.shared.message", "SessionMessage")
    JSONRPCMessage = _sdk130("mcp.types", "JSONRPCMessage")
    if level != "off":
        # uvicorn builds its server factory with websockets' defaults (zlib level 6); set the level.
        factory = impl.ServerPerMessageDeflateFactory
        settings = {"level": int(level), "memLevel": 5}
        impl.ServerPerMessageDeflateFactory = partial(
            factory, server_max_window_bits=12, compress_settings=settings
        )
    answers = {name: JSONRPCMessage.model_validate_json(response_for(name)).root for name in CASE_PAYLOADS}

    class Endpoint:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async with websocket_server(scope, receive, send) as (read, write), read, write:
                async for item in read:
                    if not isinstance(item, Exception):
                        request = item.message.model_dump(by_alias=True, exclude_unset=True)
                        answer = answers[asked_for(request)].model_copy(update={"id": request["id"]})
                        await write.send(SessionMessage(JSONRPCMessage(answer)))

    async def main() -> None:
        sock = socket.socket()
        sock.bind((host, 0))
        config = uvicorn.Config(
            Starlette(routes=[WebSocketRoute("/mcp", Endpoint())]),
            log_level="warning",
            lifespan="off",
            ws="websockets",
            ws_per_message_deflate=level != "off",
        )
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started:  # uvicorn has no started event; bounded by START_TIMEOUT
            if task.done():
                raise SystemExit("uvicorn did not start")
            await asyncio.sleep(0.01)
        print(f"READY {sock.getsockname()[1]}", flush=True)
        try:
            await asyncio.wait_for(task, LIFETIME)
        except asyncio.TimeoutError:
            pass

    asyncio.run(main())


def _sdk130(module: str, name: str) -> Any:
    """An mcp 1.30 name, looked up at run time (this file is type-checked against mcp 2)."""
    return getattr(importlib.import_module(module), name)


def _handshake_line(stdin: IO[str]) -> None:
    """Tell the runner the timed part starts (or ended) and wait for its go-ahead."""
    if stdin.readline().strip() != "GO":
        raise SystemExit("the runner went away")


def drive_ours(level: str, url: str, n: int) -> None:
    import trio
    from mcp.shared.message import SessionMessage

    import trio_mcp_ws

    async def main() -> None:
        compression = None if level == "off" else trio_mcp_ws.Deflate(level=int(level))
        for name in CASE_PAYLOADS:
            request = trio_mcp_ws.decode(request_for(name))
            ids = iter(range(1_000, 1_000_000))
            async with trio_mcp_ws.websocket_client(url, compression=compression, ping_interval=None) as (
                read,
                write,
            ):

                async def once() -> float:
                    # A new id each time, as real requests have: identical messages would
                    # deflate to a few bytes against the previous one.
                    message = SessionMessage(request.model_copy(update={"id": next(ids)}))  # noqa: B023
                    start = time.perf_counter()
                    await write.send(message)
                    item = await read.receive()
                    if not isinstance(item, SessionMessage):
                        raise SystemExit(f"unexpected {item!r}")
                    return time.perf_counter() - start

                for _ in range(WARMUPS):
                    await once()
                print(f"MARK {name}", flush=True)
                await trio.to_thread.run_sync(_handshake_line, sys.stdin)
                rtts = [await once() for _ in range(n)]
                print(f"DONE {name} {json.dumps(rtts)}", flush=True)
                await trio.to_thread.run_sync(_handshake_line, sys.stdin)

    trio.run(main)


def drive_mcp130(level: str, url: str, n: int) -> None:
    import warnings
    from contextlib import asynccontextmanager

    warnings.simplefilter("ignore")  # mcp 1.30's deprecation warning
    from websockets.asyncio.client import connect
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    @asynccontextmanager
    async def ws_connect(target: str, **kwargs: Any) -> AsyncGenerator[Any, None]:
        if level == "off":
            options: dict[str, Any] = {"compression": None}
        else:
            factory = ClientPerMessageDeflateFactory(compress_settings={"level": int(level), "memLevel": 5})
            options = {"compression": None, "extensions": [factory]}
        async with connect(target, **kwargs, **options) as ws:
            yield ws

    sdk: Any = importlib.import_module("mcp.client.websocket")
    SessionMessage = _sdk130("mcp.shared.message", "SessionMessage")
    JSONRPCMessage = _sdk130("mcp.types", "JSONRPCMessage")
    sdk.ws_connect = ws_connect  # the SDK's client calls websockets' connect through this name
    loop_stdin = sys.stdin

    async def main() -> None:
        for name in CASE_PAYLOADS:
            request = JSONRPCMessage.model_validate_json(request_for(name)).root
            ids = iter(range(1_000, 1_000_000))
            async with sdk.websocket_client(url) as (read, write):

                async def once() -> float:
                    message = SessionMessage(JSONRPCMessage(request.model_copy(update={"id": next(ids)})))  # noqa: B023
                    start = time.perf_counter()
                    await write.send(message)
                    item = await read.receive()
                    if isinstance(item, Exception):
                        raise SystemExit(f"unexpected {item!r}")
                    return time.perf_counter() - start

                for _ in range(WARMUPS):
                    await once()
                print(f"MARK {name}", flush=True)
                await asyncio.to_thread(_handshake_line, loop_stdin)
                rtts = [await once() for _ in range(n)]
                print(f"DONE {name} {json.dumps(rtts)}", flush=True)
                await asyncio.to_thread(_handshake_line, loop_stdin)

    asyncio.run(main())


# -- the links -------------------------------------------------------------------------


class NetemLink:
    """Two namespaces and a shaped veth pair between them; `close` deletes all of it."""

    kind = "netem"

    def __init__(self) -> None:
        tag = str(os.getpid())[-6:]
        self.client_ns, self.server_ns = f"tmw-c{tag}", f"tmw-s{tag}"
        self.client_dev, self.server_dev = f"tmwc{tag}", f"tmws{tag}"
        self.client_host, self.server_host = CLIENT_ADDR, SERVER_ADDR
        self._made: list[str] = []

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)

    def open(self) -> None:
        """Build the link.

        Raises:
            subprocess.CalledProcessError: Not permitted here, or netem is not in this kernel.
        """
        for ns in (self.client_ns, self.server_ns):
            self._ip("netns", "add", ns)
            self._made.append(ns)
        self._ip("link", "add", self.client_dev, "type", "veth", "peer", "name", self.server_dev)
        for ns, dev, addr in (
            (self.client_ns, self.client_dev, CLIENT_ADDR),
            (self.server_ns, self.server_dev, SERVER_ADDR),
        ):
            self._ip("link", "set", dev, "netns", ns)
            self._ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            self._ip("-n", ns, "link", "set", dev, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
            shape = ["delay", f"{ONE_WAY * 1000:.0f}ms", "rate", f"{RATE_BITS // 1_000_000}mbit"]
            netem = [
                "tc",
                "-n",
                ns,
                "qdisc",
                "add",
                "dev",
                dev,
                "root",
                "netem",
                *shape,
                "limit",
                str(NETEM_LIMIT),
            ]
            subprocess.run(netem, check=True, capture_output=True, text=True, timeout=30)

    def wrap(self, role: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.client_ns if role == "client" else self.server_ns, *argv]

    def counted(self) -> int:
        total = 0
        for stat in ("rx_bytes", "tx_bytes"):
            path = f"/sys/class/net/{self.client_dev}/statistics/{stat}"
            argv = ["ip", "netns", "exec", self.client_ns, "cat", path]
            out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout
            total += int(out.strip())
        return total

    def target_port(self, port: int) -> int:
        return port

    def close(self) -> None:
        for ns in reversed(self._made):  # deleting a namespace deletes its end of the veth
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)
        self._made.clear()


@dataclass
class _Direction:
    free_at: float = 0.0
    queue: list[tuple[float, bytes]] = field(default_factory=list[tuple[float, bytes]])


class ShaperLink:
    """A relay thread on 127.0.0.1 that shapes every byte to the link's rate and delay."""

    kind = "userspace shaper"

    def __init__(self) -> None:
        self.client_host = self.server_host = "127.0.0.1"
        self.bytes = 0
        self._server_port = 0
        self._listener: Any = None
        self._stop = False
        self._threads: list[Any] = []

    def open(self) -> None:
        import socket
        import threading

        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        import socket
        import threading

        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            server = socket.create_connection(("127.0.0.1", self._server_port))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ends = [client, server]
            for src, dst in ((client, server), (server, client)):
                thread = threading.Thread(target=self._pipe, args=(src, dst, ends), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pipe(self, src: Any, dst: Any, ends: list[Any]) -> None:
        # Serialise each chunk onto the link (rate), then deliver it ONE_WAY later (delay). At
        # the end of src, half-close dst (a FIN, as the link would pass on); the last of the two
        # directions to finish closes both sockets.
        import socket
        import threading

        direction = _Direction()
        ready = threading.Condition()
        done = False

        def deliver() -> None:
            while True:
                with ready:
                    while not direction.queue and not done:
                        ready.wait()
                    if not direction.queue:
                        break
                    due, chunk = direction.queue.pop(0)
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)  # a link delay, not synchronisation: this is the emulator
                try:
                    dst.sendall(chunk)
                except OSError:
                    break
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            ends.append(None)  # atomic; closing twice (if both see 4) is harmless
            if len(ends) == 4:  # both directions are over
                for sock in ends[:2]:
                    sock.close()

        sender = threading.Thread(target=deliver, daemon=True)
        sender.start()
        try:
            while True:
                chunk = src.recv(16384)
                if not chunk:
                    break
                self.bytes += len(chunk)
                now = time.perf_counter()
                direction.free_at = max(now, direction.free_at) + len(chunk) * 8 / RATE_BITS
                with ready:
                    direction.queue.append((direction.free_at + ONE_WAY, chunk))
                    ready.notify()
        except OSError:
            pass
        finally:
            with ready:
                done = True
                ready.notify()

    def wrap(self, role: str, argv: list[str]) -> list[str]:
        return argv

    def counted(self) -> int:
        return self.bytes

    def target_port(self, port: int) -> int:
        self._server_port = port
        return int(self.port)

    def close(self) -> None:
        self._stop = True
        if self._listener is not None:
            self._listener.close()


# -- the runner ------------------------------------------------------------------------


@dataclass
class Cell:
    stack: str
    level: str
    payload: str
    rtt_ms: float
    wire_bytes: float


def _python(stack: str) -> str:
    if stack == "ours":
        return sys.executable
    from benchmarks import _mcp130env

    return str(_mcp130env.ensure())


def _readline(stream: IO[str], timeout: float) -> str:
    import select

    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_cells(link: NetemLink | ShaperLink, stack: str, level: str, n: int) -> list[Cell]:
    python = _python(stack)
    me = [python, "-m", "benchmarks.case_slow_link"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        link.wrap("server", [*me, "--serve", stack, level, link.server_host]),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    client: subprocess.Popen[str] | None = None
    cells: list[Cell] = []
    try:
        assert server.stdout is not None
        line = _readline(server.stdout, START_TIMEOUT)
        if not line.startswith("READY "):
            raise RuntimeError(f"{stack} server did not start (said {line!r})")
        port = link.target_port(int(line.split()[1]))
        url = f"ws://{link.server_host}:{port}/mcp"
        client = subprocess.Popen(
            link.wrap("client", [*me, "--drive", stack, level, url, str(n)]),
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert client.stdout is not None
        assert client.stdin is not None
        before = 0
        while True:
            line = _readline(client.stdout, CELL_TIMEOUT)
            if not line:
                break
            word, _, rest = line.strip().partition(" ")
            if word == "MARK":
                before = link.counted()
            elif word == "DONE":
                name, _, data = rest.partition(" ")
                rtts: list[float] = json.loads(data)
                wire = (link.counted() - before) / len(rtts)
                cells.append(Cell(stack, level, name, statistics.median(rtts) * 1000, wire))
            else:
                continue
            client.stdin.write("GO\n")
            client.stdin.flush()
        if client.wait(CELL_TIMEOUT) != 0 or len(cells) != len(CASE_PAYLOADS):
            raise RuntimeError(f"{stack} client at level {level} failed after {len(cells)} payloads")
    finally:
        if client is not None:
            _stop(client)
        _stop(server)
    return cells


def _measure(link: NetemLink | ShaperLink, stack: str, level: str, n: int) -> list[Cell]:
    """`run_cells`, with a failure reported as a line of the section instead of ending the run."""
    try:
        return run_cells(link, stack, level, n)
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        print(f"- {stack} at compression {level}: not measured ({exc})")
        return []


def open_link() -> tuple[NetemLink | ShaperLink, str]:
    """The netem link if this machine permits it, else the userspace shaper, and why."""
    if shutil.which("ip") and shutil.which("tc") and os.geteuid() == 0:
        link = NetemLink()
        try:
            link.open()
            return link, "two network namespaces and a veth pair shaped by `tc netem`"
        except subprocess.CalledProcessError as exc:
            link.close()
            why = (exc.stderr or "").strip().splitlines()[-1:] or [str(exc)]
            reason = f"netem is not available here ({why[0]})"
    else:
        reason = "network namespaces need root with `ip` and `tc`"
    link2 = ShaperLink()
    link2.open()
    return link2, f"the userspace shaper on 127.0.0.1; {reason}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_slow_link", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help=f"{SMOKE_N} round trips per cell instead of {FULL_N}"
    )
    parser.add_argument("--serve", nargs=3, metavar=("STACK", "LEVEL", "HOST"), help=argparse.SUPPRESS)
    parser.add_argument("--drive", nargs=4, metavar=("STACK", "LEVEL", "URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        stack, level, host = args.serve
        (serve_ours if stack == "ours" else serve_mcp130)(level, host)
        return 0
    if args.drive:
        stack, level, url, n = args.drive
        (drive_ours if stack == "ours" else drive_mcp130)(level, url, int(n))
        return 0
    n = SMOKE_N if args.smoke else FULL_N
    print("## Slow link: permessage-deflate at 20 Mbit/s, 40 ms RTT\n")
    try:
        link, how = open_link()
    except OSError as exc:
        print(f"skipped: no link could be made here ({exc})")
        return 0
    cells: list[Cell] = []
    try:
        print(f"Link: {how}. {n} timed round trips per cell (median shown) after {WARMUPS} warm-ups.\n")
        for stack in STACKS:
            for level in LEVELS:
                cells += _measure(link, stack, level, n)
    finally:
        link.close()
    print(render(cells, bytes_kind="IP bytes" if isinstance(link, NetemLink) else "TCP payload bytes"))
    return 0


def render(cells: list[Cell], *, bytes_kind: str) -> str:
    names = {"ours": "ours", "mcp130": "mcp 1.30"}
    rows = [
        f"| payload | stack | {' | '.join(f'{lvl} ms' for lvl in ('off', 'level 1', 'level 6'))} | "
        f"{' | '.join(f'{lvl} bytes' for lvl in ('off', 'level 1', 'level 6'))} |",
        "|---|---|" + "---:|" * 6,
    ]
    by = {(c.stack, c.level, c.payload): c for c in cells}
    for name in CASE_PAYLOADS:
        for stack in STACKS:
            row = [by.get((stack, level, name)) for level in LEVELS]
            if not any(row):
                continue
            ms = [f"{c.rtt_ms:.1f}" if c else "-" for c in row]
            wire = [f"{c.wire_bytes:,.0f}" if c else "-" for c in row]
            rows.append(f"| {PAYLOADS[name]} | {names[stack]} | {' | '.join(ms)} | {' | '.join(wire)} |")
    rows.append(f"\nms: median round trip. bytes: {bytes_kind} per round trip, both directions.")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
