"""trio-mcp-ws behind a real nginx: ``trio-mcp-ws serve --workers 4`` with the docs' configuration.

Run by ``nox -s deploy`` (marked ``deploy``, so the default test session leaves it out). It
needs Debian's nginx: without it these tests skip with the command to install it, except
when CI is set, where they fail.

Rules: real processes only (nginx from tests/deploy/nginx-mcp.conf, the real console
script, the official ``mcp.Client`` over our ``websocket_client`` with TLS to nginx), on
127.0.0.1 with ports chosen at run time; every test under ``trio.fail_after``; external
processes are polled with bounds, nothing sleeps to synchronise. The children are
tests/deploy/pid_server.py, whose ``whoami`` tool reports the worker's pid and the client
address the gateway saw.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mcp_types as types
import pytest
import trio
import trustme
from mcp import Client
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from tests._sdk import as_transport
from tests.deploy._nginx import Nginx, nginx_binary, run_nginx
from tests.test_cli_peers import Gateway, RawClient, run_gateway
from tests.test_cli_workers import PID_SERVER, RESTARTED, wait_for_log, whoami, worker_pids
from trio_mcp_ws import websocket_client

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

pytestmark = pytest.mark.deploy

CLIENTS = 400
CALLS = 20
WORKERS = 4
PUBLIC_HOST = "mcp.example.com"


@dataclass
class Deployment:
    """nginx in front of a running ``serve --workers N``, and a TLS context trusting nginx."""

    nginx: Nginx
    gateway: Gateway
    workers: list[int]
    client_tls: ssl.SSLContext

    def client(self, *, mode: str = "auto") -> Client:
        # 400 TLS handshakes at once on two cores (client, nginx and workers sharing them)
        # take far longer than the 10 s default: this test is about correctness, not latency.
        transport = websocket_client(
            self.nginx.url(), ssl_context=self.client_tls, ping_interval=None, connect_timeout=120
        )
        return Client(as_transport(transport), mode=mode)


@asynccontextmanager
async def deployment(
    tmp_path: Path, *serve_args: str, workers: int = WORKERS, read_timeout: str = "60s"
) -> AsyncGenerator[Deployment, None]:
    nginx_binary()  # skip (or fail on CI) before starting anything
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", PUBLIC_HOST)
    chain, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert.cert_chain_pems[0].write_to_path(chain)
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(chain, append=True)
    cert.private_key_pem.write_to_path(key)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)  # pyright: ignore[reportUnknownMemberType] - trustme: pyOpenSSL types
    args = [
        "--workers",
        str(workers),
        "--max-connections",
        "512",
        "--allow-host",
        PUBLIC_HOST,
        "--trusted-proxy",
        "127.0.0.1",
        "--health",
        "/healthz",
        *serve_args,
    ]
    async with run_gateway(*args, command=PID_SERVER) as gateway:
        upstream = int(gateway.url.rsplit(":", 1)[1].split("/")[0])
        async with run_nginx(
            tmp_path / "nginx", upstream=upstream, cert=chain, key=key, read_timeout=read_timeout
        ) as nginx:
            yield Deployment(nginx, gateway, worker_pids(gateway), client_tls)


@dataclass
class Outcome:
    """What one client saw: the worker it reached and each call's result."""

    worker: int | None = None
    calls: int = 0
    error: BaseException | None = None
    reports: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])


async def call_whoami(client: Client, n: int) -> dict[str, Any]:
    result = await client.call_tool("whoami", {"n": n})
    assert not result.is_error
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    report: dict[str, Any] = json.loads(content.text)
    return report


@dataclass
class Checkpoint:
    """Clients report here after their first call, then wait until the test lets them go on."""

    expected: int
    arrived: int = 0
    all_arrived: trio.Event = field(default_factory=trio.Event)
    go_on: trio.Event = field(default_factory=trio.Event)

    def arrive(self) -> None:
        self.arrived += 1
        if self.arrived == self.expected:
            self.all_arrived.set()


async def session(
    deploy: Deployment, outcome: Outcome, *, calls: int, checkpoint: Checkpoint | None = None
) -> None:
    """One ``mcp.Client`` making ``calls`` whoami calls, each checked (number, order, worker)."""
    try:
        async with deploy.client() as client:
            assert client.protocol_version == "2025-11-25"  # auto probed discover, fell back
            for n in range(1, calls + 1):
                report = await call_whoami(client, n)
                assert report["n"] == n
                assert report["calls"] == n  # one child per connection, every call once, in order
                if outcome.worker is None:
                    outcome.worker = report["worker"]
                assert report["worker"] == outcome.worker
                outcome.reports.append(report)
                outcome.calls = n
                if n == 1 and checkpoint is not None:
                    checkpoint.arrive()
                    await checkpoint.go_on.wait()
    except Exception as exc:  # a closed connection, surfaced however the SDK surfaces it
        outcome.error = exc
        if checkpoint is not None and outcome.calls == 0:
            checkpoint.arrive()


async def test_400_clients_through_nginx_spread_over_every_worker(tmp_path: Path) -> None:
    with trio.fail_after(600):
        async with deployment(tmp_path) as deploy:
            outcomes = [Outcome() for _ in range(CLIENTS)]
            async with trio.open_nursery() as nursery:
                for outcome in outcomes:
                    nursery.start_soon(partial_session(deploy, outcome, calls=CALLS))
            log = bytes(deploy.gateway.log)
    errors = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert not errors, f"{len(errors)} clients failed, e.g. {errors[0]!r}"
    assert all(outcome.calls == CALLS for outcome in outcomes)
    per_worker = {pid: sum(outcome.worker == pid for outcome in outcomes) for pid in deploy.workers}
    assert all(count > 0 for count in per_worker.values()), per_worker
    assert sum(per_worker.values()) == CLIENTS
    assert b"Traceback" not in log


def partial_session(deploy: Deployment, outcome: Outcome, **options: Any) -> Any:
    async def run() -> None:
        await session(deploy, outcome, **options)

    return run


async def test_a_killed_worker_loses_only_its_clients_and_is_restarted(tmp_path: Path) -> None:
    clients = 100
    with trio.fail_after(600):
        async with deployment(tmp_path) as deploy:
            outcomes = [Outcome() for _ in range(clients)]
            checkpoint = Checkpoint(clients)
            async with trio.open_nursery() as nursery:
                for outcome in outcomes:
                    nursery.start_soon(partial_session(deploy, outcome, calls=CALLS, checkpoint=checkpoint))
                await checkpoint.all_arrived.wait()  # every client made its first call: mid-run
                assert not [outcome.error for outcome in outcomes if outcome.error]
                busiest = max(deploy.workers, key=lambda pid: sum(o.worker == pid for o in outcomes))
                os.kill(busiest, signal.SIGKILL)
                checkpoint.go_on.set()
            restarted = await wait_for_log(deploy.gateway, RESTARTED)
            new_pid = int(restarted.group(2))
            # New clients reach the restarted worker (the kernel hashes each connection).
            reached: set[int] = set()
            for _ in range(40):
                probe = Outcome()
                await session(deploy, probe, calls=1)
                assert probe.error is None, probe.error
                assert probe.worker is not None
                reached.add(probe.worker)
                if new_pid in reached:
                    break
            assert new_pid in reached, (new_pid, reached)
            assert deploy.gateway.process.returncode is None
    victims = [outcome for outcome in outcomes if outcome.worker == busiest]
    others = [outcome for outcome in outcomes if outcome.worker != busiest]
    assert victims
    assert others
    assert all(outcome.error is not None and outcome.calls < CALLS for outcome in victims)
    assert all(outcome.error is None and outcome.calls == CALLS for outcome in others), [
        repr(outcome.error) for outcome in others if outcome.error
    ]


async def test_the_workers_see_the_real_client_and_check_the_host(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with deployment(tmp_path) as deploy:
            async with deploy.client() as client:
                report = await call_whoami(client, 1)
            # The worker's peer is nginx; the child is told the client, as nginx saw it.
            address, port = report["client"]
            assert address == "127.0.0.1"
            assert port > 0
            async with raw_websocket(deploy) as raw:
                own = raw.stream.transport_stream.socket.getsockname()  # type: ignore[attr-defined]
                assert (await whoami(raw))["client"] == [own[0], own[1]]
            status_good = await raw_status(deploy, host=PUBLIC_HOST)
            status_evil = await raw_status(deploy, host="evil.example")
            health = await raw_status(deploy, host=PUBLIC_HOST, path="/healthz", upgrade=False)
    assert status_good == 101
    assert status_evil == 421  # DNS-rebinding protection, through the proxy
    assert health == 200


async def raw_status(deploy: Deployment, *, host: str, path: str = "/mcp", upgrade: bool = True) -> int:
    """The HTTP status nginx answers a request for ``path`` with this ``Host``, over TLS."""
    tcp = await trio.open_tcp_stream("127.0.0.1", deploy.nginx.port)
    stream = trio.SSLStream(tcp, deploy.client_tls, server_hostname="127.0.0.1")
    async with stream:
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
        if upgrade:
            lines += [
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Protocol: mcp",
            ]
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        while b"\r\n" not in received:
            data = await stream.receive_some(4096)
            if not data:
                break
            received += data
    status = re.match(rb"HTTP/1\.1 (\d{3})", received)
    assert status is not None, received
    return int(status.group(1))


@asynccontextmanager
async def raw_websocket(deploy: Deployment) -> AsyncGenerator[RawClient, None]:
    """A WebSocket through nginx driven by hand, so the test knows its own address and port."""
    tcp = await trio.open_tcp_stream("127.0.0.1", deploy.nginx.port)
    stream = trio.SSLStream(tcp, deploy.client_tls, server_hostname="127.0.0.1")
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=PUBLIC_HOST, target="/mcp", subprotocols=["mcp"])))
        client = RawClient(stream, ws)
        event = await client.next_event()
        assert isinstance(event, AcceptConnection), event
        yield client


@pytest.mark.parametrize(("ping_interval", "survives"), [("0.3", True), ("0", False)])
async def test_our_keepalive_pings_keep_a_quiet_session_open_through_proxy_read_timeout(
    tmp_path: Path, ping_interval: str, survives: bool
) -> None:
    with trio.fail_after(120):
        async with deployment(
            tmp_path, "--ping-interval", ping_interval, workers=1, read_timeout="1s"
        ) as deploy:
            outcome = Outcome()
            async with deploy.client() as client:
                await call_whoami(client, 1)
                # Quiet for longer than nginx's proxy_read_timeout: the idle time is what is
                # under test here, not a synchronisation.
                await trio.sleep(2.5)
                try:
                    await call_whoami(client, 2)
                except Exception as exc:  # the session's connection is gone
                    outcome.error = exc
    assert (outcome.error is None) is survives, repr(outcome.error)
