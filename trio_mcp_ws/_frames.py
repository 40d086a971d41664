"""A sans-IO fast path for the one frame MCP traffic is made of, and a frame builder.

Nearly every frame an MCP connection carries is a complete, unfragmented text frame with
no extension bits, and wsproto's pure-Python parser and serialiser are about a quarter of
either side's CPU at ~200 B. This module handles exactly that frame and classifies every
other one so the driver (``_wsconn.py``) can hand it to wsproto untouched:

- `scan` reads a frame header at an offset and says whether it is ours (`FAST`), someone
  else's (`OTHER`, with its exact end, so wsproto is fed whole frames only), or not
  complete yet (`NEED_MORE`);
- `decode_text` unmasks and strictly decodes a `FAST` frame's payload, or returns None
  (invalid UTF-8: wsproto then reports it with 1007);
- `build_text_frames` serialises outgoing text messages, masked with a fresh random key
  each in the client role (RFC 6455 section 5.3).

What `FAST` claims, each rule from RFC 6455 section 5.2 (anything else is `OTHER`):
FIN set, RSV1-3 clear (no extension is in use when the driver calls us), opcode 1 (text),
the MASK bit set exactly when frames come from a client, the payload length in its
minimal encoding (7 bits up to 125, 16 bits for 126-65535, 64 bits with the top bit clear
above that), and a payload of at most ``max_size`` bytes (the message limit, in bytes).

Why handing the rest to wsproto keeps it consistent (the driver's side of the contract):
wsproto's frame parser is a buffer plus one piece of message state, whether a fragmented
message is in progress (and, for text, its incremental UTF-8 decoder). The driver only
takes the fast path (1) at a frame boundary of the byte stream, where wsproto has been fed
whole frames only, so its buffer is empty once its events are drained; (2) when no
fragmented message is in progress, which the driver tracks from the headers of the frames
it hands over (a data frame without FIN opens one, a final continuation closes it), so a
frame we take is one wsproto would have taken as a whole message with no state change;
(3) while the connection is open and no close has started. Outgoing, wsproto keeps state
only for fragmented messages it sends itself, and we build complete messages only.
Anything wsproto then finds wrong with a frame it is handed (1002, 1007) starts the close,
which turns the fast path off for good, and from then on every byte goes to wsproto.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, Final

from ._mask import apply_mask

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["FAST", "NEED_MORE", "OTHER", "Scan", "build_text_frames", "decode_text", "scan"]

NEED_MORE: Final = 0
"""`scan`: the header, or a `FAST` frame's payload, has not fully arrived yet."""
FAST: Final = 1
"""`scan`: a complete-able unfragmented text frame this module handles."""
OTHER: Final = 2
"""`scan`: any other frame (control, binary, fragment, RSV bits, wrong masking, non-minimal
length, over the size limit): wsproto's to parse; its extent is known."""

Scan = tuple[int, int, int]
"""``(kind, payload_start, frame_end)``; offsets into the buffer given to `scan`."""

_FIN_TEXT: Final = 0x81  # FIN, RSV1-3 clear, opcode text
_MASK_BIT: Final = 0x80
_U16: Final = struct.Struct("!H")
_U64: Final = struct.Struct("!Q")
_HEAD16: Final = struct.Struct("!BBH")
_HEAD64: Final = struct.Struct("!BBQ")


def scan(buf: bytes | bytearray, pos: int, *, masked: bool, max_size: int) -> Scan:
    """Classify the frame starting at ``buf[pos]``.

    Args:
        buf: Received bytes; ``pos`` must be a frame boundary.
        pos: Where the frame starts.
        masked: Whether frames must be masked (we are the server) or must not be (client).
        max_size: The largest payload, in bytes, `FAST` may claim.

    Returns:
        ``(kind, payload_start, frame_end)``; for `NEED_MORE` both offsets are 0. An
        `OTHER` frame's payload may still be incomplete; a `FAST` one never is.
    """
    available = len(buf) - pos
    if available < 2:
        return NEED_MORE, 0, 0
    first = buf[pos]
    second = buf[pos + 1]
    length = second & 0x7F
    start = pos + 2
    minimal = True
    if length == 126:
        if available < 4:
            return NEED_MORE, 0, 0
        length = _U16.unpack_from(buf, pos + 2)[0]
        start = pos + 4
        minimal = length >= 126
    elif length == 127:
        if available < 10:
            return NEED_MORE, 0, 0
        length = _U64.unpack_from(buf, pos + 2)[0]
        start = pos + 10
        # The top bit must be clear (RFC 6455 5.2); wsproto rejects such a frame.
        minimal = 0xFFFF < length < 1 << 63
    has_mask = bool(second & _MASK_BIT)
    if has_mask:
        start += 4
    end = start + length
    ours = first == _FIN_TEXT and has_mask == masked and minimal and length <= max_size
    if len(buf) < (end if ours else start):
        return NEED_MORE, 0, 0
    return (FAST if ours else OTHER), start, end


def decode_text(buf: bytes | bytearray, start: int, end: int, *, masked: bool) -> str | None:
    """The text of the complete `FAST` frame whose payload is ``buf[start:end]``.

    Returns:
        The payload unmasked (the key is the 4 bytes before ``start`` when ``masked``) and
        decoded as strict UTF-8 (RFC 3629: no overlong forms, no surrogates), or None when
        it is not valid UTF-8.
    """
    view = memoryview(buf)[start:end]
    try:
        if masked:
            key = bytes(buf[start - 4 : start])
            return apply_mask(view, key).decode("utf-8")
        return str(view, "utf-8")
    except UnicodeDecodeError:
        return None
    finally:
        view.release()


def _header(first: int, length: int, mask_bit: int) -> bytes:
    if length < 126:
        return bytes((first, mask_bit | length))
    if length <= 0xFFFF:
        return _HEAD16.pack(first, mask_bit | 126, length)
    return _HEAD64.pack(first, mask_bit | 127, length)


def build_text_frames(texts: Sequence[str], *, mask: bool) -> bytes:
    """Serialise each text as one complete text frame, ready for one write.

    Args:
        texts: The messages, in order.
        mask: Mask each payload with a fresh random key (the client role must, the server
            must not; RFC 6455 section 5.3).

    Raises:
        UnicodeEncodeError: A text holds a lone surrogate (not encodable as UTF-8).
    """
    if not mask:
        parts: list[bytes] = []
        for text in texts:
            payload = text.encode("utf-8")
            parts.append(_header(_FIN_TEXT, len(payload), 0))
            parts.append(payload)
        return b"".join(parts)
    keys = os.urandom(4 * len(texts))  # one system call for the whole burst
    parts = []
    for index, text in enumerate(texts):
        payload = text.encode("utf-8")
        key = keys[4 * index : 4 * index + 4]
        parts.append(_header(_FIN_TEXT, len(payload), _MASK_BIT))
        parts.append(key)
        parts.append(apply_mask(payload, key))
    return b"".join(parts)
