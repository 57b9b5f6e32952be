"""Blocking commands: never holding up a shared client, never losing what they popped."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

import levredis
from tests.clients import connect_or_fail
from tests.servers import RedisServer
from tests.stressing import FIGURES, size


async def connect(server: RedisServer, **extra: object) -> levredis.Client:
    return await connect_or_fail({"host": "127.0.0.1", "port": server.port, "db": 3, **extra})


async def settle() -> None:
    """Let background recoveries (CLIENT UNBLOCK, put back) finish."""
    from levredis import _blocking, _client

    for _ in range(500):
        if not _blocking.RECOVERING and not _client._UNBLOCKING:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("recoveries still running")


async def test_a_pending_blpop_never_holds_up_the_other_callers(redis_server: RedisServer) -> None:
    client = await connect(redis_server)
    await client.cmd("DEL", "empty")
    await client.cmd("SET", "k", "v")
    blpop = asyncio.ensure_future(client.cmd("BLPOP", "empty", 0))
    await asyncio.sleep(0.05)
    # Used to wait behind the BLPOP on the shared connection, for ever.
    assert await asyncio.wait_for(client.cmd("GET", "k"), 2) == ("v", None)
    blpop.cancel()
    await settle()
    await client.close()


async def test_a_consumer_loop_with_wait_for_loses_no_job(redis_server: RedisServer) -> None:
    consumer = await connect(redis_server)
    producer = await connect(redis_server)
    await producer.cmd("DEL", "jobs")
    jobs = size(30, 500)
    received: list[str] = []

    async def produce() -> None:
        rng = random.Random(7)
        for n in range(jobs):
            await asyncio.sleep(rng.choice([0, 0.001, 0.01, 0.03]))
            await producer.cmd("RPUSH", "jobs", f"job-{n}")

    producing = asyncio.ensure_future(produce())
    cancelled = 0
    for _ in range(jobs * 100):  # a lost job would otherwise mean waiting for ever
        if len(received) == jobs:
            break
        try:
            value, err = await asyncio.wait_for(consumer.cmd("BLPOP", "jobs", 0), 0.02)
        except TimeoutError:
            cancelled += 1
            continue
        assert err is None and isinstance(value, list)
        job = value[1]
        assert isinstance(job, str)
        received.append(job)
    await producing
    await settle()
    assert sorted(received) == sorted(f"job-{n}" for n in range(jobs))
    assert await producer.cmd("LLEN", "jobs") == (0, None)
    FIGURES["blocking-pop cancellation"] = {"jobs pushed": jobs, "received": len(received),
                                            "lost": jobs - len(received),
                                            "consumer calls cancelled": cancelled}
    await consumer.close()
    await producer.close()


@pytest.mark.parametrize(
    ("setup", "command", "check"),
    [
        (["RPUSH", "src", "a", "b", "c"], ["BLPOP", "src", 0], ["LRANGE", "src", 0, -1]),
        (["RPUSH", "src", "a", "b", "c"], ["BRPOP", "src", 0], ["LRANGE", "src", 0, -1]),
        (["RPUSH", "src", "a", "b", "c"], ["BLMPOP", 0, 1, "src", "LEFT", "COUNT", 2],
         ["LRANGE", "src", 0, -1]),
        (["RPUSH", "src", "a", "b", "c"], ["BLMPOP", 0, 1, "src", "RIGHT", "COUNT", 2],
         ["LRANGE", "src", 0, -1]),
        (["ZADD", "src", 1, "a", 2.5, "b"], ["BZPOPMIN", "src", 0],
         ["ZRANGE", "src", 0, -1, "WITHSCORES"]),
        (["ZADD", "src", 1, "a", 2.5, "b"], ["BZPOPMAX", "src", 0],
         ["ZRANGE", "src", 0, -1, "WITHSCORES"]),
        (["ZADD", "src", 1, "a", 2.5, "b", 3, "c"], ["BZMPOP", 0, 1, "src", "MIN", "COUNT", 2],
         ["ZRANGE", "src", 0, -1, "WITHSCORES"]),
    ],
    ids=["BLPOP", "BRPOP", "BLMPOP LEFT", "BLMPOP RIGHT", "BZPOPMIN", "BZPOPMAX", "BZMPOP"],
)
async def test_what_a_left_caller_popped_is_put_back_where_it_was(
    redis_server: RedisServer, setup: list[object], command: list[object], check: list[object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await connect(redis_server)
    other = await connect(redis_server)
    await other.cmd("DEL", "src")
    await other.cmd(*setup)
    before, _ = await other.cmd(*check)
    assert (await client.cmd(*command))[1] is None  # its own connection, now pooled
    put_back = 0
    for _ in range(size(20, 200)):
        await other.cmd("DEL", "src")
        await other.cmd(*setup)
        with caplog.at_level(logging.WARNING, logger="levredis"):
            caplog.clear()
            task = asyncio.ensure_future(client.cmd(*command))
            # Cancelled at once: before, while or after the server pops.
            for _ in range(random.randint(0, 3)):
                await asyncio.sleep(0)
            task.cancel()
            try:
                value, err = await task
            except asyncio.CancelledError:
                await settle()
                put_back += any("put back" in r.getMessage() for r in caplog.records)
                assert await other.cmd(*check) == (before, None)  # nothing lost, same order
            else:
                assert err is None and value is not None  # it finished first: it has them
    assert put_back > 0  # the race was hit
    await client.close()
    await other.close()


async def test_a_timed_out_blpop_leaves_a_later_element_in_the_list(
    redis_server: RedisServer,
) -> None:
    client = await connect(redis_server, timeout=0.2)
    other = await connect(redis_server)
    await other.cmd("DEL", "later")
    assert await client.cmd("BLPOP", "later", 0) == (None, "timeout")
    await settle()  # the server no longer waits for the gone caller
    await other.cmd("RPUSH", "later", "x")
    assert await other.cmd("LRANGE", "later", 0, -1) == (["x"], None)
    await client.close()
    await other.close()


async def test_a_blocking_command_after_select_runs_where_the_db_is(
    redis_server: RedisServer,
) -> None:
    client = await connect(redis_server)
    other = await connect(redis_server)
    await other.cmd("SELECT", 4)
    await other.cmd("RPUSH", "in4", "here")
    assert await client.cmd("SELECT", 4) == ("OK", None)
    assert await client.cmd("BLPOP", "in4", 1) == (["in4", "here"], None)
    await client.close()
    await other.close()


async def test_xread_without_block_is_an_ordinary_command(redis_server: RedisServer) -> None:
    from levredis._blocking import is_blocking

    assert not is_blocking("XREAD", ["XREAD", "STREAMS", "s", "0"])
    assert is_blocking("XREAD", ["XREAD", "block", 0, "STREAMS", "s", "$"])
    assert is_blocking("BLPOP", ["BLPOP", "k", 0])
