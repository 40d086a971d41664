"""permessage-deflate (RFC 7692) for our wsproto driver, with a bounded inflate.

`Deflate` is the public setting (``compression=Deflate(level=6)``, or ``compression="deflate"``
for the defaults); `DeflateExtension` is the wsproto `Extension` one connection negotiates
and runs. It is written against wsproto's public ``Extension`` interface rather than
subclassing ``wsproto.extensions.PerMessageDeflate``, for three reasons:

- wsproto's extension inflates each received chunk whole (``decompress(data)`` with no
  ``max_length``): 1 MB of frame inflates to 1 GB before any size check can see it. Ours asks
  zlib for at most what the message may still grow by (``decompress(data, max_length)``), so a
  message over ``max_message_size`` closes with 1009 once one byte beyond the limit has come
  out, never holding more than the limit of it;
- its negotiation parses parameters with bare ``int()`` (a garbage value escapes as
  ``ValueError``), accepts duplicate parameters, and merges every offer of a list into one
  response; ours validates each parameter (a client declines nothing it does not understand:
  a bad answer fails the handshake with `HandshakeError`; a server declines a bad offer and
  takes the next one, or none);
- its compressor always runs at zlib's default level 6 with a 32 KiB window and 256 KiB of
  state per connection; ours takes the level and window from `Deflate`.

A server may reset its compression context per message (``server_no_context_takeover``) and
limit its window (``server_max_window_bits``) when the client asks; the client does so when the
server asks (``client_no_context_takeover``, ``client_max_window_bits``). Window size 8 is
declined in both roles: zlib cannot produce a raw deflate stream with a 256-byte window (it
silently uses 512), so agreeing to 8 would break the peer.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol

from wsproto.events import RejectConnection
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, Opcode, ParseFailed, RsvBits
from wsproto.utilities import RemoteProtocolError

if TYPE_CHECKING:
    from wsproto.frame_protocol import FrameDecoder, FrameProtocol

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_WINDOW_BITS",
    "EXTENSION_NAME",
    "Compression",
    "Deflate",
    "DeflateExtension",
    "resolve_compression",
]

logger = logging.getLogger("trio_mcp_ws")

EXTENSION_NAME: Final = "permessage-deflate"

DEFAULT_LEVEL: Final = 1
"""zlib level 1: on the realistic payloads it keeps 80 to 90 % of level 6's ratio (``tools/list``
3.7x against 4.5x) at a quarter to a sixth of the CPU, and is the faster of the two on a
20 Mbit/s link (docs/compression.md has the figures)."""

DEFAULT_WINDOW_BITS: Final = 12
"""A 4 KiB LZ77 window for what we send, as ``websockets`` serves by default: the compressor
keeps about 32 KiB of state per connection instead of 256 KiB at 15 bits and memory level 8,
for 4 % less ratio on ``tools/list``."""

# zlib's memory level for our compressor (1-9): 5 is what `websockets` uses; with 12 window
# bits the state is 2**14 + 2**14 bytes. Measured: under 2 % of ratio against the default 8.
_MEM_LEVEL: Final = 5
# Window sizes RFC 7692 allows (8-15); we agree to 9-15 (see the module docstring).
_MIN_BITS: Final = 9
_MAX_BITS: Final = 15
# What a sender's Z_SYNC_FLUSH ends with and RFC 7692 strips from each message; the receiver
# appends it back before inflating the message's end.
_TAIL: Final = b"\x00\x00\xff\xff"
_INVALID: Final = CloseReason.INVALID_FRAME_PAYLOAD_DATA  # 1007
_PARAMETERS: Final = frozenset(
    {
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    }
)


@dataclass(frozen=True, slots=True)
class Deflate:
    """permessage-deflate settings: pass as ``compression=Deflate(...)``.

    ``compression="deflate"`` is ``Deflate()``. Both roles offer or accept the extension
    only when it is given; the defaults are chosen in docs/compression.md from the slow-link
    benchmark.

    Attributes:
        level: zlib compression level for what this side sends, 0 (store) to 9 (smallest).
        window_bits: log2 of the LZ77 window for what this side sends, 9 (512 B) to 15
            (32 KiB). Larger windows compress repetitive JSON better and cost more memory
            per connection; a peer may ask for a smaller one, which is honoured.
    """

    level: int = DEFAULT_LEVEL
    window_bits: int = DEFAULT_WINDOW_BITS

    def __post_init__(self) -> None:
        if isinstance(self.level, bool) or not 0 <= self.level <= 9:
            raise ValueError(f"Deflate level must be 0-9, not {self.level!r}")
        if isinstance(self.window_bits, bool) or not _MIN_BITS <= self.window_bits <= _MAX_BITS:
            raise ValueError(f"Deflate window_bits must be {_MIN_BITS}-{_MAX_BITS}, not {self.window_bits!r}")


Compression = Literal["deflate"] | Deflate | None
"""What the ``compression`` option takes: ``None`` (off), ``"deflate"`` or a `Deflate`."""


def resolve_compression(compression: Compression) -> Deflate | None:
    """The `Deflate` a ``compression`` option means, or None for off.

    Raises:
        ValueError: ``compression`` is neither None, ``"deflate"`` nor a `Deflate`.
    """
    if compression is None or isinstance(compression, Deflate):
        return compression
    if compression == "deflate":
        return Deflate()
    raise ValueError(f"compression must be None, 'deflate' or a Deflate, not {compression!r}")


class _Compressor(Protocol):
    """What we use of ``zlib.compressobj()`` (its class is private in typeshed)."""

    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self, mode: int = ..., /) -> bytes: ...


class _Decompressor(Protocol):
    """What we use of ``zlib.decompressobj()``."""

    @property
    def eof(self) -> bool: ...
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


class _BadParameters(ValueError):
    """An offer or response whose permessage-deflate parameters break RFC 7692."""


def _parse(text: str) -> dict[str, int | None]:
    """The parameters of one extension element (``name; a; b=9``), validated.

    Raises:
        _BadParameters: An unknown or repeated parameter, or a value out of place or range.
    """
    params: dict[str, int | None] = {}
    for item in text.split(";")[1:]:
        name, eq, raw = item.partition("=")
        name = name.strip().lower()
        value = raw.strip().strip('"') if eq else None
        if name not in _PARAMETERS:
            raise _BadParameters(f"unknown parameter {name!r}")
        if name in params:
            raise _BadParameters(f"parameter {name!r} given twice")
        if name.endswith("_no_context_takeover"):
            if value is not None:
                raise _BadParameters(f"{name} takes no value")
            params[name] = None
            continue
        if value is None:
            if name == "server_max_window_bits":
                raise _BadParameters("server_max_window_bits needs a value")
            params[name] = None  # client_max_window_bits alone: "I can limit my window"
            continue
        # RFC 7692: a decimal integer 8-15 without leading zeroes.
        if not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= _MAX_BITS:
            raise _BadParameters(f"{name}={value!r} is not a window size 8-15")
        params[name] = int(value)
    return params


class DeflateExtension(Extension):
    """One connection's permessage-deflate: negotiation, bounded inflate and compression.

    Built by the driver for each connection (one object per connection: it holds the
    zlib streams), handed to wsproto, and active once the handshake agreed on it
    (`enabled`).
    """

    name = EXTENSION_NAME

    def __init__(self, settings: Deflate, *, max_message_size: int) -> None:
        self.settings = settings
        self.max_message_size = max_message_size
        self._enabled = False
        # What the handshake agreed: our compressor's window and context rule, the peer's.
        self.send_window_bits = settings.window_bits
        self.send_no_context_takeover = False
        self.receive_no_context_takeover = False
        self._compressor: _Compressor | None = None
        self._decompressor: _Decompressor | None = None
        # Per received frame and message.
        self._frame_is_data = False
        self._message_compressed = False
        self._inflated = 0

    def __repr__(self) -> str:
        state = "on" if self._enabled else "off"
        return f"<DeflateExtension {state} level={self.settings.level} window_bits={self.send_window_bits}>"

    def enabled(self) -> bool:
        """Whether the handshake agreed on the extension."""
        return self._enabled

    # -- negotiation ---------------------------------------------------------------------

    def offer(self) -> str:
        """The client's offer: plain permessage-deflate, and that the server may limit our window."""
        return "client_max_window_bits"

    def finalize(self, offer: str) -> None:
        """Take the server's answer to our offer (client side).

        Raises:
            RemoteProtocolError: The answer is malformed, repeated, or asks what we cannot do;
                the driver reports it as `HandshakeError`.
        """
        if self._enabled:
            raise _refused("the server accepted permessage-deflate twice")
        try:
            params = _parse(offer)
        except _BadParameters as exc:
            raise _refused(f"the server's permessage-deflate parameters are invalid: {exc}") from None
        if "client_max_window_bits" in params:
            bits = params["client_max_window_bits"]
            if bits is None:
                raise _refused("the server's client_max_window_bits has no value")
            if bits < _MIN_BITS:
                raise _refused(f"the server asked for client_max_window_bits={bits}; zlib cannot honour it")
            self.send_window_bits = min(self.settings.window_bits, bits)
        self.send_no_context_takeover = "client_no_context_takeover" in params
        self.receive_no_context_takeover = "server_no_context_takeover" in params
        self._enabled = True

    def accept(self, offer: str) -> str | None:
        """Answer one client offer (server side): the response parameters, or None to decline.

        A malformed offer is declined, not refused: the client may have offered others (or
        none that we understand), and a connection without compression still works.
        """
        if self._enabled:
            return None  # an earlier offer in the list was accepted; RFC 7692 takes the first
        try:
            params = _parse(offer)
        except _BadParameters as exc:
            logger.debug("declined a permessage-deflate offer %r: %s", offer, exc)
            return None
        response: list[str] = []
        if "server_no_context_takeover" in params:
            self.send_no_context_takeover = True
            response.append("server_no_context_takeover")
        if "server_max_window_bits" in params:
            bits = params["server_max_window_bits"]
            assert bits is not None  # _parse requires a value for it
            if bits < _MIN_BITS:
                logger.debug("declined a permessage-deflate offer %r: zlib cannot use 8 window bits", offer)
                self.send_no_context_takeover = False
                return None
            self.send_window_bits = min(self.settings.window_bits, bits)
            response.append(f"server_max_window_bits={self.send_window_bits}")
        # An offered client_no_context_takeover binds the client only if we answer with it;
        # we do not (the client keeps its context, which compresses its messages better), so
        # our inflater keeps its context too.
        self._enabled = True
        return "; ".join(response)

    # -- receiving -----------------------------------------------------------------------

    def frame_inbound_header(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        """Note whether the frame (and, on a message's first frame, the message) is compressed."""
        if opcode.iscontrol():
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR  # control frames are never compressed
            self._frame_is_data = False
            return RsvBits(True, False, False)
        self._frame_is_data = True
        if opcode is Opcode.CONTINUATION:
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR  # RSV1 belongs on a message's first frame only
        else:
            self._message_compressed = rsv.rsv1
            self._inflated = 0
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        """Inflate a chunk of a compressed message, never past what the message may still hold.

        Raises:
            ParseFailed: The message inflates past ``max_message_size`` (1009), or the data
                is not valid deflate (1007); wsproto turns it into the close event.
        """
        if not self._frame_is_data or not self._message_compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        """At a compressed message's end, inflate the stripped flush tail and settle the context.

        Raises:
            ParseFailed: As `frame_inbound_payload_data`.
        """
        if not fin or not self._frame_is_data or not self._message_compressed:
            return None
        self._message_compressed = False
        data = self._inflate(_TAIL)
        decompressor = self._decompressor
        if self.receive_no_context_takeover or (decompressor is not None and decompressor.eof):
            # The peer starts each message afresh, or ended its stream with a BFINAL block
            # (RFC 7692 section 7.2.3.3): the next message needs a new inflater either way.
            self._decompressor = None
        return data

    def _inflate(self, data: bytes) -> bytes:
        decompressor = self._decompressor
        if decompressor is None:
            # 15 bits inflates anything a peer may send (its window is at most that).
            decompressor = self._decompressor = zlib.decompressobj(-_MAX_BITS)
        elif decompressor.eof:
            if data != _TAIL:
                raise ParseFailed("data after the end of a deflate stream", _INVALID)
            return b""
        room = self.max_message_size - self._inflated
        try:
            # One byte more than the message may still grow by: getting it proves it too big.
            out = decompressor.decompress(data, room + 1)
        except zlib.error as exc:
            raise ParseFailed(f"invalid deflate data: {exc}", _INVALID) from None
        if len(out) > room:
            self._decompressor = None  # the rest of this message is never inflated
            raise ParseFailed(
                f"message exceeds the limit of {self.max_message_size} bytes once decompressed",
                CloseReason.MESSAGE_TOO_BIG,
            )
        self._inflated += len(out)
        return out

    # -- sending -------------------------------------------------------------------------

    def frame_outbound(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, data: bytes, fin: bool
    ) -> tuple[RsvBits, bytes]:
        """Compress a data frame; the message's first frame carries RSV1."""
        if opcode.iscontrol():
            return rsv, data
        if opcode is not Opcode.CONTINUATION:
            rsv = RsvBits(True, rsv.rsv2, rsv.rsv3)
        compressor = self._compressor
        if compressor is None:
            compressor = self._compressor = zlib.compressobj(
                self.settings.level, zlib.DEFLATED, -self.send_window_bits, _MEM_LEVEL
            )
        out = compressor.compress(data)
        if fin:
            out += compressor.flush(zlib.Z_SYNC_FLUSH)
            out = out[: -len(_TAIL)] if out.endswith(_TAIL) else out
            if self.send_no_context_takeover:
                self._compressor = None
        return rsv, out


def _refused(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(message, event_hint=RejectConnection())
