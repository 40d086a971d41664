"""Valid MCP JSON-RPC messages: requests, notifications, responses and errors.

Each message is built so that exactly what is set is what gets encoded: every one
round-trips through the codec, ``decode(encode(message)) == message``, and encodes to what
the SDK itself writes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import mcp_types as t
from hypothesis import strategies as st

from ._values import (
    ERROR_CODES,
    INT64_MAX,
    INT64_MIN,
    KNOWN_METHODS,
    UNSET,
    deep_values,
    json_values,
    metas,
    objects,
    request_ids,
    text,
)


def _dump(model: Any) -> dict[str, Any]:
    """A result model as the SDK puts it on the wire."""
    dumped: dict[str, Any] = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dumped


@st.composite
def _tools(draw: st.DrawFn) -> t.Tool:
    names = draw(st.lists(text(8), max_size=3, unique=True))
    schema: dict[str, Any] = {"type": "object"}
    if names:
        schema["properties"] = {name: {"type": "string"} for name in names}
        schema["required"] = names[:1]
    read_only = draw(st.none() | st.booleans())
    return t.Tool(
        name=draw(text(16)),
        title=draw(st.none() | text()),
        description=draw(st.none() | text(40)),
        input_schema=schema,
        annotations=None if read_only is None else t.ToolAnnotations(read_only_hint=read_only),
    )


@st.composite
def _content(draw: st.DrawFn) -> t.TextContent | t.ImageContent:
    if draw(st.booleans()):
        return t.TextContent(text=draw(text(60)))
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
            tools=draw(st.lists(_tools(), max_size=3)), next_cursor=draw(st.none() | text())
        )
    elif method == "tools/call":
        structured = draw(st.none() | st.dictionaries(text(8), json_values(), max_size=3))
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
            server_info=t.Implementation(name=draw(text(16)), version=draw(text(8))),
            instructions=draw(st.none() | text(40)),
        )
    else:
        uris = st.sampled_from(("file:///a.txt", "mem://x", "https://example.com/a?b=c"))
        resources = draw(st.lists(st.tuples(text(16), uris), max_size=3))
        result = t.ListResourcesResult(resources=[t.Resource(name=name, uri=uri) for name, uri in resources])
    return _dump(result)


@cache
def _mcp_params() -> st.SearchStrategy[dict[str, Any]]:
    """Params of real MCP requests, as the SDK writes them."""
    tool_call: dict[str, st.SearchStrategy[Any]] = {"name": text(16)}
    tool_call_optional: dict[str, st.SearchStrategy[Any]] = {
        "arguments": st.dictionaries(text(12), json_values(), max_size=4),
        "_meta": metas(),
    }
    paginated: dict[str, st.SearchStrategy[Any]] = {"cursor": text(), "_meta": metas()}
    progress: dict[str, st.SearchStrategy[Any]] = {
        "progressToken": st.one_of(st.integers(INT64_MIN, INT64_MAX), text()),
        "progress": st.floats(0, 1),
    }
    progress_optional: dict[str, st.SearchStrategy[Any]] = {"total": st.floats(0, 1e6), "message": text()}
    return st.one_of(
        st.fixed_dictionaries(tool_call, optional=tool_call_optional),
        st.fixed_dictionaries({}, optional=paginated),
        st.fixed_dictionaries(progress, optional=progress_optional),
    )


@cache
def _params() -> st.SearchStrategy[Any]:
    """Request and notification params: unset, ``null``, or an object."""
    return st.one_of(st.just(UNSET), st.none(), objects(), _mcp_params())


@cache
def _methods() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(KNOWN_METHODS), text(40))


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
    return _requests(
        methods if methods is not None else _methods(), ids if ids is not None else request_ids()
    )


@cache
def _default_requests() -> st.SearchStrategy[t.JSONRPCRequest]:
    return _requests(_methods(), request_ids())


@st.composite
def _requests(
    draw: st.DrawFn, methods: st.SearchStrategy[str], ids: st.SearchStrategy[int | str]
) -> t.JSONRPCRequest:
    fields: dict[str, Any] = {"jsonrpc": "2.0", "id": draw(ids), "method": draw(methods)}
    params = draw(_params())
    if params is not UNSET:
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
    if params is not UNSET:
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
    return st.builds(_response, ids if ids is not None else request_ids(), _results())


@cache
def _results() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(objects(), _mcp_results())


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
    return _errors(st.one_of(st.none(), request_ids()))


@st.composite
def _errors(draw: st.DrawFn, ids: st.SearchStrategy[int | str | None]) -> t.JSONRPCError:
    error: dict[str, Any] = {
        "code": draw(st.one_of(st.sampled_from(ERROR_CODES), st.integers(INT64_MIN, INT64_MAX))),
        "message": draw(text(40)),
    }
    data = draw(st.one_of(st.just(UNSET), st.none(), json_values(), deep_values()))
    if data is not UNSET:
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
