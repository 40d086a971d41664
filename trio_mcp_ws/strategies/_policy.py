"""Frames our codec refuses by policy: stricter than the official SDK, or than the specs require.

`trio_mcp_ws.decode` refuses each of these, but a conforming peer may accept some (the JSON
and MCP specs allow them: integer ids beyond 64 bits, duplicate members, numbers beyond a
double, deep nesting), and the official SDK's validator accepts others although the specs
forbid them (``NaN``, a message with both ``result`` and ``error``, a request with a
boolean id, which it reads as a notification). Fuzzing an SDK-based server with them
tests its robustness, not its conformance: it may accept them as messages.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from hypothesis import strategies as st

from .._codec import encode
from ._messages import jsonrpc_errors, jsonrpc_requests
from ._mutations import MARK, MARK_JSON, dumps, maybe_bytes, message_objects, token_in_message
from ._values import INT64_MAX, INT64_MIN

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

PolicyKind = Literal[
    "big_id",
    "integral_float_id",
    "bad_id_in_request",
    "error_without_id",
    "result_and_error",
    "duplicate_key",
    "nan_infinity_literal",
    "overflow",
    "huge_number",
    "deep_nesting",
]
"""The name of one kind of frame `policy_refused_frames` can produce (see `POLICY_KINDS`).

Example:
    ```python
    from trio_mcp_ws.strategies import PolicyKind, policy_refused_frames

    beyond_the_parser: list[PolicyKind] = ["overflow", "huge_number", "deep_nesting"]
    strategy = policy_refused_frames(kinds=beyond_the_parser)
    ```
"""

POLICY_KINDS: Final[tuple[PolicyKind, ...]] = get_args(PolicyKind)
"""Every kind of policy-refused frame, with why we refuse it and what the SDK's validator does:

- ``big_id``: an integer id outside the signed 64-bit range. The MCP schema sets no bound;
  we refuse ids that most peers cannot hold exactly. The SDK accepts them.
- ``integral_float_id``: an id written as a number with a fraction or exponent but an
  integral value (``1.0``, ``1e3``, ``-0.0``), which JSON Schema counts as an integer. The
  SDK rejects them in responses and reads such a request as a notification.
- ``bad_id_in_request``: a request whose id is a boolean, an array, an object, ``null`` or
  a number with a fraction. JSON-RPC and MCP forbid them; the SDK reads the frame as a
  notification, dropping the id.
- ``error_without_id``: an error response with no ``id``. The JSON-RPC and MCP schemas
  allow it; the SDK's ``JSONRPCError`` requires an id (``null`` allowed) and rejects it.
- ``result_and_error``: two of ``method``, ``result`` and ``error`` in one message.
  JSON-RPC forbids a response with both ``result`` and ``error``; the SDK ignores the
  extra member and accepts the message.
- ``duplicate_key``: an envelope member named twice, in any spelling (``\\u`` escapes,
  whitespace), before or after the payload, in small and large frames. RFC 8259 says names
  should be unique; the SDK keeps the last value.
- ``nan_infinity_literal``: JavaScript's ``NaN``, ``Infinity`` and ``-Infinity`` anywhere.
  Not JSON, but the SDK's parser accepts them as floats.
- ``overflow``: numbers that parse to infinity (``1e999``, 400-digit mantissas) anywhere.
  Valid JSON; the SDK accepts them as infinity, which it would write back as ``null``.
- ``huge_number``: integer literals of thousands of digits anywhere. Valid JSON; the SDK
  rejects them (Python's 4300-digit limit).
- ``deep_nesting``: arrays or objects nested 200 to 30,000 levels deep. Valid JSON (RFC
  8259 lets a parser limit depth); the SDK's parser rejects them too.

Example:
    ```python
    from trio_mcp_ws.strategies import POLICY_KINDS, policy_refused_frames

    # What a peer built on the official SDK must also reject:
    strategy = policy_refused_frames(kinds=["error_without_id", "huge_number", "deep_nesting"])
    ```
"""


def _ided_objects() -> st.SearchStrategy[dict[str, Any]]:
    """Valid messages as JSON objects, a notification becoming a request with an id."""
    return message_objects().map(lambda obj: obj if "id" in obj or "method" not in obj else {**obj, "id": 1})


def _with_id(obj: dict[str, Any], token: str) -> str:
    """The object serialised with ``token`` (JSON text, maybe not a valid id) as its id."""
    return dumps({**obj, "id": MARK}).replace(MARK_JSON, token, 1)


@st.composite
def _big_id(draw: st.DrawFn) -> str:
    beyond = draw(st.integers(0, 2**70))
    token = str(draw(st.sampled_from((INT64_MAX + 1 + beyond, INT64_MIN - 1 - beyond))))
    return _with_id(draw(_ided_objects()), token)


@st.composite
def _integral_float_id(draw: st.DrawFn) -> str:
    whole = draw(st.integers(-(2**53), 2**53))
    token = draw(st.sampled_from(("1.0", "-0.0", "0.0", "1e3", "1E2", "2.50e1", f"{whole}.0", f"{whole}e0")))
    return _with_id(draw(_ided_objects()), token)


@st.composite
def _bad_id_in_request(draw: st.DrawFn) -> str:
    request = json.loads(encode(draw(jsonrpc_requests())))
    token = draw(st.sampled_from(("true", "false", "[]", "[1]", "{}", '{"id":1}', "null", "1.5", "-0.25")))
    return _with_id(request, token)


@st.composite
def _error_without_id(draw: st.DrawFn) -> str:
    error = json.loads(encode(draw(jsonrpc_errors())))
    del error["id"]
    return dumps(error)


@st.composite
def _overflows(draw: st.DrawFn) -> str:
    """Literals that parse to infinity: a mantissa of at least 1 times at least 1e309."""
    sign = draw(st.sampled_from(("", "-")))
    if draw(st.booleans()):
        digit = draw(st.integers(1, 9))
        fraction = draw(st.sampled_from(("", ".0", ".5", ".999")))
        marker = draw(st.sampled_from(("e", "E", "e+", "E+")))
        return f"{sign}{digit}{fraction}{marker}{draw(st.integers(309, 10**6))}"
    digits = draw(st.integers(309, 2000))
    return f"{sign}9{'9' * digits}{draw(st.sampled_from(('.0', 'e0', '.5e1')))}"


@st.composite
def _huge_numbers(draw: st.DrawFn) -> str:
    """Integer literals longer than the parser's 4300-digit limit."""
    return f"{draw(st.sampled_from(('', '-')))}1{'0' * draw(st.integers(4300, 20000))}"


@st.composite
def _deep_nesting(draw: st.DrawFn) -> str:
    depth = draw(st.one_of(st.integers(200, 3000), st.sampled_from((10_000, 30_000))))
    opener, closer = draw(st.sampled_from((("[", "]"), ('{"a":', "}"), ('[{"a":', "}]"))))
    closed = draw(st.booleans())  # or never closed
    nested = opener * depth + ("1" + closer * depth if closed else "")
    return draw(token_in_message(st.just(nested)))


@st.composite
def _duplicate_key(draw: st.DrawFn) -> str:
    obj = draw(message_objects())
    members = [(json.dumps(key, ensure_ascii=False), dumps(value)) for key, value in obj.items()]
    key = draw(st.sampled_from(list(obj)))  # every member of a valid message is an envelope member
    same_value = dumps(obj[key])
    other_value = draw(st.sampled_from((same_value, "1", '"x"', "{}", "null")))
    first_letter = key[0]
    spelling = draw(
        st.sampled_from(
            (
                f'"{key}"',
                f'"\\u{ord(first_letter):04x}{key[1:]}"',
                f'"\\u{ord(first_letter):04X}{key[1:]}"',
                '"' + "".join(f"\\u{ord(char):04x}" for char in key) + '"',
            )
        )
    )
    members.insert(draw(st.integers(0, len(members))), (spelling, other_value))
    if draw(st.booleans()):  # large enough for the codec's head/payload split parse
        members.insert(draw(st.integers(0, len(members))), ('"pad"', dumps("x" * 600)))
    colon = draw(st.sampled_from((":", " : ", ":\n")))
    return "{" + ",".join(name + colon + value for name, value in members) + "}"


@st.composite
def _result_and_error(draw: st.DrawFn) -> str:
    obj = draw(message_objects())
    obj.setdefault("id", 1)
    kinds: dict[str, Any] = {"method": "m", "result": {}, "error": {"code": 1, "message": "m"}}
    first, second = (key for key in kinds if key not in obj)  # a message has exactly one
    for key in draw(st.sampled_from(([first], [second], [first, second]))):
        obj[key] = kinds[key]
    return dumps(obj)


_BUILDERS: Final[dict[PolicyKind, Callable[[], st.SearchStrategy[str]]]] = {
    "big_id": _big_id,
    "integral_float_id": _integral_float_id,
    "bad_id_in_request": _bad_id_in_request,
    "error_without_id": _error_without_id,
    "result_and_error": _result_and_error,
    "duplicate_key": _duplicate_key,
    "nan_infinity_literal": lambda: token_in_message(st.sampled_from(("NaN", "Infinity", "-Infinity"))),
    "overflow": lambda: token_in_message(_overflows()),
    "huge_number": lambda: token_in_message(_huge_numbers()),
    "deep_nesting": _deep_nesting,
}


def policy_refused_frames(*, kinds: Collection[PolicyKind] | None = None) -> st.SearchStrategy[str | bytes]:
    """Frames that `trio_mcp_ws.decode` refuses by policy, though a peer may accept them.

    Every frame is rejected by our codec with `MessageDecodeError`, but not necessarily by
    other peers: some break no rule of JSON or MCP (integer ids beyond 64 bits, numbers
    beyond a double, duplicate members, deep nesting), and the official SDK's validator
    accepts some that do (``NaN``, both ``result`` and ``error``). `POLICY_KINDS` says,
    kind by kind, why we refuse them and what the SDK does. Use them to check that a peer
    survives such frames, or that a codec is as strict as ours; for frames every peer must
    reject, use `hostile_frames`.

    Text frames are ``str`` and binary frames ``bytes`` (UTF-8); every kind comes as both.

    Args:
        kinds: Which kinds of frame to produce (see `POLICY_KINDS`); all by default.

    Returns:
        A strategy for ``str | bytes`` frames.

    Raises:
        ValueError: ``kinds`` is empty or names an unknown kind.

    Example:
        ```python
        import pytest
        from hypothesis import given
        from trio_mcp_ws import MessageDecodeError, decode
        from trio_mcp_ws.strategies import policy_refused_frames

        @given(policy_refused_frames(kinds=["big_id", "duplicate_key"]))
        def test_as_strict_as_trio_mcp_ws(frame):
            with pytest.raises(MessageDecodeError):
                decode(frame)
        ```
    """
    chosen = POLICY_KINDS if kinds is None else tuple(kinds)
    unknown = sorted(set(chosen) - set(POLICY_KINDS))
    if not chosen or unknown:
        raise ValueError(f"kinds must be a non-empty collection of {POLICY_KINDS}, got {kinds!r}")
    return st.one_of([maybe_bytes(_BUILDERS[kind]()) for kind in POLICY_KINDS if kind in chosen])
