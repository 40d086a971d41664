"""Which Autobahn cases run, in both roles: one setting, with the reason for every exclusion.

Cases 12 and 13 test permessage-deflate: the echo programs run with ``--compression``
(`trio_mcp_ws.Deflate()`, the defaults users get from ``compression="deflate"``), so the
same run covers the uncompressed cases (the suite negotiates no extension in those) and the
compressed ones.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["AGENT", "CASES", "EXCLUDED"]

AGENT: Final = "trio-mcp-ws"
"""The name our echo programs report under (the key of the suite's index.json)."""

CASES: Final = ("1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.*", "13.*")
"""Framing, pings, reserved bits, opcodes, fragmentation, UTF-8, closing, limits and
performance, auto-fragmentation, then permessage-deflate: 12.* sends five kinds of data
compressed (default offer), 13.* negotiates context takeover and window bits (9, 15) both
ways. Cases 8 and 11 do not exist in the suite."""

EXCLUDED: Final = MappingProxyType[str, str]({})
"""Case patterns left out of `CASES`, each with why (rendered in docs/conformance.md)."""
