"""The options every entry point shares, defined once: limits, timeouts, defaults.

`websocket_client`, `websocket_server`, `serve`, `serve_mcp`, the ASGI endpoint and the
testing pair all take the same per-connection keywords (``max_message_size``,
``close_timeout``, ``ping_interval``, ``ping_timeout``) and turn them into one frozen
`Limits`; the defaults live here and nowhere else, and so do their reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "MAX_CONTAINERS",
    "MAX_FRAMES_PER_MESSAGE",
    "MAX_MEMBERS",
    "RECEIVE_BUFFER_SIZE",
    "SERVER_MAX_CONTAINERS",
    "SERVER_MAX_MEMBERS",
    "SUBPROTOCOL",
    "Limits",
]

SUBPROTOCOL: Final = "mcp"
"""The WebSocket subprotocol MCP uses (``Sec-WebSocket-Protocol: mcp``)."""

DEFAULT_MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
"""4 MiB, the MCP SDK's own limit on an HTTP request body."""

# Ten seconds to flush and close: long enough for a few MiB on a slow link, short enough
# that a shutdown never waits on a peer that stopped reading.
DEFAULT_CLOSE_TIMEOUT: Final = 10.0
# Keepalive as `websockets` does it (what the SDK's removed transport used): a ping every
# 20 s, 20 s for its pong; a dead peer is noticed within 40 s.
DEFAULT_PING_INTERVAL: Final = 20.0
DEFAULT_PING_TIMEOUT: Final = 20.0
# TCP connect, TLS and the opening handshake together.
DEFAULT_CONNECT_TIMEOUT: Final = 10.0

RECEIVE_BUFFER_SIZE: Final = 64 * 1024
"""Bytes asked of the socket per receive call: trio-websocket's 4 KiB default halves
large-message throughput, and staying below glibc's 128 KiB mmap threshold keeps each
receive a cheap malloc."""

MAX_FRAMES_PER_MESSAGE: Final = 4096
"""Frames one message may be split into. Real peers send one (or a few dozen for huge
messages); a peer sending millions of empty continuation frames only burns our CPU."""

# The structural budget of one incoming message (`trio_mcp_ws._codec.check_budget`), counted
# on the raw frame before parsing. Every container is an object the cyclic collector scans on
# each full pass for as long as the message lives, and a handler keeps at least its last
# message alive, so a pass costs ~250 ns per container held across every connection; every
# member costs ~150-300 ns to parse, with the GIL held throughout.
MAX_CONTAINERS: Final = 131_072
"""Most objects and arrays (``{`` and ``[``) one message may hold, as a client decodes it.

A 4 MiB tool result of realistic records holds ~35,000 (twice that counting the JSON text
copy MCPServer adds as text content); a hostile ``[],[],...`` frame holds 1.4 million."""

MAX_MEMBERS: Final = 262_144
"""Most object members (``:``) one message may hold, as a client decodes it: a realistic
4 MiB result holds under 250,000 counting its text copy."""

SERVER_MAX_CONTAINERS: Final = 32_768
"""`MAX_CONTAINERS` for what a server receives: requests, and responses to its own requests.

Any peer may connect, and each may keep a message alive: with 8 connections holding
131,072 containers each, one full collection took 200-330 ms, stalling every connection.
Real requests are far smaller (tool arguments are parameters, not datasets)."""

SERVER_MAX_MEMBERS: Final = 65_536
"""`MAX_MEMBERS` for what a server receives. A parse holds the GIL from start to end:
262,144 members took 50-100 ms and 131,072 still 40-110 ms on a busy machine, enough for
another connection's round trip to miss 100 ms; 65,536 take 10-25 ms."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The per-connection limits and timeouts, shared by every driver and the pump.

    Attributes:
        max_message_size: Largest incoming message, in bytes of UTF-8 (text) or bytes
            (binary); a bigger one closes the connection with 1009.
        close_timeout: Seconds allowed for flushing accepted messages and the close
            handshake before the TCP connection is closed regardless.
        ping_interval: Seconds between keepalive pings; ``None`` disables keepalive.
        ping_timeout: Seconds a pong may take before the peer is declared dead.
        receive_buffer_size: Bytes asked of the socket per receive call.
        max_frames_per_message: Frames one message may arrive in; more closes with 1009.
        first_message_timeout: Seconds the peer may wait before its first message; then
            the connection is closed with 1008. ``None``: no limit (clients use none).
        max_containers: Most objects and arrays one message may hold; more makes it a
            `MessageDecodeError` (-32600) on the read channel. Servers use
            `SERVER_MAX_CONTAINERS`.
        max_members: Most object members one message may hold, likewise. Servers use
            `SERVER_MAX_MEMBERS`.
    """

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float = DEFAULT_PING_TIMEOUT
    receive_buffer_size: int = RECEIVE_BUFFER_SIZE
    max_frames_per_message: int = MAX_FRAMES_PER_MESSAGE
    first_message_timeout: float | None = None
    max_containers: int = MAX_CONTAINERS
    max_members: int = MAX_MEMBERS

    def __post_init__(self) -> None:
        if self.max_message_size <= 0:
            raise ValueError(f"max_message_size must be positive, not {self.max_message_size!r}")
        if self.close_timeout < 0:
            raise ValueError(f"close_timeout must not be negative, not {self.close_timeout!r}")
        if self.ping_interval is not None and self.ping_interval <= 0:
            raise ValueError(f"ping_interval must be positive or None, not {self.ping_interval!r}")
        if self.ping_timeout <= 0:
            raise ValueError(f"ping_timeout must be positive, not {self.ping_timeout!r}")
        if self.max_frames_per_message < 1:
            raise ValueError(
                f"max_frames_per_message must be at least 1, not {self.max_frames_per_message!r}"
            )
        if self.max_containers < 1 or self.max_members < 1:
            raise ValueError(
                f"max_containers and max_members must be at least 1, not {self.max_containers!r}"
                f" and {self.max_members!r}"
            )
        if self.first_message_timeout is not None and self.first_message_timeout <= 0:
            raise ValueError(
                f"first_message_timeout must be positive or None, not {self.first_message_timeout!r}"
            )
