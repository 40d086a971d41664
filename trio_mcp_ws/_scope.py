"""Our exception-group policy, written down once and used by every nursery we open.

Policy (the first of the two in Trio's "Designing for multiple errors"): our nurseries run
*background* tasks (readers, writers, keepalive) whose failures are turned into values on
the read channel, never raised. So the only exception that can leave an ``async with`` of
ours is the one the user's body raised, and it leaves as itself: never wrapped in an
ExceptionGroup, whatever ``strict_exception_groups`` says. If a background task does raise
(a bug), the group is logged and, when the body raised nothing, re-raised as a plain
`TransportError` with the group as its cause, so callers still catch one type.
"""

from __future__ import annotations

import logging
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from ._errors import TransportError

if sys.version_info < (3, 11):  # pragma: no cover - exercised by the 3.10 CI job
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

__all__ = ["background_nursery"]

logger = logging.getLogger("trio_mcp_ws")


@asynccontextmanager
async def background_nursery() -> AsyncGenerator[trio.Nursery, None]:
    """Open a nursery for background tasks that end when the body ends.

    The body's own exception propagates unwrapped; background tasks are cancelled when
    the body finishes, so their cleanup must be done (shielded, bounded) inside the body.
    """
    body_exc: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:
                body_exc = exc
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        _, rest = group.split(trio.Cancelled)
        if rest is None:
            # Only cancellations, from a scope outside ours: let that scope absorb them.
            if body_exc is not None:
                raise body_exc  # noqa: B904 - the user's own exception, untouched
            raise
        logger.error("internal error in a background task", exc_info=group)
        if body_exc is not None:
            raise body_exc  # noqa: B904 - the user's own exception, untouched
        raise TransportError(f"internal error in trio-mcp-ws: {rest!r}") from group
    if body_exc is not None:
        raise body_exc
