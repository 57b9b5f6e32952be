"""The fault matrix: {stall, trickle, cut, RST, garbage} x {connect, AUTH, cmd,
pipeline, read, a connection idle in the pool}, through a proxy in front of a
real redis-server.

Every cell: the call returns ``(None, err)`` with a clear reason (or the right
value, for trickle), the faulty connection is never pooled, the next call on a
fresh connection works, and no file descriptor is left open.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable

import pytest

import levredis
from levredis import _pool
from tests.faultproxy import FAULTS, FaultProxy
from tests.servers import ALICE, RedisServer, process_fd_count, sockets_connected_to

TIMEOUT = 0.3
# A hang fails the test instead of stalling the suite (a liveness guard, not a timing claim).
GUARD = 20.0

EXPECTED = {
    "stall": "timeout",
    "cut": "connection closed by server",
    "rst": "connection reset by peer",
    "garbage": "protocol error",
}


def check_error(fault: str, value: object, err: object) -> None:
    assert value is None, (fault, value)
    assert isinstance(err, levredis.NetworkError), (fault, err)
    assert EXPECTED[fault] in err, (fault, err)


def config(proxy: FaultProxy, **extra: object) -> dict[str, object]:
    return {"host": "127.0.0.1", "port": proxy.port, "timeout": TIMEOUT, **extra}


async def connect(settings: dict[str, object]) -> levredis.Client:
    client, err = await levredis.connect(settings)
    assert client is not None, err
    return client


def idle_count() -> int:
    return sum(stats["idle"] for stats in levredis.pool_stats())


async def cell_connect(proxy: FaultProxy, fault: str, server: RedisServer) -> None:
    settings = config(proxy, db=1)  # SELECT makes connect() wait for a reply
    proxy.arm(fault)
    client, err = await levredis.connect(settings)
    if fault == "trickle":
        assert client is not None, err
        assert await client.cmd("ECHO", "slow") == ("slow", None)
        await client.close()
    else:
        check_error(fault, client, err)
    proxy.arm(None)
    fresh = await connect(settings)
    assert await fresh.cmd("PING") == ("PONG", None)
    await fresh.close(no_keepalive=True)


async def cell_auth(proxy: FaultProxy, fault: str, server: RedisServer) -> None:
    settings = config(proxy, auth={"user": ALICE[0], "pass": ALICE[1]})
    proxy.arm(fault)
    client, err = await levredis.connect(settings)
    if fault == "trickle":
        assert client is not None, err
        assert await client.cmd("ACL", "WHOAMI") == ("alice", None)
        await client.close()
    else:
        check_error(fault, client, err)
        assert ALICE[1] not in str(err)
    proxy.arm(None)
    fresh = await connect(settings)
    assert await fresh.cmd("ACL", "WHOAMI") == ("alice", None)
    await fresh.close(no_keepalive=True)


async def cell_cmd(proxy: FaultProxy, fault: str, server: RedisServer) -> None:
    client = await connect(config(proxy))
    await client.cmd("SET", "matrix:key", "value")
    proxy.arm(fault)
    value, err = await client.cmd("GET", "matrix:key")
    if fault == "trickle":
        assert (value, err) == ("value", None)
    else:
        check_error(fault, value, err)
    proxy.arm(None)
    assert await client.cmd("GET", "matrix:key") == ("value", None)  # a fresh connection
    await client.close()
    if fault != "trickle":
        assert proxy.connections == 2


async def cell_pipeline(proxy: FaultProxy, fault: str, server: RedisServer) -> None:
    client = await connect(config(proxy))
    commands = [["SET", "matrix:p", "1"], ["INCR", "matrix:p"], ["GET", "matrix:p"]]
    proxy.arm(fault)
    results, err = await client.pipeline(commands)
    if fault == "trickle":
        assert (results, err) == ([["OK"], [2], ["2"]], None)
    else:
        check_error(fault, results, err)
    proxy.arm(None)
    assert await client.pipeline(commands) == ([["OK"], [2], ["2"]], None)
    await client.close()


async def cell_read(proxy: FaultProxy, fault: str, server: RedisServer) -> None:
    subscriber = await connect(config(proxy))
    assert await subscriber.cmd("SUBSCRIBE", "matrix:ch") == (["subscribe", "matrix:ch", 1], None)
    publisher, _ = await levredis.connect(server.address)
    assert publisher is not None
    proxy.arm(fault)
    await publisher.cmd("PUBLISH", "matrix:ch", "hello")
    message, err = await subscriber.read()
    if fault == "trickle":
        assert message == {"type": "array", "value": ["message", "matrix:ch", "hello"]}
    else:
        check_error(fault, message, err)
    await subscriber.close()
    proxy.arm(None)
    fresh = await connect(config(proxy))
    await fresh.cmd("SUBSCRIBE", "matrix:ch")
    await publisher.cmd("PUBLISH", "matrix:ch", "again")
    assert await fresh.read() == (
        {"type": "array", "value": ["message", "matrix:ch", "again"]}, None)
    await fresh.close()
    await publisher.close(no_keepalive=True)


async def cell_idle(proxy: FaultProxy, fault: str, server: RedisServer) -> None:
    settings = config(proxy)
    client = await connect(settings)
    first, _ = await client.cmd("CLIENT", "ID")
    await client.close()
    assert idle_count() == 1
    proxy.strike(fault)  # the pooled connection is hit while nobody uses it
    await asyncio.sleep(0.05)
    again = await connect(settings)
    value, err = await again.cmd("CLIENT", "ID")
    assert err is None and isinstance(value, int)
    if fault == "trickle":
        assert value == first  # slow, but sound: reused
    else:
        assert value != first  # discarded at checkout, replaced
        [stats] = [s for s in levredis.pool_stats() if s["key"].endswith(f":{proxy.port}/0")]
        assert stats["discarded"] >= 1
    await again.close(no_keepalive=True)


CELLS: dict[str, Callable[[FaultProxy, str, RedisServer], Awaitable[None]]] = {
    "connect": cell_connect,
    "auth": cell_auth,
    "cmd": cell_cmd,
    "pipeline": cell_pipeline,
    "read": cell_read,
    "idle": cell_idle,
}


@pytest.mark.parametrize("operation", list(CELLS))
@pytest.mark.parametrize("fault", FAULTS)
async def test_fault_matrix(
    fault: str, operation: str, redis_server: RedisServer, acl_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_pool, "FRESH_FOR", 0.0)  # pooled connections get their PING check
    server = acl_server if operation == "auth" else redis_server
    await levredis.close_pool()
    gc.collect()
    before = process_fd_count()
    async with FaultProxy(server.port) as proxy:
        await asyncio.wait_for(CELLS[operation](proxy, fault, server), GUARD)
        if fault != "trickle" and operation not in ("connect", "auth"):
            # The faulty connection was closed, not pooled (what is idle now is
            # the fresh one the cell used after the fault).
            stats = [s for s in levredis.pool_stats() if f":{proxy.port}/" in s["key"]]
            assert sum(s["discarded"] for s in stats) >= 1, stats
        # Every client socket is closed by levredis itself, while the proxy
        # still holds its ends open (so nothing was closed for us by the peer).
        await levredis.close_pool()
        await asyncio.sleep(0.02)
        assert sockets_connected_to(proxy.port) == 0, "a client socket was left open"
    await levredis.close_pool()
    await asyncio.sleep(0.01)
    gc.collect()
    assert process_fd_count() <= before, "a file descriptor was left open"
