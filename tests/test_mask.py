"""Masking (RFC 6455 section 5.3): the pure-Python fallback and the C masker agree, byte for byte.

Both paths are tested whatever is installed: the fallback always, the C masker when
``websockets.speedups`` imports (the ``speedups`` extra; the dev environment has it), and
`apply_mask` is whichever of them the module picked.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_mcp_ws import _mask
from trio_mcp_ws._mask import ACCELERATED, apply_mask, python_apply_mask

HAVE_C = importlib.util.find_spec("websockets.speedups") is not None


def _reference(data: bytes, key: bytes) -> bytes:
    """The RFC's definition: octet i XOR key octet i mod 4."""
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(data))


def test_rfc_example() -> None:
    # RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
    key = bytes.fromhex("37fa213d")
    assert python_apply_mask(b"Hello", key) == bytes.fromhex("7f9f4d5158")
    assert apply_mask(b"Hello", key) == bytes.fromhex("7f9f4d5158")


@given(st.binary(max_size=600), st.binary(min_size=4, max_size=4))
def test_fallback_matches_the_definition(data: bytes, key: bytes) -> None:
    assert python_apply_mask(data, key) == _reference(data, key)
    assert python_apply_mask(python_apply_mask(data, key), key) == data


@given(st.binary(max_size=600), st.binary(min_size=4, max_size=4))
def test_selected_masker_matches_the_definition(data: bytes, key: bytes) -> None:
    assert apply_mask(data, key) == _reference(data, key)


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 65_535, 65_536, 100_003])
def test_sizes_and_buffer_types(size: int) -> None:
    data = os.urandom(size)
    key = os.urandom(4)
    expected = python_apply_mask(data, key)
    assert expected == _reference(data, key)
    for view in (data, bytearray(data), memoryview(data)):
        assert apply_mask(view, key) == expected
        assert type(apply_mask(view, key)) is bytes


def test_fallback_rejects_a_bad_key() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        python_apply_mask(b"abc", b"123")


def test_the_c_masker_is_picked_when_importable() -> None:
    assert ACCELERATED is HAVE_C
    if HAVE_C:
        from websockets.speedups import apply_mask as c_apply_mask

        assert _mask.apply_mask is c_apply_mask
    else:
        assert _mask.apply_mask is python_apply_mask


def test_fallback_when_the_c_masker_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # An import of the C masker that fails leaves the pure-Python path selected.
    import builtins

    real_import = builtins.__import__

    def no_speedups(name: str, *args: object, **kwargs: object) -> object:
        if name == "websockets.speedups":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_speedups)
    masker, accelerated = _mask._load()  # pyright: ignore[reportPrivateUsage] - the selection is under test
    assert (masker, accelerated) == (python_apply_mask, False)
