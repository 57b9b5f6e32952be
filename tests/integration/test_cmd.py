"""cmd(): argument encoding and the RESP type mapping, on a real server."""

from __future__ import annotations

import levredis
from tests.servers import RedisServer


async def test_set_get_returns_values_and_not_found(client: levredis.Client) -> None:
    assert await client.cmd("SET", "key", "value") == ("OK", None)
    assert await client.cmd("GET", "key") == ("value", None)
    value, err = await client.cmd("GET", "missing")
    assert value is None and err == "not found"
    assert isinstance(err, levredis.NotFound)


async def test_integer_replies_are_ints(client: levredis.Client) -> None:
    assert await client.cmd("INCR", "counter") == (1, None)
    assert await client.cmd("INCRBY", "counter", 41) == (42, None)


async def test_redis_errors_come_back_as_their_error_line(client: levredis.Client) -> None:
    await client.cmd("SET", "text", "abc")
    value, err = await client.cmd("INCR", "text")
    assert value is None
    assert err == "ERR value is not an integer or out of range"
    assert isinstance(err, levredis.ServerError) and err.code == "ERR"
    await client.cmd("LPUSH", "list", "x")
    _, err = await client.cmd("GET", "list")
    assert isinstance(err, levredis.ServerError) and err.startswith("WRONGTYPE Operation against")


async def test_arrays_nest_and_keep_nulls(client: levredis.Client) -> None:
    await client.cmd("SET", "a", "1")
    assert await client.cmd("MGET", "a", "nope") == (["1", None], None)
    await client.cmd("HSET", "h", "f", "v")
    value, err = await client.cmd("EVAL", "return {1, {'x', {2}}, redis.call('HGETALL', KEYS[1])}",
                                  1, "h")
    assert err is None
    assert value == [1, ["x", [2]], ["f", "v"]]


async def test_null_array_is_not_found(client: levredis.Client) -> None:
    value, err = await client.cmd("BLPOP", "empty-list", "0.01")
    assert (value, err) == (None, "not found")


async def test_empty_array_is_an_empty_list(client: levredis.Client) -> None:
    assert await client.cmd("KEYS", "no-such-prefix:*") == ([], None)


async def test_errors_inside_exec_results_are_their_text(client: levredis.Client) -> None:
    await client.cmd("SET", "s", "text")
    assert await client.cmd("MULTI") == ("OK", None)
    assert await client.cmd("INCR", "s") == ("QUEUED", None)
    assert await client.cmd("SET", "t", "1") == ("QUEUED", None)
    value, err = await client.cmd("EXEC")
    assert err is None
    assert isinstance(value, list)
    assert value[0] == "ERR value is not an integer or out of range"
    assert isinstance(value[0], levredis.ServerError)
    assert value[1] == "OK"


async def test_arguments_are_bytes_str_int_and_float(client: levredis.Client) -> None:
    await client.cmd("SET", b"bkey", b"\x00\x01")
    await client.cmd("SET", "ikey", 12345)
    await client.cmd("SET", "fkey", 2.5)
    await client.cmd("SET", "ukey", "héllo ✓")
    await client.cmd("SET", "bakey", bytearray(b"ba"))
    await client.cmd("SET", "mvkey", memoryview(b"mv"))
    values, err = await client.cmd("MGET", "bkey", "ikey", "fkey", "ukey", "bakey", "mvkey")
    assert err is None
    assert values == ["\x00\x01", "12345", "2.5", "héllo ✓", "ba", "mv"]


class _EncodeRaises(str):
    def encode(self, *args: object, **kwargs: object) -> bytes:
        raise RuntimeError("encode")


class _EncodeReturnsText(str):
    def encode(self, *args: object, **kwargs: object) -> bytes:
        return "not bytes"  # type: ignore[return-value]


class _BytesElsewhere(bytes):
    def __bytes__(self) -> bytes:
        return b"OTHER"


class _BytesRaises(bytes):
    def __bytes__(self) -> bytes:
        raise RuntimeError("__bytes__")


class _ReprRaises(float):
    def __repr__(self) -> str:
        raise RuntimeError("__repr__")


class _IndexElsewhere(int):
    def __index__(self) -> int:
        return 99


async def test_a_subclass_is_sent_as_its_base_value_and_never_raises(
        client: levredis.Client) -> None:
    # Overrides of the conversion are not called: they could raise or send other bytes.
    cases = [(_EncodeRaises("a"), "a"), (_EncodeReturnsText("b"), "b"),
             (_BytesElsewhere(b"c"), "c"), (_BytesRaises(b"d"), "d"),
             (_ReprRaises(1.5), "1.5"), (_IndexElsewhere(7), "7")]
    for value, sent in cases:
        assert await client.cmd("SET", "k", value) == ("OK", None)
        assert await client.cmd("GET", "k") == (sent, None)
        results, err = await client.pipeline([["SET", "p", value], ["GET", "p"]])
        assert err is None and results == [["OK"], [sent]]
    assert await client.cmd(_BytesElsewhere(b"PING")) == ("PONG", None)  # the command name too


async def test_invalid_utf8_round_trips_byte_for_byte(client: levredis.Client) -> None:
    raw = b"\xff\xfe\x00 valid \xc3"
    await client.cmd("SET", "raw", raw)
    text, err = await client.cmd("GET", "raw")
    assert err is None and isinstance(text, str)
    await client.cmd("SET", "copy", text)  # sent again as it came back
    assert await client.cmd("STRLEN", "copy") == (len(raw), None)
    assert await client.cmd("EVAL", "return redis.call('GET', 'raw') == redis.call('GET', 'copy') "
                            "and 1 or 0", 0) == (1, None)


async def test_decode_false_returns_bytes(redis_server: RedisServer) -> None:
    client, _ = await levredis.connect({"host": "127.0.0.1", "port": redis_server.port,
                                        "db": 9, "decode": False})
    assert client is not None
    assert await client.cmd("SET", "b", b"\xff\x00") == (b"OK", None)
    assert await client.cmd("GET", "b") == (b"\xff\x00", None)
    assert await client.cmd("MGET", "b", "missing") == ([b"\xff\x00", None], None)
    assert await client.cmd("INCR", "n") == (1, None)
    _, err = await client.cmd("INCR", "b")
    assert isinstance(err, levredis.ServerError)  # error lines stay str
    await client.cmd("DEL", "b", "n")
    await client.close()


async def test_none_bool_and_no_arguments_are_rejected_before_sending(
    client: levredis.Client,
) -> None:
    for args in (("SET", "k", None), ("SET", "k", True), ("SET", None, "v"), ("SET", "k", [1])):
        value, err = await client.cmd(*args)
        assert value is None
        assert isinstance(err, levredis.UsageError), err
    assert await client.cmd("EXISTS", "k") == (0, None)  # nothing was sent
    value, err = await client.cmd()
    assert value is None and isinstance(err, levredis.UsageError)
    assert await client.cmd("PING") == ("PONG", None)  # the connection is fine


async def test_large_values_round_trip(client: levredis.Client) -> None:
    big = "x" * (4 * 1024 * 1024 + 7)
    assert await client.cmd("SET", "big", big) == ("OK", None)
    assert await client.cmd("GET", "big") == (big, None)


async def test_unsupported_resp3_switch_is_refused(client: levredis.Client) -> None:
    value, err = await client.cmd("HELLO", "3")
    assert value is None and isinstance(err, levredis.UsageError)
    assert await client.cmd("PING") == ("PONG", None)


async def test_client_reply_off_is_refused_so_replies_stay_matched(client: levredis.Client) -> None:
    _, err = await client.cmd("CLIENT", "REPLY", "OFF")
    assert isinstance(err, levredis.UsageError)
    assert await client.cmd("ECHO", "still answered") == ("still answered", None)
