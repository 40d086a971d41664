"""Turning valid messages into invalid frames: the tools the hostile and policy strategies share.

A valid message is drawn as the JSON object it encodes to, a marker string is put at some
value position, and the serialised text gets the bad token in place of the marker: the rest
of the frame stays a realistic message, so a peer's codec is tested past its first check.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Final

from hypothesis import strategies as st

from .._codec import encode
from ._messages import jsonrpc_messages
from ._values import text

MARK: Final = "\x00hostile\x00"
MARK_JSON: Final = json.dumps(MARK)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@cache
def message_objects() -> st.SearchStrategy[dict[str, Any]]:
    """Valid messages as the JSON objects they encode to."""
    return jsonrpc_messages().map(lambda message: json.loads(encode(message)))


@st.composite
def token_in_message(draw: st.DrawFn, tokens: st.SearchStrategy[str]) -> str:
    """A valid message with one JSON value replaced by ``token`` (which need not be JSON)."""
    obj = draw(message_objects())
    where = draw(st.sampled_from(("id", "member", "nested", "extra", "payload")))
    if where == "id":
        obj["id"] = MARK
    elif where == "extra":
        obj[draw(text(8).filter(lambda key: key not in obj))] = MARK
    else:
        payload_key = next((key for key in ("params", "result", "error") if key in obj), None)
        if payload_key is None or not isinstance(obj[payload_key], dict):
            obj["params"] = payload = {}
        else:
            payload = obj[payload_key]
        if where == "payload":
            obj[payload_key or "params"] = MARK
        elif where == "member":
            payload[draw(text(8))] = MARK
        else:
            payload["n"] = [1, {"x": [MARK, 2]}, "z"]
    return dumps(obj).replace(MARK_JSON, draw(tokens), 1)


def maybe_bytes(frames: st.SearchStrategy[str]) -> st.SearchStrategy[str | bytes]:
    """Each text frame, or the same frame as a binary frame (UTF-8)."""
    return st.one_of(frames, frames.map(lambda frame: frame.encode("utf-8")))
