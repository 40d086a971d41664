"""trio-mcp-ws: a Trio-native WebSocket transport for the Model Context Protocol.

The public API is re-exported here; the modules behind it are private. The testing helpers
(`trio_mcp_ws.testing`) and Hypothesis strategies (`trio_mcp_ws.strategies`) are not
imported by ``import trio_mcp_ws``, so Hypothesis stays optional. The server side (`serve`,
`serve_mcp`, `websocket_server`, the policy and authentication types) is imported on first
use (PEP 562), so a client, the CLI's ``--help`` or the Hypothesis hook does not pay for the
SDK's server modules, Starlette or trio-websocket.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._client import websocket_client as websocket_client
from ._codec import decode as decode
from ._codec import encode as encode
from ._deflate import Deflate as Deflate
from ._errors import ConnectError as ConnectError
from ._errors import ConnectionClosedError as ConnectionClosedError
from ._errors import ConnectRefusedError as ConnectRefusedError
from ._errors import ConnectTimeoutError as ConnectTimeoutError
from ._errors import HandshakeError as HandshakeError
from ._errors import HandshakeRejectedError as HandshakeRejectedError
from ._errors import MessageDecodeError as MessageDecodeError
from ._errors import NameResolutionError as NameResolutionError
from ._errors import ProxyError as ProxyError
from ._errors import TLSError as TLSError
from ._errors import TransportError as TransportError
from ._options import DEFAULT_MAX_MESSAGE_SIZE as DEFAULT_MAX_MESSAGE_SIZE
from ._options import MAX_CONTAINERS as MAX_CONTAINERS
from ._options import MAX_MEMBERS as MAX_MEMBERS
from ._options import SERVER_MAX_CONTAINERS as SERVER_MAX_CONTAINERS
from ._options import SERVER_MAX_MEMBERS as SERVER_MAX_MEMBERS
from ._options import SUBPROTOCOL as SUBPROTOCOL
from ._pump import BinaryFrames as BinaryFrames
from ._pump import ReadChannel as ReadChannel
from ._pump import WriteChannel as WriteChannel
from ._version import __version__ as __version__

if TYPE_CHECKING:
    from ._auth import Authenticate as Authenticate
    from ._auth import AuthenticationError as AuthenticationError
    from ._auth import bearer_auth as bearer_auth
    from ._listener import Handler as Handler
    from ._listener import ServerInfo as ServerInfo
    from ._listener import serve as serve
    from ._policy import ConnectionInfo as ConnectionInfo
    from ._policy import connection_info as connection_info
    from ._request import HandshakeRequest as HandshakeRequest
    from ._request import RequestHeaders as RequestHeaders
    from ._serve_mcp import serve_mcp as serve_mcp
    from ._server import websocket_server as websocket_server

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_CONTAINERS",
    "MAX_MEMBERS",
    "SERVER_MAX_CONTAINERS",
    "SERVER_MAX_MEMBERS",
    "SUBPROTOCOL",
    "Authenticate",
    "AuthenticationError",
    "BinaryFrames",
    "ConnectError",
    "ConnectRefusedError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ConnectionInfo",
    "Deflate",
    "Handler",
    "HandshakeError",
    "HandshakeRejectedError",
    "HandshakeRequest",
    "MessageDecodeError",
    "NameResolutionError",
    "ProxyError",
    "ReadChannel",
    "RequestHeaders",
    "ServerInfo",
    "TLSError",
    "TransportError",
    "WriteChannel",
    "__version__",
    "bearer_auth",
    "connection_info",
    "decode",
    "encode",
    "serve",
    "serve_mcp",
    "websocket_client",
    "websocket_server",
]

# Public name -> the private module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "Authenticate": "_auth",
    "AuthenticationError": "_auth",
    "bearer_auth": "_auth",
    "Handler": "_listener",
    "ServerInfo": "_listener",
    "serve": "_listener",
    "ConnectionInfo": "_policy",
    "connection_info": "_policy",
    "HandshakeRequest": "_request",
    "RequestHeaders": "_request",
    "serve_mcp": "_serve_mcp",
    "websocket_server": "_server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
