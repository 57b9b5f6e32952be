"""The sans-I/O RESP codec, with bytes and values alone."""

from __future__ import annotations

import os
import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levredis import ServerError
from levredis._resp import (
    ARRAY,
    BULK,
    ERROR,
    INCOMPLETE,
    INTEGER,
    MAX_BULK_LENGTH,
    SIMPLE,
    ArgumentError,
    Parser,
    Reply,
    RespError,
    _Incomplete,
    encode_command,
)


def parse_all(data: bytes, decode: bool = True) -> list[tuple[int, Reply]]:
    parser = Parser(decode)
    parser.feed(data)
    out: list[tuple[int, Reply]] = []
    while (value := parser.next_reply()) is not INCOMPLETE:
        assert not isinstance(value, _Incomplete)
        out.append((parser.kind, value))
    assert not parser.has_partial()
    return out


# -- encoding ------------------------------------------------------------------


def test_encode_command_writes_an_array_of_bulk_strings() -> None:
    assert encode_command(["SET", "k", "v"]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"


def test_encode_converts_bytes_str_int_and_float_by_their_text() -> None:
    data = encode_command(["X", b"\x00\xff", "é", 42, -7, 1.5, bytearray(b"ba"), memoryview(b"mv")])
    assert data == (
        b"*8\r\n$1\r\nX\r\n$2\r\n\x00\xff\r\n$2\r\n\xc3\xa9\r\n$2\r\n42\r\n$2\r\n-7\r\n"
        b"$3\r\n1.5\r\n$2\r\nba\r\n$2\r\nmv\r\n"
    )


def test_encode_sends_surrogate_escaped_str_as_the_original_bytes() -> None:
    text = b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert encode_command([text]) == b"*1\r\n$2\r\n\xff\xfe\r\n"


@pytest.mark.parametrize("bad", [None, True, False, object(), [1], {"a": 1}])
def test_encode_rejects_none_bool_and_other_types(bad: object) -> None:
    with pytest.raises(ArgumentError, match="argument 2"):
        encode_command(["SET", bad])


@pytest.mark.parametrize(("bad", "message"), [
    (None, "argument 2 is None: send str, bytes, int or float (write 1/0 or 'true'/'false' "
           "explicitly)"),
    (True, "argument 2 is True: send str"),
    (False, "argument 2 is False: send str"),
    (object(), "argument 2 has type object: send str, bytes, int or float"),
    ({"a": 1}, "argument 2 has type dict: send str"),
])
def test_a_refused_argument_is_named_with_its_reason(bad: object, message: str) -> None:
    with pytest.raises(ArgumentError) as refused:
        encode_command(["SET", bad])
    assert str(refused.value).startswith(message)


class _FakesItsClass:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise ValueError("no")


class _Nameless(type):
    @property
    def __name__(cls) -> str:  # type: ignore[override]
        raise ValueError("no")


class _Anonymous(metaclass=_Nameless):
    pass


def test_hostile_objects_are_refused_without_raising_anything_else() -> None:
    for bad in (_FakesItsClass(), _Anonymous()):
        with pytest.raises(ArgumentError, match="argument 2 has type"):
            encode_command(["SET", bad])


def test_encode_rejects_an_empty_command() -> None:
    with pytest.raises(ArgumentError, match="no command"):
        encode_command([])


def test_encode_handles_long_values_and_many_arguments() -> None:
    big = "x" * 100_000
    args = ["RPUSH", "k", *range(100), big]
    data = encode_command(args)
    assert data.startswith(b"*103\r\n")
    assert data.endswith(b"$100000\r\n" + big.encode() + b"\r\n")


# -- parsing each type -----------------------------------------------------------


def test_parser_gives_each_type_with_its_tag() -> None:
    stream = b"+OK\r\n$2\r\nOK\r\n:-12\r\n-ERR bad thing\r\n*2\r\n$1\r\na\r\n:1\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n"
    got = parse_all(stream)
    assert got == [
        (SIMPLE, "OK"), (BULK, "OK"), (INTEGER, -12), (ERROR, "ERR bad thing"),
        (ARRAY, ["a", 1]), (BULK, None), (ARRAY, None), (ARRAY, []), (BULK, ""),
    ]
    assert type(got[3][1]) is ServerError


def test_parser_keeps_errors_and_nulls_inside_arrays() -> None:
    got = parse_all(b"*3\r\n-WRONGTYPE no\r\n$-1\r\n*-1\r\n")
    assert got == [(ARRAY, ["WRONGTYPE no", None, None])]
    assert isinstance(got[0][1][0], ServerError)  # type: ignore[index]


def test_parser_returns_bytes_when_decode_is_off() -> None:
    assert parse_all(b"+OK\r\n$3\r\n\xff\x00a\r\n", decode=False) == [
        (SIMPLE, b"OK"), (BULK, b"\xff\x00a"),
    ]


def test_parser_decodes_invalid_utf8_without_losing_a_byte() -> None:
    (_, value), = parse_all(b"$3\r\n\xff\xc3(\r\n")
    assert isinstance(value, str)
    assert value.encode("utf-8", "surrogateescape") == b"\xff\xc3("


def test_parser_nests_arrays() -> None:
    assert parse_all(b"*2\r\n*2\r\n:1\r\n*1\r\n+x\r\n*0\r\n") == [(ARRAY, [[1, ["x"]], []])]


def test_parser_survives_ten_thousand_levels_of_nesting() -> None:
    depth = 10_000
    assert depth > sys.getrecursionlimit()
    (_, value), = parse_all(b"*1\r\n" * depth + b":7\r\n")
    for _ in range(depth):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == 7


def test_parser_resumes_a_reply_split_at_every_byte(parser_class: type[Parser]) -> None:
    stream = b"*3\r\n$5\r\nhello\r\n*2\r\n:1\r\n-E x\r\n$-1\r\n+PONG\r\n"
    expected = parse_all(stream)
    for cut in range(len(stream) + 1):
        parser = parser_class()
        got = []
        for piece in (stream[:cut], stream[cut:]):
            parser.feed(piece)
            while (value := parser.next_reply()) is not INCOMPLETE:
                got.append((parser.kind, value))
        assert got == expected, cut


def test_parser_reports_partial_data(parser_class: type[Parser]) -> None:
    parser = parser_class()
    assert not parser.has_partial()
    parser.feed(b"$5\r\nhel")
    assert parser.next_reply() is INCOMPLETE
    assert parser.has_partial()
    parser.feed(b"lo\r\n")
    assert parser.next_reply() == "hello"
    assert not parser.has_partial()


# -- hostile input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (b"!3\r\nabc\r\n", "unknown reply type byte 0x21"),
        (b"%1\r\n", "unknown reply type byte 0x25"),
        (b"$abc\r\n", "invalid bulk length"),
        (b"$-2\r\n", "invalid bulk length -2"),
        (b"*-5\r\n", "invalid array length -5"),
        (b":12x\r\n", "invalid integer"),
        (b"$3\r\nabcXY", "not followed by CRLF"),
        (b"*99999999999\r\n", "out of range"),
        (b"$%d\r\n" % (MAX_BULK_LENGTH + 1), "exceeds the 512 MB limit"),
    ],
)
def test_parser_rejects_malformed_streams(parser_class: type[Parser], stream: bytes, message: str) -> None:
    parser = parser_class()
    parser.feed(stream)
    with pytest.raises(RespError, match=message):
        parser.next_reply()


def test_parser_does_not_allocate_for_an_announced_length(parser_class: type[Parser]) -> None:
    parser = parser_class()
    tracemalloc.start()
    try:
        parser.feed(b"$%d\r\nabc" % MAX_BULK_LENGTH)
        assert parser.next_reply() is INCOMPLETE  # waits; nothing was reserved for it
        parser.feed(b"x" * 100_000)
        assert parser.next_reply() is INCOMPLETE
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Reserved as data arrives: at most 2 MiB or twice what arrived, not 512 MB.
    assert peak < 2 * 1024 * 1024 + 500_000


def test_a_large_bulk_string_arriving_in_pieces_is_gathered_exactly(parser_class: type[Parser]) -> None:
    value = bytes(range(256)) * 4096 + b"\r\n\r\n"  # 1 MiB, with CRLFs inside
    stream = b"$%d\r\n%s\r\n+after\r\n" % (len(value), value)
    parser = parser_class(decode=False)
    got = []
    for start in range(0, len(stream), 65536):
        parser.feed(stream[start : start + 65536])
        while (reply := parser.next_reply()) is not INCOMPLETE:
            got.append(reply)
    assert got == [value, b"after"]
    assert not parser.has_partial()


def test_parser_rejects_an_endless_length_line_at_once(parser_class: type[Parser]) -> None:
    parser = parser_class()
    parser.feed(b"$" + b"1" * 100)
    with pytest.raises(RespError, match="no line end"):
        parser.next_reply()


def test_parser_takes_a_status_line_longer_than_a_mebibyte(parser_class: type[Parser]) -> None:
    # Redis sends these from Lua (redis.status_reply / error_reply).
    parser = parser_class()
    parser.feed(b"+" + b"x" * (2 * 1024 * 1024) + b"\r\n-" + b"e" * (2 * 1024 * 1024) + b"\r\n")
    assert parser.next_reply() == "x" * (2 * 1024 * 1024)
    assert parser.next_reply() == "e" * (2 * 1024 * 1024)


def test_parser_refuses_an_unknown_type_byte_before_the_line_ends(parser_class: type[Parser]) -> None:
    parser = parser_class()
    parser.feed(b"?abc")
    with pytest.raises(RespError, match="unknown reply type byte 0x3f"):
        parser.next_reply()


@pytest.mark.parametrize(
    "stream",
    [b":+1\r\n", b": 1\r\n", b":1_0\r\n", b":1 \r\n", b"$ 3\r\nabc\r\n", b"*+1\r\n:1\r\n",
     b":99999999999999999999\r\n", b":\r\n", b"$\r\n", b":--1\r\n"],
)
def test_parser_refuses_integers_no_server_writes(parser_class: type[Parser], stream: bytes) -> None:
    parser = parser_class()
    parser.feed(stream)
    with pytest.raises(RespError, match="invalid"):
        parser.next_reply()


def test_parser_refuses_bulk_data_longer_than_announced(parser_class: type[Parser]) -> None:
    # No value may come out of a broken stream: "abc" is not the answer.
    parser = parser_class()
    parser.feed(b"$3\r\nabcdef\r\n")
    with pytest.raises(RespError, match="not followed by CRLF"):
        parser.next_reply()


def test_parser_takes_a_reply_nested_ten_thousand_deep(parser_class: type[Parser]) -> None:
    parser = parser_class()
    parser.feed(b"*1\r\n" * 10_000 + b":7\r\n")
    value = parser.next_reply()
    for _ in range(10_000):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == 7


def test_a_flat_array_decodes_each_element_alone(parser_class: type[Parser]) -> None:
    # Elements with CR, LF, invalid and partial UTF-8 at their edges.
    items = [b"a\r", b"\nb", b"", b"\xe2\x82", b"\xac", b"\xff\r", b"caf\xc3\xa9"]
    parser = parser_class()
    parser.feed(b"*7\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in items))
    assert parser.next_reply() == [i.decode("utf-8", "surrogateescape") for i in items]


# -- property: any reply tree survives encoding and arbitrary chunking ----------------

replies = st.recursive(
    st.one_of(
        st.none(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.binary(max_size=40),
        st.text(max_size=20).filter(lambda s: "\r" not in s and "\n" not in s).map(
            lambda s: ("+", s)),
        st.text(max_size=20).filter(lambda s: "\r" not in s and "\n" not in s).map(
            lambda s: ("-", s)),
    ),
    lambda children: st.lists(children, max_size=5),
    max_leaves=30,
)


def serialize(value: object) -> bytes:
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, tuple):
        kind, text = value[0], value[1]
        assert isinstance(kind, str) and isinstance(text, str)
        return kind.encode() + text.encode() + b"\r\n"
    assert isinstance(value, list)
    return b"*%d\r\n" % len(value) + b"".join(serialize(item) for item in value)


def expected_value(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, tuple):
        return value[1]
    if isinstance(value, list):
        return [expected_value(item) for item in value]
    return value


@settings(max_examples=300)
@given(values=st.lists(replies, min_size=1, max_size=4), data=st.data())
def test_any_reply_stream_parses_back_whatever_the_chunking(parser_class: type[Parser], values: list[object], data: st.DataObject) -> None:
    stream = b"".join(serialize(v) for v in values)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    parser = parser_class()
    got = []
    last = 0
    for cut in [*cuts, len(stream)]:
        parser.feed(stream[last:cut])
        last = cut
        while (value := parser.next_reply()) is not INCOMPLETE:
            got.append(value)
    assert got == [expected_value(v) for v in values]


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_give_values_or_a_clean_protocol_error(parser_class: type[Parser], stream: bytes) -> None:
    parser = parser_class()
    parser.feed(stream)
    try:
        while parser.next_reply() is not INCOMPLETE:
            pass
    except RespError:
        pass


@given(st.lists(st.one_of(st.binary(max_size=30), st.text(max_size=30), st.integers()),
                min_size=1, max_size=10))
def test_an_encoded_command_parses_back_to_its_arguments(args: list[object]) -> None:
    (_, value), = parse_all(encode_command(args), decode=False)
    assert value == [
        a if isinstance(a, bytes)
        else a.encode("utf-8", "surrogateescape") if isinstance(a, str)
        else str(a).encode()
        for a in args
    ]


# -- differential: the fast parser against the plain reference -------------------------


def run_parser(parser: object, chunks: list[bytes]) -> tuple[list[tuple[int, object]], str]:
    out: list[tuple[int, object]] = []
    try:
        for chunk in chunks:
            parser.feed(chunk)  # type: ignore[attr-defined]
            while (value := parser.next_reply()) is not INCOMPLETE:  # type: ignore[attr-defined]
                out.append((parser.kind, value))  # type: ignore[attr-defined]
    except RespError:
        return out, "error"
    return out, "partial" if parser.has_partial() else "done"  # type: ignore[attr-defined]


def mutate(stream: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    data = bytearray(stream)
    for kind, where, byte in edits:
        if not data:
            break
        where %= len(data)
        if kind == 0:
            data[where] = byte
        elif kind == 1:
            data.insert(where, byte)
        else:
            del data[where]
    return bytes(data)


@settings(max_examples=int(os.environ.get("LEVREDIS_FUZZ_EXAMPLES", "400")))
@given(
    values=st.lists(replies, min_size=1, max_size=5),
    edits=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.sampled_from(
        b"\r\n$*:+-0123456789x")), max_size=3),
    data=st.data(),
)
def test_the_fast_parser_agrees_with_the_reference(
    parser_class: type[Parser],
    values: list[object], edits: list[tuple[int, int, int]], data: st.DataObject
) -> None:
    from tests.reference_parser import ReferenceParser

    stream = mutate(b"".join(serialize(v) for v in values), edits)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    for decode in (True, False):
        fast, fast_end = run_parser(parser_class(decode), chunks)
        reference, reference_end = run_parser(ReferenceParser(decode), chunks)
        assert fast == reference
        if "error" in (fast_end, reference_end):
            # One may see a broken stream a few bytes before the other does.
            assert {fast_end, reference_end} <= {"error", "partial"}
        else:
            assert fast_end == reference_end


def test_a_long_line_arriving_in_pieces_is_not_split_again_for_each_piece(
    parser_class: type[Parser],
) -> None:
    # Joining and re-splitting the pending line on every chunk made a 40 MB
    # MONITOR line cost seconds; the pieces are kept as they come instead.
    line = b"+" + b"x" * (1024 * 1024) + b"\r\n"
    parser = parser_class()
    kept_apart = 0
    for start in range(0, len(line), 65536):
        parser.feed(line[start : start + 65536])
        kept_apart = max(kept_apart, len(parser._tail_more))
        reply = parser.next_reply()
    assert reply == "x" * (1024 * 1024)
    assert kept_apart >= 10
