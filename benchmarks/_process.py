"""Peer processes: start them, read their protocol lines with deadlines, stop them by pid.

Every process started here is recorded until it is stopped; `stop_all` (the runner calls it in a
``finally``) terminates whatever is left, one pid at a time, so no error leaves a server behind.
Also what the parent and its children measure or need of their own process: memory (`rss`,
`RssSampler`), CPU time (`cpu_seconds`), the open-file limit (`raise_fd_limit`) and the end of
standard input, a child's signal to stop (`stdin_closed`).
"""

from __future__ import annotations

import os
import queue
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

import psutil

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT: Final = Path(__file__).resolve().parent.parent
# Seconds a terminated peer may take to exit before it is killed.
STOP_GRACE: Final = 5.0

_live: set[Peer] = set()


class PeerError(RuntimeError):
    """A peer exited, timed out or said something unexpected; carries the tail of its log."""


class Peer:
    """One child process speaking the line protocol of `benchmarks._spec` on its stdout.

    Its stderr goes to ``log``, or, without one, to this process's stderr.
    """

    def __init__(
        self, argv: Sequence[str], *, cwd: Path, log: Path | None = None, cpu: int | None = None
    ) -> None:
        self.argv = list(argv)
        self.log = log
        if log is None:
            self.proc = self._start(cwd, None)
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("wb") as stderr:
                self.proc = self._start(cwd, stderr)
        _live.add(self)
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            # Right after the start, before the child makes threads (they inherit the setting).
            os.sched_setaffinity(self.proc.pid, {cpu})
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _start(self, cwd: Path, stderr: IO[bytes] | None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
        )

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self._lines.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass  # `stop` closed the pipe under this thread
        self._lines.put(None)

    def expect(self, word: str, timeout: float) -> str:
        """Wait for the line that starts with ``word``; return the rest of it.

        Raises:
            PeerError: The peer exited first, or ``timeout`` seconds passed.
        """
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise PeerError(f"{self} exited with {self.proc.wait(STOP_GRACE)} before {word}{self.tail()}")
            head, _, rest = line.partition(" ")
            if head == word:
                return rest
        raise PeerError(f"no {word} from {self} within {timeout:.0f} s{self.tail()}")

    def send_line(self, text: str) -> None:
        """Write one line to the peer's standard input."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        """Close the peer's standard input: the children that wait for its end take it as "stop"."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def stop(self) -> None:
        """Terminate this peer by its pid, kill it after a grace period, close its pipes."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_GRACE)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        _live.discard(self)

    def __str__(self) -> str:
        return " ".join(self.argv[2:5])

    def tail(self, lines: int = 15) -> str:
        """The last lines of the peer's stderr log, for an error message ("" without a log)."""
        if self.log is None:
            return ""
        try:
            text = self.log.read_text(errors="replace").rstrip()
        except OSError:
            return ""
        return "\n  stderr: " + "\n  ".join(text.splitlines()[-lines:]) if text else ""


def spawn(module: str, *args: str, log: Path | None = None) -> Peer:
    """``python -m <module> <args>`` run from the repository root, as a `Peer`."""
    return Peer([sys.executable, "-m", module, *args], cwd=ROOT, log=log)


def stop_all() -> None:
    """Stop every peer still running, one by one."""
    for peer in list(_live):
        peer.stop()


def stdin_closed() -> threading.Event:
    """An event set once this process's standard input ends (a child's signal to stop)."""
    closed = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        closed.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    return closed


def raise_fd_limit(wanted: int | None = None) -> None:
    """Raise the soft limit on open files (for hundreds or thousands of sockets).

    To ``wanted``, or else to the hard limit (65,536 if that is unlimited, which the kernel
    may not grant as a soft limit); never above the hard limit, never lowered.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        target = wanted if wanted is not None else max(soft, 65536)
    else:
        target = min(wanted, hard) if wanted is not None else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def rss(pid: int) -> int:
    """A process's resident set size now, in bytes."""
    return int(psutil.Process(pid).memory_info().rss)


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """CPU seconds (user + system) ``pid`` used so far; with ``children``, its live children's too."""
    process = psutil.Process(pid)
    processes = [process, *(process.children(recursive=True) if children else [])]
    return float(sum(p.cpu_times().user + p.cpu_times().system for p in processes))


class RssSampler:
    """Samples a process's resident set size in a thread, every ``interval`` s, keeping the peak."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.peak = rss(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self, interval: float) -> None:
        try:
            while not self._done.wait(interval):
                self.peak = max(self.peak, rss(self.pid))
        except psutil.Error:
            return  # the process is gone; the peak so far stands
