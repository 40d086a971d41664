"""Find Python 2.7 and build the Autobahn suite's own environment in ``.nox/autobahn-py27``.

``autobahntestsuite`` runs only on Python 2.7, so it cannot share the project's
environment: it gets a virtual environment of its own, made by ``virtualenv`` 20.21 (the
last release that creates Python 2.7 environments; ``nox -s autobahn`` installs it into the
session) and filled from the pinned ``requirements-py27.txt``, installed by name. A stamp
file holds a hash of the pins and the interpreter; while it matches, the build is skipped.

``python -m tests.autobahn.env --find-python27`` prints the interpreter found (or nothing),
which is how the nox session decides whether to skip.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

__all__ = [
    "PYTHON27_ENV_VAR",
    "REQUIREMENTS",
    "SUITE_ENV",
    "build_suite_env",
    "find_python27",
    "suite_environ",
    "wstest_path",
]

ROOT: Final = Path(__file__).resolve().parents[2]
REQUIREMENTS: Final = Path(__file__).with_name("requirements-py27.txt")
SUITE_ENV: Final = ROOT / ".nox" / "autobahn-py27"
STAMP_NAME: Final = ".trio-mcp-ws-stamp"
PYTHON27_ENV_VAR: Final = "TRIO_MCP_WS_PYTHON27"
"""Set to a Python 2.7 interpreter to use that one instead of searching for it."""

# Seconds for ``python2.7 -c ...`` to answer: a pyenv shim that refuses answers at once.
_PROBE_TIMEOUT: Final = 30.0
# Building the environment downloads and compiles a few packages (wsaccel, cffi).
_BUILD_TIMEOUT: Final = 900.0


def _is_python27(candidate: str) -> bool:
    try:
        result = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == "2.7"


def find_python27() -> str | None:
    """A working Python 2.7 interpreter, or None.

    Tried in order: ``$TRIO_MCP_WS_PYTHON27``; the newest pyenv-installed 2.7 (called
    directly: pyenv's shims refuse versions not selected); ``python2.7`` and ``python2``
    on PATH. Each candidate must run and report 2.7.
    """
    candidates: list[str] = []
    if os.environ.get(PYTHON27_ENV_VAR):
        candidates.append(os.environ[PYTHON27_ENV_VAR])
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    installed = glob.glob(os.path.join(root, "versions", "2.7.*", "bin", "python2.7"))
    candidates.extend(sorted(installed, key=_version_key, reverse=True))
    candidates.extend(found for name in ("python2.7", "python2") if (found := shutil.which(name)))
    return next((candidate for candidate in candidates if _is_python27(candidate)), None)


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parents[1].name
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def wstest_path(env: Path = SUITE_ENV) -> Path:
    """The suite's ``wstest`` command inside its environment."""
    return env / "bin" / "wstest"


def _stamp(python27: str) -> str:
    h = hashlib.sha256(REQUIREMENTS.read_bytes())
    h.update(os.path.realpath(python27).encode())
    return h.hexdigest()


def _virtualenv_can_make_py27() -> bool:
    if importlib.util.find_spec("virtualenv") is None:
        return False
    major, minor = (int(part) for part in importlib.metadata.version("virtualenv").split(".")[:2])
    return (major, minor) < (20, 22)


def suite_environ() -> dict[str, str]:
    """This process's environment minus what would point Python 2.7 at our packages."""
    return {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME"}}


def _run(argv: list[str], *, py27: bool = True) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, timeout=_BUILD_TIMEOUT, env=suite_environ() if py27 else None)


def build_suite_env(python27: str, *, force: bool = False, env: Path = SUITE_ENV) -> Path:
    """Create (or keep) the suite's Python 2.7 environment; return its ``wstest``.

    Raises:
        SystemExit: ``virtualenv`` is not importable here (run through ``nox -s autobahn``,
            or ``pip install 'virtualenv<20.22'``).
        subprocess.CalledProcessError: Creating the environment or installing failed.
    """
    expected = _stamp(python27)
    stamp = env / STAMP_NAME
    if not force and wstest_path(env).exists() and stamp.is_file() and stamp.read_text().strip() == expected:
        print(f"autobahn: suite environment up to date ({env.relative_to(ROOT)})", flush=True)
        return wstest_path(env)
    if not _virtualenv_can_make_py27():
        raise SystemExit(
            "autobahn: building the Python 2.7 environment needs virtualenv<20.22 "
            "(nox -s autobahn installs it; or pip install 'virtualenv<20.22')"
        )
    if env.exists():
        shutil.rmtree(env)
    _run([sys.executable, "-m", "virtualenv", "--quiet", "--python", python27, str(env)], py27=False)
    pip = [str(env / "bin" / "python"), "-m", "pip"]
    quiet = ["--disable-pip-version-check", "--no-input", "--quiet"]
    # Every package is pinned, so --no-deps installs exactly the file; pip check proves
    # the set complete.
    _run([*pip, "install", *quiet, "--no-deps", "--requirement", str(REQUIREMENTS)])
    _run([*pip, "check"])
    stamp.write_text(expected + "\n")
    return wstest_path(env)


def main(argv: list[str] | None = None) -> None:
    """``--find-python27`` prints the interpreter; otherwise build the environment."""
    parser = argparse.ArgumentParser(prog="python -m tests.autobahn.env", description=__doc__)
    parser.add_argument("--find-python27", action="store_true", help="print the Python 2.7 found, if any")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    args = parser.parse_args(argv)
    python27 = find_python27()
    if args.find_python27:
        if python27:
            print(python27)
        return
    if python27 is None:
        raise SystemExit(f"autobahn: no Python 2.7 found (install one, or set {PYTHON27_ENV_VAR})")
    print(build_suite_env(python27, force=args.force))


if __name__ == "__main__":
    main()
