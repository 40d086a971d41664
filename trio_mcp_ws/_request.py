"""What the server's policy sees of a handshake request, and how it refuses one.

`HandshakeRequest` is one view of the client's opening handshake for every way of serving
(`serve`, trio-websocket's server, ASGI), so a policy or an ``authenticate`` hook is
written once. `Rejection` is the HTTP answer refusing it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["HandshakeRequest", "Rejection", "RequestHeaders", "describe_address", "handshake_request"]

# Header values we never print: they carry credentials.
_SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})
# A subprotocol that carries a bearer token (the SEP-1288 draft's browser authentication).
_TOKEN_SUBPROTOCOL: Final = "mcp.auth."


def _shown(name: str, value: str) -> str:
    """A header value fit for a log: credentials replaced by ``<hidden>``."""
    if name in _SECRET_HEADERS:
        return "<hidden>"
    if name == "sec-websocket-protocol":
        return ", ".join(_shown_subprotocol(item.strip()) for item in value.split(","))
    return value


def _shown_subprotocol(name: str) -> str:
    return _TOKEN_SUBPROTOCOL + "<hidden>" if name.startswith(_TOKEN_SUBPROTOCOL) else name


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
        shown = {name: _shown(name, value) for name, value in self._combined.items()}
        return f"RequestHeaders({shown!r})"


@dataclass(frozen=True)
class HandshakeRequest:
    """The client's WebSocket opening handshake, as the policy and ``authenticate`` see it.

    Attributes:
        path: The request path, as sent (still percent-encoded), without the query.
        query: The query string without the ``?`` (empty when there is none).
        headers: Every request header, including ``Host`` and ``Sec-WebSocket-Protocol``.
        subprotocols: The subprotocols the client offered, in its order (the ``repr``
            hides a ``mcp.auth.<token>`` one, as it hides credential headers).
        client: The client's ``(address, port)``, or ``None`` when unknown (e.g. it left).
        secure: Whether the connection is TLS (``wss://``).
    """

    path: str
    query: str
    headers: RequestHeaders
    subprotocols: tuple[str, ...]
    client: tuple[str, int] | None
    secure: bool

    def __repr__(self) -> str:
        offered = tuple(_shown_subprotocol(name) for name in self.subprotocols)
        return (
            f"HandshakeRequest(path={self.path!r}, query={self.query!r}, headers={self.headers!r}, "
            f"subprotocols={offered!r}, client={self.client!r}, secure={self.secure!r})"
        )

    @property
    def remote(self) -> str:
        """The client's address as ``host:port`` for logs (``[v6]:port`` for IPv6)."""
        return describe_address(self.client)


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


def handshake_request(
    *,
    host: str,
    target: str,
    headers: Iterable[tuple[bytes, bytes]],
    subprotocols: Iterable[str],
    client: tuple[str, int] | None,
    secure: bool,
) -> HandshakeRequest:
    """Our view of a request that wsproto parsed: every header back in one mapping.

    wsproto keeps ``Host`` and the offered subprotocols apart from the other headers.
    """
    offered = tuple(subprotocols)
    items: list[tuple[str, str]] = [("host", host)]
    items.extend((name.decode("latin-1"), value.decode("latin-1")) for name, value in headers)
    if offered:
        items.append(("sec-websocket-protocol", ", ".join(offered)))
    path, _, query = target.partition("?")
    return HandshakeRequest(
        path=path,
        query=query,
        headers=RequestHeaders(items),
        subprotocols=offered,
        client=client,
        secure=secure,
    )


def describe_address(client: tuple[str, int] | None) -> str:
    """A client address as ``host:port`` for logs (``[v6]:port`` for IPv6), or ``unknown client``."""
    if client is None:
        return "unknown client"
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
