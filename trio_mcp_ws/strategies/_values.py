"""JSON building blocks shared by every strategy: text, ids, scalars, values, objects, ``_meta``.

Each is biased towards what breaks naive peers (JavaScript's and int64's integer edges,
strings that look like JSON or hold escapes, deep nesting) and stays within what a JSON-RPC
message may hold, so the valid-message strategies can use them as they are.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

import mcp_types as t
from hypothesis import strategies as st

MAX_NESTING: Final = 150
"""The deepest nesting of containers generated inside a message's params, result or data.

`trio_mcp_ws.decode` accepts about 200 levels in all (pydantic-core's parser limit), and the
envelope and the params object take two of them.

Example:
    ```python
    from trio_mcp_ws.strategies import MAX_NESTING

    params = {"a": 1}
    for _ in range(MAX_NESTING - 1):
        params = {"a": params}  # as deep as the strategies go: decode accepts it
    ```
"""
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# Integers that break naive peers: JavaScript's safe-integer edge and int64's.
EDGE_INTS: Final = (
    0,
    1,
    -1,
    2**31 - 1,
    -(2**31),
    2**53 - 1,
    2**53,
    2**53 + 1,
    -(2**53),
    INT64_MAX,
    INT64_MIN,
)

# Strings that are awkward in JSON text or that look like parts of it (envelope names,
# escapes, structure), to exercise every escaping and text search in a peer's codec.
TRICKY_TEXT: Final = (
    "",
    '"',
    "\\",
    "\\u0069d",
    '"id"',
    '{"id":1}',
    "id",
    "method",
    "jsonrpc",
    ":",
    "a:b",
    "http://example.com/x?y=1#z",
    "{",
    "}]",
    "e000",
    "1e999",
    "NaN",
    "\x00",
    "\x1f",
    "\x7f",
    "\u2028\u2029",
    "\ufeff",
    "é",
    "\u00e9\u0301",
    "😀",
    "\U0010ffff",
    "\ufffd",
)

KNOWN_METHODS: Final = (
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    "tasks/get",
    "notifications/initialized",
    "notifications/progress",
    "notifications/cancelled",
    "notifications/message",
    "notifications/tools/list_changed",
    "notifications/resources/updated",
)

ERROR_CODES: Final = (-32700, -32600, -32601, -32602, -32603, -32000, -32001, -32002, -32042, 0, 1, -1)

UNSET: Final[Any] = object()


@cache
def text(max_size: int = 24) -> st.SearchStrategy[str]:
    """Any Unicode text that can be UTF-8 (no lone surrogates), biased to awkward strings."""
    # Hypothesis's default alphabet is all of Unicode except surrogates.
    return st.one_of(st.text(max_size=max_size), st.sampled_from(TRICKY_TEXT))


@cache
def request_ids() -> st.SearchStrategy[int | str]:
    """JSON-RPC ids: strings, and integers across the whole signed 64-bit range."""
    return st.one_of(
        st.integers(INT64_MIN, INT64_MAX),
        st.sampled_from(EDGE_INTS),
        st.integers(-1000, 1000),
        text(),
    )


@cache
def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from(EDGE_INTS),
        st.integers(-(10**40), 10**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from((0.0, -0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 1e16, 0.1)),
        text(),
    )


@cache
def json_values() -> st.SearchStrategy[Any]:
    """JSON values: scalars, and small arrays and objects of them."""
    return st.recursive(
        scalars(),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(text(12), children, max_size=3),
        max_leaves=8,
    )


@st.composite
def deep_values(draw: st.DrawFn) -> Any:
    """One value nested 1 to `MAX_NESTING` levels deep, in arrays, objects or both in turn."""
    depth = draw(st.integers(1, MAX_NESTING))
    shape = draw(st.sampled_from(("array", "object", "alternating")))
    value = draw(scalars())
    for level in range(depth):
        in_object = shape == "object" or (shape == "alternating" and level % 2 == 1)
        value = {"a": value} if in_object else [value]
    return value


@cache
def objects() -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects for params, results and data: empty, small, deep, or with ``_meta``."""
    return st.one_of(
        st.builds(_empty_object),
        st.dictionaries(text(12), json_values(), max_size=4),
        st.builds(_singleton, text(8), deep_values()),
        st.builds(_with_meta, st.dictionaries(text(12), json_values(), max_size=3), metas()),
    )


def _empty_object() -> dict[str, Any]:
    return {}


def _singleton(key: str, value: Any) -> dict[str, Any]:
    return {key: value}


@cache
def metas() -> st.SearchStrategy[dict[str, Any]]:
    """``_meta`` objects: a progress token, reserved ``io.modelcontextprotocol/*`` keys, anything."""
    optional: dict[str, st.SearchStrategy[Any]] = {
        "progressToken": st.one_of(st.integers(INT64_MIN, INT64_MAX), text()),
        t.PROTOCOL_VERSION_META_KEY: st.sampled_from(("2025-06-18", "2025-11-25", "2026-07-28")),
        t.CLIENT_INFO_META_KEY: st.builds(_client_info),
        "example.com/trace": json_values(),
    }
    return st.fixed_dictionaries({}, optional=optional)


def _client_info() -> dict[str, Any]:
    return {"name": "client", "version": "1.0"}


def _with_meta(params: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    return {**params, "_meta": meta}
