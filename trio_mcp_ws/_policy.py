"""The server's handshake policy: one `decide()` for every way of serving.

`serve`, `websocket_server` (trio-websocket's server) and the ASGI endpoint all turn the
client's request into a `HandshakeRequest` and ask `decide` what to answer. The checks, in
order (the first refusal answers):

1. ``Host`` and ``Origin``, parsed strictly (a host, an optional numeric port, nothing else;
   host names compared case-insensitively), then matched by the MCP SDK's own
   `TransportSecurityMiddleware` against the SDK's `TransportSecuritySettings`, so the
   statuses (421 bad Host, 403 bad Origin) and allow-list syntax (``"127.0.0.1:*"``) are the
   SDK's. More than one ``Origin`` or ``Host`` is refused (403 / 400).
2. The subprotocol: ``mcp`` is selected when offered; a client offering none (or only
   others) is accepted without one, or refused with 400 under ``require_subprotocol``.
3. ``authenticate(request)``: its return value is the connection's principal; an
   `AuthenticationError` answers 401 (with ``WWW-Authenticate``) or 403; any other
   exception answers 500 and is logged.

An accepted request becomes a `ConnectionInfo`, which `connection_info()` returns to the
handler and every task it starts.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request

from ._auth import AuthenticationError
from ._options import SUBPROTOCOL
from ._request import HandshakeRequest, Rejection, RequestHeaders
from ._subprotocol import parse_offer, select_subprotocol

if TYPE_CHECKING:
    from collections.abc import Generator

    from ._auth import Authenticate
    from ._options import Limits

__all__ = [
    "ConnectionInfo",
    "Policy",
    "check_host_and_origin",
    "connection_info",
    "decide",
    "default_security",
    "is_loopback",
    "loopback_security",
    "serving",
]

logger = logging.getLogger("trio_mcp_ws.server")

_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})

# RFC 3986 reg-name (the characters a DNS name or an IPv4 address uses) or a bracketed IPv6
# literal, then an optional numeric port, and nothing else: no userinfo, no path, no spaces.
_HOST: Final = re.compile(r"^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_ORIGIN: Final = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)

_current: contextvars.ContextVar[ConnectionInfo] = contextvars.ContextVar("trio_mcp_ws.connection")

# The SDK's middleware logs a WARNING for every bad Host or Origin, so any remote peer could
# flood the logs through it. While our own check runs those records are dropped (the listener
# logs each refusal at INFO); the SDK's HTTP apps in the same process keep theirs.
_checking: contextvars.ContextVar[bool] = contextvars.ContextVar("trio_mcp_ws.checking_host", default=False)


class _QuietWhileChecking(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _checking.get()


logging.getLogger("mcp.server.transport_security").addFilter(_QuietWhileChecking())


@dataclass(frozen=True)
class Policy:
    """The per-server handshake policy and limits, shared by every connection."""

    security: TransportSecuritySettings | None
    authenticate: Authenticate | None
    require_subprotocol: bool
    limits: Limits


@dataclass(frozen=True)
class ConnectionInfo:
    """What the server knows about one accepted connection.

    Available to the handler through `connection_info()` (also from tasks it starts,
    including an MCP SDK server's tool handlers under `serve_mcp`, where it is also the
    ``request`` of the SDK's request context, so ``Context.headers`` works).

    Attributes:
        request: The handshake request the connection was accepted for.
        subprotocol: The subprotocol selected (``"mcp"``), or ``None``.
        principal: What the ``authenticate`` hook returned (e.g. the SDK's
            ``AccessToken`` from `bearer_auth`); ``None`` without a hook. Left out of the
            ``repr``: an ``AccessToken`` holds the token.
        protocol_version: The MCP protocol version the client announced with the
            ``mcp.version.<version>`` subprotocol, or ``None``.
    """

    request: HandshakeRequest
    subprotocol: str | None
    principal: Any = field(default=None, repr=False)
    protocol_version: str | None = None

    @property
    def headers(self) -> RequestHeaders:
        """The handshake request's headers (what the SDK's ``Context.headers`` reads)."""
        return self.request.headers

    @property
    def client(self) -> tuple[str, int] | None:
        """The client's ``(address, port)``, or ``None`` when unknown."""
        return self.request.client


def connection_info() -> ConnectionInfo:
    """The `ConnectionInfo` of the connection the calling task serves.

    Works inside `websocket_server`'s ``async with`` block and in a `serve` handler, and in
    every task started from there.

    Raises:
        RuntimeError: Called outside a connection served by trio-mcp-ws.
    """
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("connection_info() called outside a connection served by trio-mcp-ws") from None


@contextmanager
def serving(info: ConnectionInfo) -> Generator[None, None, None]:
    """Make ``info`` what `connection_info()` returns in this task (and tasks it starts)."""
    token = _current.set(info)
    try:
        yield
    finally:
        _current.reset(token)


async def decide(request: HandshakeRequest, policy: Policy) -> ConnectionInfo | Rejection:
    """Apply the policy: Host/Origin, subprotocol, then ``authenticate``; the first refusal wins."""
    if policy.security is not None:
        refused = await check_host_and_origin(policy.security, request)
        if refused is not None:
            return refused
    try:
        offer = parse_offer(request.subprotocols)
    except ValueError as exc:  # e.g. mcp.auth.* without mcp; the message never holds the token
        return Rejection(400, f"Bad Request: {exc}")
    subprotocol = select_subprotocol(offer)  # "mcp" or None; never the token
    if subprotocol is None and policy.require_subprotocol:
        return Rejection(400, f"Bad Request: this server requires the WebSocket subprotocol {SUBPROTOCOL!r}")
    principal: Any = None
    if policy.authenticate is not None:
        try:
            principal = await policy.authenticate(request)
        except AuthenticationError as exc:
            headers = (("WWW-Authenticate", exc.challenge),) if exc.challenge else ()
            title = "Unauthorized" if exc.status == 401 else "Forbidden"
            return Rejection(exc.status, f"{title}: {exc.reason}", headers)
        except Exception:
            logger.exception("the authenticate hook failed for a request from %s", request.remote)
            return Rejection(500, "Internal Server Error: authentication failed")
    return ConnectionInfo(
        request=request, subprotocol=subprotocol, principal=principal, protocol_version=offer.version
    )


# -- Host and Origin --------------------------------------------------------------------


def loopback_security() -> TransportSecuritySettings:
    """DNS-rebinding protection for a server bound to a loopback address.

    The SDK's own default for its HTTP apps bound to ``127.0.0.1``/``localhost``/``::1``,
    widened by the same hosts without a port (a client on port 80/443 omits it) and by
    ``https`` origins (``wss://`` from a page served over TLS). Every name is loopback, so
    none of them can be a rebinding attacker's domain.
    """
    hosts = ("127.0.0.1", "localhost", "[::1]")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[name for host in hosts for name in (host, f"{host}:*")],
        allowed_origins=[
            name
            for scheme in ("http", "https")
            for host in hosts
            for name in (f"{scheme}://{host}", f"{scheme}://{host}:*")
        ],
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or name) is a loopback one."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def default_security(host: str | None) -> TransportSecuritySettings:
    """The policy when none is given: protection on for loopback binds, off otherwise (as the SDK)."""
    if host is not None and is_loopback(host):
        return loopback_security()
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


async def check_host_and_origin(
    settings: TransportSecuritySettings, request: HandshakeRequest
) -> Rejection | None:
    """Check ``Host`` and ``Origin`` against ``settings``; None when allowed.

    With protection on, both are first parsed strictly, since the SDK's ``host:*`` patterns
    match any prefix (``127.0.0.1:80@evil.com`` would pass them), and lower-cased, since
    host names compare case-insensitively. More than one ``Origin`` is refused with 403
    whatever the settings: a browser sends one, and with two a proxy and we might each
    check a different one. The rest is the SDK's `TransportSecurityMiddleware`, so the
    statuses (421 bad Host, 403 bad Origin), bodies and matching rules are the SDK's.
    """
    origins = request.headers.get_all("origin")
    if len(origins) > 1:
        return Rejection(403, "Forbidden: more than one Origin header")
    if not settings.enable_dns_rebinding_protection:
        return None
    hosts = request.headers.get_all("host")
    if len(hosts) != 1 or not _HOST.match(hosts[0]):
        return Rejection(421, "Misdirected Request: invalid Host header")
    if origins and not _ORIGIN.match(origins[0]):
        return Rejection(403, "Forbidden: invalid Origin header")
    headers = [
        (name.encode("latin-1", "replace"), _lower_if(name, value).encode("latin-1", "replace"))
        for name, value in request.headers.raw
    ]
    settings = settings.model_copy(
        update={
            "allowed_hosts": [host.lower() for host in settings.allowed_hosts],
            "allowed_origins": [origin.lower() for origin in settings.allowed_origins],
        }
    )
    scope = {
        "type": "http",
        "method": "GET",
        "path": request.path,
        "query_string": request.query.encode("latin-1", "replace"),
        "headers": headers,
    }
    token = _checking.set(True)
    try:
        response = await TransportSecurityMiddleware(settings).validate_request(Request(scope), is_post=False)
    finally:
        _checking.reset(token)
    if response is None:
        return None
    body = bytes(response.body).decode("utf-8", "replace")
    return Rejection(response.status_code, body)


def _lower_if(name: str, value: str) -> str:
    return value.lower() if name in ("host", "origin") else value
