"""The trio-websocket internals our reader relies on still exist.

trio_mcp_ws/_tws.py drives trio-websocket's connection object with our own reader; if a
trio-websocket release renames or removes what it uses, this fails first and loudly.
"""

from __future__ import annotations

import inspect

import trio
import trio.testing
import trio_websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

from trio_mcp_ws._tws import REQUIRED_INTERNALS, REQUIRED_REQUEST_INTERNALS


async def test_required_internals_exist() -> None:
    client_stream, _server_stream = trio.testing.memory_stream_pair()
    ws = trio_websocket.WebSocketConnection(
        client_stream, WSConnection(ConnectionType.CLIENT), host="h", path="/", client_subprotocols=["mcp"]
    )
    missing = [name for name in REQUIRED_INTERNALS if not hasattr(ws, name)]
    assert not missing, (
        f"trio-websocket {trio_websocket.__version__} lacks {missing}: update trio_mcp_ws/_tws.py"
    )
    request = trio_websocket.WebSocketRequest(ws, Request(host="h", target="/"))
    missing = [name for name in REQUIRED_REQUEST_INTERNALS if not hasattr(request, name)]
    assert not missing, (
        f"trio-websocket {trio_websocket.__version__} lacks {missing}: update trio_mcp_ws/_server.py"
    )


def test_handler_signatures_take_one_event() -> None:
    for name in REQUIRED_INTERNALS:
        if name.startswith("_handle_"):
            method = getattr(trio_websocket.WebSocketConnection, name)
            assert inspect.iscoroutinefunction(method), name
            assert list(inspect.signature(method).parameters) == ["self", "event"], name


def test_close_reason_and_rejection_types() -> None:
    reason = trio_websocket.CloseReason(1009, "too big")
    assert (reason.code, reason.reason) == (1009, "too big")
    rejected = trio_websocket.ConnectionRejected(403, ((b"a", b"b"),), b"no")
    assert (rejected.status_code, rejected.headers, rejected.body) == (403, ((b"a", b"b"),), b"no")
