"""One clear error for callers that are not running under Trio.

trio-mcp-ws is built on Trio's channels, cancel scopes and sockets, so under asyncio every
entry point would otherwise fail deep inside Trio with an unrelated-looking
``AttributeError`` or "must be called from async context". Each public entry point calls
`require_trio` first.
"""

from __future__ import annotations

import sniffio

__all__ = ["require_trio"]


def require_trio(what: str) -> None:
    """Raise `RuntimeError` naming Trio unless the caller runs under Trio.

    Args:
        what: The entry point, for the message (e.g. ``"websocket_client"``).

    Raises:
        RuntimeError: Called from asyncio (``asyncio.run``, ``anyio.run(backend="asyncio")``)
            or from no event loop at all.
    """
    try:
        library: str | None = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    if library != "trio":
        found = f"it was called from {library}" if library else "no async library is running"
        raise RuntimeError(
            f"trio-mcp-ws's {what} runs on Trio only, and {found}: start your program with "
            "trio.run(main) or anyio.run(main, backend='trio')"
        )
