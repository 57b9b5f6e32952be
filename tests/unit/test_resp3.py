"""The RESP3 parser: every type, in any chunking, and strict about the rest."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levredis._errors import ServerError
from levredis._resp import INCOMPLETE, RespError
from levredis._resp3 import MAP, PUSH, SET, Resp3Parser

# -- a reference encoder: values → RESP3 bytes ------------------------------------


class Push(list[Any]):
    """A value to be sent as a push (``>``)."""


class Verbatim(str):
    """A value to be sent as a verbatim string (``=``)."""


class Big(int):
    """An int to be sent as a big number (``(``)."""


def encode(value: Any) -> bytes:
    if value is None:
        return b"_\r\n"
    if value is True or value is False:
        return b"#t\r\n" if value else b"#f\r\n"
    if isinstance(value, Big):
        return b"(%d\r\n" % value
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, float):
        text = "inf" if value == math.inf else "-inf" if value == -math.inf else \
            "nan" if math.isnan(value) else repr(value)
        return b",%s\r\n" % text.encode()
    if isinstance(value, ServerError):
        data = value.encode()
        return b"!%d\r\n%s\r\n" % (len(data), data)
    if isinstance(value, Verbatim):
        data = b"txt:" + value.encode()
        return b"=%d\r\n%s\r\n" % (len(data), data)
    if isinstance(value, str):
        data = value.encode()
        return b"$%d\r\n%s\r\n" % (len(data), data)
    if isinstance(value, dict):
        return b"%%%d\r\n" % len(value) + b"".join(encode(k) + encode(v) for k, v in value.items())
    if isinstance(value, (set, frozenset)):
        return b"~%d\r\n" % len(value) + b"".join(encode(v) for v in value)
    if isinstance(value, Push):
        return b">%d\r\n" % len(value) + b"".join(encode(v) for v in value)
    if isinstance(value, list):
        return b"*%d\r\n" % len(value) + b"".join(encode(v) for v in value)
    raise TypeError(type(value))


def parse_all(data: bytes, chunks: list[int] | None = None, decode: bool = True
              ) -> list[tuple[int, Any]]:
    parser = Resp3Parser(decode)
    out: list[tuple[int, Any]] = []
    pieces = [data] if chunks is None else _split(data, chunks)
    for piece in pieces:
        parser.feed(piece)
        while (value := parser.next_reply()) is not INCOMPLETE:
            out.append((parser.kind, value))
    assert not parser.has_partial()
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b if not isinstance(a, (str, int)) else a == b


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.integers(-(10**40), 10**40).map(Big),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.text(max_size=8).map(Verbatim),
    st.text(max_size=10).map(lambda t: ServerError("ERR " + t)),
)
hashable = st.one_of(st.integers(-100, 100), st.text(max_size=6))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(hashable, inner, max_size=3),
        st.frozensets(hashable, max_size=4).map(set),
    ),
    max_leaves=12,
)


def expected(value: Any) -> Any:
    """What the parser returns for ``value``: the same, with the stand-in types plain."""
    if isinstance(value, Verbatim):
        return str(value)
    if isinstance(value, Big):
        return int(value)
    if isinstance(value, list):
        return [expected(v) for v in value]
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    return value


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=4), st.lists(st.integers(0, 10_000), max_size=8))
def test_round_trips_in_any_chunking(replies: list[Any], cuts: list[int]) -> None:
    data = b"".join(encode(r) for r in replies)
    got = parse_all(data, cuts)
    assert len(got) == len(replies)
    for (_, value), sent in zip(got, replies, strict=True):
        assert same(value, expected(sent)), (value, sent)


def test_every_type_byte_by_byte() -> None:
    stream = (b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n~2\r\n#t\r\n,1.5\r\n"
              b"|1\r\n+ttl\r\n:3\r\n$2\r\nhi\r\n"
              b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n"
              b"_\r\n,inf\r\n,-inf\r\n(123456789012345678901234567890\r\n!5\r\nERR x\r\n"
              b"=8\r\ntxt:abcd\r\n#f\r\n,-0.5e-3\r\n$-1\r\n*-1\r\n")
    got = parse_all(stream, list(range(len(stream))))
    assert got == [
        (MAP, {"a": 1, "b": {True, 1.5}}),
        (ord("$"), "hi"),  # the attribute before it is dropped
        (PUSH, ["message", "ch", "x"]),
        (ord("_"), None), (ord(","), math.inf), (ord(","), -math.inf),
        (ord("("), 123456789012345678901234567890),
        (ord("!"), "ERR x"), (ord("="), "abcd"), (ord("#"), False), (ord(","), -0.0005),
        (ord("$"), None), (ord("*"), None),
    ]
    assert isinstance(got[7][1], ServerError)
    nan = parse_all(b",nan\r\n")[0][1]
    assert math.isnan(nan)


def test_attributes_are_dropped_and_kept_aside() -> None:
    parser = Resp3Parser()
    parser.feed(b"*2\r\n|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n:1\r\n:2\r\n")
    assert parser.next_reply() == [1, 2]
    assert parser.kind == ord("*")
    assert parser.last_attribute == {"key-popularity": {"a": 0.19}}
    parser.feed(b"|0\r\n:7\r\n")
    assert parser.next_reply() == 7 and parser.kind == ord(":")


def test_unhashable_members_and_keys_fall_back_to_lists() -> None:
    assert parse_all(b"~2\r\n*1\r\n:1\r\n:2\r\n") == [(SET, [[1], 2])]
    assert parse_all(b"%1\r\n*1\r\n:1\r\n:2\r\n") == [(MAP, [[[1], 2]])]
    assert parse_all(b"%1\r\n~1\r\n:1\r\n:2\r\n") == [(MAP, [[{1}, 2]])]


def test_decode_off_gives_bytes() -> None:
    got = parse_all(b"%1\r\n+k\r\n=7\r\nmkd:abc\r\n", decode=False)
    assert got == [(MAP, {b"k": b"abc"})]


@pytest.mark.parametrize("stream", [
    b"#x\r\n", b"#\r\n", b"#tt\r\n", b"_x\r\n", b",\r\n", b",1.2.3\r\n", b", 1\r\n",
    b",infinity\r\n", b",1_0\r\n", b",+1\r\n", b"(\r\n", b"(1.5\r\n", b"(+1\r\n", b"( 1\r\n",
    b"=3\r\ntxt\r\n", b"=5\r\ntxt-x\r\n", b"!-1\r\n", b"%-1\r\n", b"~-1\r\n", b">-1\r\n",
    b"$3\r\nabcdef\r\n", b":1.0\r\n", b"*1x\r\n", b"@\r\n", b"%99999999999\r\n",
    b"," + b"1" * 100, b"#" + b"t" * 100, b"_" + b" " * 100,
])
def test_malformed_streams_are_refused(stream: bytes) -> None:
    parser = Resp3Parser()
    parser.feed(stream)
    with pytest.raises(RespError):
        for _ in range(5):
            if parser.next_reply() is INCOMPLETE:
                raise AssertionError("incomplete instead of refused")


def test_deep_nesting_and_big_streams_are_safe() -> None:
    deep = b"*1\r\n" * 50_000 + b"%1\r\n+k\r\n~1\r\n:1\r\n"
    (_, value), = parse_all(deep, [len(deep) // 3, len(deep) // 2])
    for _ in range(50_000):
        value = value[0]
    assert value == {"k": {1}}
    rng = random.Random(5)
    replies = [rng.choice([{"a": rng.random()}, {rng.randint(0, 9)}, Push(["pmessage", "p*",
               "c", "x" * rng.randint(0, 3000)])]) for _ in range(2000)]
    data = b"".join(encode(r) for r in replies)
    got = parse_all(data, [rng.randint(0, len(data)) for _ in range(300)])
    assert [v for _, v in got] == [expected(r) for r in replies]


def random_stream(rng: random.Random, depth: int = 0) -> bytes:
    roll = rng.random()
    if roll < 0.45 or depth > 3:
        return encode(rng.choice([
            None, True, False, rng.randint(-(2**63), 2**63 - 1), Big(rng.randint(-10**30, 10**30)),
            rng.choice([0.5, -1e300, math.inf, -math.inf, math.nan, 3.0]),
            "x" * rng.choice([0, 1, 30, 700]), Verbatim("v" * rng.randint(0, 9)),
            ServerError("ERR " + "e" * rng.randint(0, 5))]))
    count = rng.randint(0, 4)
    kind = rng.choice([b"*", b"%", b"~", b">", b"|"])
    due = count * 2 if kind in (b"%", b"|") else count
    body = b"".join(random_stream(rng, depth + 1) for _ in range(due))
    if kind == b"|":
        return b"|%d\r\n" % count + body + random_stream(rng, depth + 1)
    return kind + b"%d\r\n" % count + body


def canonical(value: Any) -> str:
    """A text for comparing values: sets in a fixed order (a set's order may vary)."""
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(canonical(v) for v in value)) + "}"
    if isinstance(value, dict):
        return "%{" + ",".join(f"{canonical(k)}:{canonical(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return repr(value)


def outcome(data: bytes, cuts: list[int]) -> tuple[list[tuple[int, Any]], str | None]:
    parser = Resp3Parser()
    got: list[tuple[int, Any]] = []
    try:
        for piece in _split(data, cuts):
            parser.feed(piece)
            while (value := parser.next_reply()) is not INCOMPLETE:
                got.append((parser.kind, canonical(value)))
    except RespError:
        return got, "error"
    return got, "partial" if parser.has_partial() else None


def test_fuzzed_streams_give_values_or_a_protocol_error_whatever_the_chunking() -> None:
    from tests.stressing import FIGURES, size

    rng = random.Random(3)
    counts = {"whole": 0, "error": 0, "partial": 0}
    for _ in range(size(3_000, 200_000)):
        data = bytearray(b"".join(random_stream(rng) for _ in range(rng.randint(1, 3))))
        for _ in range(rng.choice([0, 0, 1, 3])):  # mutate: flip, cut or insert bytes
            where = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.4:
                data[where] = rng.choice(b"*%~>|_#,(!=$+-:\r\n0123456789abc")
            elif choice < 0.7:
                del data[where:]
            else:
                data[where:where] = rng.randbytes(rng.randint(1, 4))
            if not data:
                data = bytearray(b"+\r\n")
        whole = outcome(bytes(data), [])
        pieces = outcome(bytes(data), [rng.randint(0, len(data)) for _ in range(rng.randint(1, 9))])
        # Chunking never changes what is parsed (a refusal may come at most later).
        assert pieces[0] == whole[0] or whole[1] == "error", data
        assert pieces[1] == whole[1], data
        counts[whole[1] or "whole"] += 1
    FIGURES["fuzzed RESP3 streams"] = counts
