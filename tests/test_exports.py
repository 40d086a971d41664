"""The public surface: exactly what __all__ says, documented, and nothing heavy on import."""

from __future__ import annotations

import subprocess
import sys
import types
import typing
from pathlib import Path

import trio_mcp_ws


def test_all_names_exist_and_are_documented() -> None:
    for name in trio_mcp_ws.__all__:
        obj = getattr(trio_mcp_ws, name)
        if name.startswith("__") or isinstance(obj, (int, str)) or typing.get_origin(obj) is not None:
            continue  # constants and type aliases are documented in the API reference
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


def test_all_is_unique_and_complete() -> None:
    assert len(set(trio_mcp_ws.__all__)) == len(trio_mcp_ws.__all__)
    public = {
        name
        for name in dir(trio_mcp_ws)
        if not name.startswith("_")
        and name not in ("annotations", "TYPE_CHECKING", "Any")
        and not isinstance(getattr(trio_mcp_ws, name), types.ModuleType)
    }
    assert public == set(trio_mcp_ws.__all__) - {"__version__"}


def test_testing_helpers_and_hypothesis_are_not_imported() -> None:
    code = (
        "import sys, trio_mcp_ws; "
        "optional = ('hypothesis', 'trio_mcp_ws.testing', 'trio_mcp_ws.strategies'); "
        "print(sorted(m for m in optional if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_server_side_is_imported_on_first_use() -> None:
    """A client does not pay for the server modules, Starlette or trio-websocket."""
    code = (
        "import sys, trio_mcp_ws; "
        "before = sorted(m for m in ('trio_websocket', 'trio_mcp_ws._listener') if m in sys.modules); "
        "trio_mcp_ws.serve; trio_mcp_ws.websocket_server; "
        "after = sorted(m for m in ('trio_websocket', 'trio_mcp_ws._listener') if m in sys.modules); "
        "print(before, after)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] ['trio_mcp_ws._listener', 'trio_websocket']"


def test_the_pump_does_not_import_trio_websocket() -> None:
    code = "import sys, trio_mcp_ws._pump; print('trio_websocket' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_public_name_is_in_the_api_reference() -> None:
    api = (Path(__file__).parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [
        name
        for name in trio_mcp_ws.__all__
        if name != "__version__" and f"::: trio_mcp_ws.{name}\n" not in api
    ]
    assert missing == []
