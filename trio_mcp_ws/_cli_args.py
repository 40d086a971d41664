"""Argument parsing for the ``trio-mcp-ws`` command: every option, its help text and its checks.

Values are checked here, before anything starts, so a bad option is one line on stderr
and exit status 2 (argparse's own convention), never a traceback from deep inside.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, NoReturn

from . import DEFAULT_MAX_MESSAGE_SIZE, __version__
from ._cli_connect import run_connect
from ._cli_signals import EXIT_USAGE
from ._cli_workers import run_serve_command
from ._demo import run_demo_command
from ._forwarded import TrustedProxies
from ._proxy import parse_proxy_url
from ._stdio import DEFAULT_GRACE

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["build_parser"]

PROG = "trio-mcp-ws"

# RFC 9110 token characters: what an HTTP header name may hold.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error reported as one line naming where to look."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USAGE)


def _number(
    kind: Callable[[str], float], minimum: float, *, inclusive: bool, what: str
) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value < minimum or (not inclusive and value == minimum):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return convert


_seconds = _number(float, 0, inclusive=False, what="a positive number of seconds")
_seconds_or_zero = _number(float, 0, inclusive=True, what="a number of seconds (0 or more)")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not at least 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def _path(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"{text!r} does not start with '/'")
    return text


def _env_item(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME:VALUE")
    if not _TOKEN.match(name):
        raise argparse.ArgumentTypeError(f"{name!r} is not a valid HTTP header name")
    return name, value


def _trusted_proxy(text: str) -> str:
    try:
        TrustedProxies([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _proxy_url(text: str) -> str:
    try:
        parse_proxy_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``trio-mcp-ws``; each sub-command sets ``run`` to its coroutine function."""
    parser = _Parser(prog=PROG, description="A Trio-native WebSocket transport for MCP.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = _Parser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more: -v for INFO, -vv for DEBUG and tracebacks",
    )
    common.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="stderr log lines as text (default) or one JSON object per line",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", parents=[common], help="run an MCP server and client over a loopback WebSocket"
    )
    demo.set_defaults(run=run_demo_command, command_name="demo")

    _serve_options(
        commands.add_parser(
            "serve",
            parents=[common],
            help="expose a stdio MCP server command over WebSocket (one process per connection)",
            description=(
                "Serve a stdio MCP server over WebSocket. Each connection gets its own child "
                "process, so clients never share state. Give the command after --, e.g. "
                "trio-mcp-ws serve --port 8000 -- python server.py"
            ),
        )
    ).set_defaults(run=run_serve_command, command_name="serve")
    _connect_options(
        commands.add_parser(
            "connect",
            parents=[common],
            help="bridge a WebSocket MCP server to this process's stdin/stdout",
            description=(
                "Connect to a WebSocket MCP server and speak MCP's stdio transport on "
                "stdin/stdout, for hosts that only launch stdio servers. stdout carries "
                "JSON-RPC lines only; logs go to stderr."
            ),
        )
    ).set_defaults(run=run_connect, command_name="connect")
    return parser


def _serve_options(serve: argparse.ArgumentParser) -> argparse.ArgumentParser:
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, default=8000, help="port to listen on; 0 picks one (default: 8000)"
    )
    serve.add_argument("--path", type=_path, default="/mcp", help="URL path of the endpoint (default: /mcp)")
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="accept this Host header (repeatable; HOST alone allows any port); turns on "
        "DNS-rebinding protection for any bind address",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="accept this Origin header, e.g. https://app.example.com (repeatable)",
    )
    serve.add_argument(
        "--token",
        action="append",
        default=[],
        help="require 'Authorization: Bearer TOKEN' (repeatable; visible in ps: prefer "
        "--token-file or --token-env)",
    )
    serve.add_argument(
        "--token-file", metavar="FILE", help="read accepted bearer tokens from FILE, one per line"
    )
    serve.add_argument(
        "--token-env", metavar="NAME", help="read the accepted bearer token from variable NAME"
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="serve wss:// with this PEM certificate (chain)")
    serve.add_argument(
        "--tls-key", metavar="FILE", help="the private key for --tls-cert (default: in the cert file)"
    )
    serve.add_argument(
        "--max-connections",
        type=_count,
        default=64,
        metavar="N",
        help="connections (child processes) at once; beyond it clients get 503 (default: 64)",
    )
    serve.add_argument(
        "--max-message-size",
        type=_count,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        metavar="BYTES",
        help=f"largest incoming message; bigger closes with 1009 (default: {DEFAULT_MAX_MESSAGE_SIZE})",
    )
    serve.add_argument(
        "--handshake-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="time a client has for its opening handshake (default: 10)",
    )
    serve.add_argument(
        "--ping-interval",
        type=_seconds_or_zero,
        default=20.0,
        metavar="SECONDS",
        help="keepalive ping interval; 0 disables pings (default: 20)",
    )
    serve.add_argument(
        "--env",
        type=_env_item,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a variable in the child's environment (repeatable)",
    )
    serve.add_argument("--cwd", metavar="DIR", help="working directory of the child")
    serve.add_argument(
        "--grace-period",
        type=_seconds_or_zero,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help="when stopping a child: wait this long after closing its stdin, then SIGTERM, "
        f"then this long again, then SIGKILL (default: {DEFAULT_GRACE:g})",
    )
    serve.add_argument(
        "--health",
        type=_path,
        metavar="PATH",
        help="answer a plain HTTP GET of PATH with 200 'ok' while serving, 503 while shutting down "
        "(for load balancers; no WebSocket upgrade)",
    )
    serve.add_argument(
        "--trusted-proxy",
        type=_trusted_proxy,
        action="append",
        default=[],
        metavar="ADDR",
        help="believe Forwarded / X-Forwarded-For from this proxy address or CIDR range, e.g. "
        "127.0.0.1 or 10.0.0.0/8 (repeatable; default: from no one)",
    )
    serve.add_argument(
        "--workers",
        type=_count,
        metavar="N",
        help="run N worker processes sharing the port (SO_REUSEPORT; Linux and the BSDs), "
        "supervised: a crashed worker is restarted, signals reach every worker "
        "(default: serve in this one process)",
    )
    serve.add_argument("command", nargs=argparse.REMAINDER, help="the stdio server command, after --")
    return serve


def _connect_options(connect: argparse.ArgumentParser) -> argparse.ArgumentParser:
    connect.add_argument("url", help="the server's ws:// or wss:// URL, e.g. wss://mcp.example.com/mcp")
    connect.add_argument(
        "-H",
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="extra handshake header (repeatable)",
    )
    connect.add_argument(
        "--token", help="send 'Authorization: Bearer TOKEN' (visible in ps: prefer --token-env)"
    )
    connect.add_argument("--token-env", metavar="NAME", help="send the bearer token held in variable NAME")
    proxy = connect.add_mutually_exclusive_group()
    proxy.add_argument(
        "--proxy",
        type=_proxy_url,
        metavar="URL",
        help="connect through this proxy: http://, https://, socks4://, socks4a://, socks5:// or "
        "socks5h:// (default: HTTPS_PROXY / HTTP_PROXY / ALL_PROXY and NO_PROXY, as curl does)",
    )
    proxy.add_argument(
        "--no-proxy",
        action="store_true",
        help="connect directly, whatever the proxy variables say",
    )
    connect.add_argument(
        "--cacert", metavar="FILE", help="trust the CA certificates in this PEM file for wss://"
    )
    connect.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="time for TCP, TLS and the WebSocket handshake together (default: 10)",
    )
    connect.add_argument(
        "--ping-interval",
        type=_seconds_or_zero,
        default=20.0,
        metavar="SECONDS",
        help="keepalive ping interval; 0 disables pings (default: 20)",
    )
    connect.add_argument(
        "--max-message-size",
        type=_count,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        metavar="BYTES",
        help=f"largest incoming message (default: {DEFAULT_MAX_MESSAGE_SIZE})",
    )
    connect.add_argument(
        "--linger",
        type=_seconds_or_zero,
        default=5.0,
        metavar="SECONDS",
        help="after stdin ends, wait up to this long for answers to requests already sent (default: 5)",
    )
    return connect
