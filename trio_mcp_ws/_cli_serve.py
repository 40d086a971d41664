"""``trio-mcp-ws serve``: a stdio MCP server command, exposed over WebSocket as a gateway.

One child process per connection (see docs/cli.md for why and what it costs). Everything
a deployment needs is checked before listening: the command exists and is executable,
the TLS files load, the tokens are there; each problem is one line and exit status 2.
"""

from __future__ import annotations

import errno
import gc
import hmac
import os
import shutil
import ssl
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

import trio
from mcp.server.transport_security import TransportSecuritySettings

from . import AuthenticationError, connection_info, serve
from ._cli_log import cli_logger
from ._cli_signals import EXIT_USAGE, CliError
from ._stdio import ChildSpec, run_stdio_command

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from . import Authenticate, HandshakeRequest, ReadChannel, ServerInfo, WriteChannel

__all__ = ["Gateway", "listen_error", "prepare", "run_serve", "token_auth"]

# The Host/Origin values a loopback bind accepts by default (what `serve` itself allows for
# one); --allow-host/--allow-origin add to them.
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_LOOPBACK_BINDS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True)
class Gateway:
    """Everything ``serve`` needs, built and checked from the arguments before listening."""

    spec: ChildSpec
    authenticate: Authenticate | None
    ssl_context: ssl.SSLContext | None
    security: TransportSecuritySettings | None


def prepare(args: argparse.Namespace) -> Gateway:
    """Check every option that can be wrong (one `CliError` line, exit 2) and build the gateway.

    ``--workers`` runs this in the supervisor too, so a bad option stops it before any
    worker starts.
    """
    if args.health is not None and args.health == args.path:
        raise CliError(f"--health {args.health!r} must differ from --path", EXIT_USAGE)
    return Gateway(
        spec=child_spec(args),
        authenticate=token_auth(load_tokens(args)) if _wants_tokens(args) else None,
        ssl_context=tls_context(args.tls_cert, args.tls_key),
        security=security_settings(args.host, args.allow_host, args.allow_origin),
    )


def listen_error(host: str, port: int, exc: OSError) -> CliError:
    """The one line for an address we cannot listen on (``EADDRINUSE`` says what to do)."""
    return CliError(
        f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        + ("; pick another --port, or stop what uses it" if exc.errno == errno.EADDRINUSE else "")
    )


async def run_serve(
    args: argparse.Namespace,
    *,
    reuse_port: bool = False,
    listening: Callable[[ServerInfo], None] | None = None,
) -> int:
    """Run the gateway until SIGINT/SIGTERM; raise `CliError` for what stops it early.

    Args:
        args: The parsed ``serve`` options.
        reuse_port: Share the port with other processes (a ``--workers`` worker).
        listening: Called once listening, instead of logging the "serving on" line (a
            worker tells its supervisor, which prints that line once for all).
    """
    gateway = prepare(args)
    spec = gateway.spec
    async with trio.open_nursery() as nursery:
        try:
            info: ServerInfo = await nursery.start(
                partial(
                    serve,
                    partial(run_child, spec),
                    args.host,
                    args.port,
                    path=args.path,
                    ssl_context=gateway.ssl_context,
                    security=gateway.security,
                    authenticate=gateway.authenticate,
                    max_connections=args.max_connections,
                    max_message_size=args.max_message_size,
                    handshake_timeout=args.handshake_timeout,
                    ping_interval=args.ping_interval or None,
                    health_path=args.health,
                    reuse_port=reuse_port,
                    trusted_proxies=args.trusted_proxy,
                )
            )
        except OSError as exc:
            raise listen_error(args.host, args.port, exc) from exc
        # Everything alive now lives as long as the process: freezing it keeps the collector's
        # full passes to what connections allocate, which is what makes a peer's frame of
        # 100,000 small containers cost ~20 ms rather than ~150 ms (docs/server.md).
        gc.collect()
        gc.freeze()
        if listening is not None:
            listening(info)
        else:
            auth = ", bearer token required" if gateway.authenticate else ""
            cli_logger.info("serving on %s (one %r per connection%s)", info.url, " ".join(spec.argv), auth)
    return 0  # pragma: no cover - serve runs until cancelled


async def run_child(spec: ChildSpec, read: ReadChannel, write: WriteChannel) -> None:
    """Run ``spec`` for one connection, telling the child who connected.

    As CGI and websocketd do, the child's environment gets ``REMOTE_ADDR`` and
    ``REMOTE_PORT``: the client's address (behind a ``--trusted-proxy``, the one the proxy
    names; its port is then 0 unless the proxy sent one).
    """
    client = connection_info().client
    if client is not None:
        spec = replace(spec, env={**spec.env, "REMOTE_ADDR": client[0], "REMOTE_PORT": str(client[1])})
    await run_stdio_command(spec, read, write)


def child_spec(args: argparse.Namespace) -> ChildSpec:
    """The child command from the arguments, checked to exist and be executable."""
    argv: list[str] = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise CliError("give the stdio server command after --, e.g. -- python server.py", EXIT_USAGE)
    env = dict(args.env)
    cwd: str | None = args.cwd
    if cwd is not None and not os.path.isdir(cwd):
        raise CliError(f"--cwd {cwd!r} is not a directory", EXIT_USAGE)
    program = argv[0]
    if os.sep in program and cwd is not None and not os.path.isabs(program):
        program = os.path.join(cwd, program)  # the child resolves it from its own cwd
    found = shutil.which(program, path=env.get("PATH", os.environ.get("PATH")))
    if found is None:
        problem = "is not executable" if os.path.exists(program) else "was not found"
        where = "" if os.sep in program else " on PATH"
        raise CliError(f"command {argv[0]!r} {problem}{where}; check the command after --", EXIT_USAGE)
    return ChildSpec(argv=tuple(argv), env=env, cwd=cwd, grace=args.grace_period)


def _wants_tokens(args: argparse.Namespace) -> bool:
    return bool(args.token or args.token_file or args.token_env)


def load_tokens(args: argparse.Namespace) -> list[str]:
    """Every accepted token from --token, --token-file (one per line) and --token-env."""
    tokens: list[str] = list(args.token)
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as file:
                lines = file.read().splitlines()
        except OSError as exc:
            raise CliError(
                f"cannot read --token-file {args.token_file!r}: {exc.strerror}", EXIT_USAGE
            ) from exc
        found = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not found:
            raise CliError(f"--token-file {args.token_file!r} holds no token", EXIT_USAGE)
        tokens += found
    if args.token_env:
        value = os.environ.get(args.token_env, "").strip()
        if not value:
            raise CliError(f"--token-env: variable {args.token_env} is not set or empty", EXIT_USAGE)
        tokens.append(value)
    for token in tokens:
        if not token or any(ch.isspace() for ch in token) or not token.isprintable():
            raise CliError("a bearer token must be printable and hold no spaces", EXIT_USAGE)
    return tokens


def token_auth(tokens: Sequence[str]) -> Authenticate:
    """An ``authenticate`` hook accepting ``Authorization: Bearer <token>`` for any of ``tokens``.

    Every accepted token is compared in constant time (`hmac.compare_digest`), all of them
    every time, so the answer's timing tells nothing about which or how much matched.
    Neither the expected nor the presented token is ever logged or sent back.
    """
    expected = [token.encode() for token in tokens]

    async def authenticate(request: HandshakeRequest) -> str:
        header = request.headers.get("authorization")
        scheme, _, presented = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise AuthenticationError("bearer token required")
        given = presented.strip().encode("utf-8", "replace")
        matched = False
        for token in expected:
            matched |= hmac.compare_digest(given, token)
        if not matched:
            raise AuthenticationError("invalid token", challenge='Bearer error="invalid_token"')
        return "bearer token"

    return authenticate


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server TLS context from --tls-cert/--tls-key, or None for plain ``ws://``."""
    if cert is None:
        if key is not None:
            raise CliError("--tls-key needs --tls-cert", EXIT_USAGE)
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        detail = exc.strerror or str(exc)
        raise CliError(f"cannot load --tls-cert/--tls-key: {detail}", EXIT_USAGE) from exc
    return context


def security_settings(
    host: str, allow_hosts: Sequence[str], allow_origins: Sequence[str]
) -> TransportSecuritySettings | None:
    """Host/Origin checks: None (the library's default) unless --allow-host/--allow-origin is given.

    Given ones are added to the loopback defaults for a loopback bind, and turn the checks
    on for any other bind (where the library's default is off).
    """
    if not allow_hosts and not allow_origins:
        return None
    hosts: list[str] = []
    origins: list[str] = list(allow_origins)
    if host in _LOOPBACK_BINDS:
        hosts += [name for loop in _LOOPBACK_HOSTS for name in (loop, f"{loop}:*")]
        origins += [
            f"{scheme}://{loop}{port}"
            for scheme in ("http", "https")
            for loop in _LOOPBACK_HOSTS
            for port in ("", ":*")
        ]
    for name in allow_hosts:
        has_port = name.rsplit("]", 1)[-1].count(":") == 1 if name.startswith("[") else name.count(":") == 1
        hosts += [name] if has_port else [name, f"{name}:*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )
