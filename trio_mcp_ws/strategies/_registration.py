"""Which strategy `st.from_type` uses for each `mcp_types` message class.

The Hypothesis plugin (the ``_trio_mcp_ws_hypothesis`` module, kept outside this package so
that loading it costs next to nothing) registers each class with a function that calls
`strategy_for` the first time Hypothesis resolves the class: only then is this package,
and with it trio-mcp-ws and the MCP SDK, imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import mcp_types as t

from ._messages import jsonrpc_errors, jsonrpc_notifications, jsonrpc_requests, jsonrpc_responses

if TYPE_CHECKING:
    from collections.abc import Callable

    from hypothesis import strategies as st

STRATEGIES: Final[dict[type[Any], Callable[[], st.SearchStrategy[Any]]]] = {
    t.JSONRPCRequest: jsonrpc_requests,
    t.JSONRPCNotification: jsonrpc_notifications,
    t.JSONRPCResponse: jsonrpc_responses,
    t.JSONRPCError: jsonrpc_errors,
}
"""The registered classes and their strategies. ``st.from_type(mcp_types.JSONRPCMessage)``
resolves the union through its members."""


def strategy_for(cls: type[Any]) -> st.SearchStrategy[Any]:
    """The strategy for one registered message class.

    Args:
        cls: One of the classes in `STRATEGIES`.

    Returns:
        The same strategy as the public function for that class, with its defaults.

    Raises:
        KeyError: ``cls`` is not a registered class.
    """
    return STRATEGIES[cls]()
