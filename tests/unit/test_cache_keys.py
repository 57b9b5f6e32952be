"""The cache's argument check: the compiled one agrees with the pure one on anything."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from levredis import _cache


class Sub(str):
    pass


class SubBytes(bytes):
    pass


ARGUMENTS = st.one_of(
    st.text(max_size=5), st.binary(max_size=5), st.integers(), st.floats(allow_nan=False),
    st.booleans(), st.none(), st.builds(Sub, st.text(max_size=3)),
    st.builds(SubBytes, st.binary(max_size=3)), st.builds(bytearray, st.binary(max_size=3)),
    st.binary(max_size=3).map(lambda data: memoryview(data)),
)


@given(st.lists(ARGUMENTS, max_size=6).map(tuple))
def test_compiled_and_pure_checks_agree(args: tuple[object, ...]) -> None:
    expected = all(type(arg) in (str, bytes) for arg in args)
    assert _cache.plain_args_pure(args) is expected
    if _cache.compiled_plain_args is not None:
        assert _cache.compiled_plain_args(args) is expected


def test_a_list_is_not_an_argument_tuple() -> None:
    if _cache.compiled_plain_args is not None:
        assert _cache.compiled_plain_args(["GET", "k"]) is False  # type: ignore[arg-type]
    assert _cache.key_for(("GET", Sub("k")), b"data") == b"data"
    assert _cache.key_for(("GET", "k"), b"data") == ("GET", "k")
