"""protocol: 3 — RESP3 on real servers: every type, pushes, HELLO, pub/sub beside commands."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import pytest

import levredis
from tests.fakepeer import FakePeer, read_command
from tests.servers import ALICE, RedisServer, acl_args


@pytest.fixture(scope="module")
def debug_server() -> Iterator[RedisServer]:
    """A server that runs DEBUG PROTOCOL (every RESP3 type on demand), with ACL users."""
    server = RedisServer(["--enable-debug-command", "yes", *acl_args()]).start()
    yield server
    server.cleanup()


async def connect3(server: RedisServer, **options: object) -> levredis.Client:
    client, err = await levredis.connect({"host": "127.0.0.1", "port": server.port,
                                          "protocol": 3, "timeout": 5, **options})
    assert client is not None, err
    return client


async def test_every_resp3_type_from_debug_protocol(debug_server: RedisServer) -> None:
    client = await connect3(debug_server)
    expected: dict[str, object] = {
        "map": {0: False, 1: True, 2: False},
        "set": {0, 1, 2},
        "true": True,
        "false": False,
        "bignum": 1234567999999999999999999999999999999,
        "verbatim": "This is a verbatim\nstring",
        "attrib": "Some real reply following the attribute",  # the attribute is dropped
        "push": "Some real reply following the push reply",  # the push goes to read()
    }
    for kind, value in expected.items():
        got, err = await client.cmd("DEBUG", "PROTOCOL", kind)
        assert err is None and got == value and type(got) is type(value), (kind, got, err)
    double, err = await client.cmd("DEBUG", "PROTOCOL", "double")
    assert err is None and isinstance(double, float) and abs(double - 3.141) < 0.001
    assert await client.cmd("DEBUG", "PROTOCOL", "null") == (None, "not found")
    assert await client.read() == (
        {"type": "push", "value": ["server-cpu-usage", 42]}, None)
    assert await client.pipeline([["DEBUG", "PROTOCOL", "null"], ["DEBUG", "PROTOCOL", "true"],
                                  ["DEBUG", "PROTOCOL", "set"]]) == (
        [[None], [True], [{0, 1, 2}]], None)
    await client.close()


async def test_real_commands_give_maps_sets_and_doubles(debug_server: RedisServer) -> None:
    client = await connect3(debug_server)
    await client.cmd("DEL", "r3:h", "r3:s", "r3:z")
    await client.cmd("HSET", "r3:h", "a", "1", "b", "2")
    await client.cmd("SADD", "r3:s", "x", "y")
    await client.cmd("ZADD", "r3:z", 1.5, "m", "inf", "top")
    assert await client.cmd("HGETALL", "r3:h") == ({"a": "1", "b": "2"}, None)
    assert await client.cmd("SMEMBERS", "r3:s") == ({"x", "y"}, None)
    assert await client.cmd("ZSCORE", "r3:z", "m") == (1.5, None)
    assert await client.cmd("ZSCORE", "r3:z", "top") == (math.inf, None)
    assert await client.cmd("ZRANGE", "r3:z", 0, -1, "WITHSCORES") == (
        [["m", 1.5], ["top", math.inf]], None)
    assert await client.cmd("ZSCORE", "r3:z", "none") == (None, "not found")
    hello, err = await client.cmd("HELLO", 3)
    assert err is None and isinstance(hello, dict) and hello["proto"] == 3
    info, err = await client.cmd("INFO", "server")  # a verbatim string
    assert err is None and isinstance(info, str) and info.startswith("# Server")
    raw, err = await connect3(debug_server, decode=False), None
    assert await raw.cmd("HGETALL", "r3:h") == ({b"a": b"1", b"b": b"2"}, None)
    await raw.close()
    await client.close()


async def test_a_subscribed_connection_keeps_serving_commands(debug_server: RedisServer) -> None:
    subscriber = await connect3(debug_server)
    publisher = await connect3(debug_server)
    await publisher.cmd("DEL", "r3:shaped")
    await publisher.cmd("HSET", "r3:shaped", "message", "looks like a push")
    assert await subscriber.cmd("SUBSCRIBE", "r3:news") == (["subscribe", "r3:news", 1], None)
    await publisher.cmd("PUBLISH", "r3:news", "one")
    # Commands while subscribed get their own replies, even shaped like a message.
    assert await subscriber.cmd("HGETALL", "r3:shaped") == (
        {"message": "looks like a push"}, None)
    assert await subscriber.cmd("LRANGE", "r3:missing", 0, -1) == ([], None)
    assert await subscriber.cmd("PING") == ("PONG", None)
    await publisher.cmd("PUBLISH", "r3:news", "two")
    assert await subscriber.read() == (
        {"type": "push", "value": ["message", "r3:news", "one"]}, None)
    assert await subscriber.read() == (
        {"type": "push", "value": ["message", "r3:news", "two"]}, None)
    assert await subscriber.cmd("UNSUBSCRIBE") == (["unsubscribe", "r3:news", 0], None)
    _, err = await subscriber.read()
    assert isinstance(err, levredis.UsageError) and "nothing to read" in err
    await subscriber.close()
    await publisher.close()
    # Unsubscribed again: back to the pool, under the RESP3 key only.
    keys = {s["key"]: s for s in levredis.pool_stats()}
    assert keys[f"127.0.0.1:{debug_server.port}/0 resp3"]["idle"] >= 1


async def test_the_handshake_is_one_hello_with_auth_then_select(
    debug_server: RedisServer,
) -> None:
    client = await connect3(debug_server, auth={"user": ALICE[0], "pass": ALICE[1]}, db=3)
    assert await client.cmd("ACL", "WHOAMI") == ("alice", None)
    info, err = await client.cmd("CLIENT", "INFO")
    assert err is None and isinstance(info, str) and "resp=3" in info and "db=3" in info
    await client.close()
    refused, err = await levredis.connect({"host": "127.0.0.1", "port": debug_server.port,
                                           "protocol": 3, "auth": {"user": "alice",
                                                                   "pass": "not-her-pw"}})
    assert refused is None and isinstance(err, levredis.ServerError) and "WRONGPASS" in err
    assert "not-her-pw" not in err


async def test_hello_may_not_switch_the_protocol(debug_server: RedisServer) -> None:
    client = await connect3(debug_server)
    value, err = await client.cmd("HELLO", 2)
    assert value is None and isinstance(err, levredis.UsageError) and "RESP3" in err
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()
    plain, _ = await levredis.connect(debug_server.address)
    assert plain is not None
    value, err = await plain.cmd("HELLO", 3)
    assert value is None and isinstance(err, levredis.UsageError) and "RESP2" in err
    await plain.close()


async def test_a_server_without_resp3_is_a_clear_connect_error() -> None:
    async def redis5(reader, writer) -> None:  # type: ignore[no-untyped-def]
        assert (await read_command(reader))[0] == b"HELLO"
        writer.write(b"-ERR unknown command 'HELLO'\r\n")
        await writer.drain()
        await reader.read()

    async with FakePeer(redis5, greet=False) as peer:
        client, err = await levredis.connect({"host": "127.0.0.1", "port": peer.port,
                                              "protocol": 3, "timeout": 2})
    assert client is None and isinstance(err, levredis.NetworkError)
    assert "does not speak RESP3" in err and "use protocol 2" in err


async def test_protocol_in_urls_and_its_validation(debug_server: RedisServer) -> None:
    client, err = await levredis.connect(f"redis://{debug_server.address}/0?protocol=3")
    assert client is not None, err
    assert client.cfg["protocol"] == 3
    assert await client.cmd("DEBUG", "PROTOCOL", "true") == (True, None)
    await client.close()
    for config in ({"host": "h", "protocol": 4}, {"host": "h", "protocol": "3"},
                   {"host": "h", "protocol": True}, "redis://h/0?protocol=1"):
        client, err = await levredis.connect(config)
        assert client is None and isinstance(err, levredis.ConfigError), config
        assert "protocol must be 2 (RESP2) or 3 (RESP3)" in err


async def test_monitor_lines_and_a_bounded_push_queue(debug_server: RedisServer) -> None:
    monitor = await connect3(debug_server)
    assert await monitor.cmd("MONITOR") == ("OK", None)
    other = await connect3(debug_server, max_pushes=10)
    assert await other.cmd("SET", "r3:watched", "1") == ("OK", None)
    for _ in range(5):  # the MONITOR line of the SET (HELLO/AUTH lines may come first)
        item, err = await monitor.read()
        assert err is None and item is not None and item["type"] == "simple"
        if '"r3:watched"' in str(item["value"]):
            break
    else:
        raise AssertionError("no MONITOR line for the SET")
    await monitor.close()
    # A subscriber that does not read: its socket stops being read past max_pushes.
    assert (await other.cmd("SUBSCRIBE", "r3:flood"))[1] is None
    publisher = await connect3(debug_server)
    payload = "x" * 1000
    results, err = await publisher.pipeline(
        [["PUBLISH", "r3:flood", f"{i}:{payload}"] for i in range(2000)])
    assert err is None and results is not None
    await asyncio.sleep(0.2)
    # Reading stopped once a received chunk took it past the bound.
    assert other._connection.reading_paused
    assert len(other._connection.dispatch.pushes) < 2000
    for i in range(2000):  # then everything, in order
        assert await other.read() == (
            {"type": "push", "value": ["message", "r3:flood", f"{i}:{payload}"]}, None)
    await other.close()
    await publisher.close()
