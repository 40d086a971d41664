"""Any frame at all, for the one-line property of a frame decoder."""

from __future__ import annotations

from hypothesis import strategies as st

from .._codec import encode
from ._hostile import hostile_frames
from ._messages import jsonrpc_messages
from ._policy import policy_refused_frames


def frames() -> st.SearchStrategy[str | bytes]:
    """Any frame at all: valid messages, hostile and policy-refused frames, edits, random data.

    The strategy for the one-line property of a frame decoder, which h11 states for HTTP:
    any input is either accepted or rejected with one protocol error, never anything else.

    Returns:
        A strategy for ``str | bytes`` frames, text possibly holding lone surrogates.

    Example:
        ```python
        from hypothesis import given
        from trio_mcp_ws import MessageDecodeError, decode
        from trio_mcp_ws.strategies import frames

        @given(frames())
        def test_decode_never_crashes(frame):
            try:
                decode(frame)
            except MessageDecodeError:
                pass
        ```
    """
    valid = jsonrpc_messages().map(encode)
    return st.one_of(
        valid,
        valid.map(str.encode),
        hostile_frames(),
        policy_refused_frames(),
        _edits(valid),
        st.text(st.characters(exclude_categories=())),
        st.binary(),
    )


@st.composite
def _edits(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid frame with a few characters inserted, deleted or replaced: valid or not."""
    frame = draw(valid)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(frame)))
        insert = draw(
            st.sampled_from(('"', "\\", "{", "}", "[", "]", ":", ",", "0", "e", "-", " ", "\x00", "😀"))
        )
        frame = draw(
            st.sampled_from(
                (
                    frame[:at] + insert + frame[at:],
                    frame[:at] + frame[at + 1 :],
                    frame[:at] + insert + frame[at + 1 :],
                )
            )
        )
    return frame
