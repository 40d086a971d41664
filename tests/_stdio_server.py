"""A stdio MCP server for the CLI's ``serve`` tests, run as its own process.

``python _stdio_server.py [--record FILE] [MODE]``. With ``--record FILE`` it writes its
pid, then each SIGINT/SIGTERM it receives and ``exit`` when it ends, one per line, so a
test can see which signals reached it. Modes (all but ``mcp`` skip importing the SDK, to
start fast):

- ``mcp`` (default): an official MCPServer with a ``greet`` tool.
- ``echo``: copies each stdin line to stdout.
- ``garbage``: after the first line in, writes a line that is not JSON-RPC.
- ``exit-early``: exits with status 3 after the first line in.
- ``flood-stderr``: after the first line in, writes 64 MiB to stderr.
- ``stubborn``: echoes the first line, then ignores SIGTERM and its stdin closing (only
  SIGKILL stops it).
- ``by-method``: the first line's method picks the mode: ``test/garbage``,
  ``test/exit-early``, ``test/flood-stderr``, ``test/env`` (answers with the variable
  ``CLI_TEST`` and its working directory, then echoes); anything else echoes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

record_path: str | None = None


def record(event: str) -> None:
    if record_path is not None:
        with open(record_path, "a", encoding="utf-8") as file:
            file.write(event + "\n")


def on_signal(signum: int, frame: FrameType | None) -> None:
    record(signal.Signals(signum).name)
    if signum == signal.SIGTERM and MODE != "stubborn":
        record("exit")
        os._exit(143)


def echo_lines() -> None:
    for line in sys.stdin:
        sys.stdout.write(line)
        sys.stdout.flush()


def main(mode: str) -> None:
    first = sys.stdin.readline()
    if mode == "by-method":
        message = json.loads(first)
        mode = str(message.get("method", "")).removeprefix("test/")
        if mode == "env":
            result = {"env": os.environ.get("CLI_TEST"), "cwd": os.getcwd()}
            answer = {"jsonrpc": "2.0", "id": message.get("id"), "result": result}
            sys.stdout.write(json.dumps(answer) + "\n")
        else:
            sys.stdout.write(first)
        sys.stdout.flush()
        if mode not in ("garbage", "exit-early", "flood-stderr"):
            echo_lines()
            return
    if mode == "garbage":
        sys.stdout.write("this is not JSON-RPC\n")
        sys.stdout.flush()
    elif mode == "exit-early":
        record("exit")
        os._exit(3)
    elif mode == "flood-stderr":
        line = b"x" * 1023 + b"\n"
        for _ in range(64 * 1024):
            os.write(2, line)
    elif mode == "stubborn":
        signal.signal(signal.SIGTERM, lambda signum, frame: record("SIGTERM"))
        sys.stdout.write(first)  # the answer tells the test the handler is in place
        sys.stdout.flush()
        sys.stdin.read()
        while True:
            time.sleep(3600)
    sys.stdin.read()


args = sys.argv[1:]
if args[:1] == ["--record"]:
    record_path, args = args[1], args[2:]
MODE = args[0] if args else "mcp"
record(str(os.getpid()))
signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGTERM, on_signal)

if MODE == "mcp":
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("stdio-test")

    @server.tool()
    def greet(name: str) -> str:
        """Greet someone."""
        return f"hello, {name}"

    server.run()
    record("exit")
elif MODE == "echo":
    echo_lines()
    record("exit")
else:
    main(MODE)
    record("exit")
