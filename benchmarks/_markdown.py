"""The markdown the standalone cases print: a table, and the verdict cell of a row against its targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


def verdict(ok: bool) -> str:
    """A row's "on target" cell: a miss is printed as one, in bold."""
    return "yes" if ok else "**no**"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A markdown table (left-aligned columns), one line per row, without a trailing newline."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
