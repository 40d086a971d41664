"""Authentication at the handshake: the hook's type, its refusal, and the bearer-token hook.

Authentication is a hook: ``authenticate(request)`` sees the `HandshakeRequest` and either
returns a value (the *principal*, handed to the connection's handler through
`ConnectionInfo`) or raises `AuthenticationError` to refuse with 401 or 403. `bearer_auth`
builds such a hook from the SDK's `TokenVerifier`; it never reads the query string (the MCP
authorization spec forbids tokens in URIs, where proxies and logs keep them).
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import AnyHttpUrl, ValidationError

from ._request import HandshakeRequest
from ._subprotocol import parse_offer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mcp.server.auth.provider import AccessToken, TokenVerifier

    from ._request import RequestHeaders

__all__ = ["Authenticate", "AuthenticationError", "bearer_auth", "request_token"]

_BAD_HEADER_VALUE: Final = re.compile(r"[\r\n\x00]")


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
    header or, for browsers (which cannot set headers), from the offered subprotocol
    ``mcp.auth.<token>`` (the SEP-1288 draft); both at once must carry the same token. One
    in the query string (``?access_token=``) is never looked at.

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
        token = request_token(request)
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


def request_token(request: HandshakeRequest) -> str | None:
    """The bearer token a handshake carries, from its header or its ``mcp.auth.*`` subprotocol.

    None when there is none, when either place is malformed or ambiguous (an
    ``Authorization`` header that is not one bearer token, two ``mcp.auth.*``), or when both
    places carry different tokens: a client must not leave the server to guess which counts.
    """
    header = _bearer_token(request.headers)
    if header is None and request.headers.get_all("authorization"):
        return None  # an Authorization header that is not one bearer token: never guess past it
    try:
        offered = parse_offer(request.subprotocols).token
    except ValueError:
        return None
    if header is not None and offered is not None and not hmac.compare_digest(header, offered):
        return None
    return header if header is not None else offered


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
