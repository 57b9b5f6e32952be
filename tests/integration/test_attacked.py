"""Regressions from a hostile review of the session state machine.

Each test is one finding: a pooled connection handed on inside a
transaction, with a WATCH, with another client's SELECT or with a flag set;
a cancelled connect() that leaked a socket; a config that raised.
"""

from __future__ import annotations

import asyncio

import pytest

import levredis
from tests.clients import client_id, connect_or_fail
from tests.servers import RedisServer


async def connect(server: RedisServer, **extra: object) -> levredis.Client:
    return await connect_or_fail({"host": "127.0.0.1", "port": server.port, **extra})


async def test_a_refused_discard_leaves_the_transaction_open_so_it_is_not_pooled(
    redis_server: RedisServer,
) -> None:
    a = await connect(redis_server, timeout=5)
    first = await client_id(a)
    assert await a.cmd("MULTI") == ("OK", None)
    value, err = await a.cmd("DISCARD", "x")  # an arity error: still inside MULTI
    assert value is None and err is not None
    value, err = await a.cmd("SUBSCRIBE", "ch")  # would be queued: refused
    assert value is None and isinstance(err, levredis.UsageError)
    await a.close()
    b = await connect(redis_server)
    assert await client_id(b) != first
    assert await b.cmd("PING") == ("PONG", None)
    await b.close()


@pytest.mark.parametrize("ender", ["EXEC", "DISCARD"])
async def test_a_watch_outlives_exec_without_multi_so_it_is_not_pooled(
    redis_server: RedisServer, ender: str,
) -> None:
    a = await connect(redis_server)
    first = await client_id(a)
    assert await a.cmd("WATCH", "watched") == ("OK", None)
    value, err = await a.cmd(ender)  # "without MULTI": the WATCH stays
    assert value is None and err is not None
    await a.close()
    b = await connect(redis_server)
    assert await client_id(b) != first
    await b.close()


async def test_a_refused_multi_does_not_make_later_subscribes_look_queued(
    redis_server: RedisServer,
) -> None:
    a = await connect(redis_server)
    value, err = await a.cmd("MULTI", "x")
    assert value is None and err is not None
    assert await a.cmd("SUBSCRIBE", "after") == (["subscribe", "after", 1], None)
    assert await a.cmd("UNSUBSCRIBE") == (["unsubscribe", "after", 0], None)
    await a.close()


async def test_a_subscribe_pipelined_after_exec_waits_for_exec_to_be_answered(
    redis_server: RedisServer,
) -> None:
    client = await connect(redis_server)
    value, err = await client.pipeline([["MULTI"], ["DISCARD", "x"], ["SUBSCRIBE", "ch"]])
    assert value is None and isinstance(err, levredis.UsageError)
    await client.close(no_keepalive=True)


async def test_client_no_evict_makes_a_connection_unpoolable(redis_server: RedisServer) -> None:
    a = await connect(redis_server)
    first = await client_id(a)
    assert await a.cmd("CLIENT", "NO-EVICT", "ON") == ("OK", None)
    await a.close()
    b = await connect(redis_server)
    assert await client_id(b) != first
    info, _ = await b.cmd("CLIENT", "INFO")
    assert "flags=N " in str(info)
    await b.close()


async def test_a_call_that_awaited_a_reconnect_on_a_client_closed_meanwhile_sends_nothing(
    redis_server: RedisServer,
) -> None:
    admin = await connect(redis_server)
    await admin.cmd("SELECT", 5)
    await admin.cmd("SET", "where", "db5")
    await admin.cmd("SELECT", 0)
    await admin.cmd("SET", "where", "db0")
    client = await connect(redis_server, timeout=5)
    await admin.cmd("CLIENT", "KILL", "ID", await client_id(client))
    for _ in range(100):  # until the client has seen its connection go
        if client._connection.error is not None:
            break
        await asyncio.sleep(0.01)

    async def closes_after_the_reconnect() -> None:
        await client.cmd("CLIENT", "REPLY", "OFF")  # refused once reconnected
        await client.close()

    closer = asyncio.ensure_future(closes_after_the_reconnect())
    await asyncio.sleep(0)
    late = asyncio.ensure_future(client.cmd("SELECT", 5))
    await closer
    assert await late == (None, "closed")
    other = await connect(redis_server)
    assert await other.cmd("GET", "where") == ("db0", None)
    await other.close()
    await admin.close()


async def test_cancelling_connect_during_the_ping_check_leaks_nothing(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from levredis import _pool

    monkeypatch.setattr(_pool, "FRESH_FOR", 0.0)  # every pooled connection is PINGed
    admin = await connect(redis_server)
    idle = await connect(redis_server)
    await idle.close()  # pooled
    for _ in range(3):
        task = asyncio.ensure_future(levredis.connect(
            {"host": "127.0.0.1", "port": redis_server.port}))
        await asyncio.sleep(0)  # inside the PING check
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    [stats] = [s for s in levredis.pool_stats() if s["key"].endswith(f":{redis_server.port}/0")]
    assert stats["idle"] + stats["in_use"] == 1  # admin; the PINGed one was closed
    assert stats["discarded"] == 1
    await admin.close()


@pytest.mark.parametrize("url", [
    "redis://[::1", "redis://127.0.0.1]:6379", "rediss://user:secret@[::1:6379/0",
    "redis://[not-an-ip]:6379", "redis://h:6379/0?db=1&db=2", "redis://h:6379/0#frag",
])
async def test_a_malformed_url_is_a_config_error_not_an_exception(url: str) -> None:
    value, err = await levredis.connect(url)
    assert value is None and isinstance(err, levredis.ConfigError)
    assert "secret" not in err
