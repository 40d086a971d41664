"""WebSocket masking (RFC 6455 section 5.3): XOR a payload with a repeating 4-byte key.

Clients mask every frame they send and servers unmask every frame they receive, so at
~100 KB per message masking in Python is the largest single cost of either side. When the
optional C implementation is importable (``websockets.speedups.apply_mask``, installed with
the ``trio-mcp-ws[speedups]`` extra) it is used: about 2 us per 100 KB against about 100 us
for the pure-Python fallback here (four ``bytes.translate`` passes over strided slices, the
fastest pure-Python way we measured; one XOR of two big ints is slower past a few KB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ACCELERATED", "apply_mask", "python_apply_mask"]

# One translation table per key byte: _TABLES[k][b] == b ^ k.
_TABLES: Final = tuple(bytes(b ^ k for b in range(256)) for k in range(256))


def python_apply_mask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """``data`` XOR ``mask`` repeated, in pure Python (the fallback; always available).

    Args:
        data: The payload to mask or unmask (masking is its own inverse).
        mask: The 4-byte masking key.
    """
    if len(mask) != 4:
        raise ValueError(f"a masking key is 4 bytes, not {len(mask)}")
    buffer = bytearray(data)
    for offset in range(4):
        buffer[offset::4] = buffer[offset::4].translate(_TABLES[mask[offset]])
    return bytes(buffer)


def _load() -> tuple[Callable[[bytes | bytearray | memoryview, bytes], bytes], bool]:
    try:  # optional: imported only here, so its absence is not an import error
        from websockets.speedups import apply_mask as c_apply_mask  # noqa: PLC0415
    except ImportError:
        return python_apply_mask, False
    return c_apply_mask, True


apply_mask, ACCELERATED = _load()
"""`apply_mask(data, mask) -> bytes`: the C masker when importable, else `python_apply_mask`.
`ACCELERATED` says which (the benchmarks report it)."""
