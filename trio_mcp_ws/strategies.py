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
- `hostile_frames`: text and binary frames that `trio_mcp_ws.decode` must reject, by kind
  (`HOSTILE_KINDS`).
- `frames`: any frame at all, for the one-line property "a frame yields a message or a
  `MessageDecodeError`, never anything else".

Installing the package also registers the message classes with Hypothesis (through its
``hypothesis`` entry point), so ``st.from_type(mcp_types.JSONRPCRequest)`` and
``st.from_type(mcp_types.JSONRPCMessage)`` use these strategies.

Sizes: generated nesting stays within `MAX_NESTING` levels (the codec accepts about 200 in
all) and no frame is larger than about 256 KiB, well under the transport's default maximum
message size.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import mcp_types as t


def _hypothesis_setup_hook() -> None:  # pyright: ignore[reportUnusedFunction]
    """Register the message strategies for ``st.from_type`` (Hypothesis's entry point).

    Defined before this module imports Hypothesis: if this module is imported first,
    importing Hypothesis runs its entry points, which look this function up in the
    half-imported module. The strategies are registered as functions, resolved only when
    first used, so nothing is built while Hypothesis is still importing.
    ``st.from_type(mcp_types.JSONRPCMessage)`` resolves the union through its members.
    """
    from hypothesis import strategies as st  # noqa: PLC0415  # see above

    st.register_type_strategy(t.JSONRPCRequest, lambda _: jsonrpc_requests())
    st.register_type_strategy(t.JSONRPCNotification, lambda _: jsonrpc_notifications())
    st.register_type_strategy(t.JSONRPCResponse, lambda _: jsonrpc_responses())
    st.register_type_strategy(t.JSONRPCError, lambda _: jsonrpc_errors())


from hypothesis import strategies as st  # noqa: E402  # after the entry point, see above

from ._codec import encode  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

__all__ = [
    "HOSTILE_KINDS",
    "MAX_NESTING",
    "HostileKind",
    "frames",
    "hostile_frames",
    "jsonrpc_errors",
    "jsonrpc_messages",
    "jsonrpc_notifications",
    "jsonrpc_requests",
    "jsonrpc_responses",
]

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

HostileKind = Literal[
    "invalid_json",
    "truncated",
    "wrong_jsonrpc",
    "missing_fields",
    "bad_id",
    "batch",
    "nan_infinity",
    "overflow",
    "huge_number",
    "invalid_utf8",
    "lone_surrogate",
    "deep_nesting",
    "duplicate_key",
    "bom",
    "whitespace",
    "result_and_error",
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
"""Every kind of hostile frame, in the order `hostile_frames` lists them:

- ``invalid_json``: syntax errors (single quotes, bare words, trailing commas and garbage,
  comments, bad number syntax, bad escapes, raw control characters).
- ``truncated``: a valid frame cut short (in bytes frames, possibly inside a character).
- ``wrong_jsonrpc``: a ``jsonrpc`` member other than the string ``"2.0"``, or none.
- ``missing_fields``: no ``method``, ``result`` or ``error``; a response or error without
  ``id`` (the schema allows that for errors, the SDK's ``JSONRPCError`` does not); an error
  object without ``code`` or ``message``.
- ``bad_id``: booleans, floats, arrays, objects, integers outside 64 bits, and ``null``
  where only an error response may carry it.
- ``batch``: JSON arrays, of messages or not, up to a few thousand messages.
- ``nan_infinity``: ``NaN``, ``Infinity`` and ``-Infinity`` tokens anywhere.
- ``overflow``: numbers that parse to infinity (``1e999``, 400-digit mantissas) anywhere.
- ``huge_number``: integer literals of thousands of digits anywhere.
- ``invalid_utf8``: binary frames that are not UTF-8 (overlong forms, encoded surrogates,
  bytes that never appear in UTF-8, truncated sequences).
- ``lone_surrogate``: text frames holding an unpaired surrogate, raw or as a ``\\u``
  escape.
- ``deep_nesting``: arrays or objects nested 200 to 30,000 levels deep.
- ``duplicate_key``: an envelope member named twice, in any spelling (``\\u`` escapes,
  whitespace), before or after the payload, in small and large frames.
- ``bom``: a UTF-8 byte-order mark before a valid message.
- ``whitespace``: empty and whitespace-only frames.
- ``result_and_error``: two of ``method``, ``result`` and ``error`` in one message.
- ``not_object``: JSON that is not an object (strings, numbers, ``true``, ``null``).

Example:
    ```python
    from trio_mcp_ws.strategies import HOSTILE_KINDS, hostile_frames

    # Everything but batches, for a peer that answers batches with an error response:
    strategy = hostile_frames(kinds=[kind for kind in HOSTILE_KINDS if kind != "batch"])
    ```
"""

# -- building blocks ------------------------------------------------------------------------

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

# Integers that break naive peers: JavaScript's safe-integer edge and int64's.
_EDGE_INTS: Final = (
    0,
    1,
    -1,
    2**31 - 1,
    -(2**31),
    2**53 - 1,
    2**53,
    2**53 + 1,
    -(2**53),
    _INT64_MAX,
    _INT64_MIN,
)

# Strings that are awkward in JSON text or that look like parts of it (envelope names,
# escapes, structure), to exercise every escaping and text search in a peer's codec.
_TRICKY_TEXT: Final = (
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

_KNOWN_METHODS: Final = (
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

_ERROR_CODES: Final = (-32700, -32600, -32601, -32602, -32603, -32000, -32001, -32002, -32042, 0, 1, -1)

_UNSET: Final[Any] = object()


@cache
def _text(max_size: int = 24) -> st.SearchStrategy[str]:
    """Any Unicode text that can be UTF-8 (no lone surrogates), biased to awkward strings."""
    # Hypothesis's default alphabet is all of Unicode except surrogates.
    return st.one_of(st.text(max_size=max_size), st.sampled_from(_TRICKY_TEXT))


@cache
def _ids() -> st.SearchStrategy[int | str]:
    """JSON-RPC ids: strings, and integers across the whole signed 64-bit range."""
    return st.one_of(
        st.integers(_INT64_MIN, _INT64_MAX),
        st.sampled_from(_EDGE_INTS),
        st.integers(-1000, 1000),
        _text(),
    )


@cache
def _scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from(_EDGE_INTS),
        st.integers(-(10**40), 10**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from((0.0, -0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 1e16, 0.1)),
        _text(),
    )


@cache
def _json_values() -> st.SearchStrategy[Any]:
    """JSON values: scalars, and small arrays and objects of them."""
    return st.recursive(
        _scalars(),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(_text(12), children, max_size=3),
        max_leaves=8,
    )


@st.composite
def _deep_values(draw: st.DrawFn) -> Any:
    """One value nested 1 to `MAX_NESTING` levels deep, in arrays, objects or both in turn."""
    depth = draw(st.integers(1, MAX_NESTING))
    shape = draw(st.sampled_from(("array", "object", "alternating")))
    value = draw(_scalars())
    for level in range(depth):
        in_object = shape == "object" or (shape == "alternating" and level % 2 == 1)
        value = {"a": value} if in_object else [value]
    return value


@cache
def _objects() -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects for params, results and data: empty, small, deep, or with ``_meta``."""
    return st.one_of(
        st.builds(_empty_object),
        st.dictionaries(_text(12), _json_values(), max_size=4),
        st.builds(_singleton, _text(8), _deep_values()),
        st.builds(_with_meta, st.dictionaries(_text(12), _json_values(), max_size=3), _metas()),
    )


def _empty_object() -> dict[str, Any]:
    return {}


def _singleton(key: str, value: Any) -> dict[str, Any]:
    return {key: value}


@cache
def _metas() -> st.SearchStrategy[dict[str, Any]]:
    """``_meta`` objects: a progress token, reserved ``io.modelcontextprotocol/*`` keys, anything."""
    optional: dict[str, st.SearchStrategy[Any]] = {
        "progressToken": st.one_of(st.integers(_INT64_MIN, _INT64_MAX), _text()),
        t.PROTOCOL_VERSION_META_KEY: st.sampled_from(("2025-06-18", "2025-11-25", "2026-07-28")),
        t.CLIENT_INFO_META_KEY: st.builds(_client_info),
        "example.com/trace": _json_values(),
    }
    return st.fixed_dictionaries({}, optional=optional)


def _client_info() -> dict[str, Any]:
    return {"name": "client", "version": "1.0"}


def _with_meta(params: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    return {**params, "_meta": meta}


def _dump(model: Any) -> dict[str, Any]:
    """A result model as the SDK puts it on the wire."""
    dumped: dict[str, Any] = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dumped


@st.composite
def _tools(draw: st.DrawFn) -> t.Tool:
    names = draw(st.lists(_text(8), max_size=3, unique=True))
    schema: dict[str, Any] = {"type": "object"}
    if names:
        schema["properties"] = {name: {"type": "string"} for name in names}
        schema["required"] = names[:1]
    read_only = draw(st.none() | st.booleans())
    return t.Tool(
        name=draw(_text(16)),
        title=draw(st.none() | _text()),
        description=draw(st.none() | _text(40)),
        input_schema=schema,
        annotations=None if read_only is None else t.ToolAnnotations(read_only_hint=read_only),
    )


@st.composite
def _content(draw: st.DrawFn) -> t.TextContent | t.ImageContent:
    if draw(st.booleans()):
        return t.TextContent(text=draw(_text(60)))
    return t.ImageContent(
        data=draw(st.sampled_from(("", "iVBORw0KGgo=", "R0lGODlhAQABAAAAACw="))),
        mime_type=draw(st.sampled_from(("image/png", "image/gif"))),
    )


@st.composite
def _mcp_results(draw: st.DrawFn) -> dict[str, Any]:
    """Results of real MCP methods, dumped from `mcp_types` models as the SDK dumps them."""
    method = draw(st.sampled_from(("ping", "tools/list", "tools/call", "initialize", "resources/list")))
    result: t.Result
    if method == "ping":
        result = t.EmptyResult()
    elif method == "tools/list":
        result = t.ListToolsResult(
            tools=draw(st.lists(_tools(), max_size=3)), next_cursor=draw(st.none() | _text())
        )
    elif method == "tools/call":
        structured = draw(st.none() | st.dictionaries(_text(8), _json_values(), max_size=3))
        result = t.CallToolResult(
            content=draw(st.lists(_content(), max_size=3)),
            structured_content=structured,
            is_error=draw(st.booleans()),
        )
    elif method == "initialize":
        list_changed = draw(st.none() | st.booleans())
        result = t.InitializeResult(
            protocol_version=draw(st.sampled_from(("2025-03-26", "2025-06-18", "2025-11-25"))),
            capabilities=t.ServerCapabilities(tools=t.ToolsCapability(list_changed=list_changed)),
            server_info=t.Implementation(name=draw(_text(16)), version=draw(_text(8))),
            instructions=draw(st.none() | _text(40)),
        )
    else:
        uris = st.sampled_from(("file:///a.txt", "mem://x", "https://example.com/a?b=c"))
        resources = draw(st.lists(st.tuples(_text(16), uris), max_size=3))
        result = t.ListResourcesResult(resources=[t.Resource(name=name, uri=uri) for name, uri in resources])
    return _dump(result)


@cache
def _mcp_params() -> st.SearchStrategy[dict[str, Any]]:
    """Params of real MCP requests, as the SDK writes them."""
    tool_call: dict[str, st.SearchStrategy[Any]] = {"name": _text(16)}
    tool_call_optional: dict[str, st.SearchStrategy[Any]] = {
        "arguments": st.dictionaries(_text(12), _json_values(), max_size=4),
        "_meta": _metas(),
    }
    paginated: dict[str, st.SearchStrategy[Any]] = {"cursor": _text(), "_meta": _metas()}
    progress: dict[str, st.SearchStrategy[Any]] = {
        "progressToken": st.one_of(st.integers(_INT64_MIN, _INT64_MAX), _text()),
        "progress": st.floats(0, 1),
    }
    progress_optional: dict[str, st.SearchStrategy[Any]] = {"total": st.floats(0, 1e6), "message": _text()}
    return st.one_of(
        st.fixed_dictionaries(tool_call, optional=tool_call_optional),
        st.fixed_dictionaries({}, optional=paginated),
        st.fixed_dictionaries(progress, optional=progress_optional),
    )


@cache
def _params() -> st.SearchStrategy[Any]:
    """Request and notification params: unset, ``null``, or an object."""
    return st.one_of(st.just(_UNSET), st.none(), _objects(), _mcp_params())


@cache
def _methods() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(_KNOWN_METHODS), _text(40))


# -- valid messages --------------------------------------------------------------------------


def jsonrpc_requests(
    *, methods: st.SearchStrategy[str] | None = None, ids: st.SearchStrategy[int | str] | None = None
) -> st.SearchStrategy[t.JSONRPCRequest]:
    """Valid requests: a string or 64-bit integer id, a method, and optional params.

    Params are unset, ``null``, empty, arbitrary JSON objects (unicode, escapes, deep
    nesting), objects with ``_meta`` (progress tokens, reserved keys) or real MCP params.

    Args:
        methods: Method names to use; by default the MCP methods and arbitrary text.
        ids: Ids to use; by default strings and integers across the signed 64-bit range,
            with the 2**53 and 2**63 edges.

    Returns:
        A strategy for `mcp_types.JSONRPCRequest`.

    Example:
        ```python
        from hypothesis import given, strategies as st
        from trio_mcp_ws.strategies import jsonrpc_requests

        @given(jsonrpc_requests(methods=st.just("tools/call")))
        def test_my_server_answers_every_call(request):
            ...
        ```
    """
    if methods is None and ids is None:
        return _default_requests()
    return _requests(methods if methods is not None else _methods(), ids if ids is not None else _ids())


@cache
def _default_requests() -> st.SearchStrategy[t.JSONRPCRequest]:
    return _requests(_methods(), _ids())


@st.composite
def _requests(
    draw: st.DrawFn, methods: st.SearchStrategy[str], ids: st.SearchStrategy[int | str]
) -> t.JSONRPCRequest:
    fields: dict[str, Any] = {"jsonrpc": "2.0", "id": draw(ids), "method": draw(methods)}
    params = draw(_params())
    if params is not _UNSET:
        fields["params"] = params
    return t.JSONRPCRequest(**fields)


def jsonrpc_notifications(
    *, methods: st.SearchStrategy[str] | None = None
) -> st.SearchStrategy[t.JSONRPCNotification]:
    """Valid notifications: a method and optional params, no id.

    Args:
        methods: Method names to use; by default the MCP methods and arbitrary text.

    Returns:
        A strategy for `mcp_types.JSONRPCNotification`.

    Example:
        ```python
        from hypothesis import given
        from trio_mcp_ws import decode, encode
        from trio_mcp_ws.strategies import jsonrpc_notifications

        @given(jsonrpc_notifications())
        def test_notifications_round_trip(notification):
            assert decode(encode(notification)) == notification
        ```
    """
    return _notifications(methods) if methods is not None else _default_notifications()


@cache
def _default_notifications() -> st.SearchStrategy[t.JSONRPCNotification]:
    return _notifications(_methods())


@st.composite
def _notifications(draw: st.DrawFn, methods: st.SearchStrategy[str]) -> t.JSONRPCNotification:
    fields: dict[str, Any] = {"jsonrpc": "2.0", "method": draw(methods)}
    params = draw(_params())
    if params is not _UNSET:
        fields["params"] = params
    return t.JSONRPCNotification(**fields)


def jsonrpc_responses(
    *, ids: st.SearchStrategy[int | str] | None = None
) -> st.SearchStrategy[t.JSONRPCResponse]:
    """Valid successful responses: an id and a result object.

    Results are empty, arbitrary JSON objects, objects with ``_meta``, or results of real
    MCP methods (``initialize``, ``tools/list``, ``tools/call``, ``resources/list``,
    ``ping``) dumped from `mcp_types` models as the SDK dumps them.

    Args:
        ids: Ids to use; by default strings and 64-bit integers.

    Returns:
        A strategy for `mcp_types.JSONRPCResponse`.

    Example:
        ```python
        from hypothesis import given, strategies as st
        from trio_mcp_ws.strategies import jsonrpc_responses

        @given(jsonrpc_responses(ids=st.just(1)))
        def test_my_client_accepts_any_answer_to_request_1(response):
            ...
        ```
    """
    return st.builds(_response, ids if ids is not None else _ids(), _results())


@cache
def _results() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(_objects(), _mcp_results())


def _response(id_: int | str, result: dict[str, Any]) -> t.JSONRPCResponse:
    return t.JSONRPCResponse(jsonrpc="2.0", id=id_, result=result)


def jsonrpc_errors(
    *, ids: st.SearchStrategy[int | str | None] | None = None
) -> st.SearchStrategy[t.JSONRPCError]:
    """Valid error responses, including ``"id": null`` (the id of the request was unreadable).

    The JSON-RPC schema makes ``id`` optional in an error; the SDK's `mcp_types.JSONRPCError`
    requires it (``null`` allowed), and so do these messages and `trio_mcp_ws.decode`.

    Args:
        ids: Ids to use; by default strings, 64-bit integers and ``None``.

    Returns:
        A strategy for `mcp_types.JSONRPCError`, with standard and arbitrary error codes, and
        ``data`` unset, ``null`` or any JSON value.

    Example:
        ```python
        from hypothesis import given
        from trio_mcp_ws.strategies import jsonrpc_errors

        @given(jsonrpc_errors())
        def test_my_client_survives_any_error(error):
            ...
        ```
    """
    return _errors(ids) if ids is not None else _default_errors()


@cache
def _default_errors() -> st.SearchStrategy[t.JSONRPCError]:
    return _errors(st.one_of(st.none(), _ids()))


@st.composite
def _errors(draw: st.DrawFn, ids: st.SearchStrategy[int | str | None]) -> t.JSONRPCError:
    error: dict[str, Any] = {
        "code": draw(st.one_of(st.sampled_from(_ERROR_CODES), st.integers(_INT64_MIN, _INT64_MAX))),
        "message": draw(_text(40)),
    }
    data = draw(st.one_of(st.just(_UNSET), st.none(), _json_values(), _deep_values()))
    if data is not _UNSET:
        error["data"] = data
    return t.JSONRPCError(jsonrpc="2.0", id=draw(ids), error=t.ErrorData(**error))


def jsonrpc_messages() -> st.SearchStrategy[t.JSONRPCMessage]:
    """Valid messages of every kind: requests, notifications, responses and errors.

    Every message round-trips through the codec, ``decode(encode(m)) == m``, and encodes to
    what the SDK itself writes.

    Returns:
        A strategy for `mcp_types.JSONRPCMessage`.

    Example:
        ```python
        from hypothesis import given
        from trio_mcp_ws import decode, encode
        from trio_mcp_ws.strategies import jsonrpc_messages

        @given(jsonrpc_messages())
        def test_round_trip(message):
            assert decode(encode(message)) == message
        ```
    """
    return _default_messages()


@cache
def _default_messages() -> st.SearchStrategy[t.JSONRPCMessage]:
    return st.one_of(jsonrpc_requests(), jsonrpc_notifications(), jsonrpc_responses(), jsonrpc_errors())


# -- hostile frames --------------------------------------------------------------------------

# A valid message is drawn as a JSON object, a marker string is put at some value position,
# and the serialised text gets the hostile token in place of the marker.
_MARK: Final = "\x00hostile\x00"
_MARK_JSON: Final = json.dumps(_MARK)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@cache
def _message_objects() -> st.SearchStrategy[dict[str, Any]]:
    """Valid messages as the JSON objects they encode to."""
    return jsonrpc_messages().map(lambda message: json.loads(encode(message)))


@st.composite
def _token_in_message(draw: st.DrawFn, tokens: st.SearchStrategy[str]) -> str:
    """A valid message with one JSON value replaced by ``token`` (which need not be JSON)."""
    obj = draw(_message_objects())
    where = draw(st.sampled_from(("id", "member", "nested", "extra", "payload")))
    if where == "id":
        obj["id"] = _MARK
    elif where == "extra":
        obj[draw(_text(8).filter(lambda key: key not in obj))] = _MARK
    else:
        payload_key = next((key for key in ("params", "result", "error") if key in obj), None)
        if payload_key is None or not isinstance(obj[payload_key], dict):
            obj["params"] = payload = {}
        else:
            payload = obj[payload_key]
        if where == "payload":
            obj[payload_key or "params"] = _MARK
        elif where == "member":
            payload[draw(_text(8))] = _MARK
        else:
            payload["n"] = [1, {"x": [_MARK, 2]}, "z"]
    return _dumps(obj).replace(_MARK_JSON, draw(tokens), 1)


def _maybe_bytes(frames: st.SearchStrategy[str]) -> st.SearchStrategy[str | bytes]:
    """Each text frame, or the same frame as a binary frame (UTF-8)."""
    return st.one_of(frames, frames.map(lambda frame: frame.encode("utf-8")))


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
        st.builds(_concat, valid, st.sampled_from(("}", "]", ",", "x", '"', "{}", " 1"))),
        valid.map(lambda frame: frame[:-1] + ",}"),
        valid.map(lambda frame: "/* c */" + frame),
        valid.map(lambda frame: frame + "// c"),
        valid.map(lambda frame: frame.replace('{"jsonrpc":', "{'jsonrpc':", 1)),
        valid.map(lambda frame: frame.replace('{"jsonrpc":', "{jsonrpc:", 1)),
        valid.map(lambda frame: frame.replace('{"jsonrpc":', '{"jsonrpc"=', 1)),
        _token_in_message(bad_values),
        _text(40).map(lambda text: "}" + text),
    )


@st.composite
def _truncated(draw: st.DrawFn) -> str | bytes:
    frame = encode(draw(jsonrpc_messages()))
    data: str | bytes = frame.encode("utf-8") if draw(st.booleans()) else frame
    return data[: draw(st.integers(0, len(data) - 1))]


def _concat(frame: str, garbage: str) -> str:
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
    obj = draw(_message_objects())
    removable = ["jsonrpc"]
    if "method" in obj:
        removable.append("method")  # not "id": a request without one is a valid notification
    else:
        removable += ["id", "result" if "result" in obj else "error"]
    del obj[draw(st.sampled_from(removable))]
    if "error" in obj and draw(st.booleans()):
        del obj["error"][draw(st.sampled_from(("code", "message")))]
    return _dumps(obj)


@st.composite
def _bad_id(draw: st.DrawFn) -> str:
    obj = draw(_message_objects())
    if "method" in obj and "id" not in obj:
        obj["id"] = 1  # a notification becomes a request, whose id is then spoiled
    bad = [
        "true",
        "false",
        "[]",
        "[1]",
        "{}",
        '{"id":1}',
        str(2**63),
        str(-(2**63) - 1),
        str(2**64 + draw(st.integers(0, 2**64))),
        "-0.0",
        "1.0",
        "1e3",
        _dumps(draw(st.floats(allow_nan=False, allow_infinity=False))),
    ]
    if "error" not in obj:
        bad.append("null")
    obj["id"] = _MARK
    return _dumps(obj).replace(_MARK_JSON, draw(st.sampled_from(bad)), 1)


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
        items = [_dumps(value) for value in draw(st.lists(_json_values(), max_size=4))]
    return leading + "[" + ",".join(items) + "]"


@cache
def _nan_infinity() -> st.SearchStrategy[str]:
    return _token_in_message(st.sampled_from(("NaN", "Infinity", "-Infinity", "-NaN", "nan", "inf")))


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
    return draw(_token_in_message(st.just(escaped)))


@st.composite
def _deep_nesting(draw: st.DrawFn) -> str:
    depth = draw(st.one_of(st.integers(200, 3000), st.sampled_from((10_000, 30_000))))
    opener, closer = draw(st.sampled_from((("[", "]"), ('{"a":', "}"), ('[{"a":', "}]"))))
    closed = draw(st.booleans())  # or never closed
    nested = opener * depth + ("1" + closer * depth if closed else "")
    return draw(_token_in_message(st.just(nested)))


@st.composite
def _duplicate_key(draw: st.DrawFn) -> str:
    obj = draw(_message_objects())
    members = [(json.dumps(key, ensure_ascii=False), _dumps(value)) for key, value in obj.items()]
    key = draw(st.sampled_from(list(obj)))  # every member of a valid message is an envelope member
    same_value = _dumps(obj[key])
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
        members.insert(draw(st.integers(0, len(members))), ('"pad"', _dumps("x" * 600)))
    colon = draw(st.sampled_from((":", " : ", ":\n")))
    return "{" + ",".join(name + colon + value for name, value in members) + "}"


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
    return st.one_of(_maybe_bytes(blank), other)


@st.composite
def _result_and_error(draw: st.DrawFn) -> str:
    obj = draw(_message_objects())
    obj.setdefault("id", 1)
    kinds: dict[str, Any] = {"method": "m", "result": {}, "error": {"code": 1, "message": "m"}}
    first, second = (key for key in kinds if key not in obj)  # a message has exactly one
    for key in draw(st.sampled_from(([first], [second], [first, second]))):
        obj[key] = kinds[key]
    return _dumps(obj)


@st.composite
def _not_object(draw: st.DrawFn) -> str:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), _text()
    )
    before, after = draw(st.sampled_from(("", " ", "\n"))), draw(st.sampled_from(("", " ", "\n")))
    return before + _dumps(draw(scalars)) + after


_BUILDERS: Final[dict[HostileKind, Callable[[], st.SearchStrategy[str | bytes]]]] = {
    "invalid_json": lambda: _maybe_bytes(_invalid_json()),
    "truncated": _truncated,
    "wrong_jsonrpc": lambda: _maybe_bytes(_wrong_jsonrpc()),
    "missing_fields": lambda: _maybe_bytes(_missing_fields()),
    "bad_id": lambda: _maybe_bytes(_bad_id()),
    "batch": lambda: _maybe_bytes(_batch()),
    "nan_infinity": lambda: _maybe_bytes(_nan_infinity()),
    "overflow": lambda: _maybe_bytes(_token_in_message(_overflows())),
    "huge_number": lambda: _maybe_bytes(_token_in_message(_huge_numbers())),
    "invalid_utf8": _invalid_utf8,
    "lone_surrogate": _lone_surrogate,
    "deep_nesting": lambda: _maybe_bytes(_deep_nesting()),
    "duplicate_key": lambda: _maybe_bytes(_duplicate_key()),
    "bom": _bom,
    "whitespace": _whitespace,
    "result_and_error": lambda: _maybe_bytes(_result_and_error()),
    "not_object": lambda: _maybe_bytes(_not_object()),
}


def hostile_frames(*, kinds: Collection[HostileKind] | None = None) -> st.SearchStrategy[str | bytes]:
    """Frames that `trio_mcp_ws.decode` must reject with `MessageDecodeError`.

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
        import pytest
        from hypothesis import given
        from trio_mcp_ws import MessageDecodeError, decode
        from trio_mcp_ws.strategies import hostile_frames

        @given(hostile_frames(kinds=["duplicate_key", "bad_id"]))
        def test_rejected(frame):
            with pytest.raises(MessageDecodeError):
                decode(frame)
        ```
    """
    chosen = HOSTILE_KINDS if kinds is None else tuple(kinds)
    unknown = sorted(set(chosen) - set(HOSTILE_KINDS))
    if not chosen or unknown:
        raise ValueError(f"kinds must be a non-empty collection of {HOSTILE_KINDS}, got {kinds!r}")
    return st.one_of([_BUILDERS[kind]() for kind in HOSTILE_KINDS if kind in chosen])


def frames() -> st.SearchStrategy[str | bytes]:
    """Any frame at all: valid messages, hostile frames, edits of valid frames, random data.

    The strategy for the one-line property of a frame decoder, which h11 states for HTTP:
    any input is either accepted or rejected with one protocol error, never anything else.

    Returns:
        A strategy for ``str | bytes`` frames, text possibly holding lone surrogates.

    Example:
        ```python
        from hypothesis import given
        from trio_mcp_ws import MessageDecodeError, decode
        from trio_mcp_ws.strategies import frames

        @given(frames())
        def test_decode_never_crashes(frame):
            try:
                decode(frame)
            except MessageDecodeError:
                pass
        ```
    """
    valid = jsonrpc_messages().map(encode)
    return st.one_of(
        valid,
        valid.map(str.encode),
        hostile_frames(),
        _edits(valid),
        st.text(st.characters(exclude_categories=())),
        st.binary(),
    )


@st.composite
def _edits(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid frame with a few characters inserted, deleted or replaced: valid or not."""
    frame = draw(valid)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(frame)))
        insert = draw(
            st.sampled_from(('"', "\\", "{", "}", "[", "]", ":", ",", "0", "e", "-", " ", "\x00", "😀"))
        )
        frame = draw(
            st.sampled_from(
                (
                    frame[:at] + insert + frame[at:],
                    frame[:at] + frame[at + 1 :],
                    frame[:at] + insert + frame[at + 1 :],
                )
            )
        )
    return frame
