"""Bundle the TypeScript SDK's browser client for the browser tests: ``python -m tests.browser.build_bundle``.

Run from the repository root (``nox -s browser`` does, before the tests). It installs
``tests/browser/bundle/node_modules`` by ``npm ci`` from the committed ``package.json`` and
``package-lock.json`` (the SDK at the version pinned for interop, and esbuild), then bundles
``entry.mjs`` into one browser script, `BUNDLE`, that the page server serves as
``sdk-bundle.js``. The page fetches nothing else; nothing is downloaded while tests run.

``node_modules`` is git-ignored, and the bundle lives inside it. A stamp file holds a hash of
what the bundle was built from; when it matches, nothing is done. Without Node.js 20+ the step
is skipped with a message and the SDK page test skips; ``--require`` (CI) makes it an error.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

BUNDLE_SRC: Final = Path(__file__).resolve().parent / "bundle"
NODE_MODULES: Final = BUNDLE_SRC / "node_modules"
BUNDLE: Final = NODE_MODULES / ".trio-mcp-ws" / "sdk-bundle.js"
STAMP: Final = BUNDLE.with_suffix(".stamp")
INPUTS: Final = ("package.json", "package-lock.json", "entry.mjs")
MIN_NODE_MAJOR: Final = 20


def _node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    result = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _stamp(node_version: str) -> str:
    digest = hashlib.sha256(node_version.encode())
    for name in INPUTS:
        digest.update((BUNDLE_SRC / name).read_bytes())
    return digest.hexdigest()


def _run(argv: list[str]) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, cwd=BUNDLE_SRC, check=True)


def build(*, force: bool = False) -> str:
    """Build the bundle unless it is up to date; return what was done.

    Raises:
        RuntimeError: Node.js 20 or later (with npm) is not on the PATH.
        subprocess.CalledProcessError: ``npm ci`` or esbuild failed.
    """
    version = _node_version()
    npm = shutil.which("npm")
    if version is None or npm is None or int(version.lstrip("v").split(".")[0] or 0) < MIN_NODE_MAJOR:
        raise RuntimeError(f"the SDK bundle needs Node.js {MIN_NODE_MAJOR}+ and npm (found node {version})")
    expected = _stamp(version)
    if not force and BUNDLE.is_file() and STAMP.is_file() and STAMP.read_text().strip() == expected:
        return f"SDK bundle up to date ({BUNDLE.relative_to(BUNDLE_SRC.parent)})"
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"])
    BUNDLE.parent.mkdir(parents=True, exist_ok=True)
    esbuild = NODE_MODULES / ".bin" / "esbuild"
    _run(
        [
            str(esbuild),
            "entry.mjs",
            "--bundle",
            "--format=iife",
            "--platform=browser",
            "--target=es2022",
            "--log-level=warning",
            f"--outfile={BUNDLE}",
        ]
    )
    STAMP.write_text(expected + "\n")
    return f"SDK bundle built ({BUNDLE.relative_to(BUNDLE_SRC.parent)})"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--require", action="store_true", help="fail (instead of skipping) without Node.js")
    args = parser.parse_args(argv)
    try:
        print(build(force=args.force), flush=True)
    except RuntimeError as exc:
        print(f"skipped: {exc}", file=sys.stderr, flush=True)
        return 1 if args.require else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
