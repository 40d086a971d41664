"""The subprotocol rules of our binding: building an offer, validating tokens, reading an offer.

Pure functions, so no sockets here, except that an offer is also pushed through a real
wsproto client and server handshake, the way it reaches the server's policy.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

from trio_mcp_ws._subprotocol import (
    AUTH_PREFIX,
    SUBPROTOCOL,
    VERSION_PREFIX,
    SubprotocolOffer,
    is_token,
    offered_subprotocols,
    parse_offer,
    select_subprotocol,
    validate_token,
)

# RFC 9110 section 5.6.2, written out independently of the module's regex.
TCHAR = frozenset("!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters)

tokens = st.text(alphabet=sorted(TCHAR), min_size=1, max_size=200)
non_tokens = st.text(min_size=1, max_size=50).filter(lambda s: not set(s) <= TCHAR)

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


# -- building the offer -------------------------------------------------------------------


def test_offer_without_options_is_just_mcp() -> None:
    assert offered_subprotocols() == [SUBPROTOCOL] == ["mcp"]


def test_offer_with_token_and_version() -> None:
    assert offered_subprotocols(token="abc", version="2025-06-18") == [
        "mcp",
        "mcp.auth.abc",
        "mcp.version.2025-06-18",
    ]


def test_a_jwt_is_a_valid_token_as_it_is() -> None:
    assert offered_subprotocols(token=JWT) == ["mcp", AUTH_PREFIX + JWT]


@pytest.mark.parametrize(
    ("token", "described"),
    [
        ("with space", "a space at position 4"),
        ("base64+/pad==", "the character '/' at position 7"),
        ("a,b", "the character ',' at position 1"),
        ("caf\u00e9", "U+00E9 at position 3"),
        ("line\nbreak", "U+000A at position 4"),
        ('quo"te', "the character '\"' at position 3"),
    ],
)
def test_a_bad_token_is_refused_with_how_to_encode_it(token: str, described: str) -> None:
    with pytest.raises(ValueError, match="cannot be sent as a WebSocket subprotocol") as excinfo:
        offered_subprotocols(token=token)
    message = str(excinfo.value)
    assert described in message
    assert "base64url without padding" in message
    assert token not in message


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="token is empty"):
        offered_subprotocols(token="")


def test_a_bad_version_is_refused_as_a_version() -> None:
    with pytest.raises(ValueError, match="protocol version cannot be sent"):
        offered_subprotocols(version="2025 06 18")


@given(tokens)
def test_every_tchar_string_is_a_token(token: str) -> None:
    assert is_token(token)
    assert validate_token(token) is token


@given(non_tokens)
def test_anything_else_is_refused(value: str) -> None:
    assert not is_token(value)
    with pytest.raises(ValueError, match="RFC 9110 token characters"):
        validate_token(value)


# -- reading an offer ---------------------------------------------------------------------


@given(token=st.none() | tokens, version=st.none() | tokens)
def test_parse_reads_back_what_the_client_offered(token: str | None, version: str | None) -> None:
    offer = parse_offer(offered_subprotocols(token=token, version=version))
    assert offer == SubprotocolOffer(offers_mcp=True, token=token, version=version)
    assert offer.has_token is (token is not None)
    assert select_subprotocol(offer) == SUBPROTOCOL


def test_the_token_stays_out_of_the_repr() -> None:
    offer = parse_offer(["mcp", "mcp.auth.s3cret"])
    assert offer.token == "s3cret"
    assert "s3cret" not in repr(offer)
    assert "s3cret" not in str(offer)


def test_the_server_selects_mcp_never_the_token() -> None:
    offer = parse_offer(["mcp.version.2026-07-28", "mcp.auth.tok", "mcp"])
    assert select_subprotocol(offer) == "mcp"
    assert offer.version == "2026-07-28"


def test_other_subprotocols_are_kept_in_order() -> None:
    offer = parse_offer(["graphql-ws", "mcp", "wamp.2.json"])
    assert offer.offers_mcp
    assert offer.others == ("graphql-ws", "wamp.2.json")
    assert offer.token is None
    assert offer.version is None


@pytest.mark.parametrize("offered", [(), ("graphql-ws",), ("MCP",), ("mcp.authx",)])
def test_no_mcp_selects_nothing(offered: tuple[str, ...]) -> None:
    offer = parse_offer(offered)
    assert not offer.offers_mcp
    assert select_subprotocol(offer) is None


@pytest.mark.parametrize(
    ("offered", "message"),
    [
        (["mcp.auth.tok"], "mcp.auth.* was offered without 'mcp'"),
        (["mcp.version.2025-06-18"], "mcp.version.* was offered without 'mcp'"),
        (["mcp", "mcp.auth.one", "mcp.auth.two"], r"mcp.auth.\* was offered 2 times"),
        (["mcp", "mcp.version.a", "mcp.version.b"], r"mcp.version.\* was offered 2 times"),
        (["mcp", "mcp.auth."], r"mcp.auth.\* has an empty or malformed value"),
        (["mcp", "mcp.auth.bad/tok"], r"mcp.auth.\* has an empty or malformed value"),
        (["mcp", "mcp.version."], r"mcp.version.\* has an empty or malformed value"),
    ],
)
def test_malformed_offers_are_refused(offered: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as excinfo:
        parse_offer(offered)
    for name in offered:
        secret = name.removeprefix(AUTH_PREFIX)
        if name.startswith(AUTH_PREFIX) and secret:
            assert secret not in str(excinfo.value)


def test_prefixes_are_case_sensitive() -> None:
    offer = parse_offer(["mcp", "MCP.AUTH.tok", "Mcp.Version.x"])
    assert offer.token is None
    assert offer.version is None
    assert offer.others == ("MCP.AUTH.tok", "Mcp.Version.x")


# -- through a real handshake parser --------------------------------------------------------


def _offer_as_the_server_sees_it(subprotocols: list[str]) -> list[str]:
    """Send ``subprotocols`` from a wsproto client; return what a wsproto server parsed."""
    client = WSConnection(ConnectionType.CLIENT)
    wire = client.send(Request(host="127.0.0.1", target="/mcp", subprotocols=subprotocols))
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(wire)
    (event,) = server.events()
    assert isinstance(event, Request)
    return list(event.subprotocols)


@given(token=tokens, version=st.none() | tokens)
def test_an_offer_survives_the_wire(token: str, version: str | None) -> None:
    offered = offered_subprotocols(token=token, version=version)
    offer = parse_offer(_offer_as_the_server_sees_it(offered))
    assert offer.token == token
    assert offer.version == version


def test_prefix_constants() -> None:
    assert AUTH_PREFIX == "mcp.auth."
    assert VERSION_PREFIX == "mcp.version."
