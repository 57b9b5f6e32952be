"""Large bulk strings: the compiled gatherer agrees with the pure one, and holds a value once.

``_speedups.Gather`` copies each received piece into the value's own bytes
object; ``_resp.Pieces`` keeps the pieces and joins them once. For any value
and any way of cutting the stream they take the same bytes, say the same
``need``, and give the same value, or both refuse a missing CRLF.
"""

from __future__ import annotations

import itertools
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from levredis import _resp
from levredis._resp import INCOMPLETE, AcceleratedParser, Parser, Pieces, RespError

Gather = _resp._compiled_gather
compiled = pytest.mark.skipif(Gather is None, reason="built without a C compiler")


def cut(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(marks)]


@compiled
@given(st.binary(max_size=300), st.sampled_from([b"\r\n", b"\r\r", b"xy", b"\n\r"]),
       st.binary(max_size=20), st.lists(st.integers(min_value=0), max_size=8))
def test_both_gatherers_take_and_give_the_same(
        value: bytes, ending: bytes, after: bytes, points: list[int]) -> None:
    assert Gather is not None
    total = len(value) + 2
    pure, compiled_one = Pieces(total), Gather(total)
    for piece in cut(value + ending + after, points):
        assert pure.add(piece) == compiled_one.add(piece)
        assert pure.need == compiled_one.need
        if pure.need == 0:
            break
    if pure.need == 0:
        expected = value if ending == b"\r\n" else None
        assert pure.finish() == expected
        assert compiled_one.finish() == expected


@compiled
def test_the_compiled_gatherer_refuses_misuse_with_errors_not_crashes() -> None:
    assert Gather is not None
    with pytest.raises(ValueError):
        Gather(1)
    early = Gather(10)
    early.add(b"abc")
    with pytest.raises(ValueError):
        early.finish()  # not complete
    done = Gather(3)
    assert done.add(b"a\r\nrest") == 3
    assert done.finish() == b"a"
    with pytest.raises(ValueError):
        done.finish()  # once only
    with pytest.raises(TypeError):
        Gather(4).add("text")  # type: ignore[arg-type]
    assert Gather(4).add(memoryview(b"ab")) == 2


@pytest.mark.parametrize("parser_class", [Parser, AcceleratedParser])
def test_a_large_value_is_held_once_while_it_arrives(parser_class: type[Parser]) -> None:
    if parser_class is AcceleratedParser and Gather is None:
        pytest.skip("built without a C compiler")
    size = 24 * 1024 * 1024
    piece = 256 * 1024
    parser = parser_class(decode=False)
    tracemalloc.start()
    try:
        parser.feed(b"$%d\r\n" % size)
        for _ in range(size // piece):  # as a connection does: a new object per read
            assert parser.next_reply() is INCOMPLETE
            parser.feed(b"v" * piece)
        parser.feed(b"\r\n+OK\r\n")
        value = parser.next_reply()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert value == b"v" * size and parser.next_reply() == b"OK"
    assert parser.next_reply() is INCOMPLETE
    if parser_class is AcceleratedParser:
        assert peak < size * 1.1  # copied into the value as it came: one copy
    else:
        assert peak < size * 2.1  # the pieces and the joined value


def test_a_missing_crlf_after_a_large_value_is_refused() -> None:
    for parser_class in (Parser, AcceleratedParser):
        parser = parser_class(decode=False)
        size = 300 * 1024
        parser.feed(b"$%d\r\n" % size + b"x" * 1000)
        parser.feed(b"x" * (size - 1000) + b"\r!")
        with pytest.raises(RespError, match="not followed by CRLF"):
            parser.next_reply()


@compiled
def test_a_reply_trickling_in_is_read_again_a_bounded_number_of_times(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 37,000 elements in 64-byte pieces: the compiled parser would have read
    # the growing start again on each of ~4,000 pieces; now at most RETRIES.
    calls = []
    real = _resp._compiled_parse
    assert real is not None

    def counting(*args: object) -> object:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_resp, "_compiled_parse", counting)
    items = [b"i%d" % n for n in range(37_000)]
    stream = b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in items)
    parser = AcceleratedParser(decode=False)
    for at in range(0, len(stream), 64):
        parser.feed(stream[at:at + 64])
        value = parser.next_reply()
        if value is not INCOMPLETE:
            break
    assert value == items
    assert len(calls) <= 20  # (RETRIES is 8; one call per piece would be ~4,000)


@compiled
def test_both_gatherers_are_done_after_finish() -> None:
    assert Gather is not None
    for gatherer in (Pieces(3), Gather(3)):
        assert gatherer.add(b"a\r\n") == 3
        assert gatherer.finish() == b"a"
        assert gatherer.need == 0 and gatherer.add(b"more") == 0


def _read_all(parser: Parser, pieces: list[bytes]) -> list[object]:
    """Feed pieces as a connection does; the replies, or the error that stopped them."""
    out: list[object] = []
    try:
        for piece in pieces:
            parser.feed(piece)
            while (value := parser.next_reply()) is not INCOMPLETE:
                out.append((parser.kind, value))
    except RespError as exc:
        out.append(f"RespError: {exc}")
    return out


@compiled
@given(st.sampled_from([_resp.BIG_BULK + 1, 300_000, 1_048_576]),
       st.sampled_from([b"\r\n", b"\r!", b"!\n"]),
       st.sampled_from([b"", b"+OK\r\n", b"$3\r\nabc\r\n*1\r\n:1\r\n", b"$5\r\nab"]),
       st.lists(st.integers(min_value=0), max_size=6), st.booleans())
def test_a_large_top_level_value_goes_straight_to_its_gatherer_as_the_pure_parser_reads_it(
        size: int, ending: bytes, after: bytes, points: list[int], decode: bool) -> None:
    # The compiled parser hands a large bulk string still arriving over with its
    # first piece; it goes to the gatherer without being split into lines.
    stream = b"+first\r\n$%d\r\n" % size + bytes(range(256)) * (size // 256) + b"x" * (
        size % 256) + ending + after
    pieces = cut(stream, points)
    assert _read_all(AcceleratedParser(decode=decode), pieces) == _read_all(
        Parser(decode=decode), [stream])
