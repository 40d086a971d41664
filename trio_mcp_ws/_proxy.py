"""Client proxies: which proxy a connection goes through, and a tunnel through it.

Two jobs, both used by `websocket_client` before its own TLS and WebSocket handshakes:

- `resolve_proxy` picks the proxy for a ``ws://``/``wss://`` target: the one the caller
  named, none, or the one the environment names (``HTTPS_PROXY``, ``HTTP_PROXY``,
  ``ALL_PROXY``, bypassed by ``NO_PROXY``) with the rules curl and `websockets` follow.
- `open_tunnel` connects to the proxy and asks it for a byte stream to the target; the
  caller then does TLS to the *server* over that stream (so its certificate is checked for
  the server's host name, end to end) and the WebSocket handshake.

Which code speaks to the proxy, and why:

- SOCKS4, SOCKS4a, SOCKS5 and SOCKS5h: python-socks, through its Trio backend's public
  ``python_socks.async_.trio.v2.Proxy``. It is maintained, typed, and its SOCKS parsers read
  exact byte counts, so a reply split across TCP segments is handled.
- HTTP ``CONNECT`` (``http://`` and ``https://`` proxies): h11, which wsproto already
  depends on, and a few lines here. python-socks speaks ``CONNECT`` too but reads the reply
  with a single receive and parses only its status line: a reply that arrives in two TCP
  segments (or TLS records, through an ``https://`` proxy) leaves the rest of its headers in
  the tunnel, where our TLS or WebSocket handshake would take them for the server's bytes.
  h11 parses the whole reply head, bounded in size, and tells us exactly what followed it.

Error handling: every failure to reach the proxy or to get a tunnel from it becomes one
`ProxyError` (a `ConnectError`) naming the proxy without credentials and carrying its
status (HTTP status or SOCKS reply code) when it gave one. The one exception is a target
name that cannot be resolved locally (``socks4://``, ``socks5://``), which is a
`NameResolutionError` like a direct connection's. Credentials from the proxy URL go to the
proxy only, and never into a message, a log line or a repr.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import re
import socket
import ssl
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, cast
from urllib.parse import unquote, urlsplit

import h11
import trio
from python_socks import ProxyConnectionError as _SocksConnectionError
from python_socks import ProxyError as _SocksError
from python_socks import ProxyTimeoutError as _SocksTimeoutError
from python_socks import ProxyType
from python_socks.async_.trio.v2 import Proxy as _SocksProxy

from ._errors import NameResolutionError, ProxyError

if sys.version_info < (3, 11):  # pragma: no cover - exercised by the 3.10 CI job
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ProxySetting",
    "ProxyURL",
    "bypasses_proxy",
    "open_tunnel",
    "parse_proxy_url",
    "redact_proxy_url",
    "resolve_proxy",
]

logger = logging.getLogger(__name__)

ProxySetting = str | Literal[False] | None
"""What ``websocket_client(proxy=...)`` accepts: a proxy URL, ``False`` (never), ``None`` (environment)."""

_DEFAULT_PORTS: Final = {
    "http": 80,
    "https": 443,
    "socks4": 1080,
    "socks4a": 1080,
    "socks5": 1080,
    "socks5h": 1080,
}
"""Proxy schemes we speak, with the port used when the URL names none (as urllib and `websockets` do)."""

_RECEIVE_SIZE: Final = 4096
"""Bytes per read of the proxy's CONNECT reply: a reply head is a few hundred bytes."""

_MAX_REPLY_HEAD: Final = 16 * 1024
"""Largest CONNECT reply head we parse (h11's own default); a proxy sending more is lying."""

_USERINFO: Final = re.compile(r"//[^/?#]*@")


@dataclass(frozen=True)
class ProxyURL:
    """A parsed proxy URL; the credentials are kept out of its repr.

    Attributes:
        scheme: ``http``, ``https``, ``socks4``, ``socks4a``, ``socks5`` or ``socks5h``.
        host: The proxy's host name or IP address (without brackets).
        port: The proxy's port (the scheme's default when the URL names none).
        username: The user name from the URL, percent-decoded; ``None`` when absent.
        password: The password from the URL, percent-decoded; ``None`` when absent.
    """

    scheme: str
    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def redacted(self) -> str:
        """The URL without credentials, for messages and logs."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def redact_proxy_url(url: str) -> str:
    """Return ``url`` with any ``user:password@`` removed, for messages and logs.

    Works on any string, parsed or not, so even an invalid URL can be shown safely.
    """
    return _USERINFO.sub("//", url)


def parse_proxy_url(url: str) -> ProxyURL:
    """Parse and check a proxy URL.

    Args:
        url: ``scheme://[user[:password]@]host[:port]`` with a scheme from ``http``,
            ``https``, ``socks4``, ``socks4a``, ``socks5``, ``socks5h``. Credentials are
            percent-decoded (write ``@`` in a password as ``%40``).

    Returns:
        The parsed URL.

    Raises:
        ValueError: The scheme is not one of those, the URL has no host, or the port is
            invalid. The message never shows the credentials.
    """
    shown = redact_proxy_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid proxy URL {shown!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(
            f"unsupported proxy scheme in {shown!r}: use one of "
            + ", ".join(f"{s}://" for s in _DEFAULT_PORTS)
        )
    if not parts.hostname:
        raise ValueError(f"proxy URL has no host: {shown!r}")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return ProxyURL(
        scheme=scheme,
        host=parts.hostname,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        username=username,
        password=password,
    )


def resolve_proxy(
    proxy: ProxySetting,
    *,
    scheme: str,
    host: str,
    port: int,
    environ: Mapping[str, str] = os.environ,
) -> str | None:
    """Choose the proxy for a connection to ``scheme://host:port``.

    Args:
        proxy: A proxy URL (always used, whatever ``NO_PROXY`` says), ``False`` (never use
            one), or ``None`` (use the environment, as curl and `websockets` do).
        scheme: The target's scheme: ``ws`` or ``wss``.
        host: The target's host name or IP address.
        port: The target's port.
        environ: Where to read the variables; the process environment by default.

    Returns:
        The proxy URL to use (checked, credentials included: show it only through
        `redact_proxy_url`), or ``None`` to connect directly.

    Raises:
        ValueError: ``scheme`` is not ``ws``/``wss``, or the proxy URL (given or from the
            environment) is invalid.
        TypeError: ``proxy`` is neither a string, ``False`` nor ``None``.

    With ``proxy=None``, a ``wss://`` target uses ``https_proxy`` then ``HTTPS_PROXY``, a
    ``ws://`` target ``http_proxy`` then ``HTTP_PROXY``; both fall back to ``all_proxy`` then
    ``ALL_PROXY``. Lower case wins over upper case, an empty value counts as unset, a
    value without a scheme means ``http://``, and ``HTTP_PROXY`` is ignored when
    ``REQUEST_METHOD`` is set (under CGI a client's ``Proxy:`` header lands there:
    "httpoxy"). ``no_proxy``/``NO_PROXY`` then lists targets reached directly: comma- or
    space-separated host names (matching the name and its subdomains, with or without a
    leading ``.`` or ``*.``), IP addresses, CIDR ranges (matched against IP-literal hosts
    only: nothing is resolved), any of them with ``:port``, or ``*`` for everything.
    """
    scheme = scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"scheme must be 'ws' or 'wss', not {scheme!r}")
    if proxy is False:
        return None
    if proxy is not None:
        if not isinstance(proxy, str):  # pyright: ignore[reportUnnecessaryIsInstance] # untyped callers, proxy=True
            raise TypeError(f"proxy must be a URL, False or None, not {type(proxy).__name__}")
        parse_proxy_url(proxy)
        return proxy
    names = ["https_proxy", "HTTPS_PROXY"] if scheme == "wss" else ["http_proxy", "HTTP_PROXY"]
    names += ["all_proxy", "ALL_PROXY"]
    if "REQUEST_METHOD" in environ and "HTTP_PROXY" in names:
        names.remove("HTTP_PROXY")
    value = next((environ[name].strip() for name in names if environ.get(name, "").strip()), None)
    if value is None:
        return None
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    if bypasses_proxy(no_proxy, host, port):
        return None
    if "://" not in value:
        value = "http://" + value
    parse_proxy_url(value)
    return value


def bypasses_proxy(no_proxy: str, host: str, port: int) -> bool:
    """Whether a ``NO_PROXY`` value says to reach ``host:port`` directly.

    See `resolve_proxy` for the rules. Entries that parse as nothing are ignored, as curl
    ignores them.
    """
    target = _normalise_host(host)
    target_ip = _ip_or_none(target)
    for raw in re.split(r"[,\s]+", no_proxy):
        entry = raw.strip()
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if name.startswith("*."):
            name = name[2:]
        name = _normalise_host(name.lstrip("."))
        if not name:
            continue
        if "/" in name or _ip_or_none(name) is not None:
            try:
                network = ipaddress.ip_network(name, strict=False)
            except ValueError:
                continue
            if target_ip is not None and target_ip.version == network.version and target_ip in network:
                return True
            continue
        if target == name or target.endswith("." + name):
            return True
    return False


async def open_tunnel(
    proxy_url: str,
    host: str,
    port: int,
    *,
    ssl_context_for_proxy: ssl.SSLContext | None = None,
    timeout: float,  # noqa: ASYNC109 - the caller's connect budget, one deadline for every step
) -> trio.abc.Stream:
    """Connect through a proxy and return a byte stream to ``host:port``.

    Args:
        proxy_url: The proxy, as `resolve_proxy` returns it (see `parse_proxy_url`).
        host: The target's host name or IP address. Through ``socks4://`` and
            ``socks5://`` a name is resolved here; through ``socks4a://``, ``socks5h://``
            and HTTP proxies the proxy resolves it.
        port: The target's port.
        ssl_context_for_proxy: TLS settings for the connection *to* an ``https://`` proxy
            (default: ``ssl.create_default_context()``); the proxy's certificate is checked
            for the proxy's host name. Not used for other schemes.
        timeout: Seconds for the whole of it: TCP to the proxy, TLS to it, and its answer.

    Returns:
        A stream whose bytes go to the target. For ``wss://`` do TLS over it with the
        server's host name, then the WebSocket handshake.

    Raises:
        ValueError: The proxy URL is invalid, or ``host`` cannot go in a ``CONNECT`` request.
        ProxyError: The proxy could not be reached, its TLS handshake failed, it refused
            the tunnel (``status`` holds its HTTP status or SOCKS reply code), it answered
            something that is not its protocol, or it took longer than ``timeout``.
        NameResolutionError: ``socks4://`` or ``socks5://`` and ``host`` does not resolve.

    Resource handling:
        On any failure or cancellation the connection to the proxy is closed before this
        returns; on success the caller owns the stream.
    """
    proxy = parse_proxy_url(proxy_url)
    logger.debug("opening a tunnel to %s:%d through %s", host, port, proxy.redacted)
    with trio.move_on_after(timeout):
        if proxy.scheme in ("http", "https"):
            return await _http_tunnel(proxy, host, port, ssl_context_for_proxy)
        return await _socks_tunnel(proxy, host, port, timeout)
    raise ProxyError(
        f"proxy {proxy.redacted} did not open a tunnel to {_authority(host, port)} within {timeout}s",
        proxy=proxy.redacted,
    )


async def _http_tunnel(
    proxy: ProxyURL, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> trio.abc.Stream:
    stream: trio.abc.Stream = await _connect_to_proxy(proxy)
    try:
        if proxy.scheme == "https":
            stream = await _tls_to_proxy(stream, proxy, ssl_context)
        await _http_connect(stream, proxy, host, port)
    except BaseException:  # a failure or cancellation: the caller never sees this stream
        await trio.aclose_forcefully(stream)
        raise
    return stream


async def _connect_to_proxy(proxy: ProxyURL) -> trio.SocketStream:
    try:
        return await trio.open_tcp_stream(proxy.host, proxy.port)
    except socket.gaierror as exc:
        raise ProxyError(
            f"cannot resolve the proxy's host name in {proxy.redacted}: {exc.strerror}", proxy=proxy.redacted
        ) from exc
    except OSError as exc:
        raise ProxyError(
            f"cannot connect to proxy {proxy.redacted}: {_os_reason(exc)}", proxy=proxy.redacted
        ) from exc


async def _tls_to_proxy(
    tcp: trio.abc.Stream, proxy: ProxyURL, ssl_context: ssl.SSLContext | None
) -> trio.SSLStream[trio.abc.Stream]:
    context = ssl_context if ssl_context is not None else ssl.create_default_context()
    tls = trio.SSLStream(tcp, context, server_hostname=proxy.host, https_compatible=True)
    try:
        await tls.do_handshake()
    except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
        cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) and exc.__cause__ else exc
        raise ProxyError(
            f"TLS handshake with proxy {proxy.redacted} failed: {cause}", proxy=proxy.redacted
        ) from exc
    return tls


async def _http_connect(stream: trio.abc.Stream, proxy: ProxyURL, host: str, port: int) -> None:
    """Send ``CONNECT host:port`` and read the reply; return once the tunnel is open."""
    authority = _authority(host, port)
    headers = [("Host", authority)]
    if proxy.username is not None:
        credentials = f"{proxy.username}:{proxy.password or ''}".encode()
        headers.append(("Proxy-Authorization", "Basic " + base64.b64encode(credentials).decode("ascii")))
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_REPLY_HEAD)
    try:
        request = conn.send(h11.Request(method="CONNECT", target=authority, headers=headers))
    except h11.LocalProtocolError:
        # A host HTTP cannot carry. h11's message would quote the headers, credentials
        # included, so neither it nor its traceback goes any further.
        raise ValueError(f"{authority!r} cannot go in a CONNECT request to {proxy.redacted}") from None
    end = conn.send(h11.EndOfMessage())
    try:
        await stream.send_all((request or b"") + (end or b""))
        response = await _read_reply(stream, conn)
    except (trio.BrokenResourceError, OSError) as exc:
        raise ProxyError(
            f"proxy {proxy.redacted} dropped the connection before answering CONNECT", proxy=proxy.redacted
        ) from exc
    except h11.RemoteProtocolError as exc:
        raise ProxyError(
            f"proxy {proxy.redacted} answered CONNECT with something that is not HTTP: {exc}",
            proxy=proxy.redacted,
        ) from exc
    if response is None:
        raise ProxyError(
            f"proxy {proxy.redacted} closed the connection before answering CONNECT", proxy=proxy.redacted
        )
    status = response.status_code
    if not 200 <= status < 300:
        reason = response.reason.decode("latin-1", "replace")
        hint = ""
        if status == 407 or (status == 401 and proxy.username is not None):  # tinyproxy answers 401
            hint = (
                " (the proxy rejected the credentials in the proxy URL)"
                if proxy.username is not None
                else " (the proxy wants credentials: put user:password@ in the proxy URL)"
            )
        raise ProxyError(
            f"proxy {proxy.redacted} refused a tunnel to {authority}: {status} {reason}{hint}",
            proxy=proxy.redacted,
            status=status,
        )
    leftover, _closed = conn.trailing_data
    if leftover:
        # Nothing has gone through the tunnel yet, and WebSocket and TLS clients speak
        # first, so no byte after the reply can be the server's.
        raise ProxyError(
            f"proxy {proxy.redacted} sent {len(leftover)} unexpected bytes after its {status} reply",
            proxy=proxy.redacted,
            status=status,
        )


async def _read_reply(stream: trio.abc.Stream, conn: h11.Connection) -> h11.Response | None:
    """Read the final response to CONNECT (skipping 1xx); ``None`` if the proxy closed first."""
    received = False
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(_RECEIVE_SIZE)
            if not data and not received:
                return None
            received = True
            conn.receive_data(bytes(data))
        elif isinstance(event, h11.Response):
            return event
        # An InformationalResponse (1xx): the final answer is still to come. (An EOF after
        # part of a reply is h11's RemoteProtocolError, so no ConnectionClosed comes here.)


async def _socks_tunnel(proxy: ProxyURL, host: str, port: int, seconds: float) -> trio.abc.Stream:
    kind = ProxyType.SOCKS5 if proxy.scheme.startswith("socks5") else ProxyType.SOCKS4
    socks = _SocksProxy(
        kind,
        proxy.host,
        proxy.port,
        username=proxy.username,
        password=proxy.password,
        # socks5h and socks4a: the proxy resolves the target's name (python-socks would
        # otherwise default SOCKS5 to remote resolution, unlike curl).
        rdns=proxy.scheme in ("socks5h", "socks4a"),
    )
    try:
        tunnel = await socks.connect(host, port, timeout=seconds)
    except _SocksTimeoutError as exc:  # python-socks's own deadline; ours normally fires first
        raise ProxyError(
            f"proxy {proxy.redacted} did not open a tunnel to {_authority(host, port)} within {seconds}s",
            proxy=proxy.redacted,
        ) from exc
    except _SocksConnectionError as exc:
        raise ProxyError(
            f"cannot connect to proxy {proxy.redacted}: {_os_reason(exc)}", proxy=proxy.redacted
        ) from exc
    except _SocksError as exc:
        code = f" (reply code {exc.error_code:#04x})" if exc.error_code is not None else ""
        raise ProxyError(
            f"proxy {proxy.redacted} refused a tunnel to {_authority(host, port)}: {exc}{code}",
            proxy=proxy.redacted,
            status=exc.error_code,
        ) from exc
    except socket.gaierror as exc:  # the target's name, resolved here for socks4:// and socks5://
        raise NameResolutionError(exc.errno, f"cannot resolve {host!r}: {exc.strerror}") from exc
    except (trio.BrokenResourceError, OSError, ValueError, AssertionError) as exc:
        # A reset mid-handshake, or a reply python-socks's parser chokes on.
        raise ProxyError(
            f"proxy {proxy.redacted} broke off the SOCKS handshake: {type(exc).__name__}",
            proxy=proxy.redacted,
        ) from exc
    # python-socks types this as SocketStream | SSLStream[Unknown]; it is a SocketStream here
    # (no TLS to a SOCKS proxy), and a Stream is all we promise.
    return cast("trio.abc.Stream", tunnel.trio_stream)  # pyright: ignore[reportUnknownMemberType]


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _os_reason(exc: OSError) -> str:
    """The specific reasons behind a connect failure, e.g. ``Connection refused``.

    trio reports "all attempts to connect failed" with each address's own error in an
    ExceptionGroup under ``__cause__`` (and python-socks wraps that once more): look down
    the chain for errors that carry an errno.
    """
    reasons: list[str] = []
    pending: list[BaseException] = [exc]
    while pending and len(reasons) < 4:
        error = pending.pop(0)
        if isinstance(error, BaseExceptionGroup):
            group = cast("BaseExceptionGroup[BaseException]", error)
            pending.extend(group.exceptions)
        elif isinstance(error, OSError) and error.errno is not None and error.strerror:
            if error.strerror not in reasons:
                reasons.append(error.strerror)
            continue
        if error.__cause__ is not None:
            pending.append(error.__cause__)
    return "; ".join(reasons) or str(exc) or type(exc).__name__


def _normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _ip_or_none(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _split_port(entry: str) -> tuple[str, int | None]:
    """Split ``host:port``, ``[v6]:port``, ``[v6]`` or a bare IPv6 address/range."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        return name, _port_or_none(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        name, _, text = entry.partition(":")
        return name, _port_or_none(text)
    return entry, None


def _port_or_none(text: str) -> int | None:
    # An unreadable port becomes -1: it matches no real port, so the entry bypasses nothing.
    return int(text) if text.isdigit() else -1
