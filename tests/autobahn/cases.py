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

_BIG_PAYLOADS: Final = (
    "payloads of 16 KiB to 128 KiB (subcases 7-18), 1,000 compressed messages each, with the "
    "suite's own deflate on Python 2.7: about 30 minutes for both roles on 2 cores, too long for "
    "every CI run. `python -m tests.autobahn.run --full` runs them (last full run: 0 FAILED in "
    "both roles, 517 cases each)."
)

EXCLUDED: Final = MappingProxyType[str, str](
    {
        "12.*.[7-9]": _BIG_PAYLOADS,
        "12.*.1[0-8]": _BIG_PAYLOADS,
        "13.*.[7-9]": _BIG_PAYLOADS,
        "13.*.1[0-8]": _BIG_PAYLOADS,
    }
)
"""Case patterns left out of `CASES` by default (``--full`` runs them), each with why
(rendered in docs/conformance.md). Patterns are the suite's: ``*`` is any text, the rest
a regular expression matched at the start of the case id."""
