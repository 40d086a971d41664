"""Typing glue between plain Trio channels and the MCP SDK's stream protocols.

At run time the SDK takes any Trio channels as they are. Its ``ReadStream``/``WriteStream``
protocols, though, name the ``__aexit__`` parameters ``exc_val``/``exc_tb`` (anyio's names)
where Trio says ``exc_value``/``traceback``, and pyright compares parameter names. Our
transports' channel types already allow for that (``trio_mcp_ws._channels``); these casts
are for the channels tests make themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    import trio
    from mcp.client._transport import Transport, TransportStreams
    from mcp.shared._stream_protocols import ReadStream, WriteStream
    from mcp.shared.message import SessionMessage

    from trio_mcp_ws import ReadChannel, WriteChannel


def as_transport(cm: AbstractAsyncContextManager[tuple[ReadChannel, WriteChannel]]) -> Transport:
    return cast("Transport", cm)


def as_streams(
    read: trio.MemoryReceiveChannel[SessionMessage | Exception], write: trio.MemorySendChannel[SessionMessage]
) -> tuple[ReadStream[SessionMessage | Exception], WriteStream[SessionMessage]]:
    return cast("TransportStreams", (read, write))
