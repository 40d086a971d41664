"""``trio-mcp-ws serve --workers N`` and the gateway options that came with it, as a user runs them.

Rules (as tests/test_cli_serve.py): the real console script in a session of its own, real
signals, real WebSocket clients over loopback reading real close codes; external processes
are polled with bounds, nothing sleeps to synchronise. Each connection's child is
tests/deploy/pid_server.py, whose ``whoami`` tool names the worker that spawned it, so a
test knows which worker serves which connection.

The kernel spreads connections over ``SO_REUSEPORT`` listeners by a hash of the client's
address and port, so a test that needs connections on every worker opens them until it
has (a bounded number: the chance of 40 connections missing one of two workers is 2**-39).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
from wsproto.events import CloseConnection

from tests._proxies import pproxy
from tests.test_cli_peers import Gateway, RawClient, cli, raw_client, run_gateway, wait_gone

if TYPE_CHECKING:
    from collections.abc import Sequence

PID_SERVER = [sys.executable, str(Path(__file__).parent / "deploy" / "pid_server.py")]
WORKER_PIDS = re.compile(rb"serving on \S+ \((\d+) workers, pids ([\d, ]+);")
RESTARTED = re.compile(rb"worker (\d+) restarted \(pid (\d+)\)")


def worker_pids(gateway: Gateway) -> list[int]:
    """The worker pids the "serving on" line names."""
    found = WORKER_PIDS.search(bytes(gateway.log))
    assert found is not None, bytes(gateway.log)
    pids = [int(pid) for pid in found.group(2).split(b", ")]
    assert len(pids) == int(found.group(1))
    return pids


def no_traceback(log: bytes) -> None:
    assert b"Traceback" not in log, log.decode(errors="replace")
    assert b"ExceptionGroup" not in log, log.decode(errors="replace")


async def whoami(client: RawClient, call: int = 1) -> dict[str, Any]:
    """Call the child's ``whoami`` tool over the raw connection; its report."""
    message = {
        "jsonrpc": "2.0",
        "id": call,
        "method": "tools/call",
        "params": {"name": "whoami", "arguments": {"n": call}},
    }
    await client.send_text(json.dumps(message))
    text = await client.next_text()
    assert text is not None, "the connection closed instead of answering"
    reply = json.loads(text)
    assert reply["id"] == call
    report: dict[str, Any] = json.loads(reply["result"]["content"][0]["text"])
    assert report["n"] == call
    return report


async def clients_on_every_worker(
    stack: AsyncExitStack, url: str, workers: Sequence[int], *, at_most: int = 40
) -> dict[int, list[RawClient]]:
    """Open connections (kept open in ``stack``) until every worker in ``workers`` has one."""
    by_worker: dict[int, list[RawClient]] = {}
    for _ in range(at_most):
        client = await stack.enter_async_context(raw_client(url))
        assert isinstance(client, RawClient), client
        report = await whoami(client)
        by_worker.setdefault(report["worker"], []).append(client)
        if set(by_worker) >= set(workers):
            break
    assert set(by_worker) == set(workers), (sorted(by_worker), sorted(workers))
    return by_worker


async def dropped(client: RawClient) -> bool:
    """Whether the connection ends in TCP EOF without a close frame (1006 to a client)."""
    while True:
        event = await client.next_event()
        if event is None:
            return True
        if isinstance(event, CloseConnection):
            return event.code == 1006  # wsproto's own event for EOF: the server sent none


async def wait_for_log(gateway: Gateway, pattern: re.Pattern[bytes]) -> re.Match[bytes]:
    """Poll (at most 30 s) the gateway's log, an external process's output, for ``pattern``."""
    with trio.fail_after(30):
        while True:
            found = pattern.search(bytes(gateway.log))
            if found is not None:
                return found
            await trio.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_reaches_every_worker_and_closes_every_connection_with_1001(
    signum: signal.Signals,
) -> None:
    with trio.fail_after(90):
        async with run_gateway("--workers", "2", command=PID_SERVER) as gateway:
            workers = worker_pids(gateway)
            assert len(set(workers)) == 2
            assert gateway.process.pid not in workers  # the parent supervises, it serves nothing
            async with AsyncExitStack() as stack:
                by_worker = await clients_on_every_worker(stack, gateway.url, workers)
                gateway.interrupt(signum)  # the parent's process group only: it forwards
                for clients in by_worker.values():
                    for client in clients:
                        assert await client.close_code() == 1001
            assert await gateway.exit_status() == 128 + signum
            log = bytes(gateway.log)
    no_traceback(log)
    for pid in workers:
        await wait_gone(pid)


async def test_a_killed_worker_loses_only_its_connections_and_is_restarted() -> None:
    with trio.fail_after(120):
        async with run_gateway("--workers", "2", command=PID_SERVER) as gateway:
            workers = worker_pids(gateway)
            async with AsyncExitStack() as stack:
                by_worker = await clients_on_every_worker(stack, gateway.url, workers)
                victim, survivor = workers
                os.kill(victim, signal.SIGKILL)
                for client in by_worker[victim]:
                    assert await dropped(client)  # TCP closed, no close frame: a dead process
                for call, client in enumerate(by_worker[survivor], start=2):
                    assert (await whoami(client, call))["worker"] == survivor  # untouched
                restarted = await wait_for_log(gateway, RESTARTED)
                new_pid = int(restarted.group(2))
                assert new_pid not in workers
                assert b"was killed by SIGKILL; restarting it" in bytes(gateway.log)
                # New connections reach the new worker too.
                await clients_on_every_worker(stack, gateway.url, [survivor, new_pid])
            assert gateway.process.returncode is None
            gateway.interrupt(signal.SIGTERM)
            assert await gateway.exit_status() == 143
            log = bytes(gateway.log)
    no_traceback(log)
    await wait_gone(new_pid)


async def test_the_workers_stop_when_the_supervisor_dies() -> None:
    with trio.fail_after(90):
        async with run_gateway("--workers", "2", command=PID_SERVER) as gateway:
            workers = worker_pids(gateway)
            async with raw_client(gateway.url) as client:
                assert isinstance(client, RawClient)
                await whoami(client)
                os.kill(gateway.process.pid, signal.SIGKILL)  # no chance to forward anything
                assert await client.close_code() == 1001  # its worker noticed and shut down
            for pid in workers:
                await wait_gone(pid)


async def test_health_and_the_trusted_proxy_reach_every_worker() -> None:
    with trio.fail_after(90):
        async with run_gateway(
            "--workers", "2", "--health", "/healthz", "--trusted-proxy", "127.0.0.1", command=PID_SERVER
        ) as gateway:
            port = int(gateway.url.rsplit(":", 1)[1].split("/")[0])
            for _ in range(4):  # a few connections: whichever workers they reach answer
                assert await http_get(port, "/healthz") == b"HTTP/1.1 200 "
            async with raw_client(gateway.url, headers=[("X-Forwarded-For", "203.0.113.9")]) as client:
                assert isinstance(client, RawClient)
                assert (await whoami(client))["client"] == ["203.0.113.9", 0]
            async with raw_client(gateway.url) as client:
                assert isinstance(client, RawClient)
                own = client.stream.socket.getsockname()  # type: ignore[attr-defined]
                assert (await whoami(client))["client"] == [own[0], own[1]]


async def test_forwarding_headers_from_anyone_else_are_ignored() -> None:
    forwarded = [("X-Forwarded-For", "203.0.113.9")]
    with trio.fail_after(60):
        async with (
            run_gateway("--trusted-proxy", "10.0.0.0/8", command=PID_SERVER) as gateway,
            raw_client(gateway.url, headers=forwarded) as client,
        ):
            assert isinstance(client, RawClient)
            assert (await whoami(client))["client"][0] == "127.0.0.1"


async def http_get(port: int, path: str) -> bytes:
    """The status line's first 13 bytes for a plain HTTP GET (no upgrade)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        received = b""
        while len(received) < 13:
            data = await stream.receive_some(4096)
            if not data:
                break
            received += data
    return received[:13]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "'0' is not at least 1"),
        (["--health", "/mcp"], "--health '/mcp' must differ from --path"),
        (["--health", "healthz"], "does not start with '/'"),
        (["--trusted-proxy", "proxy.example.com"], "is not an IP address or CIDR range"),
    ],
)
async def test_bad_serve_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    with trio.fail_after(30):
        result = await trio.run_process(
            cli("serve", "--port", "0", *args, "--", *PID_SERVER), capture_stderr=True, check=False
        )
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]


async def test_workers_on_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with trio.fail_after(30):
            serve = cli("serve", "--workers", "2", "--port", port, "--", *PID_SERVER)
            result = await trio.run_process(serve, capture_stderr=True, check=False)
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]
    assert "pick another --port" in lines[0]


async def test_connect_through_a_real_proxy(tmp_path: Path) -> None:
    ping = b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
    with trio.fail_after(60):
        async with run_gateway(command=PID_SERVER) as gateway:
            with pproxy("http", tmp_path, credentials=("user", "s3cret")) as proxy:
                good = await trio.run_process(
                    cli("connect", "--proxy", proxy.url_with("user", "s3cret"), gateway.url),
                    stdin=ping,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
                bad = await trio.run_process(
                    cli("connect", "--proxy", proxy.url_with("user", "wrong"), gateway.url),
                    stdin=ping,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert bad.returncode == 1
    lines = bad.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert "proxy" in lines[0]
    assert "wrong" not in lines[0]  # credentials are never shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proxy", "ftp://127.0.0.1:21"], "unsupported proxy scheme"),
        (["--proxy", "http://127.0.0.1:1", "--no-proxy"], "not allowed with argument"),
    ],
)
async def test_bad_proxy_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    with trio.fail_after(30):
        result = await trio.run_process(
            cli("connect", *args, "ws://127.0.0.1:1/mcp"), stdin=b"", capture_stderr=True, check=False
        )
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]
