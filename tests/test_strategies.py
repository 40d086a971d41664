"""The public Hypothesis strategies: what they promise to produce, and their registration.

The codec properties that use them are in ``tests/test_codec_properties.py``; here we check
the strategies themselves: each advertised edge case is actually produced, the options do
what they say, each policy kind does what its documentation says the SDK does with it, and
``st.from_type`` finds them through the entry point, whichever of Hypothesis and
``mcp_types`` is imported first, without the hook importing anything heavy (checked in fresh
interpreters; its CPU cost is measured by ``benchmarks/case_import_cost.py``, not here).
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeVar, cast

import mcp_types as t
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from trio_mcp_ws import decode, encode, strategies
from trio_mcp_ws.strategies import (
    HOSTILE_KINDS,
    MAX_NESTING,
    POLICY_KINDS,
    PolicyKind,
    frames,
    hostile_frames,
    jsonrpc_errors,
    jsonrpc_messages,
    jsonrpc_notifications,
    jsonrpc_requests,
    jsonrpc_responses,
    policy_refused_frames,
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


def run_python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter of this environment; its stdout, stripped."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


DRAW_A_REQUEST = (
    "import warnings\n"
    "from hypothesis import strategies as st, errors\n"
    "import mcp_types as t\n"
    "warnings.simplefilter('ignore', errors.NonInteractiveExampleWarning)\n"
    "print(type(st.from_type(t.JSONRPCRequest).example()).__name__)\n"
)


@pytest.mark.parametrize(
    "first_import",
    [
        "import hypothesis",  # the finder waits for mcp_types
        "import mcp_types; import hypothesis",  # registered at once
        "import hypothesis; import mcp_types",  # registered by the finder
        "import trio_mcp_ws.strategies",
        "import trio_mcp_ws",
    ],
)
def test_entry_point_registers_the_strategies_in_a_fresh_interpreter(first_import: str) -> None:
    assert run_python(f"{first_import}\n{DRAW_A_REQUEST}") == "JSONRPCRequest"


def test_the_installed_entry_point_is_the_top_level_hook() -> None:
    ours = [entry for entry in entry_points(group="hypothesis") if entry.value.startswith("_trio_mcp_ws")]
    assert [entry.value for entry in ours] == ["_trio_mcp_ws_hypothesis:setup"]


def test_the_hook_imports_nothing_and_waits_for_mcp_types() -> None:
    # Hypothesis without plugins, then our hook alone: the only module it may add is its own.
    code = (
        "import sys, hypothesis\n"
        "before = set(sys.modules)\n"
        "from importlib.metadata import entry_points\n"
        "[hook] = [e for e in entry_points(group='hypothesis') if e.value.startswith('_trio_mcp_ws')]\n"
        "loaded = set(sys.modules)\n"  # entry_points() may load metadata modules: not ours
        "hook.load()()\n"
        "print(sorted(set(sys.modules) - loaded))\n"
        "print([type(f).__name__ for f in sys.meta_path][0])\n"
        "import mcp_types\n"
        "print(mcp_types.__spec__.loader is mcp_types.__loader__, type(mcp_types.__loader__).__name__)\n"
        "print(any(type(f).__name__ == 'RegisterOnImport' for f in sys.meta_path))\n"
        "print(sorted(m for m in ('trio', 'mcp', 'trio_mcp_ws') if m in sys.modules and m not in before))\n"
    )
    lines = run_python(code, HYPOTHESIS_NO_PLUGINS="1").splitlines()
    assert lines == [
        "['_trio_mcp_ws_hypothesis']",
        "RegisterOnImport",
        "True SourceFileLoader",  # the real loader is back in place
        "False",  # the finder is gone
        "[]",  # importing mcp_types registered our strategies without importing trio_mcp_ws
    ]


def test_import_hypothesis_imports_neither_the_sdk_nor_trio_mcp_ws() -> None:
    code = (
        "import sys, hypothesis; print([m for m in ('mcp', 'mcp_types', 'trio_mcp_ws') if m in sys.modules])"
    )
    assert run_python(code) == "[]"


def test_without_hypothesis_the_import_error_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['hypothesis'] = None\n"  # as if not installed
        "try:\n"
        "    import trio_mcp_ws.strategies\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, error.name, '|', error)\n"
    )
    assert run_python(code, HYPOTHESIS_NO_PLUGINS="1") == (
        "ModuleNotFoundError hypothesis | trio_mcp_ws.strategies needs Hypothesis: "
        'pip install "trio-mcp-ws[hypothesis]"'
    )


def test_registration_covers_the_hooks_classes() -> None:
    hook = importlib.import_module("_trio_mcp_ws_hypothesis")
    registration = importlib.import_module("trio_mcp_ws.strategies._registration")
    assert {cls.__name__ for cls in registration.STRATEGIES} == set(hook.TYPE_NAMES)


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
    for strategy in (hostile_frames, policy_refused_frames):
        with pytest.raises(ValueError, match="kinds must be"):
            strategy(kinds=[])
        with pytest.raises(ValueError, match="kinds must be"):
            strategy(kinds=["nope"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="kinds must be"):
        hostile_frames(kinds=["big_id"])  # type: ignore[list-item]  # a policy kind


def test_kinds_are_all_listed_and_documented() -> None:
    assert len(set(HOSTILE_KINDS)) == len(HOSTILE_KINDS) == 12
    assert len(set(POLICY_KINDS)) == len(POLICY_KINDS) == 10
    assert not set(HOSTILE_KINDS) & set(POLICY_KINDS)
    for module, kinds in (("_hostile", HOSTILE_KINDS), ("_policy", POLICY_KINDS)):
        source = inspect.getsource(importlib.import_module(f"trio_mcp_ws.strategies.{module}"))
        for kind in kinds:
            assert f"- ``{kind}``:" in source


def sdk_accepts(frame: str | bytes) -> bool:
    try:
        t.jsonrpc_message_adapter.validate_json(frame)
    except ValueError:  # pydantic's ValidationError
        return False
    return True


# What POLICY_KINDS documents the SDK's validator doing with each kind. A kind it accepts
# could never be in hostile_frames; for one it rejects, every draw is checked.
SDK_ACCEPTS: dict[PolicyKind, bool] = {
    "big_id": True,
    "integral_float_id": True,  # a request, read as a notification
    "bad_id_in_request": True,  # read as a notification
    "error_without_id": False,
    "result_and_error": True,
    "duplicate_key": True,
    "nan_infinity_literal": True,
    "overflow": True,
    "huge_number": False,
    "deep_nesting": False,
}


@pytest.mark.parametrize("kind", [kind for kind in POLICY_KINDS if SDK_ACCEPTS[kind]])
def test_policy_kinds_the_sdk_accepts_are_accepted_by_it(kind: PolicyKind) -> None:
    assert sdk_accepts(found(policy_refused_frames(kinds=[kind]), sdk_accepts))


@pytest.mark.parametrize("kind", [kind for kind in POLICY_KINDS if not SDK_ACCEPTS[kind]])
def test_policy_kinds_the_sdk_rejects_are_rejected_by_it(kind: PolicyKind) -> None:
    @settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
    @given(policy_refused_frames(kinds=[kind]))
    def check(frame: str | bytes) -> None:
        assert not sdk_accepts(frame)

    check()


def test_sdk_accepts_lists_every_policy_kind() -> None:
    assert set(SDK_ACCEPTS) == set(POLICY_KINDS)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_frames() | policy_refused_frames())
def test_hostile_and_policy_frames_stay_small_enough_to_send(frame: str | bytes) -> None:
    assert len(frame) <= 300 * 1024


def test_hostile_and_policy_frames_come_as_text_and_binary() -> None:
    assert isinstance(found(hostile_frames(kinds=["bad_id"]), lambda frame: isinstance(frame, bytes)), bytes)
    assert isinstance(found(hostile_frames(kinds=["bad_id"]), lambda frame: isinstance(frame, str)), str)
    assert isinstance(found(hostile_frames(kinds=["invalid_utf8"]), lambda _: True), bytes)
    for kind in POLICY_KINDS:
        strategy = policy_refused_frames(kinds=[kind])
        assert isinstance(found(strategy, lambda frame: isinstance(frame, bytes)), bytes)
        assert isinstance(found(strategy, lambda frame: isinstance(frame, str)), str)


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
        "POLICY_KINDS",
        "HostileKind",
        "PolicyKind",
        "frames",
        "hostile_frames",
        "jsonrpc_errors",
        "jsonrpc_messages",
        "jsonrpc_notifications",
        "jsonrpc_requests",
        "jsonrpc_responses",
        "policy_refused_frames",
    }
