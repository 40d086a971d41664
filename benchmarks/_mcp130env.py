"""The mcp 1.30 virtual environment under ``.bench/mcp130``, built once and reused.

mcp 1.30 and mcp 2 both install the ``mcp`` package, so the SDK 1.30 peers run with their
own interpreter. The environment is rebuilt only when the pinned requirements file or the
interpreter building it changes (a stamp file records both), so reruns start at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
REQUIREMENTS: Final = Path(__file__).resolve().parent / "requirements-mcp130.txt"
VENV: Final = ROOT / ".bench" / "mcp130"
STAMP: Final = VENV / "benchmarks-stamp.txt"

# Creating the venv takes seconds; installing ~30 pinned wheels takes well under a minute
# on a normal connection. Generous bounds, so a hung install fails instead of waiting forever.
VENV_TIMEOUT: Final = 300
INSTALL_TIMEOUT: Final = 900


def python() -> Path:
    """The environment's interpreter (which may not exist yet)."""
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def _fingerprint() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(sys.version.encode())
    digest.update(sys.base_prefix.encode())
    return digest.hexdigest()


def ensure() -> Path:
    """Build or reuse the environment; return its interpreter.

    pip's output is shown only if it fails.

    Raises:
        subprocess.CalledProcessError: Creating the venv or installing into it failed.
        subprocess.TimeoutExpired: Either took longer than its bound.
    """
    fingerprint = _fingerprint()
    interpreter = python()
    if interpreter.exists() and STAMP.exists() and STAMP.read_text().strip() == fingerprint:
        return interpreter
    print(f"building the mcp 1.30 environment in {VENV.relative_to(ROOT)} ...", flush=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", "--clear", str(VENV)], VENV_TIMEOUT)
    pip = [str(interpreter), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "-r", str(REQUIREMENTS)], INSTALL_TIMEOUT)
    STAMP.write_text(fingerprint + "\n")
    return interpreter


def _run(argv: list[str], timeout: float) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        done.check_returncode()
