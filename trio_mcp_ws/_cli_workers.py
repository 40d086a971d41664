"""``trio-mcp-ws serve --workers N``: N gateway processes sharing one port, and their supervisor.

Each worker is a complete ``serve`` gateway in a process of its own, listening with
``SO_REUSEPORT`` on the same port, so the kernel spreads new connections over them and a
crash costs only that worker's connections. The parent (this module's `supervise`) only
supervises; it serves nothing itself:

- **Start**: every option is checked once, here, before any worker starts (a bad one is
  one line and exit 2). The port is reserved by binding a ``SO_REUSEPORT`` socket that
  never listens (so ``--port 0`` picks one port for all workers, and a port in use is one
  line and exit 1). Each worker gets its options as one JSON line on its stdin (tokens
  never appear in ``ps``) and answers ``ready`` on its stdout once listening; the parent
  prints the "serving on" line when all are.
- **Crash**: a worker that exits while serving is restarted after a backoff that doubles
  from `RESTART_DELAY` to `MAX_RESTART_DELAY` and resets once a worker has run for
  `STABLE_AFTER` seconds. A worker that fails before it ever listened (the first time)
  stops the whole command: restarting it would fail the same way.
- **Signals**: the workers run in sessions of their own, so a terminal's Ctrl-C reaches
  the parent only, which forwards the same signal to every worker: each closes its
  connections with 1001 and stops its children as a single ``serve`` does. The parent
  then exits 130 / 143. A worker still running after the grace period is killed.
- **Supervisor gone**: a worker reads its stdin until EOF; when the parent dies (even by
  SIGKILL) the pipe closes and the worker shuts down as on SIGTERM, never orphaned.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import trio

from ._cli_log import cli_logger, setup_logging
from ._cli_serve import listen_error, prepare, run_serve
from ._cli_signals import EXIT_FAILURE, CliError, run_command
from ._options import DEFAULT_CLOSE_TIMEOUT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from . import ServerInfo

__all__ = [
    "MAX_RESTART_DELAY",
    "RESTART_DELAY",
    "STABLE_AFTER",
    "run_serve_command",
    "supervise",
    "worker_main",
]

RESTART_DELAY: Final = 0.1
"""Seconds before restarting a crashed worker the first time: at once, for a one-off crash."""
MAX_RESTART_DELAY: Final = 10.0
"""The longest wait between restarts, for a worker that keeps crashing (each doubles)."""
STABLE_AFTER: Final = 30.0
"""A worker that ran this long before crashing restarts after `RESTART_DELAY` again."""
_READY: Final = b"ready\n"
# How a worker starts: this package's worker entry point, in the same interpreter.
_WORKER_CODE: Final = "from trio_mcp_ws._cli_workers import worker_main; raise SystemExit(worker_main())"
# Options that are the parent's alone, never sent to a worker.
_PARENT_ONLY: Final = frozenset({"run", "workers"})


async def run_serve_command(args: argparse.Namespace) -> int:
    """``serve``: one gateway in this process, or ``--workers N`` of them under a supervisor."""
    if args.workers is None:
        return await run_serve(args)
    return await supervise(args)


def _signal_name(status: int) -> str:
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


class _Supervisor:
    """The worker slots: start, watch and restart each, and stop them all on a signal."""

    def __init__(self, count: int, config: dict[str, Any], grace: float) -> None:
        self.count = count
        self.config = config
        self.grace = grace
        self.processes: dict[int, trio.Process] = {}
        self.ready: set[int] = set()
        self.all_ready = trio.Event()
        self.all_exited = trio.Event()
        self.stopping = False
        self.failure: CliError | None = None
        self.failed = trio.Event()

    def is_stopping(self) -> bool:
        """Whether `stop` has begun."""
        return self.stopping

    async def keep_running(self, index: int) -> None:
        """Run worker ``index`` until stopping, restarting it with a backoff when it crashes."""
        delay = RESTART_DELAY
        ever_ready = False
        while not self.stopping:
            started = trio.current_time()
            status, was_ready = await self._run_once(index, restart=ever_ready)
            if self.is_stopping():  # a method: mypy would take the loop test as still true
                return
            if not was_ready and not ever_ready:
                self.failure = CliError(
                    f"worker {index} {_signal_name(status)} before listening (its log is above)"
                )
                self.failed.set()
                return
            ever_ready = ever_ready or was_ready
            if trio.current_time() - started >= STABLE_AFTER:
                delay = RESTART_DELAY
            cli_logger.warning("worker %d %s; restarting it in %gs", index, _signal_name(status), delay)
            await trio.sleep(delay)  # the backoff itself, not a synchronisation
            delay = min(delay * 2, MAX_RESTART_DELAY)

    async def _run_once(self, index: int, *, restart: bool) -> tuple[int, bool]:
        """Start worker ``index`` and wait for it to exit; its status and whether it listened."""
        process = await trio.lowlevel.open_process(
            [sys.executable, "-c", _WORKER_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a terminal's Ctrl-C is the parent's to forward
        )
        assert process.stdin is not None
        assert process.stdout is not None
        self.processes[index] = process
        self.ready.discard(index)
        ready = False
        try:
            config = {**self.config, "worker_index": index}
            try:
                await process.stdin.send_all(json.dumps(config).encode() + b"\n")
            except trio.BrokenResourceError:
                pass  # it exited at once; its status says why
            else:
                ready = await _read_ready(process.stdout)
            if ready:
                if restart:
                    cli_logger.info("worker %d restarted (pid %d)", index, process.pid)
                self.ready.add(index)
                if len(self.ready) == self.count:
                    self.all_ready.set()  # read once, at start; restarts log their own line
            status = await process.wait()
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:  # cancelled: never leave a worker behind
                    process.kill()
                    await process.wait()
                await process.stdin.aclose()
                await process.stdout.aclose()
            del self.processes[index]
            if self.stopping and not self.processes:
                self.all_exited.set()
        return status, ready

    def forward(self, signum: int) -> None:
        """Send ``signum`` to every live worker (SIGTERM to one still starting).

        A worker handles signals once it listens; one still importing would print a
        ``KeyboardInterrupt`` traceback for SIGINT, while SIGTERM ends it quietly, and it
        has no connection to close yet.
        """
        for index, process in self.processes.items():
            if process.returncode is None:
                process.send_signal(signum if index in self.ready else signal.SIGTERM)

    async def stop(self, signum: int) -> None:
        """Forward ``signum``, wait for every worker to finish, and kill any that will not."""
        self.stopping = True
        if not self.processes:
            return
        self.forward(signum)
        # A worker closes its connections within close_timeout, then stops each child within
        # two grace periods (stdin closed, then SIGTERM, then SIGKILL); a little more on top.
        with trio.move_on_after(DEFAULT_CLOSE_TIMEOUT + 2 * self.grace + 5):
            await self.all_exited.wait()
            return
        for index, process in self.processes.items():
            self.ready.discard(index)
            cli_logger.warning("worker %d (pid %d) did not stop in time; sending SIGKILL", index, process.pid)
            process.kill()
        await self.all_exited.wait()


async def _read_ready(stdout: trio.abc.ReceiveStream) -> bool:
    """Whether the worker said it is listening (False: it exited first)."""
    received = b""
    while len(received) < len(_READY):
        data = await stdout.receive_some(len(_READY) - len(received))
        if not data:
            return False
        received += data
    return received == _READY


async def _reserve_port(host: str, port: int) -> trio.socket.SocketType:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT``, never listening.

    It keeps the port (the one chosen, for port 0) for the workers while the supervisor
    runs; a socket that does not listen receives no connections.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise CliError("--workers needs SO_REUSEPORT, which this platform does not have")
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = trio.socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        await sock.bind(address)
    except OSError as exc:
        sock.close()
        raise listen_error(host, port, exc) from exc
    return sock


def _url(args: argparse.Namespace, port: int) -> str:
    scheme = "wss" if args.tls_cert else "ws"
    host = f"[{args.host}]" if ":" in args.host else args.host
    return f"{scheme}://{host}:{port}{args.path}"


async def supervise(args: argparse.Namespace) -> int:
    """Run ``args.workers`` gateway workers on one port until a signal; the exit status."""
    gateway = prepare(args)  # every option checked before any worker starts
    with await _reserve_port(args.host, args.port) as reservation:
        port: int = reservation.getsockname()[1]
        config = {key: value for key, value in vars(args).items() if key not in _PARENT_ONLY}
        config["port"] = port
        supervisor = _Supervisor(args.workers, config, args.grace_period)
        # Ours, not run_command's: a signal here is forwarded to the workers, then awaited.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                for index in range(args.workers):
                    nursery.start_soon(supervisor.keep_running, index)
                received = await _serve_until_signal(supervisor, signals, args, port, gateway.spec.argv)
                await supervisor.stop(received or signal.SIGTERM)
                nursery.cancel_scope.cancel()
        if supervisor.failure is not None:
            raise supervisor.failure
        return 128 + received if received else EXIT_FAILURE


async def _serve_until_signal(
    supervisor: _Supervisor,
    signals: AsyncIterator[int],
    args: argparse.Namespace,
    port: int,
    argv: tuple[str, ...],
) -> int | None:
    """Announce the workers once all listen; the first SIGINT/SIGTERM (None: a worker failed)."""
    received: int | None = None
    async with trio.open_nursery() as nursery:

        async def announce() -> None:
            await supervisor.all_ready.wait()
            pids = ", ".join(str(process.pid) for _, process in sorted(supervisor.processes.items()))
            cli_logger.info(
                "serving on %s (%d workers, pids %s; one %r per connection)",
                _url(args, port),
                supervisor.count,
                pids,
                " ".join(argv),
            )

        async def failed() -> None:
            await supervisor.failed.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(announce)
        nursery.start_soon(failed)
        async for signum in signals:
            received = signum
            cli_logger.info("%s: stopping %d workers", signal.Signals(signum).name, supervisor.count)
            nursery.cancel_scope.cancel()
            break
    return received


def worker_main() -> int:
    """A worker's process: read its options from stdin, serve, and stop when stdin ends."""
    line = sys.stdin.buffer.readline()
    if not line:
        return EXIT_FAILURE  # the supervisor went away before sending anything
    args = argparse.Namespace(**json.loads(line))
    args.workers = None
    setup_logging(args.verbose, args.log_format)
    return run_command(f"trio-mcp-ws serve (worker {args.worker_index})", partial(_worker, args))


async def _worker(args: argparse.Namespace) -> int:
    gone = False
    async with trio.open_nursery() as nursery:

        def listening(info: ServerInfo) -> None:
            cli_logger.info("worker %d (pid %d) listening on %s", args.worker_index, os.getpid(), info.url)
            os.write(sys.stdout.fileno(), _READY)

        async def watch_supervisor() -> None:
            nonlocal gone
            async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as stdin:
                while await stdin.receive_some(4096):
                    pass
            gone = True
            cli_logger.warning("worker %d: the supervisor is gone; shutting down", args.worker_index)
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch_supervisor)
        await run_serve(args, reuse_port=True, listening=listening)
    return EXIT_FAILURE if gone else 0
