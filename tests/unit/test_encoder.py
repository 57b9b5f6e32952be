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
    encoded = encode_pipeline(pipeline)
    got = encoded if isinstance(encoded, UsageError) else encoded[0]
    if not isinstance(encoded, UsageError):  # what is planned is what was sent
        assert [list(command) for command in encoded[1]] == [list(c) for c in pipeline]
        assert all(type(command) is tuple for command in encoded[1])
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


class Shifty(list):  # type: ignore[type-arg]
    """A list whose length and iteration disagree, and change between calls."""

    calls = 0

    def __len__(self) -> int:
        return 1

    def __iter__(self):  # type: ignore[no-untyped-def]
        Shifty.calls += 1
        yield from (["ECHO", "a"] if Shifty.calls % 2 else ["ECHO", "a", "$4", "PING"])


def test_a_list_subclass_is_read_once_and_planned_as_sent() -> None:
    encoded = encode_pipeline([Shifty(["ECHO", "a"])])
    assert not isinstance(encoded, UsageError)
    data, commands = encoded
    assert data == encode_command_pure(commands[0]) == b"*2\r\n$4\r\nECHO\r\n$1\r\na\r\n"
    assert type(commands[0]) is tuple


class Unreadable(list):  # type: ignore[type-arg]
    def __iter__(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("no")


def test_a_pipeline_that_cannot_be_read_is_refused_not_raised() -> None:
    assert isinstance(encode_pipeline([Unreadable(["GET", "k"])]), UsageError)
    assert isinstance(encode_pipeline(Unreadable([["GET", "k"]])), UsageError)


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
        encode_command_pure(["GET", "a"]) + encode_command_pure(["SET", "b", 1]),
        [("GET", "a"), ("SET", "b", 1)])
    assert many([]) == (b"", [])


@compiled
@pytest.mark.skipif(not hasattr(__import__("ctypes").pythonapi, "PyUnicode_FromUnicode"),
                    reason="only CPython 3.11 can still make a str that is not 'ready'")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy API, on purpose
def test_a_legacy_str_that_is_not_ready_is_encoded_like_any_other() -> None:
    import ctypes

    make = ctypes.pythonapi.PyUnicode_FromUnicode
    make.restype, make.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_ssize_t]
    storage = ctypes.pythonapi.PyUnicode_AsUnicode
    storage.restype, storage.argtypes = ctypes.c_void_p, [ctypes.py_object]

    def legacy(text: str) -> str:
        made: str = make(None, len(text))
        ctypes.memmove(storage(made), ctypes.create_unicode_buffer(text),
                       len(text) * ctypes.sizeof(ctypes.c_wchar))
        return made

    for text in ("abc", "x" * 1000, "h\xe9llo"):
        expected = encode_command_pure(["SET", text])
        assert encode_command(["SET", legacy(text)]) == expected
        encoded = encode_pipeline([["SET", legacy(text)]])
        assert not isinstance(encoded, UsageError) and encoded[0] == expected


def test_speedups_off_means_pure_python_alone() -> None:
    # LEVREDIS_SPEEDUPS=0, read when levredis is imported: no compiled encoder,
    # cache check or large-value gatherer; the parser then is the pure one too.
    import os
    import subprocess
    import sys

    probe = ("from levredis import _cache, _resp; "
             "assert _resp.compiled_encode is None and _resp.compiled_encode_many is None; "
             "assert _cache.plain_args is _cache.plain_args_pure; "
             "assert type(_resp.new_parser()) is _resp.Parser; print('pure')")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "LEVREDIS_SPEEDUPS": "0"}, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "pure", done.stderr[-2000:]
