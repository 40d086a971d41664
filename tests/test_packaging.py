"""The sdist and wheel a release would upload: contents, metadata, and docs built from the sdist.

``python -m build`` builds the sdist, then the wheel *from the unpacked sdist*, as pip does
for a source install, so a file the wheel needs but the sdist lacks fails here. The build
runs in build's isolated environment (it fetches the build backend by name, as any
``pip install`` does). Everything runs once per module, in a temporary directory.
"""

from __future__ import annotations

import configparser
import email.parser
import html.parser
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from email.message import Message

ROOT = Path(__file__).resolve().parent.parent
# Building and the docs build are subprocesses; generous bounds, never timing assertions.
BUILD_TIMEOUT = 600

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        # mkdocs-material's end-of-life banner, printed on every build (see CONTRIBUTING.md).
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, ROOT, cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def sdist(dist: Path) -> Path:
    (path,) = dist.glob("trio_mcp_ws-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (path,) = dist.glob("trio_mcp_ws-*-py3-none-any.whl")
    return path


def _sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as archive:
        # Strip the "trio_mcp_ws-<version>/" prefix every member has.
        return {name.partition("/")[2] for name in archive.getnames()}


def _wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def _entry_points(wheel: Path) -> configparser.ConfigParser:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
        parser = configparser.ConfigParser(delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep names' case
        parser.read_string(archive.read(name).decode())
        return parser


def _module_file(names: set[str], module: str) -> bool:
    path = module.replace(".", "/")
    return f"{path}.py" in names or f"{path}/__init__.py" in names


def test_wheel_holds_the_package_and_its_entry_points(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    tops = {name.split("/")[0] for name in names}
    (dist_info,) = (top for top in tops if top.endswith(".dist-info"))
    # The package, plus the top-level module of the Hypothesis hook (outside the package
    # so that loading it imports nothing of ours).
    assert tops == {"trio_mcp_ws", "_trio_mcp_ws_hypothesis.py", dist_info}
    for needed in (
        "trio_mcp_ws/__init__.py",
        "trio_mcp_ws/py.typed",
        "trio_mcp_ws/testing/__init__.py",
        f"{dist_info}/licenses/LICENSE",
    ):
        assert needed in names
    # The Hypothesis strategies: a module or a package, shipped either way.
    assert _module_file(names, "trio_mcp_ws.strategies")
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_wheel_entry_points_point_into_the_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    entry_points = _entry_points(wheel)
    assert entry_points["console_scripts"]["trio-mcp-ws"] == "trio_mcp_ws._cli:main"
    assert list(entry_points["hypothesis"])  # Hypothesis's plugin hook
    for group in entry_points.sections():
        for target in entry_points[group].values():
            module = target.partition(":")[0].strip()
            # An entry point whose module is not shipped breaks every user of the group
            # (every `import hypothesis`, for the hypothesis group) in that environment.
            assert _module_file(names, module), (group, target)


def test_wheel_metadata(wheel: Path) -> None:
    metadata = _wheel_metadata(wheel)
    assert metadata["Name"] == "trio-mcp-ws"
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Requires-Python"] == ">=3.10"
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert set(urls) >= {"Homepage", "Documentation", "Source", "Changelog", "Issues"}
    assert all(url.startswith("https://") for url in urls.values())
    requires = metadata.get_all("Requires-Dist") or []
    # Imported directly by the package, so declared directly, with bounds.
    assert "mcp-types<3,>=2" in requires
    assert "mcp<3,>=2" in requires
    assert any(req.startswith("hypothesis") and "extra == 'hypothesis'" in req for req in requires)
    assert "Framework :: Trio" in (metadata.get_all("Classifier") or [])
    assert metadata.get_content_type() == "text/plain"  # the long description is in the body
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "python3 -m pip install nox && nox" in metadata.get_payload()


def test_sdist_holds_what_the_docs_and_tests_need(sdist: Path) -> None:
    names = _sdist_names(sdist)
    for needed in (
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "CONTRIBUTING.md",
        "LICENSE",
        "mkdocs.yml",
        "noxfile.py",
        "docs/index.md",
        "docs/img/bench-throughput-vs-size.png",
        # docs/performance.md includes its tables from here.
        "benchmarks/results/latest.md",
        "examples/back_channel.py",
        "tests/conftest.py",
        "trio_mcp_ws/__init__.py",
    ):
        assert needed in names, needed
    for name in names:
        assert "__pycache__" not in name, name
        assert not name.startswith((".hypothesis", ".nox", "site/", ".git/", "node_modules")), name


def test_twine_check(sdist: Path, wheel: Path) -> None:
    output = _run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel, cwd=ROOT)
    assert output.count("PASSED") == 2, output


@pytest.fixture(scope="module")
def site(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if sys.version_info < (3, 11):
        # The docs toolchain is the docs session's (Python 3.11); on 3.10 pip resolves a
        # mkdocstrings and a pymdown-extensions that no longer work together (pymdown 13 needs
        # 3.11), so the docs build there fails for reasons that are not ours to check.
        pytest.skip("the docs are built with Python 3.11+ (nox -s docs); not checked on 3.10")
    unpacked = tmp_path_factory.mktemp("sdist")
    with tarfile.open(sdist) as archive:
        # The "data" filter (no absolute paths, links or devices) where this Python has it.
        if hasattr(tarfile, "data_filter"):
            archive.extractall(unpacked, filter="data")
        else:  # pragma: no cover - CPython before 3.10.12 / 3.11.4
            archive.extractall(unpacked)
    (source,) = unpacked.iterdir()
    site = unpacked / "site"
    output = _run(sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", site, cwd=source)
    (unpacked / "mkdocs.log").write_text(output)
    return site


def test_docs_build_from_the_unpacked_sdist(site: Path) -> None:
    assert (site / "api" / "index.html").is_file()
    # The benchmark tables, included from benchmarks/results/latest.md (which the sdist
    # used to lack), made it into the page.
    performance = (site / "performance" / "index.html").read_text()
    results = (ROOT / "benchmarks" / "results" / "latest.md").read_text(encoding="utf-8")
    heading = next(line.lstrip("# ").strip() for line in results.splitlines() if line.startswith("### "))
    assert heading in performance


def test_docs_signatures_are_formatted(site: Path) -> None:
    # Without black or ruff, mkdocstrings says so (at INFO, so --strict passes) and leaves
    # every signature on one line, cut off at the right of the page.
    log = (site.parent / "mkdocs.log").read_text()
    assert "Formatting signatures requires" not in log, log
    api = (site / "api" / "index.html").read_text()
    block = api.split('id="trio_mcp_ws.serve"', 1)[1].split('class="doc-signature', 1)[1]
    signature = re.sub(r"<[^>]*>", "", block.split("</code>", 1)[0])
    # One parameter a line: serve has more than ten.
    assert len(signature.splitlines()) > 10, signature


class _ProseText(html.parser.HTMLParser):
    """The text of a page outside code: what a reader sees as prose."""

    def __init__(self) -> None:
        super().__init__()
        self.in_code = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_code += tag in ("code", "pre", "script", "style")

    def handle_endtag(self, tag: str) -> None:
        self.in_code -= tag in ("code", "pre", "script", "style")

    def handle_data(self, data: str) -> None:
        if not self.in_code:
            self.chunks.append(data)


def _literal_rst(site: Path, page: str) -> list[str]:
    parser = _ProseText()
    parser.feed((site / page / "index.html").read_text())
    prose = " ".join(parser.chunks)
    return [prose[max(0, i - 40) : i + 2].strip() for i in range(len(prose)) if prose.startswith("::", i)]


@pytest.mark.parametrize("page", ["api", "testing", "fuzzing"])
def test_docstrings_render_without_literal_rst(site: Path, page: str) -> None:
    # mkdocstrings renders docstrings as Markdown: reST's "::" shows up as literal text.
    assert _literal_rst(site, page) == []
