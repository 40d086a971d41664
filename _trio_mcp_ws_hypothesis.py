"""trio-mcp-ws's Hypothesis plugin: ``st.from_type`` for the `mcp_types` message classes, cheaply.

Hypothesis calls `setup` (our ``hypothesis`` entry point) whenever it is imported, in every
process of every environment where trio-mcp-ws is installed, so this module must cost next
to nothing. It is a top-level module, outside the ``trio_mcp_ws`` package, because loading
anything inside that package imports the package itself, hence trio and the MCP SDK (about
0.6 s of CPU); Hypothesis keeps its own pytest plugin in a top-level module for the same
reason. It imports only modules the interpreter has already loaded by the time Hypothesis
runs its plugins.

What `setup` does:

- if `mcp_types` is imported already, it registers the four message classes at once;
- otherwise it puts a one-shot finder at the front of `sys.meta_path`, which lets the first
  ``import mcp_types`` proceed as usual, registers the classes just after the module has
  run, and removes itself. Until then nothing of ours is imported at all.

Registering is cheap too: each class maps to a function that Hypothesis calls the first time
it resolves the class, and only that imports `trio_mcp_ws.strategies`.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from functools import partial
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from hypothesis.strategies import SearchStrategy

MODULE: Final = "mcp_types"
"""The module whose classes we register."""

TYPE_NAMES: Final = ("JSONRPCRequest", "JSONRPCNotification", "JSONRPCResponse", "JSONRPCError")
"""The classes registered, by name; ``st.from_type(mcp_types.JSONRPCMessage)`` resolves the
union through them."""


def setup() -> None:
    """Register the message strategies now, or as soon as `mcp_types` is imported."""
    module = sys.modules.get(MODULE)
    if module is not None:
        register(module)
    elif not any(isinstance(finder, RegisterOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, RegisterOnImport())


def register(module: ModuleType) -> None:
    """Register a lazy strategy for each message class of ``module`` (an executed `mcp_types`)."""
    from hypothesis import strategies as st  # noqa: PLC0415  # loaded before Hypothesis runs plugins

    for name in TYPE_NAMES:
        cls: type[Any] = getattr(module, name)
        st.register_type_strategy(cls, partial(_resolve, cls))


def _resolve(registered: type[Any], _resolving: type[Any]) -> SearchStrategy[Any]:
    """The strategy for ``registered``, importing our strategies the first time one is needed."""
    from trio_mcp_ws.strategies._registration import strategy_for  # noqa: PLC0415  # lazily, see above

    return strategy_for(registered)


class RegisterOnImport:
    """A one-shot `sys.meta_path` finder: `register` runs right after `mcp_types` executes.

    It finds `mcp_types` through the finders behind it and hands the import system the spec
    they return, with its loader wrapped so that registration follows execution. It removes
    itself on first use, so it costs one string comparison per import until then.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """Find `mcp_types` as the other finders would, with a loader that then registers."""
        if fullname != MODULE:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # first, so that the search below does not come back here
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the real loader, puts it back in the module's spec, then registers."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module's attributes were set from our spec: make it look loaded by the real loader.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        register(module)
