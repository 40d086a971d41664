"""Profile our transport on the streaming hot path: ``python -m benchmarks.profile``.

One side runs in this process under cProfile (or ``--profiler pyinstrument|none``), the
other in a child process, so each profile shows one side's costs only:

- ``--side server``: our `trio_mcp_ws.serve` with the echo handler, here; the client
  (`benchmarks.stack_ours`) streams ``--n`` messages of ``--size`` bytes at it.
- ``--side client``: `trio_mcp_ws.websocket_client` streaming here; the echo server is the child.

It prints the CPU time per message (process time over the streaming phase divided by the
message count: for the server one receive, decode, encode and send; for the client one
send and one receive of the echo) and the functions with the most own time, and writes
the raw profile to ``.bench/profiles/`` (open ``.prof`` files with ``snakeviz`` or
``python -m pstats``). Profiling slows Python code several-fold; the shares are what count.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import os
import pstats
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Final

import trio
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

import trio_mcp_ws

from ._process import Peer, cpus, pin, stop_all
from ._spec import READY, RESULT, EchoPlan, Plan, Results, message_text
from .stack_ours import MAX_CONNECTIONS, _echo_handler  # pyright: ignore[reportPrivateUsage]

ROOT: Final = Path(__file__).resolve().parent.parent
OUT: Final = ROOT / ".bench" / "profiles"
BUDGET: Final = 300.0


class _Profiler:
    """cProfile, pyinstrument or nothing, started and stopped around the measured phase only.

    With ``kind="none"`` only CPU and wall time are taken: the undistorted cost per
    message, and the mode to run under an external sampler such as ``py-spy record``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.cprofile = cProfile.Profile()
        # pyinstrument is optional (pip install pyinstrument), so it is looked up at run time.
        self.pyinstrument: Any = None
        if kind == "pyinstrument":
            self.pyinstrument = importlib.import_module("pyinstrument").Profiler(async_mode="disabled")
        self.cpu = 0.0
        self.wall = 0.0

    def start(self) -> None:
        self.cpu = -time.process_time()
        self.wall = -time.perf_counter()
        if self.kind == "pyinstrument":
            self.pyinstrument.start()
        elif self.kind == "cprofile":
            self.cprofile.enable()

    def stop(self) -> None:
        if self.kind == "pyinstrument":
            self.pyinstrument.stop()
        elif self.kind == "cprofile":
            self.cprofile.disable()
        self.cpu += time.process_time()
        self.wall += time.perf_counter()

    def report(self, path: Path, top: int) -> str:
        if self.kind == "none":
            return ""
        if self.kind == "pyinstrument":
            path = path.with_suffix(".html")
            path.write_text(self.pyinstrument.output_html())
            text: str = self.pyinstrument.output_text(unicode=False, color=False)
            return text + f"\n(written to {path})\n"
        self.cprofile.dump_stats(path)
        out = io.StringIO()
        stats = pstats.Stats(self.cprofile, stream=out)
        stats.sort_stats("tottime").print_stats(top)
        return out.getvalue() + f"(written to {path})\n"


async def _profile_server(size: int, n: int, profiler: _Profiler, pinned: bool) -> None:
    async with trio.open_nursery() as nursery:
        info: trio_mcp_ws.ServerInfo = await nursery.start(
            partial(trio_mcp_ws.serve, _echo_handler, "127.0.0.1", 0, max_connections=MAX_CONNECTIONS)
        )
        plan = Plan(budget=BUDGET, echo=EchoPlan(sizes=[size], stream_n={size: n}, rtt_n={size: 1}, warmup=0))
        argv = [sys.executable, "-m", "benchmarks.stack_ours", "drive", "ours"]
        argv += ["--url", info.url, "--plan", plan.to_json()]
        profiler.start()
        output = bytearray()
        with trio.fail_after(BUDGET):
            proc = await trio.lowlevel.open_process(argv, cwd=ROOT, stdout=subprocess.PIPE)
            if pinned:
                _pin_other(proc.pid)
            try:
                assert proc.stdout is not None
                while chunk := await proc.stdout.receive_some():
                    output += chunk
                await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            if proc.returncode != 0:
                raise RuntimeError(f"the client exited with {proc.returncode}")
        profiler.stop()
        for line in output.decode().splitlines():
            if line.startswith(RESULT):
                results = Results.from_json(line.partition(" ")[2])
                print(f"client saw {n / results.stream_seconds[size]:,.0f} messages/s (server profiled)")
        nursery.cancel_scope.cancel()


async def _profile_client(url: str, size: int, n: int, profiler: _Profiler) -> None:
    message = SessionMessage(jsonrpc_message_adapter.validate_json(message_text(size)))
    with trio.fail_after(BUDGET):
        async with trio_mcp_ws.websocket_client(url) as (read, write):

            async def sender() -> None:
                for _ in range(n):
                    await write.send(message)

            profiler.start()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                for _ in range(n):
                    item = await read.receive()
                    if not isinstance(item, SessionMessage):
                        raise RuntimeError(f"expected an echo, got {item!r}")
            profiler.stop()
    print(f"{n / profiler.wall:,.0f} messages/s (client profiled)")


def _pin_self() -> None:
    """This process on the first CPU, the other side on the second (as the runner does)."""
    available = cpus()
    if len(available) > 1:
        pin(os.getpid(), available[0])


def _pin_other(pid: int) -> None:
    available = cpus()
    if len(available) > 1:
        pin(pid, available[1])


def main(argv: list[str] | None = None) -> int:
    """Profile one side; print CPU per message and the top functions."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--side", choices=("server", "client"), default="server")
    parser.add_argument("--size", type=int, default=150, help="bytes of JSON per message")
    parser.add_argument("--n", type=int, default=20_000, help="messages streamed")
    parser.add_argument("--top", type=int, default=30, help="functions to list")
    parser.add_argument("--pin", action="store_true", help="run the two sides on separate CPUs")
    parser.add_argument(
        "--profiler",
        choices=("cprofile", "pyinstrument", "none"),
        default="cprofile",
        help="none: only CPU per message (e.g. under py-spy record)",
    )
    args = parser.parse_args(argv)
    side: str = args.side
    size: int = args.size
    n: int = args.n
    profiler = _Profiler(str(args.profiler))
    OUT.mkdir(parents=True, exist_ok=True)
    pinned = bool(args.pin)
    if pinned:
        _pin_self()
    try:
        if side == "server":
            trio.run(_profile_server, size, n, profiler, pinned)
        else:
            server = Peer(
                [sys.executable, "-m", "benchmarks.stack_ours", "serve", "echo"],
                cwd=ROOT,
                log=OUT / "server.log",
            )
            if pinned:
                _pin_other(server.pid)
            port = int(server.expect(READY, 60))
            trio.run(_profile_client, f"ws://127.0.0.1:{port}/mcp", size, n, profiler)
    finally:
        stop_all()
    print(
        f"{side}: {profiler.cpu / n * 1e6:.1f} us CPU per message ({args.profiler}) "
        f"({profiler.cpu:.2f} s CPU over {profiler.wall:.2f} s)"
    )
    print(profiler.report(OUT / f"{side}-{size}.prof", int(args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
