"""Build the interop peers' own environments: ``python -m tests.interop.setup_peers``.

Run from the repository root (``nox -s interop`` does, with the session's Python). Two
environments, each installed by name from its registry and pinned by a committed file:

- ``.peers/mcp130``: a virtual environment holding mcp 1.30 (the official Python SDK's last
  WebSocket transport) with uvicorn and Starlette, from
  ``tests/interop/peers/requirements-mcp130.txt``. It cannot be the project's environment:
  mcp 1.30 and mcp 2.x cannot be installed side by side.
- ``tests/interop/peers/node_modules``: the TypeScript SDK and ``ws``, by ``npm ci`` from the
  committed ``package.json`` and ``package-lock.json``.

Both directories are git-ignored. Each gets a stamp file holding a hash of what it was built
from (the pinned files, and the interpreter or Node version); when the stamp matches, the step
is skipped, so a warm run takes well under a second. ``--force`` rebuilds both.

Without Node.js (or with Node older than 20) the Node step is skipped with a message, and the
TypeScript tests skip saying what to install; ``--require-all`` (for CI) makes that an error.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
PEERS_SRC: Final = ROOT / "tests" / "interop" / "peers"
PEERS_ENV: Final = ROOT / ".peers"
MCP130_VENV: Final = PEERS_ENV / "mcp130"
MCP130_REQUIREMENTS: Final = PEERS_SRC / "requirements-mcp130.txt"
NODE_MODULES: Final = PEERS_SRC / "node_modules"
NODE_MANIFESTS: Final = (PEERS_SRC / "package.json", PEERS_SRC / "package-lock.json")
STAMP_NAME: Final = ".trio-mcp-ws-stamp"
MIN_NODE_MAJOR: Final = 20
"""Node 20 is the oldest with a WebSocket (behind ``--experimental-websocket``)."""


def venv_python(venv: Path) -> Path:
    """The interpreter inside a virtual environment, on POSIX or Windows."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def mcp130_stamp() -> str:
    """What the mcp 1.30 venv is built from: the pinned requirements and this interpreter."""
    interpreter = f"{sys.implementation.name} {sys.version_info[0]}.{sys.version_info[1]} {sys.base_prefix}"
    return _digest(MCP130_REQUIREMENTS.read_bytes(), interpreter.encode())


def node_stamp(node_version: str) -> str:
    """What node_modules is built from: the manifest, the lock file and the Node version."""
    return _digest(*(path.read_bytes() for path in NODE_MANIFESTS), node_version.encode())


def _stamp_matches(directory: Path, expected: str) -> bool:
    stamp = directory / STAMP_NAME
    return stamp.is_file() and stamp.read_text().strip() == expected


def node_version() -> str | None:
    """``node --version`` (e.g. ``v20.20.2``), or None when Node is not on PATH."""
    node = shutil.which("node")
    if node is None:
        return None
    result = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def node_major(version: str) -> int:
    """The major number of a ``node --version`` string; 0 when it cannot be read."""
    head = version.lstrip("v").split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _run(argv: list[str], *, cwd: Path | None = None) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, cwd=cwd, check=True)


def setup_mcp130(*, force: bool) -> str:
    """Create (or keep) the mcp 1.30 virtual environment; return what was done."""
    expected = mcp130_stamp()
    if not force and venv_python(MCP130_VENV).exists() and _stamp_matches(MCP130_VENV, expected):
        return f"mcp 1.30 venv up to date ({MCP130_VENV.relative_to(ROOT)})"
    if MCP130_VENV.exists():
        shutil.rmtree(MCP130_VENV)
    PEERS_ENV.mkdir(exist_ok=True)
    _run([sys.executable, "-m", "venv", str(MCP130_VENV)])
    _run(
        [
            str(venv_python(MCP130_VENV)),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "--requirement",
            str(MCP130_REQUIREMENTS),
        ]
    )
    (MCP130_VENV / STAMP_NAME).write_text(expected + "\n")
    return f"mcp 1.30 venv built ({MCP130_VENV.relative_to(ROOT)})"


def setup_node(*, force: bool, require: bool) -> str:
    """Install the TypeScript SDK with ``npm ci`` (or keep it); return what was done."""
    version = node_version()
    npm = shutil.which("npm")
    if version is None or npm is None or node_major(version) < MIN_NODE_MAJOR:
        found = "no node/npm on PATH" if version is None or npm is None else f"node {version}"
        message = (
            f"Node.js >= {MIN_NODE_MAJOR} with npm is needed for the TypeScript SDK peer ({found}); "
            "its tests will be skipped. Install Node.js 20 or newer, then run this again."
        )
        if require:
            raise SystemExit(f"error: {message}")
        return f"skipped: {message}"
    expected = node_stamp(version)
    if not force and _stamp_matches(NODE_MODULES, expected):
        return f"node_modules up to date ({NODE_MODULES.relative_to(ROOT)}, node {version})"
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEERS_SRC)
    (NODE_MODULES / STAMP_NAME).write_text(expected + "\n")
    return f"node_modules installed ({NODE_MODULES.relative_to(ROOT)}, node {version})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.interop.setup_peers",
        description="Build the interop peers' environments (mcp 1.30 venv, TypeScript SDK).",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamps match")
    parser.add_argument(
        "--require-all",
        action="store_true",
        help="fail when a peer cannot be set up (no Node.js), instead of letting its tests skip",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    outcome = setup_mcp130(force=args.force)
    print(f"setup_peers mcp130: {outcome} [{time.perf_counter() - start:.1f}s]", flush=True)
    start = time.perf_counter()
    outcome = setup_node(force=args.force, require=args.require_all)
    print(f"setup_peers node: {outcome} [{time.perf_counter() - start:.1f}s]", flush=True)


if __name__ == "__main__":
    main()
