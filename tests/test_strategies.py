"""The public Hypothesis strategies: what they promise to produce, and their registration.

The codec properties that use them are in ``tests/test_codec_properties.py``; here we check
the strategies themselves: each advertised edge case is actually produced, the options do
what they say, and ``st.from_type`` finds them through the entry point.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from typing import TYPE_CHECKING, TypeVar, cast

import mcp_types as t
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from trio_mcp_ws import decode, encode, strategies
from trio_mcp_ws.strategies import (
    HOSTILE_KINDS,
    MAX_NESTING,
    frames,
    hostile_frames,
    jsonrpc_errors,
    jsonrpc_messages,
    jsonrpc_notifications,
    jsonrpc_requests,
    jsonrpc_responses,
)

if TYPE_CHECKING:
    from collections.abc import Callable

# `find` searches until the condition holds: generous bounds, no shrinking needed.
FIND = settings(
    max_examples=5_000, phases=[Phase.generate], database=None, suppress_health_check=[HealthCheck.too_slow]
)


T = TypeVar("T")


def found(strategy: st.SearchStrategy[T], condition: Callable[[T], bool]) -> T:
    return find(strategy, condition, settings=FIND)


def depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(item) for item in value.values()), default=0)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    return 0


# -- st.from_type, through the entry point ---------------------------------------------------------

MESSAGE_CLASSES = [t.JSONRPCRequest, t.JSONRPCNotification, t.JSONRPCResponse, t.JSONRPCError]


@pytest.mark.parametrize("cls", MESSAGE_CLASSES)
@given(data=st.data())
def test_from_type_yields_valid_messages_of_each_class(
    cls: type[t.JSONRPCMessage], data: st.DataObject
) -> None:
    message = data.draw(st.from_type(cls))
    assert type(message) is cls
    assert decode(encode(message)) == message


@given(st.from_type(cast("type[t.JSONRPCMessage]", t.JSONRPCMessage)))
def test_from_type_resolves_the_message_union(message: t.JSONRPCMessage) -> None:
    assert decode(encode(message)) == message


@pytest.mark.parametrize(
    "first_import",
    ["import hypothesis", "import trio_mcp_ws.strategies"],
)
def test_entry_point_registers_the_strategies_in_a_fresh_interpreter(first_import: str) -> None:
    # Importing Hypothesis runs the entry point; importing our module first must work too
    # (Hypothesis then looks the hook up in our half-imported module).
    code = (
        f"{first_import}\n"
        "import warnings\n"
        "from hypothesis import strategies as st, errors\n"
        "import mcp_types as t\n"
        "warnings.simplefilter('ignore', errors.NonInteractiveExampleWarning)\n"
        "print(type(st.from_type(t.JSONRPCRequest).example()).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "JSONRPCRequest"


# -- valid messages: the edge cases we promise -----------------------------------------------------


def test_ids_cover_strings_and_the_64_bit_edges() -> None:
    ids = jsonrpc_requests().map(lambda request: request.id)
    assert isinstance(found(ids, lambda id_: isinstance(id_, str) and not id_.isascii()), str)
    assert found(ids, lambda id_: id_ == 2**63 - 1) == 2**63 - 1
    assert found(ids, lambda id_: id_ == -(2**63)) == -(2**63)
    assert found(ids, lambda id_: id_ == 2**53 + 1) == 2**53 + 1


def test_methods_include_mcp_methods_and_awkward_text() -> None:
    methods = jsonrpc_requests().map(lambda request: request.method)
    assert found(methods, lambda method: method == "tools/call") == "tools/call"
    assert found(methods, lambda method: '"' in method or "\\" in method)
    assert found(methods, lambda method: any(ord(char) > 0xFFFF for char in method))


def test_params_are_unset_null_empty_deep_or_carry_meta() -> None:
    requests = jsonrpc_requests()
    assert (
        "params"
        not in found(requests, lambda request: "params" not in request.model_fields_set).model_fields_set
    )
    assert (
        found(
            requests, lambda request: "params" in request.model_fields_set and request.params is None
        ).params
        is None
    )
    assert found(requests, lambda request: request.params == {}).params == {}
    deep = found(requests, lambda request: depth(request.params) > MAX_NESTING // 2)
    assert MAX_NESTING // 2 < depth(deep.params) <= MAX_NESTING + 1
    meta = found(requests, lambda request: "progressToken" in ((request.params or {}).get("_meta") or {}))
    assert meta.params is not None


def test_no_message_nests_deeper_than_the_codec_accepts() -> None:
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(jsonrpc_messages())
    def check(message: t.JSONRPCMessage) -> None:
        assert depth(message.model_dump(mode="json")) <= MAX_NESTING + 3  # envelope, payload, _meta

    check()


def test_results_include_real_mcp_results() -> None:
    results = jsonrpc_responses().map(lambda response: response.result)
    tools = found(results, lambda result: bool(result.get("tools")))
    assert t.ListToolsResult.model_validate(tools).tools
    call = found(results, lambda result: bool(result.get("content")))
    assert t.CallToolResult.model_validate(call).content
    initialize = found(results, lambda result: "serverInfo" in result)
    assert t.InitializeResult.model_validate(initialize).server_info.name is not None


def test_errors_include_null_ids_and_every_data_form() -> None:
    errors = jsonrpc_errors()
    assert found(errors, lambda error: error.id is None).id is None
    assert (
        "data"
        not in found(errors, lambda error: "data" not in error.error.model_fields_set).error.model_fields_set
    )
    null_data = found(
        errors, lambda error: "data" in error.error.model_fields_set and error.error.data is None
    )
    assert null_data.error.data is None
    assert found(errors, lambda error: error.error.code == -32601).error.code == -32601


def test_options_narrow_what_is_generated() -> None:
    @settings(max_examples=50)
    @given(
        jsonrpc_requests(methods=st.just("tools/call"), ids=st.just(7)),
        jsonrpc_notifications(methods=st.just("notifications/progress")),
        jsonrpc_responses(ids=st.just("r")),
        jsonrpc_errors(ids=st.none()),
    )
    def check(
        request: t.JSONRPCRequest,
        notification: t.JSONRPCNotification,
        response: t.JSONRPCResponse,
        error: t.JSONRPCError,
    ) -> None:
        assert (request.method, request.id) == ("tools/call", 7)
        assert notification.method == "notifications/progress"
        assert response.id == "r"
        assert error.id is None

    check()


# -- hostile frames and any frames -----------------------------------------------------------------


def test_unknown_or_no_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="kinds must be"):
        hostile_frames(kinds=[])
    with pytest.raises(ValueError, match="kinds must be"):
        hostile_frames(kinds=["nope"])  # type: ignore[list-item]


def test_hostile_kinds_are_all_listed_and_documented() -> None:
    assert len(set(HOSTILE_KINDS)) == len(HOSTILE_KINDS) == 17
    source = inspect.getsource(strategies)
    for kind in HOSTILE_KINDS:
        assert f"- ``{kind}``:" in source


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_frames())
def test_hostile_frames_stay_small_enough_to_send(frame: str | bytes) -> None:
    assert len(frame) <= 300 * 1024


def test_hostile_frames_come_as_text_and_binary() -> None:
    assert isinstance(found(hostile_frames(kinds=["bad_id"]), lambda frame: isinstance(frame, bytes)), bytes)
    assert isinstance(found(hostile_frames(kinds=["bad_id"]), lambda frame: isinstance(frame, str)), str)
    assert isinstance(found(hostile_frames(kinds=["invalid_utf8"]), lambda _: True), bytes)


def test_frames_mix_valid_hostile_and_random_frames() -> None:
    def accepted(frame: str | bytes) -> bool:
        try:
            decode(frame)
        except ValueError:
            return False
        return True

    assert found(frames(), accepted)
    assert not accepted(found(frames(), lambda frame: not accepted(frame)))
    surrogate = found(
        frames(), lambda frame: isinstance(frame, str) and not frame.isascii() and not accepted(frame)
    )
    assert isinstance(surrogate, str)


def test_every_public_name_is_documented_with_an_example() -> None:
    for name in strategies.__all__:
        obj = getattr(strategies, name)
        if inspect.isfunction(obj):
            assert "Example:" in (obj.__doc__ or ""), name
    assert set(strategies.__all__) == {
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
    }
