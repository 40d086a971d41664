"""Which Autobahn cases run, in both roles: one setting, with the reason for every exclusion.

Cases 12 and 13 test permessage-deflate; they join `CASES` when compression lands.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["AGENT", "CASES", "EXCLUDED"]

AGENT: Final = "trio-mcp-ws"
"""The name our echo programs report under (the key of the suite's index.json)."""

CASES: Final = ("1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*")
"""Framing, pings, reserved bits, opcodes, fragmentation, UTF-8, closing, limits and
performance, auto-fragmentation. Cases 8 and 11 do not exist in the suite."""

EXCLUDED: Final = MappingProxyType[str, str]({})
"""Case patterns left out of `CASES`, each with why (rendered in docs/conformance.md)."""
