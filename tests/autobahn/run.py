"""Run the Autobahn suite in both roles and fail on any FAILED case: ``python -m tests.autobahn.run``.

Role ``server``: our `echo_server` listens on 127.0.0.1 (port 0) and ``wstest -m
fuzzingclient`` runs every case against it. Role ``client``: ``wstest -m fuzzingserver``
listens on 127.0.0.1 and our `echo_client` connects to it once per case. Both roles run
the same case list (`tests.autobahn.cases`); the reports land in ``.nox/autobahn-reports``
(``servers/`` and ``clients/``, each with the suite's HTML pages), are checked by
`tests.autobahn.report`, and summarised here: the counts per verdict, then every
NON-STRICT and INFORMATIONAL case with the suite's explanation. Exit status 1 when any case
FAILED (or is UNIMPLEMENTED, or missing), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from typing import IO, TYPE_CHECKING, Final

from tests.autobahn.cases import AGENT, CASES, EXCLUDED
from tests.autobahn.env import PYTHON27_ENV_VAR, ROOT, build_suite_env, find_python27, suite_environ
from tests.autobahn.report import ReportError, RoleReport, load_role_report

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["REPORTS", "main", "run_client_role", "run_server_role"]

REPORTS: Final = ROOT / ".nox" / "autobahn-reports"
ROLES: Final = ("server", "client")

# Cases 1-7, 9 and 10 take about half a minute per role on 2 cores; cases 12 and 13 (216
# cases of 1,000 compressed messages, the suite's own deflate in Python 2.7) take most of the
# rest: over ten minutes on a busy 2-core machine. Forty minutes means hung.
_ROLE_TIMEOUT: Final = 2400.0
# Seconds for a started program (our echo server, the fuzzing server) to start listening.
_START_TIMEOUT: Final = 30.0
# Seconds a program gets to exit after SIGTERM before it is killed.
_STOP_TIMEOUT: Final = 10.0


# What this run leaves out: `EXCLUDED`, or nothing with --full (set by `main`).
_excluded: list[str] = list(EXCLUDED)


def _spec(**fields: object) -> dict[str, object]:
    return {
        **fields,
        "cases": list(CASES),
        "exclude-cases": list(_excluded),
        "exclude-agent-cases": {},
    }


def _write_spec(folder: Path, name: str, spec: dict[str, object]) -> Path:
    path = folder / name
    path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return path


def _stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read_line(stream: IO[str], timeout: float) -> str:
    """The first line ``stream`` gives within ``timeout`` seconds (empty when none came)."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def _fresh(folder: Path) -> Path:
    # Old reports must never pass for new ones.
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def run_server_role(wstest: Path, reports: Path = REPORTS, *, echo_flags: Sequence[str] = ()) -> RoleReport:
    """Our echo server under ``wstest -m fuzzingclient``; returns the checked report.

    Raises:
        ReportError: The echo server did not start, or the suite wrote no usable report.
        subprocess.CalledProcessError: ``wstest`` failed.
    """
    folder = _fresh(reports / "servers")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.autobahn.echo_server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *echo_flags,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = _read_line(server.stdout, _START_TIMEOUT)
        if not line.startswith("listening on "):
            raise ReportError(f"the echo server did not start (said {line!r})")
        url = "ws://" + line.removeprefix("listening on ").strip()
        spec = _write_spec(
            reports, "fuzzingclient.json", _spec(outdir=str(folder), servers=[{"agent": AGENT, "url": url}])
        )
        print(f"autobahn: wstest -m fuzzingclient against our echo server at {url}", flush=True)
        subprocess.run(
            [str(wstest), "--mode", "fuzzingclient", "--spec", str(spec)],
            cwd=reports,
            env=suite_environ(),
            check=True,
            timeout=_ROLE_TIMEOUT,
            stdout=subprocess.DEVNULL,
        )
    finally:
        _stop(server)
    return load_role_report(folder, "server", AGENT)


def _free_port() -> int:
    # The fuzzing server needs its port up front; a just-freed one is free in practice.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ReportError(f"the fuzzing server exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)  # bounded polling of an external process, nothing else to wait on
    raise ReportError(f"the fuzzing server did not listen on 127.0.0.1:{port} in {_START_TIMEOUT:.0f} s")


def run_client_role(wstest: Path, reports: Path = REPORTS, *, echo_flags: Sequence[str] = ()) -> RoleReport:
    """Our echo client against ``wstest -m fuzzingserver``; returns the checked report.

    Raises:
        ReportError: The fuzzing server did not start, or wrote no usable report.
        subprocess.CalledProcessError: Our echo client failed.
    """
    folder = _fresh(reports / "clients")
    port = _free_port()
    url = f"ws://127.0.0.1:{port}"
    spec = _write_spec(reports, "fuzzingserver.json", _spec(url=url, outdir=str(folder)))
    print(f"autobahn: our echo client against wstest -m fuzzingserver at {url}", flush=True)
    # --webport 0: no embedded HTTP server (it would take a fixed port, 8080).
    suite = subprocess.Popen(
        [str(wstest), "--mode", "fuzzingserver", "--spec", str(spec), "--webport", "0"],
        cwd=reports,
        env=suite_environ(),
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, suite)
        subprocess.run(
            [sys.executable, "-m", "tests.autobahn.echo_client", url, "--agent", AGENT, *echo_flags],
            cwd=ROOT,
            check=True,
            timeout=_ROLE_TIMEOUT,
        )
    finally:
        _stop(suite)
    return load_role_report(folder, "client", AGENT)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen roles, print their summaries, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tests.autobahn.run", description=__doc__)
    parser.add_argument("--role", choices=[*ROLES, "both"], default="both")
    parser.add_argument(
        "--python27", help=f"the Python 2.7 to build the suite on (default: ${PYTHON27_ENV_VAR}, pyenv, PATH)"
    )
    parser.add_argument(
        "--direct-echo",
        action="store_true",
        help="echo from inside the reader's sink, not a writer task (see docs/conformance.md)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the suite's environment")
    parser.add_argument(
        "--full", action="store_true", help="run the excluded cases too (tests.autobahn.cases.EXCLUDED)"
    )
    args = parser.parse_args(argv)
    if args.full:
        _excluded.clear()
    python27 = args.python27 or find_python27()
    if python27 is None:
        print(f"autobahn: no Python 2.7 found; install one (pyenv install 2.7.18) or set {PYTHON27_ENV_VAR}")
        return 2
    wstest = build_suite_env(python27, force=args.rebuild)
    REPORTS.mkdir(parents=True, exist_ok=True)
    roles = ROLES if args.role == "both" else (args.role,)
    results: list[RoleReport] = []
    failures: list[str] = []
    for role in roles:
        start = time.perf_counter()
        try:
            run = run_server_role if role == "server" else run_client_role
            # --compression: cases 12 and 13 need permessage-deflate; the others negotiate none.
            flags = ["--compression", *(["--direct-echo"] if args.direct_echo else [])]
            result = run(wstest, echo_flags=flags)
        except (ReportError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            failures.append(f"our {role}: {exc}")
            continue
        print(f"autobahn: {role} role done in {time.perf_counter() - start:.0f} s", flush=True)
        results.append(result)
    # Both roles run the same case list, so each must hold the other's cases.
    expected = {result.role: [case.case_id for case in result.cases] for result in results}
    for result in results:
        print(result.summary(), flush=True)
        others = [ids for role, ids in expected.items() if role != result.role]
        failures.extend(f"our {result.role}: {p}" for p in result.problems(others[0] if others else None))
    print(f"autobahn: reports in {REPORTS.relative_to(ROOT)}/ (servers/, clients/: index.html)")
    if failures:
        print("autobahn: FAILED\n  " + "\n  ".join(failures), flush=True)
        return 1
    print("autobahn: passed, 0 FAILED in " + " and ".join(f"the {role} role" for role in roles), flush=True)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
