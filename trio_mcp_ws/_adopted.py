"""The adopted connection: one that trio-websocket's own server opened and its reader drives.

The driver behind `websocket_server(request)` for users of
``trio_websocket.serve_websocket``: trio-websocket keeps its reader, and we use its public
API only (``get_message``, ``send_message``, ``ping``, ``aclose``, ``closed``). What its
reader cannot do for us, this driver adds on top:

- ``max_message_size`` counted in bytes of UTF-8 (trio-websocket counts characters): a
  bigger message closes the connection with 1009, as our own driver does. trio-websocket's
  own limit (set on its server, 1 MiB characters by default) still applies before ours;
- backpressure the keepalive can see: messages reach the pump one at a time through its
  sink, so a consumer that stops reading stops this reader, trio-websocket's queue fills,
  its reader stops, and the pump knows its own sink is blocked, so it does not mistake the
  missing pongs for a dead peer.

What it cannot do: abort the TCP connection (trio-websocket closes it when the handler
returns, after its ``disconnect_timeout``), or stop trio-websocket answering pings.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio
from trio_websocket import ConnectionClosed

from ._connection import CLOSE_ABNORMAL, CLOSE_MESSAGE_TOO_BIG, CloseRecord, ConnectionGone, Sink

if TYPE_CHECKING:
    from collections.abc import Sequence

    from trio_websocket import WebSocketConnection

    from ._options import Limits

__all__ = ["AdoptedConnection"]

logger = logging.getLogger("trio_mcp_ws")


class AdoptedConnection:
    """A `MessageConnection` over a trio-websocket connection whose reader trio-websocket runs."""

    def __init__(self, ws: WebSocketConnection, limits: Limits) -> None:
        self.ws = ws
        self.limits = limits
        self._local_close: CloseRecord | None = None
        self._aborted = False
        self._reading = trio.CancelScope()
        self._closer: trio.Nursery | None = None

    def __repr__(self) -> str:
        return f"<AdoptedConnection {self.ws!r}>"

    @property
    def close_record(self) -> CloseRecord | None:
        """How the connection ended; a close we decided takes precedence."""
        if self._local_close is not None:
            return self._local_close
        reason = self.ws.closed
        if reason is not None:
            return CloseRecord(reason.code, reason.reason)
        if self._aborted:
            return CloseRecord(CLOSE_ABNORMAL, "connection aborted")
        return None

    @property
    def can_ping(self) -> bool:
        """trio-websocket's ``ping`` waits for the matching pong."""
        return True

    async def run_reader(self, sink: Sink) -> None:
        """Take each message from trio-websocket, check its size in bytes, hand it to ``sink``."""
        limit = self.limits.max_message_size
        async with trio.open_nursery() as closer:  # runs our close while we keep draining
            self._closer = closer
            with self._reading:
                while True:
                    try:
                        message = await self.ws.get_message()
                    except ConnectionClosed:
                        break
                    if self._local_close is not None:
                        continue  # closing: drain so trio-websocket's reader can see the answer
                    if _size(message) > limit:
                        await self.close(CLOSE_MESSAGE_TOO_BIG, f"message exceeds the limit of {limit} bytes")
                        continue
                    await sink(message)
            self._closer = None
            closer.cancel_scope.cancel()  # aborted: a close still waiting for its answer is moot

    async def send_texts(self, texts: Sequence[str]) -> None:
        """Send each text as one message (trio-websocket writes once per message).

        Raises:
            ConnectionGone: The connection is closing or closed.
        """
        if self.close_record is not None:
            raise ConnectionGone
        try:
            for text in texts:
                await self.ws.send_message(text)
        except ConnectionClosed:
            raise ConnectionGone from None

    async def ping(self) -> None:
        """trio-websocket's ``ping``: returns when the pong arrives.

        Raises:
            ConnectionGone: The connection is closing or closed.
        """
        if self.close_record is not None:
            raise ConnectionGone
        try:
            await self.ws.ping()
        except ConnectionClosed:
            raise ConnectionGone from None

    async def close(self, code: int, reason: str = "") -> None:
        """Record the close and start trio-websocket's ``aclose`` (which also awaits the answer)."""
        if self.close_record is not None:
            return
        self._local_close = CloseRecord(code, reason or None)
        if self._closer is not None:
            # Our reader must keep draining while trio-websocket waits for the peer's close.
            self._closer.start_soon(self._aclose, code, reason)
        else:
            await self._aclose(code, reason)

    async def _aclose(self, code: int, reason: str) -> None:
        with trio.move_on_after(self.limits.close_timeout):
            await self.ws.aclose(code, reason or None)

    async def abort(self) -> None:
        """Stop our reader; trio-websocket closes TCP when the handler returns. Never raises."""
        self._aborted = True
        self._reading.cancel()


def _size(message: str | bytes) -> int:
    """A message's size in bytes; ``isascii()`` is O(1) for CPython strings."""
    if isinstance(message, bytes) or message.isascii():
        return len(message)
    return len(message.encode("utf-8", "surrogatepass"))
