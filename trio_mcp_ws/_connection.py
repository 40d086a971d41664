"""The seam between the pump and the drivers: what the pump needs of a WebSocket connection.

The pump (``_pump.py``) turns a connection into the ``(read, write)`` channel pair; a
*driver* is whatever gives it a connection. Each driver lives in a module of its own:

- ``_wsconn.py``: our own connection, wsproto over a Trio stream (`websocket_client`,
  `serve`, the testing pair);
- ``_adopted.py``: a connection trio-websocket's server opened and drives
  (`websocket_server` under ``trio_websocket.serve_websocket``);
- ``_asgi_driver.py``: an ASGI ``websocket`` scope (``trio_mcp_ws.asgi``).

The interface is deliberately small: complete messages in (to a sink), bursts of texts
out, ping, close, abort, and how it ended. Backpressure needs nothing more: the reader
awaits the sink, the pump's sink awaits the read channel, so a consumer that stops
reading stops the reader and, below it, TCP. The pump knows when its own sink is blocked,
so keepalive can tell a slow consumer from a dead peer on every driver alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_NORMAL",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_UNSUPPORTED_DATA",
    "NORMAL_CLOSURES",
    "CloseRecord",
    "ConnectionGone",
    "MessageConnection",
    "Sink",
    "describe_close",
]

# Close codes (RFC 6455 section 7.4.1).
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_ABNORMAL: Final = 1006
CLOSE_INVALID_PAYLOAD: Final = 1007
CLOSE_POLICY_VIOLATION: Final = 1008
CLOSE_MESSAGE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011

NORMAL_CLOSURES: Final = frozenset({CLOSE_NORMAL, CLOSE_GOING_AWAY, 1005})
"""Closes that end a conversation cleanly. 1005 ("no status code") is what an empty close
frame reads as: browsers' and the TypeScript SDK's ``close()`` send one."""

_DESCRIPTIONS: Final = {
    CLOSE_PROTOCOL_ERROR: "protocol error",
    CLOSE_UNSUPPORTED_DATA: "unsupported data",
    CLOSE_ABNORMAL: "connection lost without a close frame",
    CLOSE_INVALID_PAYLOAD: "invalid frame payload data",
    CLOSE_POLICY_VIOLATION: "policy violation",
    CLOSE_MESSAGE_TOO_BIG: "message too big",
    CLOSE_INTERNAL_ERROR: "internal error",
}


def describe_close(code: int) -> str:
    """A few words for a close code that came without a reason."""
    return _DESCRIPTIONS.get(code, "abnormal closure")


Sink = Callable[[str | bytes], Awaitable[None]]
"""Where a driver's reader puts each complete message: text as `str`, binary as `bytes`."""


@dataclass(frozen=True, slots=True)
class CloseRecord:
    """How a connection ended: the close code, the reason, and whether that was normal."""

    code: int
    reason: str | None

    @property
    def normal(self) -> bool:
        """Whether this is a clean close (1000 normal, 1001 going away, 1005 no status)."""
        return self.code in NORMAL_CLOSURES


class ConnectionGone(Exception):
    """Raised by a driver's `send_texts` or `ping` once the connection is closing or closed.

    Internal to the pump and the drivers: the pump turns it into a dropped (and logged)
    write, never an error in the user's session.
    """


class MessageConnection(Protocol):
    """An open WebSocket connection, as the pump sees it. Implemented by every driver.

    The opening handshake is over before the pump sees the connection; a driver delivers
    only what arrives after it. All methods are called from the pump's tasks: `run_reader`
    from one task, `send_texts` from the writer alone, `ping` from the keepalive alone,
    `close` and `abort` from any of them.
    """

    @property
    def close_record(self) -> CloseRecord | None:
        """How the connection ended, once it has (or once we started closing); else ``None``.

        A close we decided (`close`, or the driver's own 1002/1007/1009) takes precedence
        over what the peer sent afterwards.
        """
        ...

    @property
    def can_ping(self) -> bool:
        """Whether `ping` works. False where the server below us offers no ping control (ASGI)."""
        ...

    async def run_reader(self, sink: Sink) -> None:
        """Read until the connection ends, awaiting ``sink(message)`` for each complete message.

        Messages go to ``sink`` in arrival order, one at a time: the reader reads nothing
        more while ``sink`` is blocked (that is the backpressure). Text messages are
        `str`, binary ones `bytes`; the driver enforces the size limit in bytes (closing
        with 1009) and the protocol rules (1002, 1007) itself. Returns once the connection
        is over: closed both ways, dropped, or aborted; `close_record` is then set. Never
        raises, except `trio.Cancelled`.
        """
        ...

    async def send_texts(self, texts: Sequence[str]) -> None:
        """Send each text as one text message, in order, as one write where the driver can.

        Raises:
            ConnectionGone: The connection is closing or closed; nothing more can be sent.
        """
        ...

    async def ping(self) -> None:
        """Send a ping and return when its pong arrives (the caller bounds the wait).

        Raises:
            ConnectionGone: The connection is closing or closed.
        """
        ...

    async def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake with ``code``: record it, send the close frame.

        Idempotent; the first close wins. Returns once the frame is sent (or could not
        be); `run_reader` returns when the handshake is complete, and the caller aborts
        after its timeout if it never is.
        """
        ...

    async def abort(self) -> None:
        """Close the underlying stream now, whatever the WebSocket state. Idempotent, never raises.

        Afterwards `close_record` is set (1006 if nothing else was recorded) and
        `run_reader` returns promptly.
        """
        ...
