"""The WebSocket subprotocols of our MCP binding: ``mcp``, ``mcp.auth.<token>``, ``mcp.version.<v>``.

Pure functions, no I/O: the client builds its offer with `offered_subprotocols`, the server
reads a client's offer with `parse_offer` and answers with `select_subprotocol`.

Why a token travels in a subprotocol at all: the browser ``WebSocket`` API cannot set an
``Authorization`` header, only the ``Sec-WebSocket-Protocol`` list, so the SEP-1288 draft
carries a bearer token as one more "subprotocol", ``mcp.auth.<token>``. The server selects
plain ``mcp`` and never echoes the token, which would otherwise come back in the 101
response for every proxy and log on the way to see.

Every element of that header is an RFC 6455 subprotocol name: an RFC 9110 ``token``
(``tchar``: letters, digits and ``!#$%&'*+-.^_`|~``). A JWT already is one (base64url and
dots). Any other token must be encoded first, base64url without padding being the usual
choice; the server hands the verifier the token exactly as sent, so the verifier must
expect the same encoding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "AUTH_PREFIX",
    "SUBPROTOCOL",
    "VERSION_PREFIX",
    "SubprotocolOffer",
    "is_token",
    "offered_subprotocols",
    "parse_offer",
    "select_subprotocol",
    "validate_token",
]

SUBPROTOCOL: Final = "mcp"
"""The WebSocket subprotocol MCP uses (``Sec-WebSocket-Protocol: mcp``)."""

AUTH_PREFIX: Final = "mcp.auth."
"""Prefix of the subprotocol that carries a bearer token: ``mcp.auth.<token>``."""

VERSION_PREFIX: Final = "mcp.version."
"""Prefix of the subprotocol that names the client's MCP protocol version: ``mcp.version.<v>``."""

# RFC 9110 section 5.6.2: token = 1*tchar. RFC 6455 section 4.1 asks the same of each
# Sec-WebSocket-Protocol element (U+0021..U+007E without the RFC 2616 separators).
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

_ENCODING_HINT: Final = (
    "a subprotocol may hold only RFC 9110 token characters (letters, digits and !#$%&'*+-.^_`|~); "
    "encode other tokens first, e.g. base64url without padding (RFC 4648 section 5), "
    "and have the server's verifier expect that encoding"
)


def is_token(value: str) -> bool:
    """Whether ``value`` is a non-empty RFC 9110 ``token``, so it can be a subprotocol name."""
    return _TOKEN.fullmatch(value) is not None


def validate_token(token: str, *, what: str = "token") -> str:
    """Check that ``token`` can travel as ``mcp.auth.<token>``, and return it unchanged.

    Args:
        token: The bearer token (or, with ``what="version"``, a protocol version).
        what: What to call the value in the error message.

    Returns:
        ``token``, unchanged.

    Raises:
        ValueError: ``token`` is empty or holds a character that is not a ``tchar``. The
            message says how to encode it and shows only the first offending character
            and its position, never the value, so it is safe to log.
    """
    if not token:
        raise ValueError(f"the {what} is empty")
    match = _TOKEN.match(token)
    if match is None or match.end() != len(token):
        position = 0 if match is None else match.end()
        raise ValueError(
            f"the {what} cannot be sent as a WebSocket subprotocol: it holds {_describe(token[position])} "
            f"at position {position}; {_ENCODING_HINT}"
        )
    return token


def offered_subprotocols(*, token: str | None = None, version: str | None = None) -> list[str]:
    """The ``Sec-WebSocket-Protocol`` list a client offers: ``["mcp", "mcp.auth.<token>", ...]``.

    ``mcp`` always comes first, so a server that knows nothing of the other two still finds
    the one it selects.

    Args:
        token: A bearer token to carry as ``mcp.auth.<token>`` (for clients that cannot set
            an ``Authorization`` header, such as browsers), or None.
        version: An MCP protocol version to announce as ``mcp.version.<version>``, or None.

    Returns:
        A new list of subprotocol names.

    Raises:
        ValueError: ``token`` or ``version`` is not an RFC 9110 ``token`` (see `validate_token`).
    """
    offer = [SUBPROTOCOL]
    if token is not None:
        offer.append(AUTH_PREFIX + validate_token(token))
    if version is not None:
        offer.append(VERSION_PREFIX + validate_token(version, what="protocol version"))
    return offer


@dataclass(frozen=True)
class SubprotocolOffer:
    """What a client's subprotocol offer says, as `parse_offer` reads it.

    Attributes:
        offers_mcp: Whether ``mcp`` itself is offered.
        token: The bearer token from ``mcp.auth.<token>``, or None. Left out of the
            ``repr``, so logging an offer does not leak it.
        version: The protocol version from ``mcp.version.<v>``, or None.
        others: Every other subprotocol offered, in the client's order.
    """

    offers_mcp: bool
    token: str | None = field(default=None, repr=False)
    version: str | None = None
    others: tuple[str, ...] = ()

    @property
    def has_token(self) -> bool:
        """Whether a token was offered (for logs: says so without showing it)."""
        return self.token is not None


def parse_offer(subprotocols: Iterable[str]) -> SubprotocolOffer:
    """Read a client's ``Sec-WebSocket-Protocol`` offer.

    Names are compared case-sensitively, as RFC 6455 compares subprotocols.

    Args:
        subprotocols: The offered names, in order, as the handshake parser split them.

    Returns:
        The offer.

    Raises:
        ValueError: The offer is malformed: ``mcp.auth.*`` or ``mcp.version.*`` without
            ``mcp``, either of them more than once, or with an empty or non-``tchar``
            value. A server answers 400 with the message, which never holds the token.
    """
    offers_mcp = False
    tokens: list[str] = []
    versions: list[str] = []
    others: list[str] = []
    for name in subprotocols:
        if name == SUBPROTOCOL:
            offers_mcp = True
        elif name.startswith(AUTH_PREFIX):
            tokens.append(name[len(AUTH_PREFIX) :])
        elif name.startswith(VERSION_PREFIX):
            versions.append(name[len(VERSION_PREFIX) :])
        else:
            others.append(name)
    token = _single(tokens, f"{AUTH_PREFIX}*")
    version = _single(versions, f"{VERSION_PREFIX}*")
    if (token is not None or version is not None) and not offers_mcp:
        ours = AUTH_PREFIX if token is not None else VERSION_PREFIX
        raise ValueError(f"the subprotocol {ours}* was offered without {SUBPROTOCOL!r}")
    return SubprotocolOffer(offers_mcp=offers_mcp, token=token, version=version, others=tuple(others))


def select_subprotocol(offer: SubprotocolOffer) -> str | None:
    """The subprotocol a server selects: ``mcp`` when offered, else None; never the token.

    Echoing ``mcp.auth.<token>`` would put the credential into the 101 response; a browser
    accepts ``mcp`` because it was in its offer.
    """
    return SUBPROTOCOL if offer.offers_mcp else None


def _single(values: list[str], pattern: str) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise ValueError(f"the subprotocol {pattern} was offered {len(values)} times; offer it once")
    (value,) = values
    if not is_token(value):
        # The value may be a secret: say what is wrong, never show it.
        raise ValueError(f"the subprotocol {pattern} has an empty or malformed value")
    return value


def _describe(char: str) -> str:
    if char == " ":
        return "a space"
    if char.isprintable() and char.isascii():
        return f"the character {char!r}"
    return f"the character U+{ord(char):04X}"
