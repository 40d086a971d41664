"""docs/protocol.md links each MUST to a test: every test it names must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
NODE_ID = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def test_every_test_the_protocol_page_names_exists() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    named = set(NODE_ID.findall(text))
    assert len(named) > 30  # the page names its tests; an empty match would prove nothing
    missing = [
        f"{path}::{name}"
        for path, name in sorted(named)
        if not (ROOT / path).is_file()
        or not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M)
    ]
    assert missing == []
