"""The server's handshake policy: Host/Origin checks, and the authentication hook's types.

Host and Origin are checked by the MCP SDK's own `TransportSecurityMiddleware` (from
``mcp.server.transport_security``), given the handshake's headers, so a WebSocket server
answers a bad ``Host`` (421) and a bad ``Origin`` (403) exactly as the SDK's HTTP transports
do, with the same allow-list syntax (``"127.0.0.1:*"`` matches any port).

Authentication is a hook: ``authenticate(request)`` sees the `HandshakeRequest` and either
returns a value (the *principal*, handed to the connection's handler through
`ConnectionInfo`) or raises `AuthenticationError` to refuse with 401 or 403. `bearer_auth`
builds such a hook from the SDK's `TokenVerifier`; it reads the token from the
``Authorization`` header only, never from the query string (the MCP authorization spec
forbids tokens in URIs, where proxies and logs keep them).
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from pydantic import AnyHttpUrl, ValidationError
from starlette.requests import Request

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mcp.server.auth.provider import AccessToken, TokenVerifier

__all__ = [
    "Authenticate",
    "AuthenticationError",
    "HandshakeRequest",
    "Rejection",
    "RequestHeaders",
    "bearer_auth",
    "check_host_and_origin",
    "default_security",
    "is_loopback",
    "loopback_security",
]

_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})

# Header values we never print: they carry credentials.
_SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})

_BAD_HEADER_VALUE: Final = re.compile(r"[\r\n\x00]")


class RequestHeaders(Mapping[str, str]):
    """The handshake request's headers: a read-only, case-insensitive mapping.

    ``headers["Authorization"]`` and ``headers["authorization"]`` are the same; iteration
    gives lower-cased names. A header sent more than once maps to its values joined by
    ``", "`` (RFC 9110 section 5.3); `get_all` gives them separately. The ``repr`` hides
    credentials (``Authorization``, ``Proxy-Authorization``, ``Cookie``), so logging a
    request does not leak tokens.
    """

    __slots__ = ("_combined", "_items")

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple((name.lower(), value) for name, value in items)
        combined: dict[str, str] = {}
        for name, value in self._items:
            combined[name] = f"{combined[name]}, {value}" if name in combined else value
        self._combined = combined

    def __getitem__(self, name: str) -> str:
        return self._combined[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._combined

    def __iter__(self) -> Iterator[str]:
        return iter(self._combined)

    def __len__(self) -> int:
        return len(self._combined)

    def get_all(self, name: str) -> list[str]:
        """Every value sent for ``name``, in order (empty if the header is absent)."""
        key = name.lower()
        return [value for item, value in self._items if item == key]

    @property
    def raw(self) -> tuple[tuple[str, str], ...]:
        """Every ``(name, value)`` pair in the order received, names lower-cased."""
        return self._items

    def __repr__(self) -> str:
        shown = {
            name: "<hidden>" if name in _SECRET_HEADERS else value for name, value in self._combined.items()
        }
        return f"RequestHeaders({shown!r})"


@dataclass(frozen=True)
class HandshakeRequest:
    """The client's WebSocket opening handshake, as the policy and ``authenticate`` see it.

    Attributes:
        path: The request path, as sent (still percent-encoded), without the query.
        query: The query string without the ``?`` (empty when there is none).
        headers: Every request header, including ``Host`` and ``Sec-WebSocket-Protocol``.
        subprotocols: The subprotocols the client offered, in its order.
        client: The client's ``(address, port)``, or ``None`` when unknown (e.g. it left).
        secure: Whether the connection is TLS (``wss://``).
    """

    path: str
    query: str
    headers: RequestHeaders
    subprotocols: tuple[str, ...]
    client: tuple[str, int] | None
    secure: bool

    @property
    def remote(self) -> str:
        """The client's address as ``host:port`` for logs (``[v6]:port`` for IPv6)."""
        if self.client is None:
            return "unknown client"
        host, port = self.client
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


Authenticate = Callable[[HandshakeRequest], Awaitable[Any]]
"""An authentication hook: ``async def authenticate(request: HandshakeRequest) -> principal``.

Return any value to accept the connection (it becomes `ConnectionInfo.principal`); raise
`AuthenticationError` to refuse it with 401 or 403. Any other exception refuses it with
500 and is logged.
"""


class AuthenticationError(Exception):
    """Raised by an ``authenticate`` hook to refuse the connection.

    The client gets the HTTP status with ``reason`` as a short plain-text body, so keep
    secrets and internal detail out of it.

    Args:
        reason: Why, in a few words, e.g. ``"invalid token"``.
        status: 401 when credentials are missing or invalid (the default), 403 when they
            are valid but not allowed here.
        challenge: The ``WWW-Authenticate`` header value. A 401 always carries one
            (default ``"Bearer"``, as RFC 9110 requires); a 403 carries one only when
            given, e.g. ``'Bearer error="insufficient_scope"'``.

    Raises:
        ValueError: ``status`` is not 401 or 403, or ``challenge`` holds a line break.
    """

    def __init__(
        self,
        reason: str = "authentication required",
        *,
        status: Literal[401, 403] = 401,
        challenge: str | None = None,
    ) -> None:
        if status not in (401, 403):
            raise ValueError(f"an authentication refusal is 401 or 403, not {status!r}")
        if challenge is not None and _BAD_HEADER_VALUE.search(challenge):
            raise ValueError("challenge must not contain CR, LF or NUL")
        if challenge is None and status == 401:
            challenge = "Bearer"
        self.reason = reason
        self.status = status
        self.challenge = challenge
        super().__init__(f"{status}: {reason}")


@dataclass(frozen=True)
class Rejection:
    """An HTTP answer refusing the upgrade: status, plain-text body, extra headers."""

    status: int
    body: str
    headers: tuple[tuple[str, str], ...] = ()

    def header_bytes(self) -> list[tuple[bytes, bytes]]:
        """The response headers, ready for trio-websocket's ``reject``."""
        headers = [
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Connection", b"close"),
            (b"Cache-Control", b"no-store"),
        ]
        headers.extend(
            (name.encode("ascii"), value.encode("latin-1", "replace")) for name, value in self.headers
        )
        return headers

    def body_bytes(self) -> bytes:
        """The body, ending with a newline."""
        return (self.body.rstrip("\n") + "\n").encode()


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

    More than one ``Origin`` is refused with 403 whatever the settings: a browser sends one,
    and with two a proxy and we might each check a different one. The rest is the SDK's
    `TransportSecurityMiddleware.validate_request`, fed the handshake's headers, so the
    statuses (421 bad Host, 403 bad Origin), bodies and matching rules are the SDK's.
    """
    if len(request.headers.get_all("origin")) > 1:
        return Rejection(403, "Forbidden: more than one Origin header")
    scope = {
        "type": "http",
        "method": "GET",
        "path": request.path,
        "query_string": request.query.encode("latin-1", "replace"),
        "headers": [
            (name.encode("latin-1", "replace"), value.encode("latin-1", "replace"))
            for name, value in request.headers.raw
        ],
    }
    response = await TransportSecurityMiddleware(settings).validate_request(Request(scope), is_post=False)
    if response is None:
        return None
    body = bytes(response.body).decode("utf-8", "replace")
    return Rejection(response.status_code, body)


# -- bearer tokens ----------------------------------------------------------------------


def bearer_auth(
    verifier: TokenVerifier,
    *,
    required_scopes: Sequence[str] = (),
    resource: str | None = None,
    resource_metadata_url: str | None = None,
) -> Authenticate:
    """An ``authenticate`` hook checking an OAuth bearer token with the SDK's `TokenVerifier`.

    It behaves like the SDK's bearer middleware for its HTTP transports: a missing,
    malformed, unknown or expired token gets 401 with ``WWW-Authenticate: Bearer
    error="invalid_token"``; a valid token without every required scope gets 403 with
    ``error="insufficient_scope"``. The token is read from the ``Authorization: Bearer``
    header only; one in the query string (``?access_token=``) is never looked at.

    Args:
        verifier: Anything with ``async verify_token(token) -> AccessToken | None``.
        required_scopes: Scopes the token must all carry.
        resource: When given, the token's ``resource`` (its RFC 8707 audience) must be
            this URL (compared as URLs, a trailing slash aside).
        resource_metadata_url: Protected-resource metadata URL to advertise in the
            challenge (RFC 9728), so clients can discover the authorization server.

    Returns:
        The hook; on success its principal is the verifier's `AccessToken`.

    Raises:
        ValueError: ``resource`` is not an http(s) URL, or ``resource_metadata_url`` holds
            a quote or a line break (it goes into a header).
    """
    scopes = tuple(required_scopes)
    expected: str | None = None
    if resource is not None:
        expected = _normalise_resource(resource)
        if expected is None:
            raise ValueError(f"resource must be an http(s) URL, not {resource!r}")
    if resource_metadata_url is not None and (
        _BAD_HEADER_VALUE.search(resource_metadata_url) or '"' in resource_metadata_url
    ):
        raise ValueError("resource_metadata_url must not contain quotes or line breaks")
    extra = f', resource_metadata="{resource_metadata_url}"' if resource_metadata_url else ""

    def refuse(status: Literal[401, 403], error: str, description: str) -> AuthenticationError:
        challenge = f'Bearer error="{error}", error_description="{description}"{extra}'
        return AuthenticationError(description, status=status, challenge=challenge)

    async def authenticate(request: HandshakeRequest) -> AccessToken:
        token = _bearer_token(request.headers)
        if token is None:
            raise refuse(401, "invalid_token", "Authentication required")
        access = await verifier.verify_token(token)
        if access is None or (access.expires_at is not None and access.expires_at < int(time.time())):
            raise refuse(401, "invalid_token", "Invalid or expired token")
        if expected is not None and _normalise_resource(access.resource or "") != expected:
            raise refuse(401, "invalid_token", "Token was not issued for this resource")
        for scope in scopes:
            if scope not in access.scopes:
                raise refuse(403, "insufficient_scope", f"Required scope: {scope}")
        return access

    return authenticate


def _bearer_token(headers: RequestHeaders) -> str | None:
    values = headers.get_all("authorization")
    if len(values) != 1:
        return None  # none, or ambiguous
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _normalise_resource(url: str) -> str | None:
    try:
        return str(AnyHttpUrl(url)).removesuffix("/")
    except ValidationError:
        return None
