"""Properties of the wire codec, checked by Hypothesis with our public strategies.

- Every valid message round-trips: ``decode(encode(m)) == m``, as text and as binary, and
  ``encode`` writes exactly what the SDK writes.
- Every hostile frame raises `MessageDecodeError` (code -32700 or -32600) and nothing else,
  and the SDK's own validator (``mcp_types.jsonrpc_message_adapter``) rejects it too: these
  are frames every conforming peer must reject, so fuzzing an SDK server with them gives no
  false failures.
- Every policy-refused frame raises `MessageDecodeError` too (the SDK may accept it).
- The one-line property: any frame at all yields a message or a `MessageDecodeError`; and
  whatever we accept, the SDK's own adapter accepts as the same message (we are stricter,
  never different).

Example counts come from the Hypothesis profile (``tests/_hypothesis_profiles.py``): ``ci``
by default, ``fuzz`` under ``nox -s fuzz``, which selects these tests by their names
(``-k "propert or stateful or fuzz"``). Shrunk failures found while fuzzing are kept as
plain tests in ``tests/regressions/``.
"""

from __future__ import annotations

import mcp_types as t
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from trio_mcp_ws import MessageDecodeError, decode, encode
from trio_mcp_ws._codec import structure
from trio_mcp_ws.strategies import (
    HOSTILE_KINDS,
    POLICY_KINDS,
    HostileKind,
    PolicyKind,
    frames,
    hostile_frames,
    jsonrpc_messages,
    policy_refused_frames,
)

MESSAGE_TYPES = (t.JSONRPCRequest, t.JSONRPCNotification, t.JSONRPCResponse, t.JSONRPCError)
CODES = {-32700, -32600}

# Each kind gets a tenth of the profile's examples: together they match one property's count.
PER_KIND = settings(max_examples=max(20, settings().max_examples // 10))


@given(jsonrpc_messages())
def test_property_valid_messages_round_trip(message: t.JSONRPCMessage) -> None:
    text = encode(message)
    assert text == message.model_dump_json(by_alias=True, exclude_unset=True)  # what the SDK writes
    decoded = decode(text)
    assert type(decoded) is type(message)
    assert decoded == message
    assert encode(decoded) == text  # what was set is what is encoded, again
    assert decode(text.encode("utf-8")) == message
    assert t.jsonrpc_message_adapter.validate_json(text) == message


@given(hostile_frames())
def test_property_hostile_frames_are_rejected_by_us_and_by_the_sdk(frame: str | bytes) -> None:
    check_rejected(frame)
    check_rejected_by_the_sdk(frame)


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
@PER_KIND
@given(data=st.data())
def test_property_each_kind_of_hostile_frame_is_rejected(kind: HostileKind, data: st.DataObject) -> None:
    frame = data.draw(hostile_frames(kinds=[kind]), label=kind)
    check_rejected(frame)
    check_rejected_by_the_sdk(frame)


@pytest.mark.parametrize("kind", POLICY_KINDS)
@PER_KIND
@given(data=st.data())
def test_property_each_kind_of_policy_refused_frame_is_rejected(
    kind: PolicyKind, data: st.DataObject
) -> None:
    check_rejected(data.draw(policy_refused_frames(kinds=[kind]), label=kind))


def check_rejected_by_the_sdk(frame: str | bytes) -> None:
    with pytest.raises(ValidationError):
        t.jsonrpc_message_adapter.validate_json(frame)


def check_rejected(frame: str | bytes) -> None:
    with pytest.raises(MessageDecodeError) as info:
        decode(frame)
    error = info.value
    assert error.code in CODES
    assert error.request_id is None or type(error.request_id) in (int, str)
    # At most EXCERPT_LIMIT characters of the frame, shown by repr: up to 10 characters each.
    assert len(error.excerpt) <= 10 * MessageDecodeError.EXCERPT_LIMIT + 5
    str(error).encode("utf-8")  # loggable, whatever the frame held


@given(st.one_of(frames(), st.text(), st.binary()))
def test_property_any_frame_yields_a_message_or_a_decode_error(frame: str | bytes) -> None:
    message = outcome(frame)  # anything but a message or a MessageDecodeError propagates
    if isinstance(message, int):
        assert message in CODES
        return
    assert isinstance(message, MESSAGE_TYPES)
    assert decode(encode(message)) == message
    # We are stricter than the SDK's adapter, never different: what we accept, it accepts alike.
    assert t.jsonrpc_message_adapter.validate_json(frame) == message


@given(frames())
def test_property_text_and_binary_frames_decode_alike(frame: str | bytes) -> None:
    if isinstance(frame, bytes):
        try:
            text = frame.decode("utf-8")
        except UnicodeDecodeError:
            return
    else:
        text = frame
        try:
            frame = text.encode("utf-8")
        except UnicodeEncodeError:
            return
    assert outcome(text) == outcome(frame)


def outcome(frame: str | bytes) -> t.JSONRPCMessage | int:
    """The decoded message, or the error code."""
    try:
        return decode(frame)
    except MessageDecodeError as error:
        return error.code


@given(st.one_of(st.text(), st.text(alphabet='{[:]} "\\é\ud800x', max_size=200), st.binary()))
def test_structure_counts_what_str_count_counts(frame: str | bytes) -> None:
    # The budget's fast count (bytes removed by deletion) against the plain one, including
    # lone surrogates in text and invalid UTF-8 in bytes.
    brackets, colon = ("{", "["), ":"
    if isinstance(frame, bytes):
        expected = (frame.count(b"{") + frame.count(b"["), frame.count(b":"))
    else:
        expected = (sum(frame.count(c) for c in brackets), frame.count(colon))
    assert structure(frame) == expected
