"""Profile one side of our transport streaming: ``python -m benchmarks.profile [--side client]``.

The profiled side runs here under cProfile (or ``--profiler none``, e.g. under ``py-spy
record``); the other side is a child process (`benchmarks.stack_ours`), so the profile shows one
side's costs only. Prints the CPU time per message over the streaming phase (server: one
receive, decode, encode and send; client: one send and one receive) and the functions with the
most own time, and writes the raw profile to ``.bench/profiles/`` (``python -m pstats``,
``snakeviz``). Profiling slows Python code several-fold: the shares are what count.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

import trio

import trio_mcp_ws

from ._driver import stream
from ._process import Peer, stop_all
from ._spec import PAYLOADS, READY, RESULT, Plan, counts, payload
from .stack_ours import MAX_CONNECTIONS, echo_handler, stack

if TYPE_CHECKING:
    from collections.abc import Generator

ROOT: Final = Path(__file__).resolve().parent.parent
OUT: Final = ROOT / ".bench" / "profiles"
BUDGET: Final = 300.0
CPU = [0.0]  # this process's CPU seconds over the profiled phase


@contextmanager
def _measured(profile: cProfile.Profile | None) -> Generator[None]:
    cpu = time.process_time()
    if profile is not None:
        profile.enable()
    try:
        yield
    finally:
        if profile is not None:
            profile.disable()
        CPU[0] = time.process_time() - cpu


async def _client(url: str, name: str, n: int, profile: cProfile.Profile | None) -> float:
    ours = stack("ours")
    with trio.fail_after(BUDGET):
        async with ours.connect(url) as link:
            message = ours.prepare(payload(name))
            with _measured(profile):
                return await stream(link, message, n)


async def _server(name: str, profile: cProfile.Profile | None) -> None:
    async with trio.open_nursery() as nursery:
        serve = partial(trio_mcp_ws.serve, echo_handler, "127.0.0.1", 0, max_connections=MAX_CONNECTIONS)
        info: trio_mcp_ws.ServerInfo = await nursery.start(serve)
        plan = Plan("echo", BUDGET, [name])
        argv = [sys.executable, "-m", "benchmarks.stack_ours", "drive", "ours", info.url, plan.to_json()]
        client = Peer(argv, cwd=ROOT, log=OUT / "client.log")
        try:
            with _measured(profile), trio.fail_after(BUDGET):
                await trio.to_thread.run_sync(client.proc.wait, abandon_on_cancel=True)
            client.expect(RESULT, 1)
        finally:
            client.stop()
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    """Profile one side; print its CPU per message and its top functions."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--side", choices=("server", "client"), default="server")
    parser.add_argument("--payload", choices=list(PAYLOADS), default="tools-call")
    parser.add_argument("--top", type=int, default=30, help="functions to list")
    parser.add_argument("--profiler", choices=("cprofile", "none"), default="cprofile")
    args = parser.parse_args(argv)
    name: str = args.payload
    profile = cProfile.Profile() if args.profiler == "cprofile" else None
    OUT.mkdir(parents=True, exist_ok=True)
    n, round_trips = counts(name, smoke=False)
    if args.side == "server":  # it serves the client's whole plan: warm-up, stream, round trips
        n += n // 5 + round_trips
    try:
        if args.side == "server":
            trio.run(_server, name, profile)
        else:
            server = Peer(
                [sys.executable, "-m", "benchmarks.stack_ours", "serve", "echo"],
                cwd=ROOT,
                log=OUT / "server.log",
            )
            url = f"ws://127.0.0.1:{int(server.expect(READY, 60))}/mcp"
            seconds = trio.run(_client, url, name, n, profile)
            print(f"{n / seconds:,.0f} messages/s (client profiled)")
    finally:
        stop_all()
    print(f"{args.side}: {CPU[0] / n * 1e6:.1f} us CPU per message ({args.profiler}, {PAYLOADS[name]})")
    if profile is not None:
        path = OUT / f"{args.side}-{name}.prof"
        profile.dump_stats(path)
        pstats.Stats(profile).sort_stats("tottime").print_stats(int(args.top))
        print(f"(written to {path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
