"""``trio-mcp-ws serve`` as a deployed gateway: the real console script, real signals, real clients.

Rules: each test drives the installed ``trio-mcp-ws`` in a subprocess (in a session of its
own, so a signal to its process group is what a terminal's Ctrl-C sends), waits for its
"serving on" line, and reads close codes with a raw WebSocket client over loopback. External
processes are polled with bounds (`wait_gone`); nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
from typing import TYPE_CHECKING

import mcp_types as types
import pytest
import trio
import trustme
from mcp import Client

from tests._sdk import as_transport
from tests.test_cli_peers import (
    RawClient,
    Rejected,
    child,
    cli,
    drain,
    raw_client,
    record_lines,
    request,
    run_gateway,
    wait_gone,
)
from trio_mcp_ws import HandshakeRejectedError, websocket_client

if TYPE_CHECKING:
    from pathlib import Path


def no_traceback(log: bytes) -> None:
    assert b"Traceback" not in log, log.decode(errors="replace")
    assert b"ExceptionGroup" not in log, log.decode(errors="replace")


async def round_trip(client: RawClient | Rejected, method: str = "ping", id_: int = 1) -> str | None:
    assert isinstance(client, RawClient), client
    await client.send_text(request(method, id_))
    return await client.next_text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_closes_every_connection_with_1001_and_stops_the_children(
    signum: signal.Signals, tmp_path: Path
) -> None:
    record = tmp_path / "children"
    with trio.fail_after(30):
        # Every child appends to the same record file: two pids, then what reached each.
        async with run_gateway(command=child("--record", str(record), "echo")) as gateway:
            async with raw_client(gateway.url) as first, raw_client(gateway.url) as second:
                assert await round_trip(first) == request("ping")
                assert await round_trip(second, id_=2) == request("ping", 2)
                assert isinstance(first, RawClient)
                assert isinstance(second, RawClient)
                gateway.interrupt(signum)  # to the whole process group, as a terminal does
                assert await first.close_code() == 1001
                assert await second.close_code() == 1001
            assert await gateway.exit_status() == 128 + signum
            log = bytes(gateway.log)
    no_traceback(log)
    lines = record_lines(record)
    pids = [int(line) for line in lines if line.isdigit()]
    assert len(pids) == 2
    assert "SIGINT" not in lines  # the children run in their own session: Ctrl-C is the gateway's
    assert lines.count("exit") == 2  # both ended on their stdin closing, not on a signal
    for pid in pids:
        await wait_gone(pid)  # reaped, not orphaned


async def test_a_child_that_ignores_stdin_and_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path,
) -> None:
    record = tmp_path / "child"
    with trio.fail_after(30):
        async with run_gateway(
            "--grace-period", "0.2", command=child("--record", str(record), "stubborn")
        ) as gateway:
            async with raw_client(gateway.url) as client:
                assert await round_trip(client) == request("ping")  # running, SIGTERM ignored
                assert isinstance(client, RawClient)
                gateway.interrupt(signal.SIGTERM)
                assert await client.close_code() == 1001
            assert await gateway.exit_status() == 143
            log = bytes(gateway.log)
    no_traceback(log)
    lines = record_lines(record)
    assert "SIGTERM" in lines  # asked first...
    assert "exit" not in lines  # ...and, ignoring it, killed
    await wait_gone(int(lines[0]))
    assert b"sending SIGKILL" in log


@pytest.mark.parametrize("mode", ["garbage", "exit-early", "flood-stderr"])
async def test_a_misbehaving_child_closes_only_its_connection_with_1011(mode: str) -> None:
    with trio.fail_after(60):
        async with run_gateway(command=child("by-method")) as gateway:
            async with raw_client(gateway.url) as good, raw_client(gateway.url) as bad:
                assert await round_trip(good, id_=1) == request("ping", 1)
                assert isinstance(bad, RawClient)
                await bad.send_text(request(f"test/{mode}"))
                assert await bad.next_text() == request(f"test/{mode}")  # it answered once...
                assert await bad.close_code() == 1011  # ...then broke: only its connection ends
                assert await round_trip(good, id_=2) == request("ping", 2)
                async with raw_client(gateway.url) as later:  # and new clients still get in
                    assert await round_trip(later, id_=3) == request("ping", 3)
            assert gateway.process.returncode is None
            log = bytes(gateway.log)
    no_traceback(log)
    failures = [line for line in log.splitlines() if b"1011" in line]
    assert len(failures) == 1, failures
    expected = {
        "garbage": b"not a JSON-RPC message",
        "exit-early": b"exited while its client was connected (status 3)",
        "flood-stderr": b"flooded stderr",
    }[mode]
    assert expected in failures[0]


async def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with trio.fail_after(30):
        async with run_gateway(command=child("echo")) as gateway:
            port = gateway.url.rsplit(":", 1)[1].split("/")[0]
            result = await trio.run_process(
                cli("serve", "--port", port, "--", *child("echo")), capture_stderr=True, check=False
            )
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "pick another --port" in line


def one_line(err: bytes) -> str:
    lines = err.decode().splitlines()
    assert len(lines) == 1, err.decode()
    assert "Traceback" not in lines[0]
    return lines[0]


async def test_a_command_that_is_missing_or_not_executable_is_refused_at_start(tmp_path: Path) -> None:
    script = tmp_path / "server.sh"
    script.write_text("#!/bin/sh\n")
    with trio.fail_after(30):
        missing = await trio.run_process(
            cli("serve", "--port", "0", "--", "no-such-command-xyz"), capture_stderr=True, check=False
        )
        not_executable = await trio.run_process(
            cli("serve", "--port", "0", "--", str(script)), capture_stderr=True, check=False
        )
    assert missing.returncode == 2
    assert "'no-such-command-xyz' was not found on PATH" in one_line(missing.stderr)
    assert not_executable.returncode == 2
    assert "is not executable" in one_line(not_executable.stderr)


async def test_allow_host_lets_a_proxied_host_name_in(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            run_gateway(command=child("echo")) as strict,
            raw_client(strict.url, host="mcp.example.com") as refused,
        ):
            assert isinstance(refused, Rejected)
            assert refused.status == 421
        async with run_gateway(
            "--allow-host",
            "mcp.example.com",
            "--allow-origin",
            "https://app.example.com",
            command=child("echo"),
        ) as gateway:
            async with raw_client(gateway.url, host="mcp.example.com") as client:
                assert await round_trip(client) == request("ping")
            origin = [("Origin", "https://app.example.com")]
            async with raw_client(gateway.url, host="mcp.example.com", headers=origin) as client:
                assert await round_trip(client) == request("ping")
            async with raw_client(gateway.url, host="evil.example.com") as other:
                assert isinstance(other, Rejected)
                assert other.status == 421
            async with raw_client(gateway.url, headers=[("Origin", "https://evil.example.com")]) as other:
                assert isinstance(other, Rejected)
                assert other.status == 403
            async with raw_client(gateway.url) as loopback:  # the loopback names still work
                assert await round_trip(loopback) == request("ping")


async def test_env_and_cwd_reach_the_child(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            run_gateway(
                "--env", "CLI_TEST=hello=world", "--cwd", str(tmp_path), command=child("by-method")
            ) as gateway,
            raw_client(gateway.url) as client,
        ):
            answer = await round_trip(client, "test/env")
    assert answer is not None
    assert json.loads(answer)["result"] == {"env": "hello=world", "cwd": str(tmp_path)}


async def test_json_log_format_writes_one_object_per_line() -> None:
    with trio.fail_after(30):
        async with run_gateway("--log-format", "json", command=child("by-method")) as gateway:
            async with raw_client(gateway.url) as client:
                assert isinstance(client, RawClient)
                await client.send_text(request("test/exit-early"))
                assert await client.close_code() == 1011
            gateway.interrupt(signal.SIGTERM)
            assert await gateway.exit_status() == 143
            log = bytes(gateway.log)
    entries = [json.loads(line) for line in log.splitlines()]
    assert any(entry["message"].startswith("serving on ws://127.0.0.1:") for entry in entries)
    failed = [entry for entry in entries if "exception" in entry]
    assert len(failed) == 1
    assert "exited while its client was connected" in failed[0]["exception"]
    assert {"time", "level", "logger", "message"} <= set(failed[0])


async def test_mcp_clients_of_both_eras_use_a_stdio_server_through_the_gateway() -> None:
    with trio.fail_after(60):
        async with run_gateway(command=child("mcp")) as gateway:
            for mode in ("legacy", "auto"):
                async with Client(as_transport(websocket_client(gateway.url)), mode=mode) as client:
                    result = await client.call_tool("greet", {"name": "trio"})
                    assert result.content == [types.TextContent(type="text", text="hello, trio")]


async def test_recipe_tls_and_a_token_file_with_connect_on_the_other_side(tmp_path: Path) -> None:
    """Expose a stdio server with TLS and a token; reach it with ``connect --cacert --token-env``."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    cert, key, ca_file, tokens = (tmp_path / name for name in ("cert.pem", "key.pem", "ca.pem", "tokens"))
    server_cert.private_key_pem.write_to_path(str(key))
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    ca.cert_pem.write_to_path(str(ca_file))
    secret = "s3cret-token-0123456789"
    tokens.write_text(f"# rotated tokens, one per line\nold-token-abcdef\n{secret}\n")
    client_tls = ssl.create_default_context(cafile=str(ca_file))
    with trio.fail_after(60):
        async with run_gateway(
            "-vv",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--token-file",
            str(tokens),
            command=child("echo"),
        ) as gateway:
            assert gateway.url.startswith("wss://127.0.0.1:")
            for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic eA=="}):
                with pytest.raises(HandshakeRejectedError) as refused:
                    async with websocket_client(gateway.url, headers=headers, ssl_context=client_tls):
                        pass  # pragma: no cover - refused
                assert refused.value.status_code == 401
            bridge = await trio.lowlevel.open_process(
                cli("connect", gateway.url, "--cacert", str(ca_file), "--token-env", "CLI_TEST_TOKEN"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, "CLI_TEST_TOKEN": secret},
            )
            assert bridge.stdin is not None
            assert bridge.stdout is not None
            assert bridge.stderr is not None
            notification = b'{"jsonrpc":"2.0","method":"notifications/x"}\n'
            await bridge.stdin.send_all(notification)
            out = bytearray()
            while b"\n" not in out:
                data = await bridge.stdout.receive_some(65536)
                assert data, "connect ended before the echo"
                out += data
            await bridge.stdin.aclose()
            err = bytearray()
            await drain(bridge.stderr, err)
            assert await bridge.wait() == 0, bytes(err)
            await bridge.stdout.aclose()
            await bridge.stderr.aclose()
            log = bytes(gateway.log)
    assert bytes(out) == notification
    assert secret.encode() not in log  # never logged, even at -vv
    assert b"wrong-token" not in log
