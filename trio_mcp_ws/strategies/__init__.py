"""Hypothesis strategies for MCP JSON-RPC messages and for frames a peer must reject.

For people who property-test their own MCP clients and servers, and for our own tests.
It needs Hypothesis (``pip install "trio-mcp-ws[hypothesis]"``), so ``import trio_mcp_ws``
does not import it.

- Valid messages: `jsonrpc_messages`, or one kind at a time with `jsonrpc_requests`,
  `jsonrpc_notifications`, `jsonrpc_responses` and `jsonrpc_errors`. They produce
  `mcp_types` models with the edge cases real peers send (string and 64-bit integer ids,
  unicode and escapes, empty and deeply nested params, ``_meta``, results of real MCP
  methods), built so that exactly what is set is what gets encoded: every one round-trips,
  ``decode(encode(message)) == message``.
- `hostile_frames`: text and binary frames that break JSON, JSON-RPC 2.0 or MCP, which
  every conforming peer must reject: `trio_mcp_ws.decode` and the official SDK's validator
  both do. By kind: `HOSTILE_KINDS`.
- `policy_refused_frames`: frames `trio_mcp_ws.decode` refuses by a policy stricter than
  the SDK or the specs (integer ids beyond 64 bits, duplicate members, ``NaN``, numbers
  beyond a double, ...), which other peers may accept. By kind: `POLICY_KINDS`.
- `frames`: any frame at all, for the one-line property "a frame yields a message or a
  `MessageDecodeError`, never anything else".

Installing the package also registers the message classes with Hypothesis (through its
``hypothesis`` entry point, at almost no cost to ``import hypothesis``), so
``st.from_type(mcp_types.JSONRPCRequest)`` and ``st.from_type(mcp_types.JSONRPCMessage)``
use these strategies.

Sizes: generated nesting stays within `MAX_NESTING` levels (the codec accepts about 200 in
all) and no frame is larger than about 256 KiB, well under the transport's default maximum
message size.
"""

from __future__ import annotations

import importlib

try:
    importlib.import_module("hypothesis")
except ModuleNotFoundError as error:
    if error.name != "hypothesis":
        raise
    raise ModuleNotFoundError(
        'trio_mcp_ws.strategies needs Hypothesis: pip install "trio-mcp-ws[hypothesis]"', name="hypothesis"
    ) from error

from ._frames import frames as frames
from ._hostile import HOSTILE_KINDS as HOSTILE_KINDS
from ._hostile import HostileKind as HostileKind
from ._hostile import hostile_frames as hostile_frames
from ._messages import jsonrpc_errors as jsonrpc_errors
from ._messages import jsonrpc_messages as jsonrpc_messages
from ._messages import jsonrpc_notifications as jsonrpc_notifications
from ._messages import jsonrpc_requests as jsonrpc_requests
from ._messages import jsonrpc_responses as jsonrpc_responses
from ._policy import POLICY_KINDS as POLICY_KINDS
from ._policy import PolicyKind as PolicyKind
from ._policy import policy_refused_frames as policy_refused_frames
from ._values import MAX_NESTING as MAX_NESTING

__all__ = [
    "HOSTILE_KINDS",
    "MAX_NESTING",
    "POLICY_KINDS",
    "HostileKind",
    "PolicyKind",
    "frames",
    "hostile_frames",
    "jsonrpc_errors",
    "jsonrpc_messages",
    "jsonrpc_notifications",
    "jsonrpc_requests",
    "jsonrpc_responses",
    "policy_refused_frames",
]
