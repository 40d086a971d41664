"""Frames every conforming peer must reject: they break JSON, JSON-RPC 2.0 or MCP.

Each is also rejected by the official SDK's validator (``mcp_types.jsonrpc_message_adapter``)
and by `trio_mcp_ws.decode`, which ``tests/test_codec_properties.py`` checks for every draw:
a server built on the SDK that accepts one of these frames as a message has a bug, not a
different policy. Frames only our codec refuses are in `._policy`.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from hypothesis import strategies as st

from .._codec import encode
from ._messages import jsonrpc_errors, jsonrpc_messages, jsonrpc_responses
from ._mutations import MARK, MARK_JSON, dumps, maybe_bytes, message_objects, token_in_message
from ._values import json_values, text

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

HostileKind = Literal[
    "invalid_json",
    "truncated",
    "wrong_jsonrpc",
    "missing_fields",
    "bad_id",
    "batch",
    "nan_infinity",
    "invalid_utf8",
    "lone_surrogate",
    "bom",
    "whitespace",
    "not_object",
]
"""The name of one kind of frame `hostile_frames` can produce (see `HOSTILE_KINDS`).

Example:
    ```python
    from trio_mcp_ws.strategies import HostileKind, hostile_frames

    encoding_problems: list[HostileKind] = ["invalid_utf8", "lone_surrogate", "bom"]
    strategy = hostile_frames(kinds=encoding_problems)
    ```
"""

HOSTILE_KINDS: Final[tuple[HostileKind, ...]] = get_args(HostileKind)
"""Every kind of hostile frame, in the order `hostile_frames` lists them, with the rule it breaks:

- ``invalid_json``: JSON syntax errors (single quotes, bare words, trailing commas and
  garbage, comments, bad number syntax, bad escapes, raw control characters).
- ``truncated``: a valid frame cut short (in bytes frames, possibly inside a character).
- ``wrong_jsonrpc``: a ``jsonrpc`` member other than the string ``"2.0"``, or none
  (JSON-RPC 2.0 requires exactly ``"2.0"``).
- ``missing_fields``: no ``method``, ``result`` or ``error``; a response without ``id``; an
  error object without ``code`` or ``message``.
- ``bad_id``: a response or error whose id is a boolean, an array, an object or a number
  with a fraction, or a response whose id is ``null`` (MCP ids are strings or integers).
- ``batch``: JSON arrays, of messages or not, up to a few thousand messages (MCP removed
  JSON-RPC batching).
- ``nan_infinity``: ``nan``, ``inf``, ``-NaN``, ``+Infinity`` and other spellings of
  non-numbers anywhere (not JSON; JavaScript's own ``NaN``, ``Infinity`` and
  ``-Infinity``, which the SDK's parser accepts, are in `POLICY_KINDS`).
- ``invalid_utf8``: binary frames that are not UTF-8 (overlong forms, encoded surrogates,
  bytes that never appear in UTF-8, truncated sequences); JSON text is UTF-8.
- ``lone_surrogate``: text frames holding an unpaired surrogate, raw or as a ``\\u``
  escape (not Unicode text, so not JSON text).
- ``bom``: a UTF-8 byte-order mark before a valid message (RFC 8259 section 8.1: a sender
  must not add one).
- ``whitespace``: empty and whitespace-only frames (no JSON value at all).
- ``not_object``: JSON that is not an object (strings, numbers, ``true``, ``null``).

Example:
    ```python
    from trio_mcp_ws.strategies import HOSTILE_KINDS, hostile_frames

    # Everything but batches, for a peer that answers batches with an error response:
    strategy = hostile_frames(kinds=[kind for kind in HOSTILE_KINDS if kind != "batch"])
    ```
"""


@cache
def _invalid_json() -> st.SearchStrategy[str]:
    valid = jsonrpc_messages().map(encode)
    bad_values = st.sampled_from(
        (
            "'x'",
            "x",
            "True",
            "None",
            "undefined",
            "01",
            "+1",
            ".5",
            "1.",
            "0x1F",
            "1e",
            "-",
            "--1",
            "1_000",
            '"\\x41"',
            '"\\u12"',
            '"\\uZZZZ"',
            '"\\',
            '"unterminated',
            '"a\nb"',
            '"a\x01b"',
            "[1,]",
            '{"a":1,}',
            '{"a"}',
            '{"a" 1}',
            "{1:2}",
            "[1 2]",
            "}",
        )
    )
    return st.one_of(
        st.builds(concat, valid, st.sampled_from(("}", "]", ",", "x", '"', "{}", " 1"))),
        valid.map(lambda frame: frame[:-1] + ",}"),
        valid.map(lambda frame: "/* c */" + frame),
        valid.map(lambda frame: frame + "// c"),
        valid.map(lambda frame: frame.replace('{"jsonrpc":', "{'jsonrpc':", 1)),
        valid.map(lambda frame: frame.replace('{"jsonrpc":', "{jsonrpc:", 1)),
        valid.map(lambda frame: frame.replace('{"jsonrpc":', '{"jsonrpc"=', 1)),
        token_in_message(bad_values),
        text(40).map(lambda garbage: "}" + garbage),
    )


@st.composite
def _truncated(draw: st.DrawFn) -> str | bytes:
    frame = encode(draw(jsonrpc_messages()))
    data: str | bytes = frame.encode("utf-8") if draw(st.booleans()) else frame
    return data[: draw(st.integers(0, len(data) - 1))]


def concat(frame: str, garbage: str) -> str:
    return frame + garbage


def _replace_version(frame: str, version: str) -> str:
    return frame.replace('"2.0"', version, 1)  # the first member, as the SDK writes it


@cache
def _wrong_jsonrpc() -> st.SearchStrategy[str]:
    versions = st.sampled_from(
        (
            '"1.0"',
            '"2"',
            '"2.00"',
            '"2.0 "',
            '" 2.0"',
            '"\uff12.\uff10"',
            "2.0",
            "2",
            "null",
            '""',
            '["2.0"]',
            '{"v":"2.0"}',
        )
    )
    valid = jsonrpc_messages().map(encode)
    return st.one_of(
        st.builds(_replace_version, valid, versions),
        valid.map(lambda frame: frame.replace('"jsonrpc":"2.0",', "", 1)),
    )


@st.composite
def _missing_fields(draw: st.DrawFn) -> str:
    obj = draw(message_objects())
    if "method" in obj:
        removable = ["jsonrpc", "method"]  # not "id": a request without one is a valid notification
    elif "result" in obj:
        removable = ["jsonrpc", "id", "result"]
    else:
        removable = ["jsonrpc", "error"]  # not "id" alone: the schema allows an error without one
    del obj[draw(st.sampled_from(removable))]
    if "error" in obj and draw(st.booleans()):
        del obj["error"][draw(st.sampled_from(("code", "message")))]
    return dumps(obj)


@cache
def _answer_objects() -> st.SearchStrategy[dict[str, Any]]:
    """Valid responses and errors as JSON objects: the messages whose id the SDK checks.

    A request with a spoiled id is no use here: the SDK reads it as a notification (see
    ``bad_id_in_request`` in `._policy`).
    """
    answers = st.one_of(jsonrpc_responses(), jsonrpc_errors())
    return answers.map(lambda message: json.loads(encode(message)))


def _has_fraction(number: float) -> bool:
    return not number.is_integer()


@st.composite
def _bad_id(draw: st.DrawFn) -> str:
    obj = draw(_answer_objects())
    fractions = st.floats(allow_nan=False, allow_infinity=False).filter(_has_fraction)
    bad = ["true", "false", "[]", "[1]", "{}", '{"id":1}', "1.5", "-0.5", dumps(draw(fractions))]
    if "error" not in obj:
        bad.append("null")  # only an error may answer an unreadable request with a null id
    obj["id"] = MARK
    return dumps(obj).replace(MARK_JSON, draw(st.sampled_from(bad)), 1)


@st.composite
def _batch(draw: st.DrawFn) -> str:
    leading = draw(st.sampled_from(("", " ", "\n\t")))
    shape = draw(st.sampled_from(("messages", "large", "values")))
    if shape == "messages":
        items = [encode(message) for message in draw(st.lists(jsonrpc_messages(), max_size=4))]
    elif shape == "large":
        item = encode(draw(jsonrpc_messages()))
        items = [item] * min(draw(st.integers(1, 5000)), 256 * 1024 // (len(item) + 1))
    else:
        items = [dumps(value) for value in draw(st.lists(json_values(), max_size=4))]
    return leading + "[" + ",".join(items) + "]"


@cache
def _nan_infinity() -> st.SearchStrategy[str]:
    spellings = ("nan", "NAN", "-NaN", "+NaN", "inf", "-inf", "+inf", "Inf", "infinity", "+Infinity")
    return token_in_message(st.sampled_from(spellings))


_INVALID_UTF8: Final = (
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xbf",
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
)


@st.composite
def _invalid_utf8(draw: st.DrawFn) -> bytes:
    frame = encode(draw(jsonrpc_messages()))
    cut = draw(st.integers(0, len(frame)))  # between characters, so the bad bytes stay bad
    return frame[:cut].encode("utf-8") + draw(st.sampled_from(_INVALID_UTF8)) + frame[cut:].encode("utf-8")


@st.composite
def _lone_surrogate(draw: st.DrawFn) -> str:
    high = draw(st.integers(0xD800, 0xDBFF))
    low = draw(st.integers(0xDC00, 0xDFFF))
    if draw(st.booleans()):
        frame = encode(draw(jsonrpc_messages()))
        cut = draw(st.integers(0, len(frame)))
        return frame[:cut] + chr(draw(st.sampled_from((high, low)))) + frame[cut:]
    hex_case = draw(st.sampled_from(("x", "X")))
    high_escape = f"\\u{high:04{hex_case}}"
    low_escape = f"\\u{low:04{hex_case}}"
    escaped = draw(
        st.sampled_from(
            (
                f'"{high_escape}"',
                f'"a{high_escape}b"',
                f'"{high_escape}\\u0041"',
                f'"{high_escape}{high_escape}"',
                f'"{low_escape}"',
                f'"{low_escape}{high_escape}"',
                f'"x{low_escape}"',
            )
        )
    )
    return draw(token_in_message(st.just(escaped)))


@cache
def _bom() -> st.SearchStrategy[str | bytes]:
    valid = jsonrpc_messages().map(encode)
    return st.one_of(
        valid.map(lambda frame: "\ufeff" + frame), valid.map(lambda frame: b"\xef\xbb\xbf" + frame.encode())
    )


@cache
def _whitespace() -> st.SearchStrategy[str | bytes]:
    blank = st.text(st.sampled_from(" \t\r\n"), max_size=20)
    other = st.text(st.sampled_from(" \t\r\n\u00a0\u2028\u3000\ufeff\x0b\x0c"), max_size=20)
    return st.one_of(maybe_bytes(blank), other)


@st.composite
def _not_object(draw: st.DrawFn) -> str:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), text()
    )
    before, after = draw(st.sampled_from(("", " ", "\n"))), draw(st.sampled_from(("", " ", "\n")))
    return before + dumps(draw(scalars)) + after


_BUILDERS: Final[dict[HostileKind, Callable[[], st.SearchStrategy[str | bytes]]]] = {
    "invalid_json": lambda: maybe_bytes(_invalid_json()),
    "truncated": _truncated,
    "wrong_jsonrpc": lambda: maybe_bytes(_wrong_jsonrpc()),
    "missing_fields": lambda: maybe_bytes(_missing_fields()),
    "bad_id": lambda: maybe_bytes(_bad_id()),
    "batch": lambda: maybe_bytes(_batch()),
    "nan_infinity": lambda: maybe_bytes(_nan_infinity()),
    "invalid_utf8": _invalid_utf8,
    "lone_surrogate": _lone_surrogate,
    "bom": _bom,
    "whitespace": _whitespace,
    "not_object": lambda: maybe_bytes(_not_object()),
}


def hostile_frames(*, kinds: Collection[HostileKind] | None = None) -> st.SearchStrategy[str | bytes]:
    """Frames that every conforming peer must reject: they break JSON, JSON-RPC 2.0 or MCP.

    Every frame is rejected by `trio_mcp_ws.decode` with `MessageDecodeError` and by the
    official SDK's validator, ``mcp_types.jsonrpc_message_adapter``, so a server built on
    the SDK can be fuzzed with them without false failures. Frames that only our codec
    refuses, by a policy stricter than the SDK's (integer ids beyond 64 bits, duplicate
    members, numbers too large for a double, ...), are in `policy_refused_frames`.

    Text frames are ``str`` and binary frames ``bytes``; most kinds come as both. Some
    text frames hold lone surrogates and so cannot be sent as a WebSocket text frame at all
    (their UTF-8 would be invalid): send them as binary with
    ``frame.encode("utf-8", "surrogatepass")`` if you need them on the wire.

    Args:
        kinds: Which kinds of frame to produce (see `HOSTILE_KINDS`); all by default.

    Returns:
        A strategy for ``str | bytes`` frames.

    Raises:
        ValueError: ``kinds`` is empty or names an unknown kind.

    Example:
        ```python
        import mcp_types
        import pytest
        from hypothesis import given
        from trio_mcp_ws import MessageDecodeError, decode
        from trio_mcp_ws.strategies import hostile_frames

        @given(hostile_frames(kinds=["bad_id", "batch"]))
        def test_rejected(frame):
            with pytest.raises(MessageDecodeError):
                decode(frame)
            with pytest.raises(ValueError):  # the SDK rejects them too
                mcp_types.jsonrpc_message_adapter.validate_json(frame)
        ```
    """
    chosen = HOSTILE_KINDS if kinds is None else tuple(kinds)
    unknown = sorted(set(chosen) - set(HOSTILE_KINDS))
    if not chosen or unknown:
        raise ValueError(f"kinds must be a non-empty collection of {HOSTILE_KINDS}, got {kinds!r}")
    return st.one_of([_BUILDERS[kind]() for kind in HOSTILE_KINDS if kind in chosen])
