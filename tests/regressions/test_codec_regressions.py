"""Shrunk failures found by fuzzing the codec, kept as plain tests so they never come back.

Each case is the minimal frame Hypothesis printed ("Failing test case: ...") when the
properties in ``tests/test_codec_properties.py`` failed, pasted as is, with the bug it
showed. How to add one: ``docs/fuzzing.md``, "When the fuzzer finds a bug".

Found by running the properties against the codec as first written (before duplicate
members, overflows and lone surrogates were handled):

- a text frame holding a lone surrogate made pydantic-core raise ``TypeError``, which escaped
  `decode` and would have killed the connection's reader task;
- a number too large for a double became infinity, which the SDK writes back as ``null``;
- a duplicate envelope member was silently resolved to its last value.
"""

from __future__ import annotations

import pytest

from trio_mcp_ws import MessageDecodeError, decode

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

REGRESSIONS = {
    # test_property_any_frame_yields_a_message_or_a_decode_error: TypeError escaped decode.
    "lone surrogate alone": ("\ud800", PARSE_ERROR),
    # test_property_each_kind_of_hostile_frame_is_rejected[lone_surrogate]: TypeError escaped.
    "lone surrogate before a message": ('\ud800{"jsonrpc":"2.0","method":"initialize"}', PARSE_ERROR),
    # test_property_each_kind_of_hostile_frame_is_rejected[overflow]: accepted as params {"": inf}.
    "319-digit mantissa": (
        '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"":' + "9" * 319 + ".0}}",
        PARSE_ERROR,
    ),
    # test_property_each_kind_of_hostile_frame_is_rejected[duplicate_key]: accepted, last value kept.
    "duplicate jsonrpc, spaced": (
        '{"jsonrpc":\n"2.0","jsonrpc":\n"2.0","method":\n"initialize","params":\n{}}',
        INVALID_REQUEST,
    ),
}


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_regression(name: str) -> None:
    frame, code = REGRESSIONS[name]
    with pytest.raises(MessageDecodeError) as info:
        decode(frame)
    assert info.value.code == code
