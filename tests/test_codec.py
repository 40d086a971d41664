"""The wire codec, case by case: what `decode` accepts, what it rejects, and with which code.

The properties (every valid message round-trips, every frame yields a message or one
`MessageDecodeError`) are in ``tests/test_codec_properties.py``; these are the named cases
behind them, one per rule the codec documents.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import mcp_types as t
import pytest

from trio_mcp_ws import MessageDecodeError, decode, encode
from trio_mcp_ws._codec import (
    _SPLIT_THRESHOLD,  # pyright: ignore[reportPrivateUsage]
    _WIDE_PAYLOAD,  # pyright: ignore[reportPrivateUsage]
)
from trio_mcp_ws._options import MAX_CONTAINERS, MAX_MEMBERS

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

PAD = "x" * 600  # makes a frame large enough for the head/payload split parse


def rejects(frame: str | bytes, code: int) -> MessageDecodeError:
    with pytest.raises(MessageDecodeError) as info:
        decode(frame)
    assert info.value.code == code, info.value
    return info.value


def request(params: str = "{}", *, id_: str = "1", extra: str = "") -> str:
    return f'{{"jsonrpc":"2.0","id":{id_},"method":"tools/call"{extra},"params":{params}}}'


# -- valid messages --------------------------------------------------------------------------------


VALID = {
    "request": '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}',
    "request without params": '{"jsonrpc":"2.0","id":"a","method":"ping"}',
    "notification": '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    "notification with params": '{"jsonrpc":"2.0","method":"n","params":{"_meta":{"progressToken":1}}}',
    "response": '{"jsonrpc":"2.0","id":7,"result":{"tools":[],"nextCursor":"c"}}',
    "error": '{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"Method not found"}}',
    "error with null id": '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}',
    "error with data": '{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","data":[1,{"a":null}]}}',
    "pretty-printed": '{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "method": "m",\n  "params": {"a": 1}\n}\n',
    "large (split parse)": request(f'{{"text":"{PAD}","n":[1,2.5,-3e10]}}'),
    "large pretty-printed": '{\r\n\t"jsonrpc" : "2.0" ,\n "id" : 1 , "result" : {"t":"' + PAD + '"} \n}\t\n',
    "large, payload not last": '{"id":1,"result":{"t":"' + PAD + '"},"jsonrpc":"2.0"}',
    "large, '{' in the head": '{"jsonrpc":"2.0","id":"{","result":{"t":"' + PAD + '"}}',
    "large, array payload first": '{"x":[{"a":1}],"jsonrpc":"2.0","id":1,"result":{"t":"' + PAD + '"}}',
    "large, leading whitespace": " \n" + request(f'{{"text":"{PAD}"}}'),
    "large, empty payload": '{"jsonrpc":"2.0","id":1,"method":"m","params":{},"x":"' + PAD + '"}',
}


@pytest.mark.parametrize("name", list(VALID))
def test_valid_frames_decode_as_the_sdk_decodes_them(name: str) -> None:
    frame = VALID[name]
    message = decode(frame)
    assert message == t.jsonrpc_message_adapter.validate_json(frame)
    assert decode(frame.encode()) == message
    assert decode(encode(message)) == message


def test_encode_is_what_the_sdk_writes() -> None:
    message = t.JSONRPCRequest(
        jsonrpc="2.0", id=3, method="tools/call", params={"name": "x", "é": [1.5, None]}
    )
    assert encode(message) == message.model_dump_json(by_alias=True, exclude_unset=True)
    assert (
        encode(message)
        == '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","é":[1.5,null]}}'
    )


def test_error_with_null_id_keeps_the_null() -> None:
    message = t.JSONRPCError(jsonrpc="2.0", id=None, error=t.ErrorData(code=-32700, message="Parse error"))
    assert encode(message) == '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}'
    assert decode(encode(message)) == message


def test_unknown_members_are_tolerated_in_the_envelope_and_in_params() -> None:
    message = decode('{"jsonrpc":"2.0","id":1,"method":"m","x":[1],"y":{"z":2},"params":{"unknown":true}}')
    assert message == t.JSONRPCRequest(jsonrpc="2.0", id=1, method="m", params={"unknown": True})


@pytest.mark.parametrize(
    "envelope",
    [
        '"id":7,"method":"m","params":{}',
        '"method":"m","params":{}',
        '"id":7,"result":{}',
        '"id":7,"error":{"code":-1,"message":"x"},"params":{}',
    ],
    ids=["request", "notification", "response", "error-with-extra-params"],
)
def test_wide_payloads_decode_as_the_sdk_decodes_them(envelope: str) -> None:
    # Payloads with many top-level members skip the member-by-member copy of validation
    # (_WIDE_PAYLOAD); the message must be the one the SDK builds, fields set included.
    members = ",".join(f'"k{i}":[{i}]' for i in range(_WIDE_PAYLOAD + 1))
    frame = '{"jsonrpc":"2.0",' + envelope.replace("{}", "{" + members + "}") + "}"
    message = decode(frame)
    expected = t.jsonrpc_message_adapter.validate_json(frame)
    assert message == expected
    assert message.model_fields_set == expected.model_fields_set
    assert encode(message) == encode(expected)


def test_duplicate_unknown_members_are_tolerated() -> None:
    # Only the members the codec interprets are checked; an unknown member is ignored anyway.
    assert decode(
        '{"jsonrpc":"2.0","x":1,"x":2,"method":"m","params":{"a":1,"a":2}}'
    ) == t.JSONRPCNotification(jsonrpc="2.0", method="m", params={"a": 2})


def test_bytes_frames_hold_utf8() -> None:
    frame = '{"jsonrpc":"2.0","method":"é✓😀","params":{"😀":"ß"}}'
    assert decode(frame.encode()) == decode(frame)


# -- ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("id_", ["0", "-1", str(2**53), str(2**63 - 1), str(-(2**63)), '""', '"a"', '"😀"'])
def test_string_and_64_bit_integer_ids(id_: str) -> None:
    message = decode(request(id_=id_))
    assert isinstance(message, t.JSONRPCRequest)
    assert encode(message) == request(id_=id_)


@pytest.mark.parametrize(
    ("id_", "what"),
    [
        ("true", "a boolean"),
        ("false", "a boolean"),
        ("1.0", "a number with a fraction or exponent"),
        ("1e3", "a number with a fraction or exponent"),
        (str(2**63), "an integer out of the 64-bit range"),
        (str(-(2**63) - 1), "an integer out of the 64-bit range"),
        ("[1]", "an array"),
        ('{"a":1}', "an object"),
        ("null", "null (null is allowed only in error responses)"),
    ],
)
@pytest.mark.parametrize("kind", ["request", "response", "error"])
def test_bad_ids_are_rejected(id_: str, what: str, kind: str) -> None:
    if kind == "error" and id_ == "null":
        return  # the one place null is allowed (tested above)
    body = {
        "request": '"method":"m"',
        "response": '"result":{}',
        "error": '"error":{"code":1,"message":"m"}',
    }[kind]
    error = rejects(f'{{"jsonrpc":"2.0","id":{id_},{body}}}', INVALID_REQUEST)
    assert f"id must be a string or an integer, not {what}" in str(error)
    assert error.request_id is None


def test_request_id_is_recovered_when_the_rest_is_invalid() -> None:
    assert rejects('{"jsonrpc":"2.0","id":"r1","method":5}', INVALID_REQUEST).request_id == "r1"
    assert rejects('{"jsonrpc":"1.0","id":7,"method":"m"}', INVALID_REQUEST).request_id == 7
    assert rejects('{"jsonrpc":"2.0","id":7,"method":"m","params":[1]}', INVALID_REQUEST).request_id == 7
    assert rejects('{"jsonrpc":"2.0","id":7,"result":{},"error":{}}', INVALID_REQUEST).request_id == 7
    assert rejects('{"jsonrpc":"2.0","id":7}', INVALID_REQUEST).request_id == 7


# -- envelope shape --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (
            '{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}',
            "both 'result' and 'error'",
        ),
        ('{"jsonrpc":"2.0","id":1,"method":"m","result":{}}', "both 'method' and 'result'"),
        ('{"jsonrpc":"2.0","id":1}', "one of 'method', 'result' or 'error'"),
        ("{}", "one of 'method', 'result' or 'error'"),
        ('{"jsonrpc":"2.0","result":{}}', "a response must carry an id"),
        ('{"jsonrpc":"2.0","error":{"code":1,"message":"m"}}', "a response must carry an id"),
        ('{"id":1,"method":"m"}', "jsonrpc: Field required"),
        ('{"jsonrpc":"2.1","method":"m"}', "jsonrpc: Input should be '2.0'"),
        ('{"jsonrpc":"2.0","method":"m","params":"x"}', "params: Input should be a valid dictionary"),
        ('{"jsonrpc":"2.0","id":1,"result":[]}', "result: Input should be a valid dictionary"),
        ('{"jsonrpc":"2.0","id":1,"error":{"code":1.5}}', "error.code"),
    ],
)
def test_invalid_envelopes(frame: str, reason: str) -> None:
    assert reason in str(rejects(frame, INVALID_REQUEST))


@pytest.mark.parametrize("frame", ["null", "1", '"x"', "true", "1.5"])
def test_json_that_is_not_an_object(frame: str) -> None:
    assert "must be a JSON object" in str(rejects(frame, INVALID_REQUEST))


@pytest.mark.parametrize(
    "frame",
    ["[]", "[1", ' \n[{"jsonrpc":"2.0","method":"m"}]', "[" + ",".join([VALID["request"]] * 10_000) + "]"],
)
def test_batches_are_rejected_before_parsing(frame: str) -> None:
    assert "batches are not supported" in str(rejects(frame, INVALID_REQUEST))


# -- not JSON --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        "",
        b"",
        " ",
        " \t\r\n",
        b"  ",
        "\ufeff" + VALID["request"],
        b"\xef\xbb\xbf" + VALID["request"].encode(),
        '{"jsonrpc":"2.0","method":"m"',
        '{"jsonrpc":"2.0","method":"m","params":{"a":[1,2',
        '{"jsonrpc":"2.0","method":"m","params":{"a":"unterminated',
        VALID["request"] + " x",
        VALID["request"] + "{}",
        '{"jsonrpc":"2.0","method":"m",}',
        "{'jsonrpc':'2.0'}",
        '{"jsonrpc":"2.0","method":"a\tb"}',
        request(f'{{"text":"{PAD}"}}')[:-1],  # a large truncated frame: the split parse fails too
        request(f'{{"text":"{PAD}"}}') + "}",
        request(f'{{"text":"{PAD}"}},{{"x":1}}'),  # two values where the payload should be
    ],
)
def test_frames_that_are_not_json(frame: str | bytes) -> None:
    assert "invalid JSON" in str(rejects(frame, PARSE_ERROR))


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["id", "params", "nested", "result", "data", "extra"])
def test_nan_and_infinity_tokens_are_rejected_anywhere(token: str, where: str) -> None:
    frame = {
        "id": f'{{"jsonrpc":"2.0","id":{token},"method":"m"}}',
        "params": f'{{"jsonrpc":"2.0","method":"m","params":{{"a":{token}}}}}',
        "nested": f'{{"jsonrpc":"2.0","method":"m","params":{{"a":[{{"b":[1,{token}]}}]}}}}',
        "result": f'{{"jsonrpc":"2.0","id":1,"result":{{"a":{token}}}}}',
        "data": f'{{"jsonrpc":"2.0","id":1,"error":{{"code":1,"message":"m","data":{token}}}}}',
        "extra": f'{{"jsonrpc":"2.0","method":"m","x":{token}}}',
    }[where]
    rejects(frame, PARSE_ERROR)


def test_invalid_utf8_in_a_binary_frame() -> None:
    for frame in (b'{"jsonrpc":"2.0","method":"\xff"}', b"\xc3", b'{"a":"\xed\xa0\x80"}', b"\x80{}"):
        assert "not valid UTF-8" in str(rejects(frame, PARSE_ERROR))


@pytest.mark.parametrize("surrogate", [chr(0xD800), chr(0xDFFF), chr(0xDC00) + "x"])
def test_lone_surrogates_in_a_text_frame(surrogate: str) -> None:
    for frame in (
        f'{{"jsonrpc":"2.0","method":"{surrogate}"}}',
        request(f'{{"text":"{PAD}{surrogate}"}}'),  # large: through the split parse
        surrogate,
    ):
        error = rejects(frame, PARSE_ERROR)
        assert "not valid Unicode: surrogates not allowed at position" in str(error)
        str(error).encode("utf-8")  # loggable: the excerpt escapes the surrogate


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\udc00\\ud800", "\\ud800x", "\\ud800\\u0041"])
def test_lone_surrogate_escapes_are_rejected(escape: str) -> None:
    rejects(f'{{"jsonrpc":"2.0","method":"m","params":{{"s":"{escape}"}}}}', PARSE_ERROR)


def test_surrogate_pair_escapes_are_fine() -> None:
    message = decode('{"jsonrpc":"2.0","method":"\\ud83d\\ude00"}')
    assert isinstance(message, t.JSONRPCNotification)
    assert message.method == "😀"


# -- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    ["1e999", "-1e999", "1E+400", "1e0309", "2e308", "0.5e310", "9" * 400 + ".0", "1" + "0" * 215 + "e99"],
)
@pytest.mark.parametrize("where", ["id", "params", "result", "data", "extra", "large", "dense"])
def test_numbers_that_overflow_to_infinity_are_rejected(literal: str, where: str) -> None:
    frame = {
        "id": f'{{"jsonrpc":"2.0","id":{literal},"method":"m"}}',
        "params": f'{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"a":[{{"b":{literal}}}]}}}}',
        "result": f'{{"jsonrpc":"2.0","id":1,"result":{{"a":{literal}}}}}',
        "data": f'{{"jsonrpc":"2.0","id":1,"error":{{"code":1,"message":"m","data":{literal}}}}}',
        "extra": f'{{"jsonrpc":"2.0","id":1,"x":{literal},"method":"m"}}',
        "large": request(f'{{"t":"{PAD}","n":{literal}}}'),
        # More values than the codec walks before it tests the text instead.
        "dense": request('{"a":[' + ",".join(["1"] * 100) + f",{literal}]}}"),
    }[where]
    error = rejects(frame, PARSE_ERROR)
    assert "too large to represent" in str(error)
    assert error.request_id == (None if where == "id" else 1)


@pytest.mark.parametrize(
    "literal", ["1e308", "1.7976931348623157e308", "-1e308", "1e-999", "1" + "0" * 300, "1e99", "0e1000"]
)
@pytest.mark.parametrize("dense", [False, True])
def test_large_numbers_that_do_not_overflow_are_fine(literal: str, dense: bool) -> None:
    filler = ",".join(["1"] * 100) + "," if dense else ""
    message = decode(request(f'{{"n":[{filler}{literal}],"s":"e000 {"0" * 300}"}}'))
    assert isinstance(message, t.JSONRPCRequest)


def test_dense_frames_whose_text_looks_like_an_overflow_are_walked_exactly() -> None:
    # "e000" and 210+ digit runs in strings pass the cheap text test, so the values are walked.
    frame = request('{"a":[' + ",".join(['"1e999"'] * 100) + f',"{"9" * 300}",{"9" * 300}]}}')
    assert isinstance(decode(frame), t.JSONRPCRequest)


def test_huge_integer_literals_are_rejected() -> None:
    error = rejects(request(f'{{"n":{"9" * 5000}}}'), PARSE_ERROR)
    assert "number out of range" in str(error)


def test_integers_beyond_64_bits_are_fine_in_params() -> None:
    message = decode(request(f'{{"n":{"9" * 400}}}'))
    assert isinstance(message, t.JSONRPCRequest)
    assert message.params == {"n": int("9" * 400)}


# -- nesting ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("opener", ["[", '{"a":'])
@pytest.mark.parametrize("depth", [1_000, 10_000, 100_000])
def test_deep_nesting_is_a_decode_error_not_a_recursion_error(opener: str, depth: int) -> None:
    closer = "]" if opener == "[" else "}"
    for frame in (request(opener * depth + "1" + closer * depth), request(opener * depth)):
        assert "recursion limit exceeded" in str(rejects(frame, PARSE_ERROR))


@pytest.mark.parametrize("depth", range(195, 205))
def test_the_nesting_limit_does_not_depend_on_how_the_frame_is_parsed(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    small = request(f'{{"a":{nested}}}')
    large = request(f'{{"pad":"{PAD}","a":{nested}}}')
    assert len(small) < _SPLIT_THRESHOLD <= len(large)

    def verdict(frame: str) -> bool:
        try:
            decode(frame)
        except MessageDecodeError:
            return False
        return True

    assert verdict(small) == verdict(large)
    assert verdict(small) == (depth < 200)  # pydantic-core's limit: about 200 levels in all


# -- duplicate envelope members --------------------------------------------------------------------


DUPLICATES = {
    "id": '{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}',
    "method": '{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}',
    "jsonrpc": '{"jsonrpc":"1.0","jsonrpc":"2.0","method":"m"}',
    "params": '{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1},"params":{"b":2}}',
    "result": '{"jsonrpc":"2.0","id":1,"result":{"a":1},"result":{}}',
    "error": '{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"a"},"error":{"code":2,"message":"b"}}',
}


def spellings(frame: str) -> dict[str, str]:
    """The same duplicate, spelled and placed in the ways the codec must all catch."""
    key = frame.split('":', 2)[1].rsplit('"', 1)[-1]  # the duplicated name (2nd member)
    return {
        "plain": frame,
        "escaped": frame.replace(f'"{key}"', '"\\u00' + f"{ord(key[0]):x}" + key[1:] + '"', 1),
        "escaped upper-case hex": frame.replace(f'"{key}"', '"\\u00' + f"{ord(key[0]):X}" + key[1:] + '"', 1),
        "with whitespace": frame.replace(f'"{key}":', f'"{key}" \n: ', 1),
        "name also nested": frame[:-1] + ',"x":{"' + key + '":{"' + key + '":1}}}',
        "name also in a string": frame[:-1] + f',"x":"\\"{key}\\":"}}',
        "colon in a string": frame[:-1] + ',"x":"a:b"}',
        "large": frame[:-1] + f',"x":"{PAD}"}}',
        "large, after the payload": frame[:-1] + f',"x":{{"t":"{PAD}"}}}}',
    }


@pytest.mark.parametrize("key", list(DUPLICATES))
@pytest.mark.parametrize("spelling", list(spellings(DUPLICATES["id"])))
def test_duplicate_envelope_members_are_rejected(key: str, spelling: str) -> None:
    frame = spellings(DUPLICATES[key])[spelling]
    error = rejects(frame, INVALID_REQUEST)
    assert f"duplicate {key!r} member" in str(error)
    assert error.request_id == (None if key in ("id", "jsonrpc") else 1)


def test_duplicate_member_after_a_large_payload() -> None:
    for frame in (
        '{"jsonrpc":"2.0","id":1,"result":{"t":"' + PAD + '"},"id":2}',
        '{"jsonrpc":"2.0","id":1,"result":{"t":"' + PAD + '"},"result":{}}',
        '{"jsonrpc":"2.0","id":1,"result":{"t":"' + PAD + '"},"result":{"t":"' + PAD + '"}}',
    ):
        assert "duplicate" in str(rejects(frame, INVALID_REQUEST))


@pytest.mark.parametrize("size", ["small", "large"])
def test_envelope_names_elsewhere_are_not_duplicates(size: str) -> None:
    pad = f',"pad":"{PAD}"' if size == "large" else ""
    frame = (
        '{"jsonrpc":"2.0","id":"id","method":"method","params":{"id":{"id":[{"method":1,"params":2}]},'
        '"result":"error","url":"http://x/y","esc":"\\u0069d \\u006d \\"id\\""' + pad + "}}"
    )
    message = decode(frame)
    assert isinstance(message, t.JSONRPCRequest)
    assert message.params is not None
    assert message.params["id"] == {"id": [{"method": 1, "params": 2}]}


@pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="the C parser's recursion is not bounded by Python's limit"
)
def test_exact_duplicate_check_with_an_exhausted_stack_is_a_decode_error() -> None:
    # Nested "id" and a colon in a string force the exact check, whose parser recurses.
    frame = request('{"id":' + "[" * 150 + "]" * 150 + ',"u":"a:b"}')
    limit = sys.getrecursionlimit()

    def at_depth(depth: int) -> Any:
        return at_depth(depth - 1) if depth else decode(frame)

    sys.setrecursionlimit(120)
    try:
        with pytest.raises(MessageDecodeError) as info:
            at_depth(20)
    finally:
        sys.setrecursionlimit(limit)
    assert info.value.code == INVALID_REQUEST
    assert "nesting too deep for the current stack" in str(info.value)


# -- the error object ------------------------------------------------------------------------------


def test_errors_chain_their_cause_and_bound_their_excerpt() -> None:
    error = rejects('{"jsonrpc":"2.0","method":"m","params":"' + "x" * 10_000 + '"}', INVALID_REQUEST)
    assert error.__cause__ is not None
    assert len(error.excerpt) < 250
    assert error.frame_size == 10_000 + 42
    assert len(str(error)) < 600


def test_validation_error_summaries_are_bounded() -> None:
    frame = '{"jsonrpc":"2.0","id":1,"error":{"code":"a","message":1,"x":1}}'
    error = rejects(frame, INVALID_REQUEST)
    assert "error.code" in str(error)
    assert "error.message" in str(error)
    assert "'a'" not in str(error).split(" (frame of")[0]  # input values are not echoed


# -- the structural budget -------------------------------------------------------------------------

MiB = 1024 * 1024


def realistic_tool_result(size: int = 4 * MiB - 4096) -> str:
    """A tools/call result as MCPServer writes it: records as structured content, plus the
    same records as JSON text content (what MCPServer adds for clients without structured
    output), to ``size`` bytes."""
    records: list[dict[str, Any]] = []
    text = ""
    i = 0
    while True:
        records.append(
            {
                "id": i,
                "name": f"item {i}",
                "path": f"/srv/data/{i % 97}/item-{i}.json",
                "size": i * 37 % 100_000,
                "modified": f"2026-05-{1 + i % 28:02d}T12:{i % 60:02d}:00Z",
                "tags": ["alpha", "beta"][: 1 + i % 2],
                "owner": {"login": f"user{i % 500}", "admin": i % 7 == 0},
            }
        )
        i += 1
        if i % 1000 == 0:
            text = json.dumps({"items": records}, separators=(",", ":"))
            if 2 * len(text) > size:
                break
    result = {"content": [{"type": "text", "text": text}], "structuredContent": {"items": records}}
    frame = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}, separators=(",", ":"))
    while len(frame) > size:
        records.pop()
        text = json.dumps({"items": records}, separators=(",", ":"))
        result = {"content": [{"type": "text", "text": text}], "structuredContent": {"items": records}}
        frame = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}, separators=(",", ":"))
    return frame


def test_a_realistic_4_mib_tool_result_is_within_the_budget() -> None:
    frame = realistic_tool_result()
    assert 3.9 * MiB < len(frame.encode()) <= 4 * MiB
    containers = frame.count("{") + frame.count("[")
    members = frame.count(":")
    # Within the limits, counting the text copy's brackets and colons too (about half of them).
    assert containers < MAX_CONTAINERS
    assert members < MAX_MEMBERS
    message = decode(frame)
    assert isinstance(message, t.JSONRPCResponse)
    result = t.CallToolResult.model_validate(message.result)
    assert result.structured_content is not None
    assert decode(frame.encode()) == message


@pytest.mark.parametrize("kind", ["str", "bytes"])
@pytest.mark.parametrize(
    ("unit", "limit", "what"),
    [("[]", MAX_CONTAINERS, "objects and arrays"), ("{}", MAX_CONTAINERS, "objects and arrays")],
)
def test_containers_beyond_the_budget_are_refused_before_parsing(
    kind: str, unit: str, limit: int, what: str
) -> None:
    def frame(count: int) -> str | bytes:
        text = request('{"a":[' + ",".join([unit] * count) + "]}", id_='"r"')
        return text.encode() if kind == "bytes" else text

    # Two containers are the envelope and params; one more is the list.
    assert isinstance(decode(frame(limit - 3)), t.JSONRPCRequest)
    error = rejects(frame(limit - 2), INVALID_REQUEST)
    assert f"message too complex to decode: {limit + 1} {what} (at most {limit})" in str(error)
    assert error.request_id == "r"


def test_members_beyond_the_budget_are_refused_before_parsing() -> None:
    def frame(count: int) -> str:
        return request("{" + ",".join(f'"k{i}":0' for i in range(count)) + "}", id_="5")

    # Four colons are the envelope's own members.
    assert isinstance(decode(frame(MAX_MEMBERS - 4)), t.JSONRPCRequest)
    error = rejects(frame(MAX_MEMBERS - 3), INVALID_REQUEST)
    assert f"{MAX_MEMBERS + 1} object members (at most {MAX_MEMBERS})" in str(error)
    assert error.request_id == 5


@pytest.mark.parametrize("kind", ["str", "bytes"])
def test_a_budget_of_its_own_applies_at_its_own_bounds(kind: str) -> None:
    # The server's budget, say: 40 containers, 30 members. Short frames are not exempt.
    def frame(lists: int, keys: int) -> str | bytes:
        members = "".join(f',"k{i}":0' for i in range(keys))
        text = request('{"a":[' + ",".join(["[]"] * lists) + "]" + members + "}", id_="9")
        return text.encode() if kind == "bytes" else text

    def outcome(lists: int, keys: int) -> str:
        try:
            decode(frame(lists, keys), max_containers=40, max_members=30)
        except MessageDecodeError as exc:
            return f"{exc.code} {exc.request_id} " + str(exc).split(" (frame")[0]
        return "ok"

    # Envelope and params are two containers, the list a third; the envelope has 4 members
    # and params one ("a").
    assert outcome(37, 25) == "ok"
    assert outcome(38, 0) == "-32600 9 message too complex to decode: 41 objects and arrays (at most 40)"
    assert outcome(0, 26) == "-32600 9 message too complex to decode: 31 object members (at most 30)"


@pytest.mark.parametrize(
    ("head", "request_id"),
    [
        ('{"jsonrpc":"2.0","id":7,', 7),
        ('{ "jsonrpc" : "2.0" , "id" : "abc" ,', "abc"),
        ('{"id":-3,', -3),
        ('{"method":"m","id":7,', None),  # the id is not at the head: not searched for
        (f'{{"jsonrpc":"2.0","id":{2**63},', None),  # outside the 64-bit range
        ('{"jsonrpc":"2.0","id":"a\\"b",', None),  # an escape: not recovered
    ],
)
def test_refused_frames_keep_the_id_at_their_head(head: str, request_id: object) -> None:
    frame = head + '"x":[' + ",".join(["[]"] * MAX_CONTAINERS) + "]}"
    assert rejects(frame, INVALID_REQUEST).request_id == request_id


def test_the_chained_validation_error_holds_no_input() -> None:
    error = rejects('{"jsonrpc":"2.0","id":1,"method":"m","params":["' + "x" * 1000 + '"]}', INVALID_REQUEST)
    cause = error.__cause__
    assert cause is not None
    assert error.__context__ is None  # the pydantic error itself (holding the input) is not chained
    assert "x" * 100 not in str(cause)
    assert [item["loc"] for item in cause.errors()] == [("params",)]  # type: ignore[attr-defined]
