"""The programs in examples/ run as a user runs them, and say what the docs say they say.

Each example is run in a fresh interpreter (``python examples/<name>.py``), the way its
docstring tells a user to run it: it serves on a free port of 127.0.0.1 and connects to
itself, so no other process or network is involved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def run_example(name: str) -> str:
    """Run one example to completion; return its output, failing on a non-zero status."""
    with trio.fail_after(120):
        done = await trio.run_process(
            [sys.executable, str(EXAMPLES / name)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=EXAMPLES.parent,
        )
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    return out


def sessions(output: str) -> dict[str, dict[str, str]]:
    """Parse the back-channel example's report: ``[label] ...`` then ``  feature  what``."""
    parsed: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith("["):
            label, _, rest = line[1:].partition("] ")
            current = parsed.setdefault(label, {"protocol": rest.removeprefix("protocol ")})
        elif line.startswith("  "):
            feature, _, what = line.strip().partition(" ")
            current[feature] = what.strip()
    return parsed


async def test_back_channel_example() -> None:
    report = sessions(await run_example("back_channel.py"))
    assert list(report) == ["legacy", "auto", "auto+log_level"]

    # Legacy (initialize) era: the server's requests come back over the same WebSocket.
    legacy = report["legacy"]
    assert legacy["protocol"] == "2025-11-25"
    assert legacy["progress"] == "delivered ['1/2 looking up Lisbon', '2/2 done']"
    assert legacy["logging"] == "delivered ['info: planning a trip to Lisbon']"
    assert legacy["sampling"] == "answered 'Take the 28 tram up to the castle.'"
    assert legacy["elicitation"] == "answered 3 nights"
    assert legacy["resolvers"] == "answered '3 nights; Take the 28 tram up to the castle.'"

    # What docs/client.md and docs/server.md say of the 2026-07-28 era, checked against the
    # installed SDK: no mid-call server->client requests, logs only on opt-in, progress and
    # the resolver markers work. A new SDK that changes this fails here first.
    for label in ("auto", "auto+log_level"):
        modern = report[label]
        assert modern["protocol"] == "2026-07-28"
        assert modern["progress"] == "delivered ['1/2 looking up Lisbon', '2/2 done']"
        for feature in ("sampling", "elicitation"):
            assert modern[feature].startswith("MCPError: Cannot send"), modern[feature]
            assert "no back-channel" in modern[feature]
        assert modern["resolvers"] == "answered '3 nights; Take the 28 tram up to the castle.'"
    assert report["auto"]["logging"] == "dropped"
    assert report["auto+log_level"]["logging"] == "delivered ['info: planning a trip to Lisbon']"


def test_every_example_is_tested() -> None:
    # A new example must get its test here; the names tested above are the whole set.
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == ["back_channel.py"]
