"""A small stdio MCP server that says where it runs: the deploy and ``--workers`` tests' child.

``python pid_server.py``: one JSON-RPC message per line on stdin and stdout, written with
the standard library only, because ``serve`` starts one child per connection and the
deploy test opens 400 of them on two cores (an SDK ``MCPServer`` child costs about a
second of CPU just to import; this one, a Python start-up).

It speaks the handshake era (``initialize``) and answers ``server/discover`` with
METHOD_NOT_FOUND, so ``mcp.Client(mode="auto")`` probes, falls back and goes on, as it does
with any pre-2026 server. Its one tool, ``whoami``, returns the gateway worker's pid (this
process's parent: ``serve`` spawns it), the client address the gateway passed in
``REMOTE_ADDR`` / ``REMOTE_PORT``, and a counter, so a test can check which worker served
a call, that every call was answered in order, and who the gateway thinks connected.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

TOOL = {
    "name": "whoami",
    "description": "The gateway worker's pid, the client's address and this call's number.",
    "inputSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
}


def whoami(arguments: dict[str, Any], calls: int) -> dict[str, Any]:
    report = {
        "worker": os.getppid(),
        "child": os.getpid(),
        "client": [os.environ.get("REMOTE_ADDR"), int(os.environ.get("REMOTE_PORT", "-1"))],
        "n": arguments.get("n"),
        "calls": calls,
    }
    return {"content": [{"type": "text", "text": json.dumps(report)}], "isError": False}


def answer(message: dict[str, Any], calls: int) -> dict[str, Any] | None:
    method = message.get("method")
    if "id" not in message or method is None:
        return None  # a notification (or a response): nothing to say
    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
    params: dict[str, Any] = message.get("params") or {}
    if method == "initialize":
        reply["result"] = {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "pid-server", "version": "1"},
        }
    elif method == "ping":
        reply["result"] = {}
    elif method == "tools/list":
        reply["result"] = {"tools": [TOOL]}
    elif method == "tools/call" and params.get("name") == "whoami":
        arguments: dict[str, Any] = params.get("arguments") or {}
        reply["result"] = whoami(arguments, calls)
    else:
        reply["error"] = {"code": -32601, "message": f"Method not found: {method}"}
    return reply


def main() -> None:
    calls = 0
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("method") == "tools/call":
            calls += 1
        reply = answer(message, calls)
        if reply is not None:
            sys.stdout.write(json.dumps(reply, separators=(",", ":")) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
