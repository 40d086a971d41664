"""trio_mcp_ws.asgi under a real ``hypercorn`` process: the deployment users run.

Each test starts ``python -m hypercorn -k trio --bind 127.0.0.1:0 tests.test_asgi_process:<app>``
from the repository root, reads the port from Hypercorn's "Running on" line (bounded
polling of an external process), and stops it by process id (SIGTERM, SIGKILL after a
bound). The apps are the Starlette and FastAPI apps of ``tests/test_asgi.py`` and a bare
`mcp_app`, built at import so Hypercorn can name them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

import mcp_types as t
import pytest
import trio
from mcp import Client

from tests._sdk import as_transport
from tests.interop._support import RawClient
from tests.test_asgi import MODES, fastapi_app, make_server, starlette_app, ws_url
from trio_mcp_ws import websocket_client
from trio_mcp_ws.asgi import mcp_app

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

ROOT: Final = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT: Final = 30.0
"""Seconds Hypercorn may take to start (a cold import of mcp, Starlette and FastAPI)."""
STOP_GRACE: Final = 10.0
"""Seconds Hypercorn has to exit after SIGTERM before it is killed."""
_RUNNING: Final = re.compile(rb"Running on http://127\.0\.0\.1:(\d+)")

pytestmark = pytest.mark.slow

STARLETTE = starlette_app()
FASTAPI = fastapi_app()
MCP_APP = mcp_app(make_server())


class Hypercorn:
    """A running ``hypercorn`` process and what it wrote to stderr so far."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.stderr = bytearray()
        self._changed = trio.Event()
        self.stderr_done = False

    async def read_stderr(self) -> None:
        assert self.process.stderr is not None
        try:
            async for chunk in self.process.stderr:
                self.stderr += chunk
                self._changed.set()
                self._changed = trio.Event()
        finally:
            self.stderr_done = True
            self._changed.set()

    async def port(self) -> int:
        """The port from Hypercorn's "Running on" line; fail if it exits first."""
        with trio.move_on_after(STARTUP_TIMEOUT):
            while (found := _RUNNING.search(self.stderr)) is None and not self.stderr_done:
                await self._changed.wait()
            if found is not None:
                return int(found.group(1))
        pytest.fail(f"hypercorn did not start:\n{self.stderr.decode(errors='replace')}")

    async def wait_exit(self, within: float = STARTUP_TIMEOUT) -> int:
        with trio.fail_after(within):
            status = await self.process.wait()
            while not self.stderr_done:
                await self._changed.wait()
        return status

    async def stop(self) -> None:
        """SIGTERM, SIGKILL after `STOP_GRACE`, and reap; by process id, never raises."""
        with trio.CancelScope(shield=True):
            if self.process.returncode is None:
                self.process.send_signal(signal.SIGTERM)
                with trio.move_on_after(STOP_GRACE):
                    await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()


@asynccontextmanager
async def hypercorn_process(app: str, *extra: str, worker: str = "trio") -> AsyncGenerator[Hypercorn, None]:
    """Run Hypercorn on ``app``: a name in this module, or ``"module:name"``; stop it by pid at exit."""
    target = app if ":" in app else f"tests.test_asgi_process:{app}"
    argv = [sys.executable, "-m", "hypercorn", "-k", worker, "--bind", "127.0.0.1:0", *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    process = await trio.lowlevel.open_process(
        [*argv, target],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    server = Hypercorn(process)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.read_stderr)
        try:
            yield server
        finally:
            await server.stop()


@pytest.mark.parametrize(
    ("app", "paths"),
    [
        ("STARLETTE", ["/ws", "/tools/mcp", "/direct"]),
        ("FASTAPI", ["/ws", "/tools/mcp"]),
        ("MCP_APP", ["/mcp"]),
    ],
)
@pytest.mark.parametrize(("mode", "version"), MODES)
async def test_hypercorn_trio_process_serves_mcp(app: str, paths: list[str], mode: str, version: str) -> None:
    with trio.fail_after(60):
        async with hypercorn_process(app) as server:
            port = await server.port()
            for path in paths:
                async with Client(as_transport(websocket_client(ws_url(port, path))), mode=mode) as client:
                    assert client.protocol_version == version
                    tools = await client.list_tools()
                    name = "where" if path == "/ws" else "add"
                    assert name in {tool.name for tool in tools.tools}
                    if name == "add":
                        result = await client.call_tool("add", {"a": 20, "b": 22})
                        assert result.structured_content == {"result": 42}
                    else:
                        result = await client.call_tool("where", {})
                        assert isinstance(result.content[0], t.TextContent)
                        assert result.content[0].text == path


async def test_sigterm_closes_live_connections_with_1001() -> None:
    """Hypercorn's graceful shutdown cancels the app after its grace period: the client sees 1001."""
    with trio.fail_after(60):
        async with hypercorn_process("MCP_APP", "--graceful-timeout", "1") as server:
            port = await server.port()
            raw = await RawClient.connect(port)
            try:
                server.process.send_signal(signal.SIGTERM)
                assert await raw.receive() is None
            finally:
                await raw.aclose()
            assert await server.wait_exit() == 0
    assert raw.close_code == 1001


async def test_hypercorn_asyncio_worker_fails_at_startup_naming_trio() -> None:
    """``hypercorn -k asyncio``: the lifespan startup fails with our message, nothing is served."""
    with trio.fail_after(60):
        async with hypercorn_process("MCP_APP", worker="asyncio") as server:
            await server.wait_exit()  # Hypercorn 0.18 logs the failure and exits (with status 0)
    text = server.stderr.decode(errors="replace")
    assert _RUNNING.search(server.stderr) is None, text
    assert "needs an ASGI server running on Trio" in text
    assert "runs on asyncio" in text
