"""The two channel types a transport yields, typed so the SDK's ``Transport`` protocol accepts them.

At run time they are exactly Trio's memory channels. For type checkers they are Trio's
memory channels with one difference: ``__aexit__`` takes any arguments. The SDK's
``ReadStream``/``WriteStream`` protocols name ``__aexit__``'s parameters ``exc_val`` and
``exc_tb`` (anyio's names) where Trio says ``exc_value`` and ``traceback``, so without it
pyright (strict) rejects ``Client(websocket_client(url))``, the first line of our README.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio
from mcp.shared.message import SessionMessage

__all__ = ["ReadChannel", "WriteChannel"]

if TYPE_CHECKING:

    class ReadChannel(trio.MemoryReceiveChannel[SessionMessage | Exception]):  # type: ignore[misc]
        """What a transport yields first: received messages, and errors as values."""

        async def __aexit__(self, *args: Any, **kwargs: Any) -> None: ...

    class WriteChannel(trio.MemorySendChannel[SessionMessage]):  # type: ignore[misc]
        """What a transport yields second: messages to send."""

        async def __aexit__(self, *args: Any, **kwargs: Any) -> None: ...

else:
    ReadChannel = trio.MemoryReceiveChannel[SessionMessage | Exception]
    WriteChannel = trio.MemorySendChannel[SessionMessage]
