"""The real client address behind trusted reverse proxies: ``Forwarded`` and ``X-Forwarded-For``.

Behind nginx or HAProxy every connection comes from the proxy's address. The proxy names
the client in a ``Forwarded`` (RFC 7239) or ``X-Forwarded-For`` header, but any client can
send those headers too, so they are believed only when the direct peer is a trusted proxy
(`TrustedProxies`: addresses and CIDR ranges, none by default), and only as far as the
chain of trusted hops goes:

1. The direct peer is not trusted: its own address, whatever the headers say.
2. Otherwise the header's hops are read right to left (each proxy appends the address it
   received the connection from); trusted hops are skipped, and the first untrusted one
   is the client. If every hop is trusted, the leftmost is.
3. A header that does not parse strictly, a hop that is not an IP address (``unknown``,
   an obfuscated name) or two headers that name different clients: the direct peer's
   address. Garbage never becomes a client address; at worst the proxy is the client.

A client cannot spoof an address this way through a proxy that appends what it saw (nginx's
``$proxy_add_x_forwarded_for``): whatever it sends stays to the left of the address the
proxy appends. A proxy that passes a client's ``Forwarded`` through untouched while
setting ``X-Forwarded-For`` makes the two disagree, and then neither is believed.

``X-Forwarded-For`` carries no port: the client's port is then 0 (unknown).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["TrustedProxies", "real_client"]

logger = logging.getLogger("trio_mcp_ws.server")

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 9110 token, and quoted-string with its backslash escapes (RFC 7239 values use both).
_TOKEN: Final = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED: Final = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x09\x20-\x7e\x80-\xff])*"'
_PAIR: Final = re.compile(rf"[ \t]*({_TOKEN})=({_TOKEN}|{_QUOTED})[ \t]*")
_PORT: Final = re.compile(r"[0-9]{1,5}")


class _Malformed(Exception):
    """A forwarding header that does not parse, or names a hop we cannot use."""


class TrustedProxies:
    """The proxies whose forwarding headers are believed: addresses and CIDR ranges.

    Args:
        entries: Each an IPv4 or IPv6 address (``"10.0.0.5"``, ``"::1"``) or network
            (``"10.0.0.0/8"``, ``"fd00::/8"``). Empty: trust no one (the default).

    Raises:
        ValueError: An entry is neither, named in the message.
    """

    def __init__(self, entries: Sequence[str] = ()) -> None:
        if isinstance(entries, str):
            raise ValueError("trusted_proxies is a sequence of addresses, not one string")
        self.networks: tuple[_Network, ...] = tuple(_network(entry) for entry in entries)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(network) for network in self.networks]!r})"

    def trusts(self, address: str | _Address) -> bool:
        """Whether ``address`` is one of the trusted proxies (IPv4-mapped IPv6 as IPv4)."""
        if isinstance(address, str):
            try:
                address = _normal(ipaddress.ip_address(address))
            except ValueError:
                return False
        return any(address in network for network in self.networks)


def _network(entry: str) -> _Network:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"trusted proxy {entry!r} is not an IP address or CIDR range (e.g. 10.0.0.0/8)"
        ) from None


def real_client(
    peer: tuple[str, int] | None, headers: Iterable[tuple[bytes, bytes]], trusted: TrustedProxies
) -> tuple[str, int] | None:
    """The client's ``(address, port)``: ``peer``'s own, or the one its trusted proxies name.

    Args:
        peer: The direct peer's address, as the socket reports it (``None``: unknown).
        headers: The request's headers as ``(name, value)`` bytes, in order, ``Host`` and
            repeated headers included.
        trusted: The proxies whose headers are believed.

    Returns:
        The address as a normalised string (``"2001:db8::1"``, an IPv4-mapped address as
        IPv4) and the port, 0 when the header gave none; ``peer`` itself when it is not
        trusted, sent no forwarding header, or sent one that could not be used.
    """
    if peer is None or not trusted or not trusted.trusts(peer[0]):
        return peer
    forwarded: list[str] = []
    x_forwarded_for: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"forwarded":
            forwarded.append(value.decode("latin-1"))
        elif lowered == b"x-forwarded-for":
            x_forwarded_for.append(value.decode("latin-1"))
    if not forwarded and not x_forwarded_for:
        return peer
    try:
        found = [
            _pick(hops, trusted)
            for hops in (
                _forwarded_hops(",".join(forwarded)) if forwarded else None,
                _xff_hops(",".join(x_forwarded_for)) if x_forwarded_for else None,
            )
            if hops is not None
        ]
    except _Malformed as exc:
        logger.debug("ignored a forwarding header from %s: %s", peer[0], exc)
        return peer
    if len(found) == 2 and found[0][0] != found[1][0]:
        logger.debug(
            "ignored the forwarding headers from %s: Forwarded names %s, X-Forwarded-For %s",
            peer[0],
            found[0][0],
            found[1][0],
        )
        return peer
    address = found[0][0]
    port = next((port for _, port in found if port), 0)
    return str(address), port


def _normal(address: _Address) -> _Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _pick(hops: list[tuple[_Address, int]], trusted: TrustedProxies) -> tuple[_Address, int]:
    """The rightmost untrusted hop, or the leftmost when all are trusted."""
    for address, port in reversed(hops):
        if not trusted.trusts(address):
            return address, port
    return hops[0]


def _address(text: str) -> _Address:
    try:
        return _normal(ipaddress.ip_address(text))
    except ValueError:
        raise _Malformed(f"{text[:64]!r} is not an IP address") from None


def _port(text: str | None) -> int:
    if text is None:
        return 0
    if not _PORT.fullmatch(text) or int(text) > 65535:
        raise _Malformed(f"{text[:16]!r} is not a port")
    return int(text)


def _xff_hops(value: str) -> list[tuple[_Address, int]]:
    """``X-Forwarded-For: client, proxy1, ...`` as addresses, strictly (empty items refused).

    An item is an address, or (as some proxies send) ``1.2.3.4:80`` / ``[2001:db8::1]:80``.
    """
    hops: list[tuple[_Address, int]] = []
    for item in value.split(","):
        text = item.strip(" \t")
        if not text:
            raise _Malformed("an empty X-Forwarded-For item")
        if text.startswith("[") or text.count(":") == 1:
            hops.append(_node(text))
        else:
            hops.append((_address(text), 0))
    return hops


def _forwarded_hops(value: str) -> list[tuple[_Address, int]]:
    """RFC 7239 ``Forwarded`` elements' ``for=`` nodes, parsed strictly.

    Every element must name its ``for`` node (a hop we cannot place makes the chain
    unusable), each parameter at most once per element.
    """
    hops: list[tuple[_Address, int]] = []
    for element in _split_elements(value):
        params: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            if not pair.strip(" \t"):
                continue  # RFC 7239 allows empty pairs: "for=1.2.3.4;;proto=http"
            match = _PAIR.fullmatch(pair)
            if match is None:
                raise _Malformed(f"Forwarded pair {pair.strip()[:64]!r} does not parse")
            name = match.group(1).lower()
            if name in params:
                raise _Malformed(f"Forwarded element repeats {name!r}")
            params[name] = _unquote(match.group(2))
        if "for" not in params:
            raise _Malformed("a Forwarded element has no for= node")
        hops.append(_node(params["for"]))
    return hops


def _node(node: str) -> tuple[_Address, int]:
    """A node (a ``for=`` of Forwarded, an item of X-Forwarded-For).

    ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]`` or ``[2001:db8::1]:80``.
    """
    if node.startswith("["):
        inside, bracket, rest = node[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise _Malformed(f"node {node[:64]!r} does not parse")
        address = _address(inside)
        if not isinstance(address, ipaddress.IPv6Address):
            raise _Malformed(f"{node[:64]!r}: only IPv6 addresses go in brackets")
        return address, _port(rest[1:] if rest else None)
    host, sep, port = node.partition(":")
    address = _address(host)  # "unknown" and obfuscated "_names" end here: not usable
    if not isinstance(address, ipaddress.IPv4Address):
        raise _Malformed(f"node {node[:64]!r}: an IPv6 address with a port must be in brackets")
    return address, _port(port if sep else None)


def _unquote(value: str) -> str:
    if not value.startswith('"'):
        return value
    return re.sub(r"\\(.)", r"\1", value[1:-1])


def _split_elements(value: str) -> list[str]:
    elements = _split_outside_quotes(value, ",")
    if any(not element.strip(" \t") for element in elements):
        raise _Malformed("an empty Forwarded element")
    return elements


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    start = 0
    quoted = escaped = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(value[start:index])
            start = index + 1
    if quoted:
        raise _Malformed("an unterminated quoted string in Forwarded")
    parts.append(value[start:])
    return parts
