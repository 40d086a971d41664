"""Real proxy servers on 127.0.0.1 for the proxy tests (this module holds no tests).

Two implementations, each started as its own process and stopped by its pid:

- pproxy (PyPI, pure Python, in the ``test`` dependency group): HTTP ``CONNECT``, HTTPS
  (TLS to the proxy), SOCKS4/4a and SOCKS5, each with or without credentials. It installs
  with pip alone, needs no network, binds port 0 and prints the port it got.
- tinyproxy (Debian's ``tinyproxy`` package): a C proxy deployed for real, which answers
  407 without credentials and 403 for a ``CONNECT`` port it does not allow (pproxy only
  drops such connections). It cannot bind port 0, so it gets a port we found free and is
  restarted on another if that one was taken in between.

Both are external processes, so readiness is a bounded poll of their log file.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Generator, Sequence
    from pathlib import Path

START_TIMEOUT = 20.0
"""Seconds a proxy may take to start listening: generous, the machine is shared."""
STOP_TIMEOUT = 5.0
"""Seconds a proxy may take to exit after SIGTERM before it is killed."""
POLL_INTERVAL = 0.05
"""Seconds between looks at a starting proxy's log."""


@dataclass(frozen=True)
class RunningProxy:
    """A proxy process listening on 127.0.0.1."""

    scheme: str
    port: int
    pid: int
    log: Path

    @property
    def url(self) -> str:
        """The proxy's URL without credentials."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url_with(self, username: str, password: str) -> str:
        """The proxy's URL with (percent-encoded) credentials."""
        return f"{self.scheme}://{quote(username, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}"


@contextmanager
def pproxy(
    scheme: str,
    log_dir: Path,
    *,
    credentials: tuple[str, str] | None = None,
    tls_files: tuple[Path, Path] | None = None,
) -> Generator[RunningProxy, None, None]:
    """Run pproxy speaking ``scheme`` (``http``, ``socks4``, ``socks5``) on 127.0.0.1, port 0.

    Args:
        scheme: The protocol the proxy speaks.
        log_dir: Where its output goes (shown when it fails to start).
        credentials: ``(user, password)`` it requires, or ``None`` for an open proxy.
        tls_files: ``(certificate chain, key)`` PEM files: the proxy then speaks TLS
            (an ``https://`` proxy when ``scheme`` is ``http``).
    """
    listen = f"{scheme}{'+ssl' if tls_files else ''}://127.0.0.1:0"
    if credentials is not None:
        listen += f"#{credentials[0]}:{credentials[1]}"
    # --auth -1: pproxy otherwise trusts an address for 30 days once it authenticated.
    command = [sys.executable, "-m", "pproxy", "-l", listen, "--auth", "-1"]
    if tls_files is not None:
        command += ["--ssl", f"{tls_files[0]},{tls_files[1]}"]
    log = log_dir / f"pproxy-{scheme}-{time.monotonic_ns()}.log"
    served_scheme = "https" if tls_files and scheme == "http" else scheme
    with _process(command, log, env={"PYTHONUNBUFFERED": "1"}) as process:
        match = _wait_for(process, log, re.compile(r"Serving on .*:(\d+) by"))
        if match is None:
            raise RuntimeError(f"pproxy did not start: {log.read_text(errors='replace')}")
        yield RunningProxy(served_scheme, int(match.group(1)), process.pid, log)


@contextmanager
def tinyproxy(
    log_dir: Path,
    *,
    credentials: tuple[str, str] | None = None,
    connect_ports: Sequence[int] = (),
) -> Generator[RunningProxy, None, None]:
    """Run tinyproxy (an HTTP proxy) on 127.0.0.1.

    Args:
        log_dir: Where its configuration and log go.
        credentials: ``(user, password)`` for Basic authentication (407 without them).
        connect_ports: The only ports ``CONNECT`` may reach (403 for others); empty: all.
    """
    for attempt in range(5):
        port = _free_port()
        config = log_dir / f"tinyproxy-{port}.conf"
        lines = [f"Port {port}", "Listen 127.0.0.1", "Timeout 30", "LogLevel Info", "MaxClients 64"]
        lines += [f"ConnectPort {allowed}" for allowed in connect_ports]
        if credentials is not None:
            lines.append(f"BasicAuth {credentials[0]} {credentials[1]}")
        config.write_text("\n".join(lines) + "\n")
        log = log_dir / f"tinyproxy-{port}.log"
        with _process(["tinyproxy", "-d", "-c", str(config)], log) as process:
            if _wait_for(process, log, re.compile(r"Accepting connections")) is not None:
                yield RunningProxy("http", port, process.pid, log)
                return
        if attempt == 4:
            raise RuntimeError(f"tinyproxy did not start: {log.read_text(errors='replace')}")


@contextmanager
def _process(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Generator[subprocess.Popen[bytes], None, None]:
    """Start ``command`` with its output in ``log``; on exit stop it by its pid."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for(process: subprocess.Popen[bytes], log: Path, pattern: re.Pattern[str]) -> re.Match[str] | None:
    """Poll ``log`` until ``pattern`` appears; ``None`` if the process exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = pattern.search(log.read_text(errors="replace"))
        if match is not None:
            return match
        if process.poll() is not None:
            return None
        time.sleep(POLL_INTERVAL)  # an external process: bounded polling is the only way to see it start
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
