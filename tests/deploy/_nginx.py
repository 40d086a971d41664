"""A real nginx on 127.0.0.1 for the deploy tests, run from the configuration docs/deploy.md shows.

nginx runs in the foreground (``daemon off``) with a prefix of its own in a temporary
directory, from a generated main configuration that includes tests/deploy/nginx-mcp.conf
with only the ports, the certificate paths and the timeouts replaced. It is stopped by
its pid (SIGTERM, then SIGKILL after a bound). Readiness is a bounded poll of its port: it
is an external process and says nothing when it is listening.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

CONFIG = Path(__file__).with_name("nginx-mcp.conf")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def nginx_binary() -> str:
    """Debian's nginx; skipped with the way to get it where it is absent, failed when CI is set."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None
    )
    if found is None:
        message = "nginx not found: apt-get install -y nginx (nox -s deploy on CI installs it via .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    """A port free right now on 127.0.0.1 (nginx cannot bind port 0 and report it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def site_config(*, listen: int, upstream: int, cert: Path, key: Path, read_timeout: str = "60s") -> str:
    """tests/deploy/nginx-mcp.conf with this run's ports, certificate and timeout."""
    text = CONFIG.read_text(encoding="utf-8")
    replacements = {
        "listen 443 ssl;": f"listen 127.0.0.1:{listen} ssl;",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream};",
        "/etc/ssl/mcp.example.com/fullchain.pem": str(cert),
        "/etc/ssl/mcp.example.com/privkey.pem": str(key),
        "proxy_read_timeout 60s;": f"proxy_read_timeout {read_timeout};",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{old!r} is no longer in {CONFIG.name}: update the test"
        text = text.replace(old, new)
    return text


def main_config(prefix: Path, site: Path) -> str:
    """The main configuration around the site file: foreground, files under ``prefix``."""
    temp = prefix / "temp"
    # As root, nginx's workers would run as an unprivileged user that cannot enter the
    # pytest temporary directory; the main process then keeps them as root.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\n"
        "worker_processes 1;\n"
        "worker_rlimit_nofile 8192;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        f"    client_body_temp_path {temp / 'body'};\n"
        f"    proxy_temp_path {temp / 'proxy'};\n"
        f"    fastcgi_temp_path {temp / 'fastcgi'};\n"
        f"    uwsgi_temp_path {temp / 'uwsgi'};\n"
        f"    scgi_temp_path {temp / 'scgi'};\n"
        f"    include {site};\n"
        "}\n"
    )


@dataclass(frozen=True)
class Nginx:
    """A running nginx: the port it serves TLS on and its error log."""

    port: int
    pid: int
    error_log: Path

    def url(self, path: str = "/mcp") -> str:
        return f"wss://127.0.0.1:{self.port}{path}"


def write_prefix(prefix: Path, site: str) -> Path:
    """Lay out nginx's prefix directory with ``site`` in it; the main configuration's path."""
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "temp").mkdir(exist_ok=True)
    (prefix / "logs").mkdir(exist_ok=True)  # nginx opens its compiled-in log path before reading ours
    site_file = prefix / "mcp.conf"
    site_file.write_text(site, encoding="utf-8")
    main = prefix / "nginx.conf"
    main.write_text(main_config(prefix, site_file), encoding="utf-8")
    return main


def read_logs(*paths: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in paths if path.exists())


@asynccontextmanager
async def run_nginx(
    prefix: Path, *, upstream: int, cert: Path, key: Path, read_timeout: str = "60s"
) -> AsyncGenerator[Nginx, None]:
    """Run nginx in front of ``127.0.0.1:upstream`` for the block; stopped by its pid at the end."""
    binary = nginx_binary()
    port = free_port()
    site = site_config(listen=port, upstream=upstream, cert=cert, key=key, read_timeout=read_timeout)
    main = write_prefix(prefix, site)
    error_log = prefix / "error.log"
    output = prefix / "nginx.out"
    with output.open("wb") as sink:
        process = await trio.lowlevel.open_process(
            [binary, "-p", str(prefix), "-c", str(main), "-e", str(error_log)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        await _wait_listening(process, port, output, error_log)
        yield Nginx(port, process.pid, error_log)
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)  # nginx's fast shutdown: it stops its workers
                with trio.move_on_after(STOP_TIMEOUT):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _wait_listening(process: trio.Process, port: int, output: Path, error_log: Path) -> None:
    with trio.fail_after(START_TIMEOUT):
        while True:
            if process.returncode is not None or process.poll() is not None:
                logs = read_logs(output, error_log)
                raise RuntimeError(f"nginx exited with status {process.returncode}: {logs}")
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)  # an external process: a bounded poll is the only way to see it
                continue
            await stream.aclose()
            return
