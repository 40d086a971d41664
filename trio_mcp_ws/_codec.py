"""The wire codec: one WebSocket frame <-> one MCP JSON-RPC message. Pure, no I/O.

`decode` has one property (checked by Hypothesis in ``tests/test_codec_properties.py``):
any frame at all either yields an `mcp_types` message or raises `MessageDecodeError`,
never anything else.

It is stricter than ``mcp_types.jsonrpc_message_adapter`` where the SDK's leniency breaks
sessions: the adapter turns ``{"jsonrpc": "2.0", "id": true, "method": "x"}`` into a
*notification* by dropping the bad id (the sender then waits forever for an answer), and it
accepts a message carrying both ``result`` and ``error``. Both are decode errors here.
"""

from __future__ import annotations

from typing import Any, Final

import pydantic_core
from mcp_types import JSONRPCMessage, RequestId, jsonrpc_message_adapter
from pydantic import ValidationError

from ._errors import MessageDecodeError

__all__ = ["decode", "encode"]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600

# JSON-RPC ids travel through JavaScript peers as doubles and through others as int64; an
# integer id outside int64 cannot be echoed back faithfully by most peers.
_ID_MIN: Final = -(2**63)
_ID_MAX: Final = 2**63 - 1

# The envelope members, and which of them may not appear together. Unknown extra members
# are allowed (the spec says so); these are the known ones whose combination is ambiguous.
_KINDS: Final = ("method", "result", "error")

_JSON_WHITESPACE: Final = " \t\r\n"


def decode(frame: str | bytes) -> JSONRPCMessage:
    """Decode one WebSocket frame into one MCP JSON-RPC message.

    Args:
        frame: The payload of a text frame (``str``) or a binary frame (``bytes``, which
            must hold UTF-8 JSON).

    Returns:
        A `JSONRPCRequest`, `JSONRPCNotification`, `JSONRPCResponse` or `JSONRPCError`
        from `mcp_types`.

    Raises:
        MessageDecodeError: The frame is not one valid message: invalid UTF-8, not JSON,
            a JSON-RPC batch (MCP removed batching), a bad or missing id, both ``result``
            and ``error``, or anything the `mcp_types` models reject. Its ``code`` is the
            JSON-RPC error code to answer with and ``request_id`` the id, if recoverable.
    """
    text = _as_text(frame)
    first = text.lstrip(_JSON_WHITESPACE)[:1]
    if first == "[":
        # Rejected before parsing: pydantic needs ~80x the frame size in memory to build a
        # large batch only to refuse it.
        raise MessageDecodeError(
            "JSON-RPC batches are not supported by MCP", frame=frame, code=INVALID_REQUEST
        )
    try:
        obj: Any = pydantic_core.from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        raise MessageDecodeError(f"invalid JSON: {exc}", frame=frame, code=PARSE_ERROR) from exc
    if not isinstance(obj, dict):
        raise MessageDecodeError(
            f"a JSON-RPC message must be a JSON object, not {_json_type(obj)}", frame=frame, code=INVALID_REQUEST
        )
    envelope: dict[str, Any] = obj  # pyright: ignore[reportUnknownVariableType]
    request_id = _check_envelope(envelope, frame)
    try:
        return jsonrpc_message_adapter.validate_python(envelope)
    except ValidationError as exc:
        raise MessageDecodeError(
            f"not a valid JSON-RPC message: {_summarise(exc)}", frame=frame, code=INVALID_REQUEST, request_id=request_id
        ) from exc


def encode(message: JSONRPCMessage) -> str:
    """Encode one message as the text of one WebSocket frame.

    Uses ``model_dump_json(by_alias=True, exclude_unset=True)``, exactly as the SDK's own
    transports do, so what we write is byte-for-byte what the SDK would write.
    """
    return message.model_dump_json(by_alias=True, exclude_unset=True)


def _as_text(frame: str | bytes) -> str:
    if isinstance(frame, str):
        return frame
    try:
        return frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageDecodeError(f"binary frame is not valid UTF-8: {exc.reason}", frame=frame, code=PARSE_ERROR) from exc


def _check_envelope(obj: dict[str, Any], frame: str | bytes) -> RequestId | None:
    """Check what the SDK's models let through, returning the id if it is usable."""
    has_id = "id" in obj
    raw_id = obj.get("id")
    request_id: RequestId | None = raw_id if _valid_id(raw_id) else None
    kinds = [kind for kind in _KINDS if kind in obj]
    if len(kinds) > 1:
        raise MessageDecodeError(
            f"a message cannot carry both {kinds[0]!r} and {kinds[1]!r}",
            frame=frame,
            code=INVALID_REQUEST,
            request_id=request_id,
        )
    if has_id and request_id is None and not (raw_id is None and kinds == ["error"]):
        # Only an error response may carry a null id (it answers a message whose id could
        # not be read). Any other bad id would make the SDK drop it silently.
        raise MessageDecodeError(
            f"id must be a string or an integer, not {_json_type(raw_id)}"
            + (" (null is allowed only in error responses)" if raw_id is None else ""),
            frame=frame,
            code=INVALID_REQUEST,
        )
    if not has_id and kinds and kinds[0] in ("result", "error"):
        raise MessageDecodeError(f"a response must carry an id", frame=frame, code=INVALID_REQUEST)
    return request_id


def _valid_id(value: object) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and _ID_MIN <= value <= _ID_MAX


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer out of the 64-bit range"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _summarise(exc: ValidationError) -> str:
    """One line naming the first few problems, without echoing (possibly huge) input values."""
    parts: list[str] = []
    for error in exc.errors(include_url=False, include_input=False)[:3]:
        location = ".".join(str(part) for part in error["loc"]) or "message"
        parts.append(f"{location}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
