"""The compiled encoder agrees with the pure one, byte for byte and error for error.

The compiled one (``_speedups.encode``/``encode_many``) takes ASCII ``str``,
``bytes`` and 64-bit ``int`` and declines (``None``) anything else; the pure
one then does the whole command. So for any arguments the public
``encode_command`` and ``encode_pipeline`` give exactly what the pure encoder
gives, or raise the very same error.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from levredis import _resp
from levredis._client import encode_pipeline
from levredis._errors import UsageError
from levredis._resp import ArgumentError, encode_command, encode_command_pure

compiled = pytest.mark.skipif(_resp.compiled_encode is None,
                              reason="built without a C compiler (pure encoder only)")


class Text(str):
    pass


class Blob(bytes):
    pass


class Number(int):
    pass


ARGUMENTS = st.one_of(
    st.text(max_size=6),  # ASCII or not, with surrogates now and then
    st.text(alphabet=st.characters(max_codepoint=127), max_size=8),
    st.binary(max_size=8),
    st.integers(),  # far beyond 64 bits too
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**19, 9, 10, -10]),
    st.floats(), st.booleans(), st.none(),
    st.builds(Text, st.text(max_size=3)), st.builds(Blob, st.binary(max_size=3)),
    st.builds(Number, st.integers()), st.builds(bytearray, st.binary(max_size=3)),
    st.binary(max_size=3).map(lambda data: memoryview(data)), st.just(object()), st.just([b"nested"]),
    st.text(alphabet=st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF), max_size=2),
)
COMMAND = st.lists(ARGUMENTS, max_size=6)


def outcome(encode: Any, args: Any) -> bytes | str:
    try:
        return encode(args)  # type: ignore[no-any-return]
    except ArgumentError as exc:
        return f"ArgumentError: {exc}"


@given(COMMAND, st.booleans())
def test_encode_command_is_the_pure_encoder(args: list[object], as_tuple: bool) -> None:
    command = tuple(args) if as_tuple else args
    assert outcome(encode_command, command) == outcome(encode_command_pure, command)


@compiled
@given(COMMAND)
def test_the_compiled_encoder_writes_the_pure_bytes_or_declines(args: list[object]) -> None:
    assert _resp.compiled_encode is not None
    data = _resp.compiled_encode(args)
    plain = bool(args) and all(
        (type(a) is str and a.isascii()) or type(a) is bytes
        or (type(a) is int and -(2**63) <= a < 2**63)
        for a in args)
    if plain:
        assert data == encode_command_pure(args)
    else:
        assert data is None


@given(st.lists(st.one_of(COMMAND, COMMAND.map(tuple), st.just("GET"), st.none(), st.just([])),
                max_size=5),
       st.booleans())
def test_encode_pipeline_is_the_pure_encoder_per_command(
        commands: list[Any], as_tuple: bool) -> None:
    pipeline = tuple(commands) if as_tuple else commands
    got = encode_pipeline(pipeline)
    expected: bytes | UsageError
    parts = []
    for position, args in enumerate(pipeline, 1):
        if not isinstance(args, (list, tuple)):
            expected = UsageError(f"pipeline entry {position} is not a list of arguments "
                                  f"(got {type(args).__name__})")
            break
        try:
            parts.append(encode_command_pure(args))
        except ArgumentError as exc:
            expected = UsageError(f"pipeline entry {position}: {exc}")
            break
    else:
        expected = b"".join(parts)
    assert type(got) is type(expected) and got == expected


def test_a_pipeline_that_is_not_a_list_is_refused_by_name() -> None:
    assert encode_pipeline("GET k") == UsageError("pipeline() takes a list of commands (got str)")
    assert encode_pipeline({"GET": "k"}) == UsageError(
        "pipeline() takes a list of commands (got dict)")


@compiled
def test_the_compiled_encoder_writes_64_bit_edges_and_large_values() -> None:
    assert _resp.compiled_encode is not None
    big = b"v" * 1_000_003
    for args in (["SET", "k", big], ["X", 2**63 - 1, -(2**63), 0, -1, 10, 99, 100],
                 ["A"] * 1000, ("GET", "k")):
        assert _resp.compiled_encode(args) == encode_command_pure(args)
    assert _resp.compiled_encode([]) is None  # the pure encoder names the error
    assert _resp.compiled_encode("GET") is None  # a str is not a command
    many = _resp.compiled_encode_many
    assert many is not None
    assert many([["GET", "a"], ("SET", "b", 1)]) == (
        encode_command_pure(["GET", "a"]) + encode_command_pure(["SET", "b", 1]))
    assert many([]) == b""
