"""The wire codec: one WebSocket frame <-> one MCP JSON-RPC message. Pure, no I/O.

`decode` has one property (checked by Hypothesis in ``tests/test_codec_properties.py``):
any frame at all either yields an `mcp_types` message or raises `MessageDecodeError`,
never anything else.

It is stricter than ``mcp_types.jsonrpc_message_adapter`` where the SDK's leniency breaks
sessions or lets two readers disagree about one message:

- the adapter turns ``{"jsonrpc": "2.0", "id": true, "method": "x"}`` into a *notification*
  by dropping the bad id (the sender then waits forever for an answer), and accepts a
  message carrying both ``result`` and ``error``;
- the JSON parser keeps the last of two members with the same name, so
  ``{"id": 1, "id": 2, ...}`` means 1 to some peers and 2 to others: a duplicate envelope
  member is an invalid request here;
- a number too large for a double (``1e999``) silently becomes infinity, which the SDK then
  writes back as ``null``: a parse error here.

These checks must not slow the common path, where pydantic-core parses strings at memory
speed and any per-character scan in Python would cost more than the parse. So they prove
the absence of a problem cheaply, and only frames that fail the cheap proof pay for an
exact check:

- a walk of the parsed values (up to `_WALK_BUDGET` of them: small and string-heavy
  messages) finds infinities and counts object members; as many ``:`` in the text as
  members proves there is no duplicate member anywhere;
- frames of `_SPLIT_THRESHOLD` characters or more are parsed as head and payload
  (`_split_load`), which proves there is no duplicate envelope member at parse cost;
- otherwise the text is searched for the envelope names (`_check_duplicates`) and tested
  for numbers shaped like an overflow (`_may_overflow`) before an exact pass.

Before any of that, a structural budget (`check_budget`) refuses a frame that would build
more Python objects than any real message needs: a 4 MiB frame of ``[],[],...`` builds 1.4
million lists, costing seconds of CPU (mostly cyclic-GC passes over them) and ~40 times its
size in memory. The budget is counted at C speed (`structure`: ~9 us for 100 KB of text,
a few ms for a dense 4 MiB frame), before the parser allocates anything.

A rejected frame is freed by reference counting alone: `MessageDecodeError` keeps only a
short excerpt, and the pydantic error chained as its cause is a copy without the input
values (which would hold the parsed message).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

import pydantic_core
from mcp_types import (
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
)
from pydantic import ValidationError
from pydantic_core import InitErrorDetails

from ._errors import MessageDecodeError
from ._options import MAX_CONTAINERS, MAX_MEMBERS

__all__ = ["check_budget", "decode", "encode", "over_budget", "structure"]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600

# JSON-RPC ids travel through JavaScript peers as doubles and through others as int64; an
# integer id outside int64 cannot be echoed back faithfully by most peers.
_ID_MIN: Final = -(2**63)
_ID_MAX: Final = 2**63 - 1

# The envelope members this codec interprets. A duplicate of any of them is rejected;
# unknown extra members are tolerated (and ignored), duplicated or not.
_ENVELOPE_KEYS: Final = frozenset(("jsonrpc", "id", "method", "params", "result", "error"))
_QUOTED_KEYS: Final = tuple(
    (key, f'"{key}"') for key in ("id", "method", "params", "result", "error", "jsonrpc")
)

_JSON_WHITESPACE: Final = " \t\r\n"

# The budget's counts include brackets and colons inside strings: an upper bound, so it never
# admits more than it says, at the price of refusing a pathological string-heavy frame. (An
# exact count outside strings needs a scan that costs more than the parse it protects.)
_ID_AT_HEAD: Final = re.compile(
    r'\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d{1,19}|"[^"\\]{0,200}")\s*[,}]'
)
_MISSING: Final[Any] = object()

# How many values the walk of a parsed message (`_walk`) visits before giving up: about
# 40 ns each, so small and string-heavy messages are walked whole and value-dense ones are
# handled by the cheap text tests instead.
_WALK_BUDGET: Final = 64

# Payloads (``params`` or ``result``) with more top-level members than this are not validated
# member by member (`decode`): a JSON object always passes as `dict[str, Any]`, and the copy
# that validation makes cost ~40 ms for 262,144 members.
_WIDE_PAYLOAD: Final = 256
_PAYLOAD_NAMES: Final[dict[type[JSONRPCMessage], str]] = {
    JSONRPCRequest: "params",
    JSONRPCNotification: "params",
    JSONRPCResponse: "result",
}

# From this size on, frames are parsed in two pieces (`_split_load`): a fixed ~0.6 us that
# proves the absence of duplicate members without searching the text (~0.4 ns a character
# for each envelope member name).
_SPLIT_THRESHOLD: Final = 512

# The number-overflow text test (`_may_overflow`). A JSON number parses to infinity only when
# its magnitude reaches 1.8e308, which needs either an exponent of at least 3 digits or, with
# an exponent of at most 99, at least 210 integer digits. Mapping every digit to "0", "e",
# "E" and "+" to "e" and every other byte to " " turns each such literal into text that
# contains "e000" or 210 zeros.
_NUMBER_SHAPE: Final = bytes(
    ord("0") if byte in b"0123456789" else ord("e") if byte in b"eE+" else ord(" ") for byte in range(256)
)
_BIG_EXPONENT: Final = "e000"
_LONG_MANTISSA: Final = "0" * 210
_INFINITIES: Final = frozenset((math.inf, -math.inf))
# Exact-type tests against these names, not the builtins, keep the type checkers from
# narrowing parsed values to containers of unknown items.
_DICT: Final[type[Any]] = dict
_LIST: Final[type[Any]] = list


def decode(
    frame: str | bytes, *, max_containers: int = MAX_CONTAINERS, max_members: int = MAX_MEMBERS
) -> JSONRPCMessage:
    """Decode one WebSocket frame into one MCP JSON-RPC message.

    Args:
        frame: The payload of a text frame (``str``) or a binary frame (``bytes``, which
            must hold UTF-8 JSON).
        max_containers: The structural budget (`check_budget`): most objects and arrays
            the message may hold.
        max_members: Most object members the message may hold.

    Returns:
        A `JSONRPCRequest`, `JSONRPCNotification`, `JSONRPCResponse` or `JSONRPCError`
        from `mcp_types`.

    Raises:
        MessageDecodeError: The frame is not one valid message: invalid UTF-8 or lone
            surrogates, not JSON (including a leading byte-order mark, an empty or
            whitespace-only frame, ``NaN``/``Infinity``, a number too large for a double or
            an integer of thousands of digits, nesting deeper than about 200 levels), a
            JSON-RPC batch (MCP removed batching), a duplicate envelope member, a bad or
            missing id, both ``result`` and ``error``, or anything the `mcp_types` models
            reject, or more structure than the budget admits. Its ``code`` is the JSON-RPC
            error code to answer with (``-32700`` or ``-32600``) and ``request_id`` the id,
            if recoverable.
    """
    check_budget(frame, max_containers=max_containers, max_members=max_members)
    text = _as_text(frame)
    if text[:1] != "{" and text.lstrip(_JSON_WHITESPACE)[:1] == "[":
        # Rejected before parsing: pydantic needs ~80x the frame size in memory to build a
        # large batch only to refuse it.
        raise MessageDecodeError(
            "JSON-RPC batches are not supported by MCP", frame=frame, code=INVALID_REQUEST
        )
    envelope = _split_load(text) if len(text) >= _SPLIT_THRESHOLD else None
    unique = envelope is not None
    if envelope is None:
        envelope = _parse(text, frame)
    walked = _walk(envelope, _WALK_BUDGET)
    if not unique and (walked is None or text.count(":") != walked[1]):
        # Every object member has one ":" of its own, so as many ":" as distinct member
        # names proves there is no duplicate anywhere; otherwise search the text.
        _check_duplicates(text, envelope, frame)
    if walked is None:
        # Too many values to walk cheaply: walk them all only if the text can hold a number
        # that overflowed.
        walked = _walk(envelope, None) if _may_overflow(frame, text) else (False, 0)
    if walked is not None and walked[0]:
        raise MessageDecodeError(
            "a number is too large to represent (it would become infinity)",
            frame=frame,
            code=PARSE_ERROR,
            request_id=_usable_id(envelope),
        )
    model, request_id = _classify(envelope, frame)
    wide: str | None = None  # the payload's name, if it is set aside from validation
    payload: Any = None
    name = _PAYLOAD_NAMES.get(model)
    if name is not None:
        payload = envelope.get(name)
        if type(payload) is _DICT and len(payload) > _WIDE_PAYLOAD:
            wide = name
            envelope[name] = {}
    try:
        message = model.model_validate(envelope)
    except ValidationError as exc:
        error = MessageDecodeError(
            f"not a valid JSON-RPC message: {_summarise(exc)}",
            frame=frame,
            code=INVALID_REQUEST,
            request_id=request_id,
        )
        cause = _without_inputs(exc)
    else:
        if wide is not None:
            # The payload is a parsed JSON object: its keys are str and its values Any, so
            # validating it as `dict[str, Any]` could only copy it, member by member.
            setattr(message, wide, payload)
        return message
    # Raised outside the except block: the pydantic error (which holds the parsed message as
    # its input) is not chained as the context, only its input-free copy as the cause. The
    # locals are deleted so that the traceback (which keeps this frame) makes no cycle.
    try:
        raise error from cause
    finally:
        del error, cause


def check_budget(
    frame: str | bytes, *, max_containers: int = MAX_CONTAINERS, max_members: int = MAX_MEMBERS
) -> None:
    """Refuse a frame holding more objects and arrays, or object members, than allowed.

    The bounds are ``max_containers`` and ``max_members``. Counted on the raw frame at C
    speed (`structure`), so it is cheap enough to run on every frame before parsing. The
    counts include characters inside strings, so they never undercount.

    Raises:
        MessageDecodeError: Code ``-32600``; ``request_id`` is the id when the frame starts
            with it (as every SDK writes it), so a session can still answer the request.
    """
    if len(frame) <= min(max_containers, max_members):
        return  # too short to exceed either limit: every counted character is one byte
    error = over_budget(frame, structure(frame), max_containers=max_containers, max_members=max_members)
    if error is not None:
        try:
            raise error
        finally:
            del error  # no cycle: error -> traceback -> this frame -> error


def structure(frame: str | bytes) -> tuple[int, int]:
    """``(containers, members)`` of a frame: its ``{`` and ``[``, and its ``:``, strings included.

    Counted as the bytes that deleting each character removes: ``bytes.replace`` finds a
    single byte with ``memchr``, where ``str.count`` and ``bytes.count`` test every
    character, so a realistic frame (these characters are sparse) is counted ~15 times
    faster (9 us instead of 126 us for 100 KB of text). A dense, hostile frame costs up to
    ~3 times more than counting, in the paced worker thread.
    """
    data = frame if isinstance(frame, bytes) else frame.encode("utf-8", "surrogatepass")
    size = len(data)
    containers = 2 * size - len(data.replace(b"{", b"")) - len(data.replace(b"[", b""))
    return containers, size - len(data.replace(b":", b""))


def over_budget(
    frame: str | bytes, counts: tuple[int, int], *, max_containers: int, max_members: int
) -> MessageDecodeError | None:
    """The error `check_budget` raises for a frame of these `structure` counts, or None."""
    containers, members = counts
    if containers > max_containers:
        what = f"{containers} objects and arrays (at most {max_containers})"
    elif members > max_members:
        what = f"{members} object members (at most {max_members})"
    else:
        return None
    return MessageDecodeError(
        f"message too complex to decode: {what}",
        frame=frame,
        code=INVALID_REQUEST,
        request_id=_id_at_head(frame),
    )


def _id_at_head(frame: str | bytes) -> RequestId | None:
    """The id of a frame that starts ``{"jsonrpc":"2.0","id":...`` or ``{"id":...``, else None."""
    head = frame[:256]
    if isinstance(head, bytes):
        head = head.decode("utf-8", "replace")
    match = _ID_AT_HEAD.match(head)
    if match is None:
        return None
    raw = match.group(1)
    if raw[0] == '"':
        return raw[1:-1]
    value = int(raw)
    return value if _valid_id(value) else None


def _without_inputs(exc: ValidationError) -> ValidationError:
    """A copy of ``exc`` with the same errors and no input values (which pin the message)."""
    details: list[InitErrorDetails] = []
    for item in exc.errors(include_url=False, include_input=False):
        light: InitErrorDetails = {"type": item["type"], "loc": item["loc"], "input": None}
        if "ctx" in item:
            light["ctx"] = item["ctx"]
        details.append(light)
    try:
        return ValidationError.from_exception_data(exc.title, details)
    except (TypeError, ValueError, KeyError):  # pragma: no cover  # an error type pydantic cannot rebuild
        return ValidationError.from_exception_data(exc.title, [])


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
        reason = f"{exc.reason} at byte {exc.start}"
    # Raised outside the except block and not chained: a UnicodeDecodeError holds a copy of
    # the whole frame, which the error would keep alive for as long as it is kept.
    raise MessageDecodeError(f"binary frame is not valid UTF-8: {reason}", frame=frame, code=PARSE_ERROR)


def _parse(text: str, frame: str | bytes) -> dict[str, Any]:
    """Parse the whole frame, which must be one JSON object."""
    try:
        obj: Any = pydantic_core.from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        raise MessageDecodeError(f"invalid JSON: {exc}", frame=frame, code=PARSE_ERROR) from exc
    except TypeError as exc:
        # pydantic-core cannot encode a str holding lone surrogates to UTF-8; no other str
        # makes it raise TypeError.
        raise MessageDecodeError(
            f"text frame is not valid Unicode: {_unicode_problem(text)}", frame=frame, code=PARSE_ERROR
        ) from exc
    if type(obj) is not dict:
        raise MessageDecodeError(
            f"a JSON-RPC message must be a JSON object, not {_json_type(obj)}",
            frame=frame,
            code=INVALID_REQUEST,
        )
    return obj  # pyright: ignore[reportUnknownVariableType]


def _unicode_problem(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{exc.reason} at position {exc.start}"
    return "it cannot be encoded as UTF-8"  # pragma: no cover  # from_json fails only on surrogates


def _split_load(text: str) -> dict[str, Any] | None:
    """Parse ``{<head>"key":{<payload>}}`` as head and payload, with no duplicate; or None.

    Every SDK writes the payload (``params``, ``result`` or ``error``) last, and the first
    ``{`` after the opening one starts it. If ``<head>null}`` parses, the head is exactly the
    top-level members before the payload (the only parser state in which ``null}`` completes
    a document), and a head with as many ``:`` as distinct member names has no duplicate
    (every member has one ``:``). If the payload then parses as one value, nothing follows
    it at the top level. Both parses together cost about one parse of the frame. A frame of
    any other shape, or an invalid one, returns None and is parsed whole.
    """
    if text[:1] != "{":
        return None
    start = text.find("{", 1)
    end = len(text) - 1
    if text[end] != "}":
        end = len(text.rstrip(_JSON_WHITESPACE)) - 1
    if start < 0 or text[end] != "}":
        return None
    head_text = text[:start]
    try:
        head: dict[str, Any] = pydantic_core.from_json(head_text + "null}", allow_inf_nan=False)
        if head_text.count(":") != len(head):
            return None
        # Boxed in a list: the payload is then as deep in this parse as in a whole-frame
        # parse, so the parser's nesting limit is the same whichever way a frame is parsed.
        box: list[Any] = pydantic_core.from_json(f"[{text[start:end]}]", allow_inf_nan=False)
    except (ValueError, TypeError):
        return None
    if len(box) != 1:
        return None
    head[next(reversed(head))] = box[0]
    return head


def _check_duplicates(text: str, envelope: dict[str, Any], frame: str | bytes) -> None:
    r"""Raise if an envelope member is named twice at the top level of the frame.

    The parser keeps the last of two same-named members, so this reads the text. Fast path:
    a member named twice appears twice as a quoted name, unless one spelling uses a ``\u``
    escape of an ASCII lowercase letter (``"\u0069d"``); if every envelope name present
    appears once and there is no such escape, there is no duplicate. Otherwise (the name
    also appears in nested values, which is common for ``"id"``) the standard library's
    parser lists the top-level names in order.
    """
    if not ("\\" in text and "\\u00" in text and ("\\u006" in text or "\\u007" in text)):
        for key, quoted in _QUOTED_KEYS:
            if key in envelope and text.count(quoted) > 1:
                break
        else:
            return
    try:
        # Numbers are only measured (len), never converted: no digit limit, no overflow.
        members: tuple[tuple[str, Any], ...] = json.loads(
            text, object_pairs_hook=tuple, parse_int=len, parse_float=len
        )
    except RecursionError as exc:
        # pydantic-core already bounded the nesting at about 200 levels; this parser
        # recurses, so only a caller whose stack is nearly exhausted gets here.
        raise MessageDecodeError(
            "cannot check the message for duplicate members: nesting too deep for the current stack",
            frame=frame,
            code=INVALID_REQUEST,
        ) from exc
    seen: set[str] = set()
    for key, _ in members:
        if key in seen and key in _ENVELOPE_KEYS:
            raise MessageDecodeError(
                f"duplicate {key!r} member in the message",
                frame=frame,
                code=INVALID_REQUEST,
                request_id=None if key == "id" else _usable_id(envelope),
            )
        seen.add(key)


def _walk(value: dict[str, Any], budget: int | None) -> tuple[bool, int] | None:
    """Walk a parsed message: (holds an infinity, number of object members), or None.

    None when it holds more than ``budget`` values. Iterative: the parser bounds the
    nesting, but the stack need not be spent on it.
    """
    stack: list[Any] = [value]
    members = 0
    seen = 0
    while stack:
        item: Any = stack.pop()
        if type(item) is _DICT:
            members += len(item)
            item = item.values()
        if budget is not None:
            seen += len(item)
            if seen > budget:
                return None
        for child in item:
            kind: type[Any] = child.__class__
            if kind is float:
                if child in _INFINITIES:
                    return True, members
            elif kind is _DICT or kind is _LIST:
                stack.append(child)
    return False, members


def _may_overflow(frame: str | bytes, text: str) -> bool:
    """Cheap, sound test: can a number in this frame have overflowed to infinity?"""
    data = frame if isinstance(frame, bytes) else text.encode("utf-8")
    shape = data.translate(_NUMBER_SHAPE).decode("ascii")
    return _BIG_EXPONENT in shape or _LONG_MANTISSA in shape


def _usable_id(envelope: dict[str, Any]) -> RequestId | None:
    raw_id = envelope.get("id")
    return raw_id if _valid_id(raw_id) else None


def _classify(envelope: dict[str, Any], frame: str | bytes) -> tuple[type[JSONRPCMessage], RequestId | None]:
    """Pick the one model this envelope can be, checking what the SDK's models let through.

    Validating against that model directly (rather than the SDK's union adapter, which tries
    each member in turn) gives the same result for every valid message, clearer errors for
    invalid ones, and halves the validation time.
    """
    raw_id = envelope.get("id", _MISSING)
    request_id: RequestId | None = raw_id if _valid_id(raw_id) else None
    has_method = "method" in envelope
    if has_method + ("result" in envelope) + ("error" in envelope) != 1:
        kinds = [kind for kind in ("method", "result", "error") if kind in envelope]
        raise MessageDecodeError(
            f"a message cannot carry both {kinds[0]!r} and {kinds[1]!r}"
            if kinds
            else "a message must carry one of 'method', 'result' or 'error'",
            frame=frame,
            code=INVALID_REQUEST,
            request_id=request_id,
        )
    if request_id is None and raw_id is not _MISSING and not (raw_id is None and "error" in envelope):
        # Only an error response may carry a null id (it answers a message whose id could
        # not be read). Any other bad id would make the SDK drop it silently.
        raise MessageDecodeError(
            f"id must be a string or an integer, not {_json_type(raw_id)}"
            + (" (null is allowed only in error responses)" if raw_id is None else ""),
            frame=frame,
            code=INVALID_REQUEST,
        )
    if has_method:
        return (JSONRPCNotification if raw_id is _MISSING else JSONRPCRequest), request_id
    if raw_id is _MISSING:
        raise MessageDecodeError("a response must carry an id", frame=frame, code=INVALID_REQUEST)
    return (JSONRPCResponse if "result" in envelope else JSONRPCError), request_id


def _valid_id(value: object) -> bool:
    # Exact type checks: a bool is an int to Python but not an id to JSON-RPC.
    if type(value) is int:
        return _ID_MIN <= value <= _ID_MAX
    return type(value) is str


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
    """One line naming each problem, without echoing (possibly huge) input values.

    Bounded: the envelope models have at most three fields that can fail.
    """
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'message'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )
