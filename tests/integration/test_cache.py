"""The client-side cache on real servers: what it answers, and the freshness rules 1-5."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import levredis
from levredis import _cache
from levredis._cache import ALL, READ, WRITE, CommandRules
from tests.faultproxy import FaultProxy
from tests.servers import RedisServer


@pytest.fixture
def parser() -> str:
    """RESP3 has one parser: these tests run once, not once per RESP2 parser."""
    return "resp3"


@pytest.fixture(scope="module")
def cache_server() -> Iterator[RedisServer]:
    server = RedisServer(["--enable-debug-command", "yes"]).start()
    yield server
    server.cleanup()


async def connect_cached(server: RedisServer, **options: Any) -> levredis.Client:
    cache = options.pop("cache", {"max_entries": 1000})
    client, err = await levredis.connect({"host": "127.0.0.1", "port": server.port,
                                          "protocol": 3, "timeout": 5, "cache": cache,
                                          **options})
    assert client is not None, err
    return client


@pytest.fixture
async def other(cache_server: RedisServer) -> AsyncIterator[levredis.Client]:
    """Another client (no cache): the writes the caching client must hear about."""
    client, err = await levredis.connect(cache_server.address)
    assert client is not None, err
    await client.cmd("FLUSHALL")
    await client.cmd("CONFIG", "RESETSTAT")
    yield client
    await client.close(no_keepalive=True)


async def server_calls(client: levredis.Client, command: str) -> int:
    """How many times the server ran ``command`` (INFO commandstats)."""
    info, err = await client.cmd("INFO", "commandstats")
    assert err is None
    for line in str(info).splitlines():
        if line.startswith(f"cmdstat_{command}:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def pending_fills(client: levredis.Client) -> dict[bytes, object]:
    cache = client._connection.cache
    assert cache is not None
    return cache._pending  # type: ignore[return-value]


def cache_figures() -> dict[str, int]:
    for pool in levredis.pool_stats():
        if "cache" in pool:
            return pool["cache"]
    raise AssertionError("no caching pool")


# -- what is cached ------------------------------------------------------------------------


async def test_a_second_read_is_answered_from_the_cache(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server)
    await other.cmd("SET", "k", "v1")
    assert await client.cmd("GET", "k") == ("v1", None)
    assert await client.cmd("GET", "k") == ("v1", None)
    assert await client.cmd("GET", "missing") == (None, "not found")
    assert await client.cmd("GET", "missing") == (None, "not found")
    assert await server_calls(other, "get") == 2
    figures = cache_figures()
    assert figures["hits"] == 2 and figures["misses"] == 2 and figures["entries"] == 2
    assert figures["bytes"] > 0
    await client.close()


CACHED = [
    ("GET", "s"), ("MGET", "s", "s2"), ("STRLEN", "s"), ("GETRANGE", "s", "0", "1"),
    ("EXISTS", "s", "h"), ("TYPE", "s"), ("HGET", "h", "a"), ("HGETALL", "h"),
    ("HMGET", "h", "a", "b"), ("HLEN", "h"), ("SMEMBERS", "set"), ("SISMEMBER", "set", "x"),
    ("SCARD", "set"), ("LRANGE", "l", "0", "-1"), ("LINDEX", "l", "0"), ("LLEN", "l"),
    ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("ZSCORE", "z", "m"), ("ZCARD", "z"),
    ("ZUNION", "2", "z", "z2"), ("LCS", "s", "s2"), ("EXPIRETIME", "s"),
]
NOT_CACHED = [
    ("TTL", "s"), ("PTTL", "s"), ("RANDOMKEY",), ("SRANDMEMBER", "set"),
    ("HRANDFIELD", "h"), ("ZRANDMEMBER", "z"), ("SCAN", "0"), ("HSCAN", "h", "0"),
    ("EVAL_RO", "return 1", "0"), ("DUMP", "s"), ("PFCOUNT", "hll"),
    ("SORT_RO", "l", "BY", "w*"), ("OBJECT", "IDLETIME", "s"), ("DBSIZE",), ("PING",),
    # Read-only by their flags, yet not cacheable (found by the review): TOUCH is
    # run for its effect; subcommands report the server's own view of a key.
    ("TOUCH", "s"), ("OBJECT", "ENCODING", "s"), ("MEMORY", "USAGE", "h"),
    ("XINFO", "STREAM", "st"), ("XINFO", "GROUPS", "st"),
]
CONTAINERS = ("OBJECT", "MEMORY", "XINFO")


async def test_cacheable_commands_come_from_the_servers_command_table(
        cache_server: RedisServer, other: levredis.Client) -> None:
    await other.pipeline([["SET", "s", "abc"], ["SET", "s2", "abd"], ["HSET", "h", "a", "1"],
                          ["SADD", "set", "x"], ["RPUSH", "l", "3", "1"],
                          ["ZADD", "z", "1", "m"], ["PFADD", "hll", "a"],
                          ["XADD", "st", "*", "f", "v"]])
    client = await connect_cached(cache_server)
    for command in CACHED + NOT_CACHED:
        first = await client.cmd(*command)
        again = await client.cmd(*command)
        assert first[1] is None or first[1] == "not found", (command, first)
        name = command[0].lower() + (
            "|" + command[1].lower() if command[0] in CONTAINERS else "")
        calls = await server_calls(other, name)
        if command in CACHED:
            assert calls == 1, f"{command} should be answered from the cache ({calls} calls)"
            assert again == first, command
        else:
            assert calls == 2, f"{command} must reach the server every time ({calls} calls)"
        await other.cmd("CONFIG", "RESETSTAT")
    await client.close()


async def test_command_rules_name_the_keys_reads_and_writes_touch(
        other: levredis.Client) -> None:
    table, err = await other.cmd("COMMAND")
    assert err is None
    rules = CommandRules(table)
    assert rules.classify("GET", ["GET", "k"]) == (READ, [b"k"])
    assert rules.classify("MGET", ["MGET", "a", "b"]) == (READ, [b"a", b"b"])
    assert rules.classify("ZUNION", ["ZUNION", "2", "a", "b", "WITHSCORES"]) == (
        READ, [b"a", b"b"])
    assert rules.classify("SET", ["SET", "k", "v"]) == (WRITE, [b"k"])
    assert rules.classify("MSET", ["MSET", "a", "1", "b", "2"]) == (WRITE, [b"a", b"b"])
    assert rules.classify("BLMOVE", ["BLMOVE", "a", "b", "LEFT", "LEFT", "0"]) == (
        WRITE, [b"a", b"b"])
    assert rules.classify("XGROUP", ["XGROUP", "CREATE", "st", "g", "$"]) == (WRITE, [b"st"])
    assert rules.classify("GEORADIUS", ["GEORADIUS", "g", "0", "0", "1", "km", "STORE",
                                        "dst"]) == (WRITE, [b"dst"])  # g is only read
    assert rules.classify("COPY", ["COPY", "a", "b"]) == (WRITE, [b"b"])
    assert rules.classify("XREADGROUP", ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1",
                                         "s2", ">", ">"]) == (WRITE, [])
    for everything in (["FLUSHALL"], ["FLUSHDB"], ["SWAPDB", "0", "1"],
                       ["EVAL", "return 1", "1", "k"], ["FCALL", "f", "0"],
                       ["SORT", "l", "STORE", "d"], ["MIGRATE", "h", "1", "k", "0", "1"],
                       ["NOSUCHCOMMAND"]):
        assert rules.classify(everything[0], everything) == (WRITE, ALL), everything
    for neither in (["PING"], ["TTL", "k"], ["INFO"], ["CLIENT", "ID"], ["PUBLISH", "c", "m"]):
        assert rules.classify(neither[0], neither) is None, neither
    assert rules.classify("EXEC", ["EXEC"]) is None  # what it ran was named when queued


async def test_a_reply_is_a_copy_the_caller_may_change(
        cache_server: RedisServer, other: levredis.Client) -> None:
    await other.cmd("HSET", "h", "a", "1")
    await other.cmd("RPUSH", "l", "x", "y")
    await other.cmd("ZADD", "z", "1", "m")
    client = await connect_cached(cache_server)
    for _ in range(2):
        mapping, _ = await client.cmd("HGETALL", "h")
        assert isinstance(mapping, dict)
        mapping["b"] = "2"
        items, _ = await client.cmd("LRANGE", "l", "0", "-1")
        assert isinstance(items, list)
        items.append("z")
        pairs, _ = await client.cmd("ZRANGE", "z", "0", "-1", "WITHSCORES")
        assert isinstance(pairs, list) and isinstance(pairs[0], list)
        pairs[0].append("junk")
    assert await client.cmd("HGETALL", "h") == ({"a": "1"}, None)
    assert await client.cmd("LRANGE", "l", "0", "-1") == (["x", "y"], None)
    assert await client.cmd("ZRANGE", "z", "0", "-1", "WITHSCORES") == ([["m", 1.0]], None)
    await client.close()


async def test_entries_are_per_command_shown_in_cfg_and_kept_by_pooled_connections(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server, cache={"max_entries": 50, "max_age": 30})
    assert client.cfg["cache"] == {"max_entries": 50, "max_bytes": 64 * 1024 * 1024,
                                   "max_age": 30.0, "prefixes": None}
    await other.cmd("SET", "warm", "v")
    await client.cmd("GET", "warm")
    await client.cmd("get", "warm")  # another command, another entry
    assert cache_figures()["entries"] == 2
    await client.close()  # back to the pool, entries and all
    again = await connect_cached(cache_server, cache={"max_entries": 50, "max_age": 30})
    assert await again.cmd("GET", "warm") == ("v", None)
    assert await server_calls(other, "get") == 2  # the pooled connection started warm
    await again.close()


# -- rule 1: read after an acknowledged write ---------------------------------------------------


async def test_rule1_a_read_after_one_round_trip_sees_another_clients_write(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server)
    keys = [f"r1:{n}" for n in range(50)]
    for round_number in range(20):
        for key in keys:
            assert (await other.cmd("SET", key, str(round_number)))[1] is None
        assert await client.cmd("PING") == ("PONG", None)  # one round trip
        for key in keys:
            assert await client.cmd("GET", key) == (str(round_number), None), key
            await client.cmd("GET", key)  # a hit
    assert cache_figures()["hits"] >= 20 * 50
    await client.close()


async def test_own_writes_are_seen_at_once_without_a_round_trip(
        cache_server: RedisServer, other: levredis.Client) -> None:
    """The server tells a connection of its own writes only after their reply."""
    client = await connect_cached(cache_server)
    for n in range(30):
        assert (await client.cmd("GET", "own"))[1] in (None, "not found")
        assert await client.cmd("SET", "own", str(n)) == ("OK", None)
        assert await client.cmd("GET", "own") == (str(n), None)
        assert await client.pipeline([["INCR", "own"]]) == ([[n + 1]], None)
        assert await client.cmd("GET", "own") == (str(n + 1), None)
    # a transaction, command by command and in one pipeline
    await client.cmd("GET", "own")
    assert await client.cmd("MULTI") == ("OK", None)
    assert await client.cmd("SET", "own", "tx") == ("QUEUED", None)
    assert await client.cmd("GET", "own") == ("QUEUED", None)  # inside MULTI: not cached
    assert await client.cmd("EXEC") == (["OK", "tx"], None)
    assert await client.cmd("GET", "own") == ("tx", None)
    assert (await client.pipeline([["MULTI"], ["SET", "own", "tx2"], ["EXEC"]]))[1] is None
    assert await client.cmd("GET", "own") == ("tx2", None)
    # a blocking command that runs on a connection of its own
    await other.cmd("RPUSH", "queue", "a", "b")
    assert await client.cmd("LRANGE", "queue", "0", "-1") == (["a", "b"], None)
    assert await client.cmd("BLMOVE", "queue", "done", "LEFT", "LEFT", "1") == ("a", None)
    assert await client.cmd("LRANGE", "queue", "0", "-1") == (["b"], None)
    # a write whose keys cannot be told empties the cache
    assert await client.cmd("EVAL", "return redis.call('SET', 'own', 'lua')", "0") == (
        "OK", None)
    assert await client.cmd("GET", "own") == ("lua", None)
    await client.close()


async def test_own_writes_are_seen_at_once_when_the_invalidation_comes_later(
        cache_server: RedisServer, other: levredis.Client) -> None:
    """Reply and invalidation in separate reads (here: bytes trickle in one by one)."""
    async with FaultProxy(cache_server.port) as proxy:
        client, err = await levredis.connect({"host": "127.0.0.1", "port": proxy.port,
                                              "protocol": 3, "timeout": 5, "cache": True})
        assert client is not None, err
        proxy.arm("trickle")
        for n in range(3):
            await client.cmd("GET", "split")
            assert await client.cmd("SET", "split", str(n)) == ("OK", None)
            assert await client.cmd("GET", "split") == (str(n), None)
        assert await client.cmd("GET", "queue:split") == (None, "not found")
        assert (await client.pipeline([["RPUSH", "queue:split", "a"]]))[1] is None
        assert await client.cmd("LRANGE", "queue:split", "0", "-1") == (["a"], None)
        await client.cmd("MULTI")
        await client.cmd("SET", "split", "tx")
        assert await client.cmd("EXEC") == (["OK"], None)
        assert await client.cmd("GET", "split") == ("tx", None)
        await client.close()


# -- rule 2: a reply that raced with an invalidation is not kept ------------------------------------


async def test_rule2_a_reply_overtaken_by_its_invalidation_is_not_kept(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server)
    for n in range(10):
        key = f"race:{n}"
        await other.cmd("SET", key, "old")
        reading = asyncio.ensure_future(client.cmd("GET", key))
        await asyncio.sleep(0)  # the GET is written; its reply is on the way
        time.sleep(0.05)  # noqa: ASYNC251  # the loop is held: the server answers the GET
        # ... and a write from elsewhere lands right behind that reply, so
        # reply and invalidation arrive together, before the reader runs again.
        assert cache_server.command("SET", key, "new").startswith("+OK")
        time.sleep(0.05)  # noqa: ASYNC251  # ... and the invalidation is in the socket too
        assert await reading == ("old", None)
        assert await client.cmd("GET", key) == ("new", None), "kept a stale reply"
    await client.close()


# -- rule 3: lost connections, FLUSHALL, tracking table overflow -------------------------------------


async def test_rule3_a_lost_connection_takes_its_entries_with_it(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server)
    await other.cmd("SET", "lost", "before")
    assert await client.cmd("GET", "lost") == ("before", None)
    client_id, _ = await client.cmd("CLIENT", "ID")
    assert await other.cmd("CLIENT", "KILL", "ID", str(client_id)) == (1, None)
    await other.cmd("SET", "lost", "after")
    await asyncio.sleep(0.05)  # the loop hears the connection close
    assert cache_figures()["entries"] == 0
    assert await client.cmd("GET", "lost") == ("after", None)
    await client.close()


async def test_rule3_a_restarted_server_is_read_again(own_server: RedisServer) -> None:
    client = await connect_cached(own_server)
    writer, _ = await levredis.connect(own_server.address)
    assert writer is not None
    await writer.cmd("SET", "restart", "before")
    await writer.close(no_keepalive=True)
    assert await client.cmd("GET", "restart") == ("before", None)
    own_server.restart()  # nothing is saved: the key is gone
    await asyncio.sleep(0.05)
    assert await client.cmd("GET", "restart") == (None, "not found")
    await client.close()


async def test_rule3_flushall_empties_the_cache(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server)
    await other.cmd("MSET", "f1", "1", "f2", "2")
    assert await client.cmd("MGET", "f1", "f2") == (["1", "2"], None)
    assert await client.cmd("GET", "f1") == ("1", None)
    await other.cmd("FLUSHALL")
    await client.cmd("PING")
    assert cache_figures()["entries"] == 0
    assert await client.cmd("GET", "f1") == (None, "not found")
    await client.close()


async def test_rule3_tracking_table_overflow_invalidates_what_the_server_forgets(
        cache_server: RedisServer, other: levredis.Client) -> None:
    await other.cmd("CONFIG", "SET", "tracking-table-max-keys", "10")
    try:
        client = await connect_cached(cache_server)
        keys = [f"over:{n}" for n in range(50)]
        await other.cmd("MSET", *[part for key in keys for part in (key, "old")])
        for key in keys:
            assert await client.cmd("GET", key) == ("old", None)
        await client.cmd("PING")
        assert cache_figures()["entries"] <= 11  # the rest the server stopped tracking
        await other.cmd("MSET", *[part for key in keys for part in (key, "new")])
        await client.cmd("PING")
        for key in keys:
            assert await client.cmd("GET", key) == ("new", None), key
        await client.close()
    finally:
        await other.cmd("CONFIG", "SET", "tracking-table-max-keys", "1000000")


async def test_rule3_a_pooled_connection_reused_with_other_decoding_starts_empty(
        cache_server: RedisServer, other: levredis.Client) -> None:
    await other.cmd("SET", "dec", "v")
    client = await connect_cached(cache_server)
    assert await client.cmd("GET", "dec") == ("v", None)
    await client.close()
    raw = await connect_cached(cache_server, decode=False)
    assert await raw.cmd("GET", "dec") == (b"v", None)
    await raw.close()


# -- rule 4: cancellation and timeouts during a fill -------------------------------------------------


async def test_rule4_a_cancelled_fill_keeps_nothing(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server)
    for steps in range(6):
        key = f"cancel:{steps}"
        await other.cmd("SET", key, "old")
        reading = asyncio.ensure_future(client.cmd("GET", key))
        for _ in range(steps):
            await asyncio.sleep(0)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        if reading.cancelled():
            await asyncio.sleep(0.01)  # its reply arrives, and is dropped
            assert cache_figures()["entries"] == steps and len(pending_fills(client)) == 0
        await other.cmd("SET", key, "new")
        await client.cmd("PING")
        assert await client.cmd("GET", key) == ("new", None), steps
    await client.close()


async def test_rule4_a_fill_that_times_out_keeps_nothing(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server, timeout=0.2)
    await other.cmd("SET", "slow", "old")
    stall = asyncio.ensure_future(other.cmd("DEBUG", "SLEEP", "0.5"))
    await asyncio.sleep(0.05)
    assert await client.cmd("GET", "slow") == (None, "timeout")
    await stall
    await other.cmd("SET", "slow", "new")
    assert cache_figures()["entries"] == 0
    assert await client.cmd("GET", "slow") == ("new", None)
    await client.close()


# -- rule 5: bounds --------------------------------------------------------------------------------


async def test_rule5_entries_and_bytes_stay_within_their_bounds(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server, cache={"max_entries": 10,
                                                       "max_bytes": 64 * 1024})
    await other.cmd("SET", "hot", "h")
    await other.cmd("SET", "big", "x" * 100_000)  # over max_bytes: never kept
    for n in range(100):
        await other.cmd("SET", f"b:{n}", "v" * 1000)
        await client.cmd("GET", f"b:{n}")
        await client.cmd("GET", "hot")  # read often: never the least recently used
        await client.cmd("GET", "big")
        figures = cache_figures()
        assert figures["entries"] <= 10 and figures["bytes"] <= 64 * 1024
    assert cache_figures()["evictions"] >= 90
    before = await server_calls(other, "get")
    assert await client.cmd("GET", "hot") == ("h", None)
    assert await server_calls(other, "get") == before  # still cached: used most recently
    await client.close()


async def test_max_age_bounds_how_long_an_entry_is_served(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server, cache={"max_age": 0.1})
    await other.cmd("SET", "aged", "v")
    await client.cmd("GET", "aged")
    await client.cmd("GET", "aged")
    await asyncio.sleep(0.15)
    await client.cmd("GET", "aged")
    assert await server_calls(other, "get") == 2
    await client.close()


async def test_an_entry_is_never_served_past_its_keys_expiry(
        cache_server: RedisServer, other: levredis.Client) -> None:
    """Even while the server has not deleted the key yet (its active expiry off here)."""
    await other.cmd("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        client = await connect_cached(cache_server)
        await other.cmd("SET", "session", "alice", "PX", "200")
        await other.cmd("SET", "forever", "bob")
        assert await client.cmd("MGET", "session", "forever") == (["alice", "bob"], None)
        assert await client.cmd("GET", "session") == ("alice", None)
        assert await client.cmd("GET", "session") == ("alice", None)  # a hit
        await asyncio.sleep(0.3)
        assert await client.cmd("GET", "session") == (None, "not found")
        assert await client.cmd("MGET", "session", "forever") == ([None, "bob"], None)
        assert await client.cmd("GET", "forever") == ("bob", None)
        await client.close()
    finally:
        await other.cmd("DEBUG", "SET-ACTIVE-EXPIRE", "1")


async def test_a_user_without_pttl_gets_no_entries_kept(
        cache_server: RedisServer, other: levredis.Client) -> None:
    await other.cmd("ACL", "SETUSER", "nopttl", "on", ">pw", "~*", "+@all", "-pttl")
    try:
        client = await connect_cached(cache_server, auth={"user": "nopttl", "pass": "pw"})
        await other.cmd("SET", "acl", "v")
        assert await client.cmd("GET", "acl") == ("v", None)
        assert await client.cmd("GET", "acl") == ("v", None)
        assert await server_calls(other, "get") == 2 and cache_figures()["entries"] == 0
        await client.close()
    finally:
        await other.cmd("ACL", "DELUSER", "nopttl")


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_max_bytes_bounds_the_memory_really_held(
        cache_server: RedisServer, other: levredis.Client) -> None:
    """Python objects counted as what they cost, not as their string lengths."""
    import gc
    import tracemalloc

    for n in range(20):
        await other.cmd("RPUSH", f"long:{n}", *[f"{i % 100:02d}" for i in range(2_000)])
    client = await connect_cached(cache_server, cache={"max_bytes": 1 << 19})
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(20):
            value, err = await client.cmd("LRANGE", f"long:{n}", "0", "-1")
            assert err is None and len(value) == 2_000  # type: ignore[arg-type]
            del value
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    figures = cache_figures()
    assert figures["bytes"] <= 1 << 19 and figures["entries"] >= 1
    assert held <= 1.5 * (1 << 19), f"{held:,} bytes held for max_bytes 512 KiB"
    await client.close()


# -- found by the second review ------------------------------------------------------------------------


async def test_a_warm_pooled_replacement_is_brought_up_to_date_before_it_answers(
        cache_server: RedisServer, other: levredis.Client) -> None:
    """An idle caching connection whose link is slow still holds an entry its
    invalidation has not reached yet: the pool's round trip at checkout waits for it."""
    await other.cmd("SET", "warm:k", "old")
    async with FaultProxy(cache_server.port) as proxy:
        config = {"host": "127.0.0.1", "port": proxy.port, "protocol": 3, "cache": True,
                  "timeout": 5}
        x, _ = await levredis.connect(config)
        y, _ = await levredis.connect(config)
        assert x is not None and y is not None
        assert await y.cmd("GET", "warm:k") == ("old", None)
        await y.close()  # idle in the pool, holding warm:k
        proxy.slow_down(1, 0.5)  # y's link: its invalidation will come late
        assert await x.cmd("SET", "warm:k", "new") == ("OK", None)
        x_id, _ = await x.cmd("CLIENT", "ID")
        assert await other.cmd("CLIENT", "KILL", "ID", str(x_id)) == (1, None)
        await asyncio.sleep(0.05)
        # x's replacement is y's connection, from the pool: it must not answer "old".
        assert await x.cmd("GET", "warm:k") == ("new", None)
        await x.close()


async def test_a_connection_handed_over_at_the_cap_starts_empty(
        cache_server: RedisServer, other: levredis.Client) -> None:
    await other.cmd("SET", "handed", "v")
    first = await connect_cached(cache_server, max_connections=1)
    assert await first.cmd("GET", "handed") == ("v", None)
    waiting = asyncio.ensure_future(connect_cached(cache_server, max_connections=1))
    await asyncio.sleep(0.05)  # at the cap: it waits for first's connection
    await first.close()
    second = await waiting
    assert cache_figures()["entries"] == 0
    assert await second.cmd("GET", "handed") == ("v", None)
    assert await server_calls(other, "get") == 2
    await second.close()


class CaseBlind(str):
    """A str whose == ignores case (as some codebases have for names)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.lower() == other.lower()

    def __hash__(self) -> int:
        return hash(self.lower())


class Tag:
    """Neither str, bytes, int nor float: an argument levredis refuses."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return other == self.text

    def __hash__(self) -> int:
        return hash(self.text)


class BadHash(str):
    def __hash__(self) -> int:
        raise ValueError("no hash today")


async def test_hits_match_arguments_by_their_bytes_not_by_python_equality(
        cache_server: RedisServer, other: levredis.Client) -> None:
    await other.cmd("SET", "user", "lower")
    await other.cmd("SET", "USER", "UPPER")
    client = await connect_cached(cache_server)
    assert await client.cmd("GET", "user") == ("lower", None)
    assert await client.cmd("GET", CaseBlind("USER")) == ("UPPER", None)
    value, err = await client.cmd("GET", Tag("user"))
    assert value is None and isinstance(err, levredis.UsageError)
    assert await client.cmd("GET", BadHash("user")) == ("lower", None)  # no exception
    await client.close()


class _PosingAsStr(str):
    """Claims to be exactly str, hashes and compares like another key."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return str

    def __hash__(self) -> int:
        return hash("user")

    def __eq__(self, other: object) -> bool:
        return other == "user" or str.__eq__(self, other)


class _PosingUnhashable(_PosingAsStr):
    def __hash__(self) -> int:
        raise RuntimeError("no hash today")


@pytest.mark.parametrize("check", ["compiled", "pure"])
async def test_a_faked_class_gets_no_hit_with_either_check(
        cache_server: RedisServer, other: levredis.Client, check: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if check == "pure":  # as a build without a C compiler has it
        monkeypatch.setattr(_cache, "plain_args", _cache.plain_args_pure)
    await other.cmd("SET", "user", "lower")
    await other.cmd("SET", "USER", "UPPER")
    client = await connect_cached(cache_server)
    assert await client.cmd("GET", "user") == ("lower", None)
    assert await client.cmd("GET", "user") == ("lower", None)  # a hit now
    assert await client.cmd("GET", _PosingAsStr("USER")) == ("UPPER", None)
    assert await client.cmd("GET", _PosingUnhashable("USER")) == ("UPPER", None)
    await client.close()


async def test_a_hit_is_not_served_to_another_event_loop(cache_server: RedisServer) -> None:
    client = await connect_cached(cache_server)
    await client.cmd("SET", "loop", "v")
    assert await client.cmd("GET", "loop") == ("v", None)
    answer: list[tuple[object, object]] = []
    thread = threading.Thread(target=lambda: answer.append(asyncio.run(client.cmd("GET", "loop"))))
    thread.start()
    thread.join()
    value, err = answer[0]
    assert value is None and isinstance(err, levredis.UsageError) and "another event loop" in err
    await client.close()


def test_a_hit_is_not_served_to_another_loop_of_the_same_thread(
        cache_server: RedisServer) -> None:
    home = asyncio.new_event_loop()  # open, idle, while another loop runs in this thread
    try:
        client = home.run_until_complete(connect_cached(cache_server))
        home.run_until_complete(client.cmd("SET", "loop", "v"))
        assert home.run_until_complete(client.cmd("GET", "loop")) == ("v", None)

        async def elsewhere() -> tuple[object, object]:
            return await client.cmd("GET", "loop")

        value, err = asyncio.run(elsewhere())
        assert value is None and isinstance(err, levredis.UsageError)
        assert "another event loop" in err
        home.run_until_complete(client.close())
    finally:
        home.close()


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_max_bytes_counts_keys_and_their_index_too(
        cache_server: RedisServer, other: levredis.Client) -> None:
    import gc
    import tracemalloc

    keys = [f"many:{n}" for n in range(2_000)]
    await other.cmd("MSET", *[part for key in keys for part in (key, "v")])
    client = await connect_cached(cache_server, cache={"max_bytes": 1 << 20})
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(10):
            value, err = await client.cmd("MGET", *keys[n:n + 1_990])
            assert err is None
            del value
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache_figures()["bytes"] <= 1 << 20
    assert held <= 1.5 * (1 << 20), f"{held:,} bytes held for max_bytes 1 MiB"
    await client.close()


async def test_reads_that_write_nothing_cached_leave_the_cache_alone(
        cache_server: RedisServer, other: levredis.Client) -> None:
    """XREADGROUP changes consumer-group state only; PUBLISH no key at all."""
    await other.cmd("SET", "stay", "v")
    await other.cmd("XADD", "events", "*", "f", "v")
    await other.cmd("XGROUP", "CREATE", "events", "g", "0")
    client = await connect_cached(cache_server)
    await client.cmd("GET", "stay")
    assert (await client.cmd("XREADGROUP", "GROUP", "g", "c", "STREAMS", "events", ">"))[1] is None
    assert await client.cmd("PUBLISH", "news", "hello") == (0, None)
    assert cache_figures()["entries"] == 1
    assert await client.cmd("SORT", "nothing") == ([], None)  # its STORE key can't be told
    assert cache_figures()["entries"] == 0
    await client.close()


@pytest.mark.parametrize("prefixes", [["user:", "user:1"], ["a", "a"], [b"x", "x"]])
async def test_overlapping_prefixes_are_a_config_error(prefixes: list[object]) -> None:
    client, err = await levredis.connect({"host": "127.0.0.1", "protocol": 3,
                                          "cache": {"prefixes": prefixes}})
    assert client is None and isinstance(err, levredis.ConfigError) and "overlap" in err


# -- what bypasses it, what is refused ---------------------------------------------------------------


async def test_pipelines_and_transactions_bypass_the_cache(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server)
    await other.cmd("SET", "p", "1")
    await client.cmd("GET", "p")
    assert await client.pipeline([["GET", "p"], ["GET", "p"]]) == ([["1"], ["1"]], None)
    assert await server_calls(other, "get") == 3
    assert cache_figures()["hits"] == 0
    await client.close()


async def test_session_changes_are_refused_on_a_caching_client(
        cache_server: RedisServer) -> None:
    client = await connect_cached(cache_server)
    for command in (["SELECT", "1"], ["CLIENT", "TRACKING", "OFF"], ["HELLO", "3"],
                    ["CLIENT", "CACHING", "NO"], ["MONITOR"], ["AUTH", "someone", "pw"]):
        value, err = await client.cmd(*command)
        assert value is None and isinstance(err, levredis.UsageError), command
        assert "caching client" in err
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()


@pytest.mark.parametrize(("cache", "protocol", "message"), [
    ({"max_entries": 10}, 2, "cache needs protocol 3"),
    ({"max_entries": 0}, 3, "cache max_entries must be an integer"),
    ({"max_bytes": 10}, 3, "cache max_bytes must be an integer"),
    ({"max_age": -1}, 3, "cache max_age must be a finite number"),
    ({"prefixes": "user:"}, 3, "cache prefixes must be a list"),
    ({"size": 10}, 3, "unknown cache setting 'size'"),
    ("yes", 3, "cache must be True or a mapping"),
])
async def test_cache_settings_are_checked(cache: object, protocol: int, message: str) -> None:
    client, err = await levredis.connect({"host": "127.0.0.1", "protocol": protocol,
                                          "cache": cache})
    assert client is None and isinstance(err, levredis.ConfigError) and message in err, err


async def test_the_cluster_client_refuses_a_cache() -> None:
    client, err = await levredis.connect_cluster({"nodes": ["127.0.0.1:7000"], "protocol": 3,
                                                  "cache": True})
    assert client is None and isinstance(err, levredis.ConfigError)
    assert "not supported by connect_cluster" in err


async def test_broadcast_mode_caches_only_keys_with_its_prefixes(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server, cache={"prefixes": ["user:"]})
    await other.cmd("MSET", "user:1", "ann", "order:1", "tea")
    for _ in range(2):
        assert await client.cmd("GET", "user:1") == ("ann", None)
        assert await client.cmd("GET", "order:1") == ("tea", None)
    assert await server_calls(other, "get") == 3  # user:1 once, order:1 twice
    await other.cmd("SET", "user:1", "bob")
    await client.cmd("PING")
    assert await client.cmd("GET", "user:1") == ("bob", None)
    await client.close()


async def test_an_expired_key_is_invalidated_by_the_server(
        cache_server: RedisServer, other: levredis.Client) -> None:
    client = await connect_cached(cache_server)
    await other.cmd("SET", "short", "v", "PX", "100")
    assert await client.cmd("GET", "short") == ("v", None)
    for _ in range(100):  # the server's active expiry runs ten times a second
        await asyncio.sleep(0.05)
        if (await client.cmd("GET", "short"))[1] == "not found":
            break
    assert await client.cmd("GET", "short") == (None, "not found")
    await client.close()
