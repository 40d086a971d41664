"""The handshake policy: Host/Origin (the SDK's statuses), authentication, and their building blocks."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pytest
import trio
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request

from tests.test_server_helpers import echo, exchange, round_trip, running, upgrade_request
from trio_mcp_ws import (
    AuthenticationError,
    ConnectionInfo,
    HandshakeRejectedError,
    HandshakeRequest,
    ReadChannel,
    RequestHeaders,
    WriteChannel,
    bearer_auth,
    connection_info,
)
from trio_mcp_ws._policy import default_security, is_loopback, loopback_security

if TYPE_CHECKING:
    from collections.abc import Sequence


async def sdk_status(settings: TransportSecuritySettings, headers: Sequence[tuple[str, str]]) -> int | None:
    """What the SDK's own HTTP transports answer for these headers (None: allowed)."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/mcp",
        "query_string": b"",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
    }
    response = await TransportSecurityMiddleware(settings).validate_request(Request(scope))
    return None if response is None else response.status_code


# -- Host and Origin, over sockets ------------------------------------------------------------


async def test_loopback_bind_refuses_a_foreign_host_with_the_sdks_status() -> None:
    with trio.fail_after(10):
        async with running() as info:
            response = await exchange(info.port, upgrade_request(info.port, host="evil.example:8000"))
            assert response is not None
            expected = await sdk_status(loopback_security(), [("host", "evil.example:8000")])
            assert expected == 421
            assert response.status == expected
            assert b"Invalid Host header" in response.body
            await round_trip(info.url)


async def test_loopback_bind_refuses_a_foreign_origin_with_the_sdks_status() -> None:
    with trio.fail_after(10):
        async with running() as info:
            origin = ("Origin", "http://evil.example")
            response = await exchange(info.port, upgrade_request(info.port, headers=[origin]))
            assert response is not None
            host = ("host", f"127.0.0.1:{info.port}")
            expected = await sdk_status(loopback_security(), [host, origin])
            assert expected == 403
            assert response.status == expected
            assert b"Invalid Origin header" in response.body
            # Through our client too: the rejection names the status.
            with pytest.raises(HandshakeRejectedError) as rejected:
                await round_trip(info.url, headers={"Origin": "http://evil.example"})
            assert rejected.value.status_code == 403


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("127.0.0.1:{port}", None),
        ("localhost:{port}", None),
        ("127.0.0.1:{port}", "http://localhost:5173"),
        ("127.0.0.1:{port}", "http://127.0.0.1:{port}"),
        ("[::1]:{port}", "https://localhost"),
        ("localhost", None),
    ],
)
async def test_loopback_hosts_and_origins_are_allowed(host: str, origin: str | None) -> None:
    with trio.fail_after(10):
        async with running() as info:
            headers = [("Origin", origin.format(port=info.port))] if origin else []
            response = await exchange(
                info.port, upgrade_request(info.port, host=host.format(port=info.port), headers=headers)
            )
            assert response is not None
            assert response.status == 101


async def test_two_origin_headers_are_refused() -> None:
    with trio.fail_after(10):
        async with running() as info:
            allowed = f"http://127.0.0.1:{info.port}"
            headers = [("Origin", allowed), ("Origin", allowed)]
            response = await exchange(info.port, upgrade_request(info.port, headers=headers))
            assert response is not None
            assert response.status == 403
            assert b"more than one Origin" in response.body
            await round_trip(info.url)


async def test_two_origin_headers_are_refused_even_without_protection() -> None:
    open_policy = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    with trio.fail_after(10):
        async with running(security=open_policy) as info:
            headers = [("Origin", "http://a.example"), ("Origin", "http://b.example")]
            response = await exchange(info.port, upgrade_request(info.port, headers=headers))
            assert response is not None
            assert response.status == 403


async def test_explicit_settings_replace_the_loopback_default() -> None:
    settings = TransportSecuritySettings(
        allowed_hosts=["mcp.example.com"], allowed_origins=["https://app.example.com"]
    )
    with trio.fail_after(10):
        async with running(security=settings) as info:
            ok = upgrade_request(
                info.port, host="mcp.example.com", headers=[("Origin", "https://app.example.com")]
            )
            response = await exchange(info.port, ok)
            assert response is not None
            assert response.status == 101
            response = await exchange(info.port, upgrade_request(info.port))  # Host 127.0.0.1:port
            assert response is not None
            assert response.status == 421
            bad_origin = upgrade_request(info.port, host="mcp.example.com", headers=[("Origin", "http://x")])
            response = await exchange(info.port, bad_origin)
            assert response is not None
            assert response.status == 403


async def test_protection_can_be_switched_off() -> None:
    open_policy = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    with trio.fail_after(10):
        async with running(security=open_policy) as info:
            request = upgrade_request(info.port, host="anything.example", headers=[("Origin", "http://evil")])
            response = await exchange(info.port, request)
            assert response is not None
            assert response.status == 101


def test_default_policy_follows_the_bind_address() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2", "LOCALHOST"):
        assert is_loopback(host), host
        assert default_security(host).enable_dns_rebinding_protection
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com"):
        assert not is_loopback(host), host
        assert not default_security(host).enable_dns_rebinding_protection
    assert not default_security(None).enable_dns_rebinding_protection


async def test_loopback_default_is_a_superset_of_the_sdks() -> None:
    """Everything the SDK's own loopback default allows, ours allows too."""
    sdk = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )
    ours = loopback_security()
    assert set(sdk.allowed_hosts) <= set(ours.allowed_hosts)
    assert set(sdk.allowed_origins) <= set(ours.allowed_origins)


# -- authentication -----------------------------------------------------------------------------


async def test_authenticate_hook_401_with_bearer_challenge() -> None:
    async def refuse(request: HandshakeRequest) -> None:
        raise AuthenticationError("token required")

    with trio.fail_after(10):
        async with running(authenticate=refuse) as info:
            response = await exchange(info.port, upgrade_request(info.port))
            assert response is not None
            assert response.status == 401
            assert response.header("WWW-Authenticate") == "Bearer"
            assert response.body == b"Unauthorized: token required\n"
            with pytest.raises(HandshakeRejectedError) as rejected:
                await round_trip(info.url)
            assert rejected.value.status_code == 401
            assert (b"www-authenticate", b"Bearer") in rejected.value.headers


async def test_authenticate_hook_403() -> None:
    async def forbid(request: HandshakeRequest) -> None:
        raise AuthenticationError("not on the list", status=403)

    with trio.fail_after(10):
        async with running(authenticate=forbid) as info:
            response = await exchange(info.port, upgrade_request(info.port))
            assert response is not None
            assert response.status == 403
            assert response.header("WWW-Authenticate") is None
            assert response.body == b"Forbidden: not on the list\n"


async def test_principal_is_visible_to_the_handler() -> None:
    seen: list[ConnectionInfo] = []

    async def authenticate(request: HandshakeRequest) -> dict[str, Any]:
        if request.headers.get("Authorization") != "Bearer alice-token":
            raise AuthenticationError("who are you?")
        return {"user": "alice", "from": request.client}

    async def handler(read: ReadChannel, write: WriteChannel) -> None:
        seen.append(connection_info())
        await echo(read, write)

    with trio.fail_after(10):
        async with running(handler, authenticate=authenticate) as info:
            await round_trip(info.url, headers={"Authorization": "Bearer alice-token"})
            with pytest.raises(HandshakeRejectedError):
                await round_trip(info.url, headers={"Authorization": "Bearer mallory"})
    assert len(seen) == 1
    assert seen[0].principal["user"] == "alice"
    assert seen[0].principal["from"][0] == "127.0.0.1"


async def test_a_failing_hook_answers_500_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: HandshakeRequest) -> None:
        raise RuntimeError("database down")

    with trio.fail_after(10):
        async with running(authenticate=broken) as info:
            response = await exchange(info.port, upgrade_request(info.port))
            assert response is not None
            assert response.status == 500
            assert b"database" not in response.body
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("trio_mcp_ws")]
    assert any("authenticate" in r.getMessage() and "127.0.0.1" in r.getMessage() for r in failures)


class Verifier:
    """A TokenVerifier with fixed tokens."""

    def __init__(self) -> None:
        now = int(time.time())
        self.tokens = {
            "good": AccessToken(token="good", client_id="c1", scopes=["mcp:read", "mcp:write"]),
            "readonly": AccessToken(token="readonly", client_id="c2", scopes=["mcp:read"]),
            "expired": AccessToken(token="expired", client_id="c3", scopes=["mcp:read"], expires_at=now - 60),
            "elsewhere": AccessToken(
                token="elsewhere",
                client_id="c4",
                scopes=["mcp:read", "mcp:write"],
                resource="https://other.example",
            ),
            "here": AccessToken(
                token="here",
                client_id="c5",
                scopes=["mcp:read", "mcp:write"],
                resource="https://mcp.example/",
            ),
        }
        self.seen: list[str] = []

    async def verify_token(self, token: str) -> AccessToken | None:
        self.seen.append(token)
        return self.tokens.get(token)


async def test_bearer_auth_over_sockets() -> None:
    verifier = Verifier()
    principals: list[object] = []

    async def handler(read: ReadChannel, write: WriteChannel) -> None:
        principals.append(connection_info().principal)
        await echo(read, write)

    hook = bearer_auth(verifier, required_scopes=["mcp:write"])
    with trio.fail_after(10):
        async with running(handler, authenticate=hook) as info:

            async def status(*headers: tuple[str, str], path: str = "/mcp") -> tuple[int, str | None]:
                response = await exchange(info.port, upgrade_request(info.port, path=path, headers=headers))
                assert response is not None
                return response.status, response.header("WWW-Authenticate")

            assert await status(("Authorization", "Bearer good")) == (101, None)
            assert await status(("authorization", "bearer good")) == (101, None)
            invalid = 'Bearer error="invalid_token", error_description="Authentication required"'
            assert await status() == (401, invalid)
            assert await status(("Authorization", "Basic Z29vZDo=")) == (401, invalid)
            assert await status(("Authorization", "Bearer")) == (401, invalid)
            assert (await status(("Authorization", "Bearer nope")))[0] == 401
            assert (await status(("Authorization", "Bearer expired")))[0] == 401
            assert await status(("Authorization", "Bearer readonly")) == (
                403,
                'Bearer error="insufficient_scope", error_description="Required scope: mcp:write"',
            )
            # Never from the query string, in any of its usual spellings.
            for query in ("access_token=good", "token=good", "authorization=Bearer%20good"):
                assert (await status(path=f"/mcp?{query}"))[0] == 401, query
            # Two Authorization headers are ambiguous: refused.
            twice = ("Authorization", "Bearer good")
            assert (await status(twice, twice))[0] == 401
            await round_trip(info.url, headers={"Authorization": "Bearer good"})
    assert "nope" in verifier.seen
    assert all(isinstance(p, AccessToken) and p.client_id == "c1" for p in principals)
    assert len(principals) == 3


async def test_bearer_auth_checks_the_resource_when_asked() -> None:
    hook = bearer_auth(
        Verifier(), resource="https://mcp.example", resource_metadata_url="https://mcp.example/.wk"
    )
    with trio.fail_after(10):
        async with running(authenticate=hook) as info:
            for token, expected in (("here", 101), ("elsewhere", 401), ("good", 401)):
                headers = [("Authorization", f"Bearer {token}")]
                response = await exchange(info.port, upgrade_request(info.port, headers=headers))
                assert response is not None
                assert response.status == expected, token
                challenge = response.header("WWW-Authenticate") or ""
                if expected == 401:
                    assert 'resource_metadata="https://mcp.example/.wk"' in challenge


def test_bearer_auth_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="resource"):
        bearer_auth(Verifier(), resource="not a url")
    with pytest.raises(ValueError, match="resource_metadata_url"):
        bearer_auth(Verifier(), resource_metadata_url='https://x/"injected')


def test_authentication_error_arguments() -> None:
    assert AuthenticationError().status == 401
    assert AuthenticationError().challenge == "Bearer"
    assert AuthenticationError(status=403).challenge is None
    assert AuthenticationError(challenge='Bearer realm="x"').challenge == 'Bearer realm="x"'
    with pytest.raises(ValueError, match="401 or 403"):
        AuthenticationError(status=500)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CR, LF"):
        AuthenticationError(challenge="Bearer\r\nSet-Cookie: x=1")


# -- the request headers --------------------------------------------------------------------------


def test_request_headers_are_case_insensitive_and_hide_credentials() -> None:
    headers = RequestHeaders(
        [("Host", "h"), ("Authorization", "Bearer secret"), ("X-Tag", "a"), ("x-tag", "b"), ("Cookie", "s=1")]
    )
    assert headers["AUTHORIZATION"] == "Bearer secret"
    assert headers.get("x-TAG") == "a, b"
    assert headers.get_all("X-Tag") == ["a", "b"]
    assert "HOST" in headers
    assert "x-missing" not in headers
    assert list(headers) == ["host", "authorization", "x-tag", "cookie"]
    assert len(headers) == 4
    assert headers.raw[1] == ("authorization", "Bearer secret")
    assert "secret" not in repr(headers)
    assert "s=1" not in repr(headers)
    assert "'x-tag': 'a, b'" in repr(headers)


def test_handshake_request_remote() -> None:
    def make(client: tuple[str, int] | None) -> HandshakeRequest:
        return HandshakeRequest("/mcp", "", RequestHeaders([]), (), client, secure=False)

    assert make(("127.0.0.1", 5)).remote == "127.0.0.1:5"
    assert make(("::1", 5)).remote == "[::1]:5"
    assert make(None).remote == "unknown client"
