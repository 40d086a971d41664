"""A static file server for the test page, on 127.0.0.1, written with h11 over Trio.

Each instance is its own origin (``http://127.0.0.1:<port>``), which is how a test gets a
page from an origin the MCP server allows and the same page from one it does not.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlencode

import h11
import trio

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["PAGE_DIR", "PageServer", "serve_pages"]

PAGE_DIR: Final = Path(__file__).parent / "page"

# A request head from the browser is a few hundred bytes; anything slower than this is stuck.
REQUEST_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class PageServer:
    """A running page server: its origin, and the URL of a page with a query string."""

    port: int

    @property
    def origin(self) -> str:
        """The origin a browser sends for pages served here."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, page: str = "index.html", **query: str) -> str:
        """The URL of ``page`` with ``query`` encoded into its query string."""
        return f"{self.origin}/{page}" + (f"?{urlencode(query)}" if query else "")


def _resolve(directory: Path, extra: Mapping[str, Path], target: bytes) -> Path | None:
    path = target.split(b"?", 1)[0].decode("ascii", "replace").lstrip("/") or "index.html"
    if path in extra:
        return extra[path] if extra[path].is_file() else None
    candidate = (directory / path).resolve()
    if directory.resolve() not in candidate.parents or not candidate.is_file():
        return None
    return candidate


async def _answer(directory: Path, extra: Mapping[str, Path], stream: trio.SocketStream) -> None:
    connection = h11.Connection(h11.SERVER)
    with trio.move_on_after(REQUEST_TIMEOUT):
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await stream.receive_some(65536))
                continue
            if not isinstance(event, h11.Request):
                return
            found = _resolve(directory, extra, event.target)
            if found is None or event.method not in (b"GET", b"HEAD"):
                status, body, kind = 404, b"not found\n", "text/plain; charset=utf-8"
            else:
                status, body = 200, found.read_bytes()
                kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind.endswith("javascript"):
                    kind += "; charset=utf-8"
            headers = [
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("Connection", "close"),
            ]
            wire = connection.send(h11.Response(status_code=status, headers=headers))
            data = connection.send(h11.Data(data=body)) if event.method != b"HEAD" else b""
            end = connection.send(h11.EndOfMessage())
            await stream.send_all(b"".join(part or b"" for part in (wire, data, end)))
            return


async def _handle(directory: Path, extra: Mapping[str, Path], stream: trio.SocketStream) -> None:
    async with stream:
        try:
            await _answer(directory, extra, stream)
        except (h11.ProtocolError, trio.BrokenResourceError):
            pass  # a browser that gave up on a request is not the test's concern


async def serve_pages(
    directory: Path = PAGE_DIR,
    *,
    extra: Mapping[str, Path] | None = None,
    task_status: trio.TaskStatus[PageServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``directory`` on 127.0.0.1 at a free port until cancelled (use with ``nursery.start``).

    ``extra`` maps more URL paths (e.g. ``"sdk-bundle.js"``) to files outside ``directory``.
    """
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        handler = partial(_handle, directory, dict(extra or {}))
        nursery.start_soon(partial(trio.serve_listeners, handler, listeners))
        task_status.started(PageServer(port))
