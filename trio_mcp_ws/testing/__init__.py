"""Testing helpers for code that uses trio-mcp-ws, and for transports in general.

Not imported by ``import trio_mcp_ws``; needs nothing beyond the package's own
dependencies (no Hypothesis). See the "Testing" guide in the documentation.

- `open_transport_pair`: a connected client and server transport, in memory, running the
  production code path (full WebSocket framing, opening and closing handshakes).
- `open_raw_peer`: one of our transports facing a raw WebSocket peer that can send any
  frame at all, valid or not, and shows what ours sends back.
- `check_transport`: a conformance check for any MCP transport pair.
"""

from __future__ import annotations

from ._check import check_transport as check_transport
from ._pair import Endpoint as Endpoint
from ._pair import TransportPair as TransportPair
from ._pair import open_transport_pair as open_transport_pair
from ._raw import RawPeer as RawPeer
from ._raw import open_raw_peer as open_raw_peer

__all__ = [
    "Endpoint",
    "RawPeer",
    "TransportPair",
    "check_transport",
    "open_raw_peer",
    "open_transport_pair",
]
