"""The one private name of another library that trio-mcp-ws uses, guarded by behaviour.

``WebSocketRequest._event`` (trio-websocket): the only place the request's ``Host`` header
survives, which `websocket_server` needs for its DNS-rebinding check. If a trio-websocket
release renames or empties it, these tests fail: the Host check must still refuse a
foreign host and accept ours, over a real trio-websocket server on a loopback socket.
"""

from __future__ import annotations

from functools import partial

import pytest
import trio
import trio_websocket
from mcp.server.transport_security import TransportSecuritySettings

from trio_mcp_ws import HandshakeRejectedError, websocket_client, websocket_server
from trio_mcp_ws._server import _event  # pyright: ignore[reportPrivateUsage]


@pytest.mark.parametrize(("allowed", "accepted"), [("127.0.0.1:*", True), ("example.com:*", False)])
async def test_host_check_through_trio_websockets_request(allowed: str, accepted: bool) -> None:
    seen: list[str] = []
    security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=[allowed])

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        seen.append(_event(request).host)
        try:
            async with websocket_server(request, security=security, ping_interval=None) as (read, _):
                async for _item in read:
                    pass
        except HandshakeRejectedError:
            pass

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
            )
            port = server.port
            url = f"ws://127.0.0.1:{port}/mcp"
            if accepted:
                async with websocket_client(url, ping_interval=None):
                    pass
            else:
                with pytest.raises(HandshakeRejectedError) as refused:
                    async with websocket_client(url, ping_interval=None):
                        pass
                assert refused.value.status_code == 421
            nursery.cancel_scope.cancel()
    assert seen == [f"127.0.0.1:{port}"]
