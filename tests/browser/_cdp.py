"""A headless Chromium driven over the Chrome DevTools Protocol, from Trio.

Why not Playwright: its Python API is asyncio or greenlet-sync, so under Trio every call
would go through one dedicated thread and a cancelled test could not interrupt it. The
DevTools protocol is JSON over a WebSocket, which trio-websocket speaks; the few commands a
test needs (open a tab, navigate, evaluate, watch the network) fit in this module, and
``trio.fail_after`` cancels any of them.

Chromium is Debian's ``chromium`` package (``/usr/bin/chromium``, or ``$TRIO_MCP_WS_CHROMIUM``),
started with a fresh profile and every background download turned off; nothing is fetched
at run time. It listens for DevTools on 127.0.0.1 only, on a port it picks and writes into
``DevToolsActivePort`` in the profile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable

__all__ = ["CHROMIUM_FLAGS", "DevTools", "DevToolsError", "Event", "Tab", "find_chromium", "launch_chromium"]

CHROMIUM_FLAGS: Final = (
    "--headless",
    "--no-sandbox",  # containers and CI runners rarely allow the sandbox's namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)

# Chromium starts in well under a second here; a slow CI runner gets ample room.
LAUNCH_TIMEOUT: Final = 30.0
# How often to look for DevToolsActivePort while Chromium starts (bounded polling of an
# external process: it has no other way to say it is ready).
LAUNCH_POLL: Final = 0.05
# Browser.close asks Chromium to exit; give it this long before killing it.
EXIT_TIMEOUT: Final = 10.0
# Screenshots and DOM snapshots can be large; CDP has no framing of its own.
MAX_CDP_MESSAGE: Final = 256 * 1024 * 1024


def find_chromium() -> str | None:
    """The Chromium binary to use: ``$TRIO_MCP_WS_CHROMIUM``, else ``chromium`` on the PATH."""
    configured = os.environ.get("TRIO_MCP_WS_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


class DevToolsError(Exception):
    """A DevTools command failed (its ``error`` answer), or the browser went away."""


@dataclass(frozen=True)
class Event:
    """One DevTools event: ``method`` (e.g. ``Network.webSocketCreated``), its params, its tab."""

    method: str
    params: dict[str, Any]
    session_id: str | None


@dataclass
class DevTools:
    """One DevTools connection to the browser: commands, and every event seen so far, in order."""

    ws: WebSocketConnection
    events: list[Event] = field(default_factory=list[Event])
    _next_id: int = 1
    _answers: dict[int, trio.MemorySendChannel[dict[str, Any]]] = field(
        default_factory=dict[int, "trio.MemorySendChannel[dict[str, Any]]"]
    )
    _changed: trio.Event = field(default_factory=trio.Event)
    _closed: bool = False

    async def run_reader(self) -> None:
        """Read answers and events until the connection ends (run it in a nursery).

        When it ends (the browser closed or died), every command still waiting fails.
        """
        try:
            while True:
                await self._dispatch(json.loads(await self.ws.get_message()))
        except ConnectionClosed:
            for answer in self._answers.values():
                answer.close()
            self._closed = True
            self._changed.set()

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message:
            answer = self._answers.pop(message["id"], None)
            if answer is not None:
                answer.send_nowait(message)
        else:
            self.events.append(Event(message["method"], message.get("params", {}), message.get("sessionId")))
            self._changed.set()
            self._changed = trio.Event()

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None
    ) -> Any:
        """Send a command and return its ``result``; raise `DevToolsError` on an ``error``."""
        command_id = self._next_id
        self._next_id += 1
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._answers[command_id] = send
        command: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            command["sessionId"] = session_id
        try:
            await self.ws.send_message(json.dumps(command))
            answer = await receive.receive()
        except (ConnectionClosed, trio.EndOfChannel) as exc:
            raise DevToolsError(f"{method}: the browser went away") from exc
        finally:
            self._answers.pop(command_id, None)
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def wait_for(self, predicate: Callable[[Event], bool], *, since: int = 0) -> Event:
        """The first event from index ``since`` on that matches, waiting for it if need be."""
        index = since
        while True:
            while index < len(self.events):
                event = self.events[index]
                index += 1
                if predicate(event):
                    return event
            if self._closed:
                raise DevToolsError("the browser went away")
            await self._changed.wait()

    async def new_tab(self) -> Tab:
        """Open a blank tab with the Page, Runtime, Network and Log domains on."""
        target = await self.call("Target.createTarget", {"url": "about:blank"})
        attached = await self.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        tab = Tab(self, attached["sessionId"])
        for domain in ("Page", "Runtime", "Network", "Log"):
            await tab.call(f"{domain}.enable")
        return tab


@dataclass(frozen=True)
class Tab:
    """A browser tab, addressed through its DevTools session."""

    devtools: DevTools
    session_id: str

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """A DevTools command addressed to this tab."""
        return await self.devtools.call(method, params, session_id=self.session_id)

    def events(self, method: str, *, since: int = 0) -> list[Event]:
        """This tab's events named ``method`` so far, from index ``since`` on."""
        return [
            event
            for event in self.devtools.events[since:]
            if event.session_id == self.session_id and event.method == method
        ]

    async def wait_for(
        self, method: str, *, since: int = 0, where: Callable[[Event], bool] | None = None
    ) -> Event:
        """Wait for this tab's next event named ``method`` (from index ``since``) that matches."""

        def matches(event: Event) -> bool:
            return (
                event.session_id == self.session_id
                and event.method == method
                and (where is None or where(event))
            )

        return await self.devtools.wait_for(matches, since=since)

    async def goto(self, url: str) -> int:
        """Navigate and wait for the load event; return the event index the navigation began at."""
        mark = len(self.devtools.events)
        navigated = await self.call("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise DevToolsError(f"navigating to {url}: {navigated['errorText']}")
        await self.wait_for("Page.loadEventFired", since=mark)
        return mark

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page, awaiting a promise result, and return its JSON value."""
        answer = await self.call(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}
        )
        if "exceptionDetails" in answer:
            raise DevToolsError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")


async def _devtools_endpoint(profile: Path, process: trio.Process) -> tuple[int, str]:
    """Wait for Chromium to write ``DevToolsActivePort``; return its port and browser path."""
    port_file = profile / "DevToolsActivePort"
    with trio.fail_after(LAUNCH_TIMEOUT):
        while True:
            if process.returncode is not None:
                raise DevToolsError(f"Chromium exited with status {process.returncode} while starting")
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if len(lines) >= 2:
                return int(lines[0]), lines[1].strip()
            await trio.sleep(LAUNCH_POLL)


@asynccontextmanager
async def launch_chromium(executable: str, *, log: Path | None = None) -> AsyncGenerator[DevTools, None]:
    """Start a headless Chromium with a fresh profile and yield a DevTools connection to it.

    Resource handling: on exit the browser is asked to close (``Browser.close``), then
    killed if it has not exited within ``EXIT_TIMEOUT``; the profile directory is removed.
    Its stderr goes to ``log`` (default: discarded).
    """
    with tempfile.TemporaryDirectory(prefix="trio-mcp-ws-chromium-") as profile_dir:
        profile = Path(profile_dir)
        argv = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"]
        stderr = log.open("wb") if log is not None else subprocess.DEVNULL
        try:
            process = await trio.lowlevel.open_process(
                argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
            try:
                port, resource = await _devtools_endpoint(profile, process)
                # Our own TCP stream, closed in our own finally: when the browser exits it
                # drops this connection, and trio-websocket alone may leave the socket open.
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                try:
                    async with trio.open_nursery() as nursery:
                        ws = await wrap_client_stream(
                            nursery, stream, f"127.0.0.1:{port}", resource, max_message_size=MAX_CDP_MESSAGE
                        )
                        devtools = DevTools(ws)
                        nursery.start_soon(devtools.run_reader)
                        try:
                            yield devtools
                        finally:
                            with trio.move_on_after(EXIT_TIMEOUT) as closing:
                                closing.shield = True
                                try:
                                    await devtools.call("Browser.close")
                                except Exception:  # the browser may already be gone
                                    pass
                            nursery.cancel_scope.cancel()
                finally:
                    with trio.CancelScope(shield=True):
                        await trio.aclose_forcefully(stream)
            finally:
                with trio.move_on_after(EXIT_TIMEOUT) as waiting:
                    waiting.shield = True
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    with trio.CancelScope(shield=True):
                        await process.wait()
        finally:
            if log is not None and not isinstance(stderr, int):
                stderr.close()
