"""``trio-mcp-ws connect``: a WebSocket MCP server on this process's stdin and stdout.

For hosts that only launch stdio servers (a desktop client's config file): the host
writes JSON-RPC lines to our stdin and reads the server's messages from our stdout, which
carries nothing else (logs go to stderr).

When stdin ends, requests already sent may still be unanswered (``echo '{...}' | connect``
sends one and closes stdin at once), so the bridge waits up to ``--linger`` seconds for
their answers before closing with 1000. The exit status tells a host how it ended: 0 after
a clean close, 1 after an abnormal one (1006, 1011, keepalive), a refused connection or
handshake, or unanswered requests; 2 for a usage error.
"""

from __future__ import annotations

import os
import ssl
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import mcp_types as types
import trio

from . import (
    ConnectionClosedError,
    HandshakeRejectedError,
    TransportError,
    websocket_client,
)
from ._cli_log import cli_logger
from ._cli_signals import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError
from ._stdio import lines_to_channel, message_line, single_cancelled

if TYPE_CHECKING:
    import argparse

    from mcp.shared.message import SessionMessage

    from . import ReadChannel, WriteChannel

__all__ = ["check_url", "run_connect"]


def check_url(url: str) -> str:
    """``url`` if it is a usable ws:// or wss:// URL; otherwise a `CliError` saying what to write."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        fixed = ("wss" if scheme == "https" else "ws") + url[len(scheme) :]
        raise CliError(
            f"{url!r} is an HTTP URL; WebSocket URLs start with ws:// or wss://, e.g. {fixed}", EXIT_USAGE
        )
    if scheme not in ("ws", "wss") or not parts.netloc:
        example = f"ws://{url}/mcp" if "/" not in url and "://" not in url else "ws://127.0.0.1:8000/mcp"
        raise CliError(f"{url!r} is not a ws:// or wss:// URL; write it as e.g. {example}", EXIT_USAGE)
    if parts.username is not None or parts.password is not None:
        raise CliError(
            "credentials in the URL are not sent; use --token-env NAME or -H 'Authorization: ...'", EXIT_USAGE
        )
    try:
        _ = parts.port
    except ValueError:
        raise CliError(f"{url!r} has an invalid port", EXIT_USAGE) from None
    if not parts.hostname:
        raise CliError(f"{url!r} has no host", EXIT_USAGE)
    return url


def _headers(args: argparse.Namespace) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = list(args.header)
    token: str | None = args.token
    if args.token_env:
        token = os.environ.get(args.token_env, "").strip()
        if not token:
            raise CliError(f"--token-env: variable {args.token_env} is not set or empty", EXIT_USAGE)
    if token is not None:
        if any(name.lower() == "authorization" for name, _ in headers):
            raise CliError("give either --token/--token-env or an Authorization header, not both", EXIT_USAGE)
        headers.append(("Authorization", f"Bearer {token}"))
    return headers


def _ssl_context(cacert: str | None) -> ssl.SSLContext | None:
    if cacert is None:
        return None
    try:
        return ssl.create_default_context(cafile=cacert)
    except (OSError, ssl.SSLError) as exc:
        detail = exc.strerror or str(exc)
        raise CliError(f"cannot load --cacert {cacert!r}: {detail}", EXIT_USAGE) from exc


async def run_connect(args: argparse.Namespace) -> int:
    """Bridge stdin/stdout to the server at ``args.url``; the exit status."""
    url = check_url(args.url)
    headers = _headers(args)
    ssl_context = _ssl_context(args.cacert)
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    stdout = trio.lowlevel.FdStream(os.dup(sys.stdout.fileno()))
    async with stdin, stdout:
        try:
            async with websocket_client(
                url,
                headers=headers,
                ssl_context=ssl_context,
                connect_timeout=args.connect_timeout,
                ping_interval=args.ping_interval or None,
                max_message_size=args.max_message_size,
                proxy=False if args.no_proxy else args.proxy,
            ) as (read, write):
                cli_logger.debug("connected to %s", url)
                bridge = _Bridge(read, write, stdout, linger=args.linger)
                status = await bridge.run(stdin)
        except ValueError as exc:  # a header websocket_client refuses
            raise CliError(str(exc), EXIT_USAGE) from exc
        except HandshakeRejectedError as exc:
            hint = " (check --token)" if exc.status_code in (401, 403) else ""
            raise CliError(f"{url}: {exc}{hint}") from exc
        except TransportError as exc:  # ConnectError and its kinds: refused, DNS, TLS, timeout
            raise CliError(f"{url}: {exc}") from exc
    return status


class _Bridge:
    """One session: stdin lines up, server messages down, and how it ended."""

    def __init__(
        self, read: ReadChannel, write: WriteChannel, stdout: trio.abc.SendStream, *, linger: float
    ) -> None:
        self.read = read
        self.write = write
        self.stdout = stdout
        self.linger = linger
        self.unanswered: set[types.RequestId] = set()
        self.all_answered = trio.Event()
        self.failure: str | None = None

    async def run(self, stdin: trio.abc.ReceiveStream) -> int:
        async with single_cancelled(), trio.open_nursery() as nursery:

            async def upstream() -> None:
                await lines_to_channel(stdin, self._send, label="stdin")
                if self.unanswered:
                    cli_logger.debug(
                        "stdin ended; waiting up to %gs for %d answer(s)", self.linger, len(self.unanswered)
                    )
                    with trio.move_on_after(self.linger):
                        await self.all_answered.wait()
                if self.unanswered:
                    self.failure = (
                        f"stdin ended; {len(self.unanswered)} request(s) unanswered after "
                        f"--linger {self.linger:g}s"
                    )
                nursery.cancel_scope.cancel()  # then websocket_client closes with 1000

            async def downstream() -> None:
                try:
                    await self._downstream()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.failure = "stdout was closed by the host"
                nursery.cancel_scope.cancel()

            nursery.start_soon(upstream)
            nursery.start_soon(downstream)
        if self.failure is not None:
            cli_logger.error("%s", self.failure)
            return EXIT_FAILURE
        return EXIT_OK

    async def _downstream(self) -> None:
        async for item in self.read:
            if isinstance(item, ConnectionClosedError):
                self.failure = f"the server closed the connection abnormally: {item}"
                return
            if isinstance(item, Exception):
                cli_logger.warning("skipped a message from the server: %s", item)
                continue
            await self.stdout.send_all(message_line(item))
            self._answered(item)
        cli_logger.debug("the server closed the connection")

    async def _send(self, message: SessionMessage) -> None:
        """Send ``message`` upstream, noting a request's id so the linger can wait for its answer."""
        inner = message.message
        if isinstance(inner, types.JSONRPCRequest):
            self.unanswered.add(inner.id)
            if self.all_answered.is_set():
                self.all_answered = trio.Event()
        await self.write.send(message)

    def _answered(self, message: SessionMessage) -> None:
        inner = message.message
        if isinstance(inner, (types.JSONRPCResponse, types.JSONRPCError)) and inner.id in self.unanswered:
            self.unanswered.discard(inner.id)
            if not self.unanswered:
                self.all_answered.set()
