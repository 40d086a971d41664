"""A raw MCP-over-WebSocket client on plain sockets: frames, the handshake, the server's frames.

The attack and load cases speak the wire format themselves, so that sending costs them almost
nothing and the server does all the work: client frames are masked with a zero key (XOR with
zeros leaves the payload as is), the handshake asks for ``/mcp`` with subprotocol ``mcp`` and no
extension, and the server's frames (never masked) are parsed only as far as a case needs, for
the close code above all. Also the two messages that open an MCP session. Standard library only.
"""

from __future__ import annotations

import json
import socket
from typing import Final

OP_CONT: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA
# The close code that stands for a close frame without one (RFC 6455, 7.1.5).
NO_STATUS: Final = 1005
# RFC 6455's sample nonce: the server does not care which key it gets.
SAMPLE_KEY: Final = "dGhlIHNhbXBsZSBub25jZQ=="

INITIALIZE: Final = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    },
    separators=(",", ":"),
)
INITIALIZED: Final = '{"jsonrpc":"2.0","method":"notifications/initialized"}'


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One masked client frame with a zero key, of any size."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        head = bytes((first, 0x80 | size))
    elif size < 1 << 16:
        head = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def text_frame(message: str | bytes) -> bytes:
    """One masked client text frame (zero key) carrying ``message``."""
    return frame(OP_TEXT, message.encode() if isinstance(message, str) else message)


def handshake_request(port: int, key: str = SAMPLE_KEY) -> bytes:
    """The client's upgrade request for ``/mcp`` on 127.0.0.1 (subprotocol mcp, no extension)."""
    return (
        f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp\r\n\r\n"
    ).encode()


def connect(port: int, *, timeout: float) -> tuple[socket.socket, bytes]:
    """A blocking connection to 127.0.0.1, handshake done; also the bytes read past its head.

    Every socket operation is bounded by ``timeout`` seconds.

    Raises:
        ConnectionError: The server closed during the handshake or answered other than 101
            (the socket is closed then).
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(handshake_request(port))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    except BaseException:
        sock.close()
        raise
    return sock, head.split(b"\r\n\r\n", 1)[1]


def parse_frame(buffer: bytes | bytearray, pos: int = 0) -> tuple[int, int, int] | None:
    """The frame at ``pos`` of ``buffer``: (first byte, payload start, payload end); None until whole.

    The first byte holds FIN (``0x80``) and the opcode (``0x0F``). A masked frame's key is
    skipped, its payload left as it is (a server never masks).
    """
    if pos + 2 > len(buffer):
        return None
    size, at = buffer[pos + 1] & 0x7F, pos + 2
    if size >= 126:
        width = 2 if size == 126 else 8
        if at + width > len(buffer):
            return None
        size, at = int.from_bytes(buffer[at : at + width], "big"), at + width
    if buffer[pos + 1] & 0x80:
        at += 4
    if at + size > len(buffer):
        return None
    return buffer[pos], at, at + size


def close_payload(payload: bytes | bytearray) -> tuple[int, str]:
    """A close frame's code and reason; `NO_STATUS` for a close frame without a code."""
    if len(payload) < 2:
        return NO_STATUS, ""
    return int.from_bytes(payload[:2], "big"), bytes(payload[2:]).decode(errors="replace")


def close_frame(buffer: bytes | bytearray) -> tuple[int, str] | None:
    """Code and reason of the first close frame among the server frames in ``buffer``; None if none yet."""
    pos = 0
    while (parsed := parse_frame(buffer, pos)) is not None:
        first, start, end = parsed
        if first & 0x0F == OP_CLOSE:
            return close_payload(buffer[start:end])
        pos = end
    return None
