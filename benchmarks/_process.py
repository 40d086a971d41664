"""Peer processes: start them, read their protocol lines with deadlines, stop them by pid.

Every process started here is recorded until it is stopped; `stop_all` (called by the
runner in a ``finally``) terminates whatever is left, one pid at a time, so an error or an
interrupt never leaves a server behind.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

# How long a terminated peer may take to exit before it is killed.
STOP_GRACE: Final = 5.0

_live: set[Peer] = set()


class PeerError(RuntimeError):
    """A peer exited, timed out or said something unexpected; carries its log's tail."""


class Peer:
    """One child process speaking the line protocol of `benchmarks._spec` on its stdout."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        log: Path,
        env: dict[str, str] | None = None,
        cpu: int | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            env={**os.environ, **(env or {})},
            text=True,
        )
        _live.add(self)
        if cpu is not None:
            pin(self.proc.pid, cpu)
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def expect(self, word: str, timeout: float) -> str:
        """Wait for the line starting with ``word``; return the rest of it.

        Raises:
            PeerError: The peer exited first, or ``timeout`` seconds passed.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerError(f"no {word} from {self.describe()} within {timeout:.0f}s{self.tail()}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait(timeout=STOP_GRACE)
                raise PeerError(f"{self.describe()} exited with {code} before {word}{self.tail()}")
            head, _, rest = line.partition(" ")
            if head == word:
                return rest

    def send_line(self, text: str) -> None:
        """Write one line to the peer's standard input."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float) -> int:
        """Wait for the peer to exit by itself; stop it if it does not in time."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise PeerError(f"{self.describe()} did not exit within {timeout:.0f}s{self.tail()}") from None

    def stop(self) -> None:
        """Terminate this peer (by its pid), kill it after a grace period, release its pipes."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_GRACE)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        self._log_file.close()
        _live.discard(self)

    def describe(self) -> str:
        """A short name for messages: the module and subcommand."""
        return " ".join(self.argv[2:5])

    def tail(self, lines: int = 15) -> str:
        """The last lines of the peer's stderr log, for an error message."""
        self._log_file.flush()
        try:
            text = self.log.read_text(errors="replace").rstrip()
        except OSError:
            return ""
        if not text:
            return ""
        return "\n  stderr: " + "\n  ".join(text.splitlines()[-lines:])


def cpus() -> list[int]:
    """The CPUs this process may run on (all of them where affinity is not supported)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def pin(pid: int, cpu: int) -> None:
    """Run ``pid`` on ``cpu`` only, where the OS supports it (Linux); otherwise do nothing.

    Called right after the child starts, before it creates any thread; threads it creates
    later inherit the setting.
    """
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(pid, {cpu})
        except OSError:  # the child already exited, or the CPU went away
            pass


def stop_all() -> None:
    """Stop every peer still running, one by one."""
    for peer in list(_live):
        peer.stop()


class RssSampler:
    """Samples a process's resident set size in a thread, keeping the peak."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self._interval = interval
        self.peak = self._process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psutil

        try:
            while not self._done.wait(self._interval):
                self.peak = max(self.peak, self._process.memory_info().rss)
        except psutil.Error:
            return  # the process is gone; the peak so far stands


def rss(pid: int) -> int:
    """A process's resident set size now, in bytes."""
    import psutil

    return int(psutil.Process(pid).memory_info().rss)
