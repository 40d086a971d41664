"""Development tasks: ``nox`` runs every check CI needs; fuzz and bench on demand.

Sessions:
    tests      the test suite with branch coverage, on every supported Python
    lint       ruff check and ruff format --check
    typecheck  mypy --strict and pyright (strict) on the package, tests, benchmarks and this file
    docs       mkdocs build --strict
    fuzz       the property tests with the big Hypothesis profile
    interop    the interoperability suite against real peers (mcp 1.30, the TypeScript SDK)
    browser    a real headless Chromium against serve_mcp (Debian's chromium package)
    autobahn   the Autobahn WebSocket conformance suite, both roles (needs Python 2.7)
    deploy     ``serve --workers 4`` behind a real nginx (Debian's nginx package)
    bench      the benchmark suite (``-- --smoke`` for the few-seconds check)
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False
# Everything CI must prove; each of interop, browser, autobahn and deploy fails (rather than
# skips) when CI is set and its peer (mcp 1.30 and Node, Chromium, Python 2.7, nginx) is missing.
nox.options.sessions = ["tests", "lint", "typecheck", "docs", "interop", "browser", "autobahn", "deploy"]


def _find_pyenv_interpreters() -> None:
    """Make every pyenv-installed CPython findable by nox, whatever ``pyenv global`` says.

    pyenv's shims answer only for the selected versions (``python3.10`` on the PATH can be
    a shim that refuses to run), while the interpreters themselves are all there; put
    their directories first. Nothing changes on machines without pyenv.
    """
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    extra = [
        path
        for version in PYTHONS
        for path in sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin")))[-1:]
    ]
    if extra:
        os.environ["PATH"] = os.pathsep.join([*extra, os.environ.get("PATH", "")])


_find_pyenv_interpreters()


def _install_test_deps(session: nox.Session) -> None:
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "test"))


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite with branch coverage of trio_mcp_ws."""
    _install_test_deps(session)
    # coverage runs pytest (not pytest-cov) so it measures from the start; our Hypothesis
    # hook imports nothing of trio_mcp_ws, so no module is imported before it starts.
    session.run("coverage", "erase")
    # The suites with peers of their own run in their own sessions, once, on one Python.
    marks = "not interop and not browser and not deploy"
    session.run("coverage", "run", "-m", "pytest", "-m", marks, *session.posargs)
    session.run("coverage", "report")


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict and pyright in strict mode."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "test", "typecheck", "bench"))
    session.run("mypy")
    session.run("pyright")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Build the documentation site, treating every warning as an error."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "docs"))
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        str(ROOT / "site"),
        # mkdocs-material prints an end-of-life banner on every build (see CONTRIBUTING.md).
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session(python="3.11")
def fuzz(session: nox.Session) -> None:
    """Run the property tests with the ``fuzz`` Hypothesis profile and report the counts."""
    _install_test_deps(session)
    session.run(
        "pytest",
        "-m",
        "not interop",
        "-p",
        "tests.fuzz_report",
        "--hypothesis-profile=fuzz",
        "--hypothesis-show-statistics",
        "-k",
        "propert or stateful or fuzz",
        *session.posargs,
    )


@nox.session(python="3.11")
def interop(session: nox.Session) -> None:
    """Build the peers' own environments, then run the interoperability suite."""
    _install_test_deps(session)
    # On CI every peer must be there: a missing one fails instead of skipping.
    ci = bool(os.environ.get("CI"))
    session.run("python", "-m", "tests.interop.setup_peers", *(["--require-all"] if ci else []))
    session.run(
        "pytest",
        "-m",
        "interop",
        "tests/interop",
        *session.posargs,
        env={"TRIO_MCP_WS_INTEROP_REQUIRE": "1"} if ci else {},
    )


@nox.session(python="3.11")
def browser(session: nox.Session) -> None:
    """Drive a real headless Chromium (Debian's ``chromium`` package) against serve_mcp."""
    _install_test_deps(session)
    # The TypeScript SDK's browser client, bundled from its npm pin before any test runs.
    session.run("python", "-m", "tests.browser.build_bundle", "--require")
    # This session exists to run them: a missing Chromium or bundle fails instead of skipping.
    session.run(
        "pytest", "-m", "browser", "tests/browser", *session.posargs, env={"TRIO_MCP_WS_BROWSER_REQUIRE": "1"}
    )


@nox.session(python="3.11")
def deploy(session: nox.Session) -> None:
    """Run ``trio-mcp-ws serve --workers 4`` behind a real nginx, with docs/deploy.md's configuration.

    Needs nginx on the PATH (or in /usr/sbin): without it the tests skip, except on CI (CI
    set), where they fail.
    """
    _install_test_deps(session)
    session.run("pytest", "-m", "deploy", "tests/deploy", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Run the benchmarks against their baselines (pass ``-- --smoke`` for a quick check)."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python="3.11")
def autobahn(session: nox.Session) -> None:
    """Run the Autobahn WebSocket conformance suite in both roles; fail on any FAILED case.

    The suite runs only on Python 2.7: without one the session skips, except on CI (CI set),
    where it fails. ``-- --role server`` (or ``client``) runs one role.
    """
    found = session.run("python", "-m", "tests.autobahn.env", "--find-python27", silent=True)
    python27 = found.strip() if isinstance(found, str) else ""
    if not python27:
        message = "Python 2.7 not found (pyenv install 2.7.18, or set TRIO_MCP_WS_PYTHON27)"
        if os.environ.get("CI"):
            session.error(message)
        session.skip(message)
    # virtualenv 20.21 is the last release that creates Python 2.7 environments.
    session.install("-e", ".", "virtualenv>=20.21,<20.22")
    session.run("python", "-m", "tests.autobahn.run", "--python27", python27, *session.posargs)
