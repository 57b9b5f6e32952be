"""Bounded under load: the connection cap, waiting in order, refusals by the server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import levredis
from tests.servers import RedisServer
from tests.stressing import FIGURES, size


@pytest.fixture
def small_server() -> Iterator[RedisServer]:
    """A server that accepts at most 60 clients."""
    server = RedisServer(["--maxclients", "60"]).start()
    yield server
    server.cleanup()


def stats_for(port: int) -> levredis.PoolStats:
    [stats] = [s for s in levredis.pool_stats() if s["key"].endswith(f":{port}/0")]
    return stats


async def storm(config: dict[str, object], tasks: int) -> tuple[int, list[str]]:
    """``tasks`` concurrent connect → INCR → close; (peak open connections, failures)."""
    peak_open = 0
    failures: list[str] = []
    suffix = f":{config['port']}/{config.get('db', 0)}"

    async def one() -> None:
        nonlocal peak_open
        client, err = await levredis.connect(config)
        if client is None:
            failures.append(str(err))
            return
        [stats] = [s for s in levredis.pool_stats() if s["key"].endswith(suffix)]
        peak_open = max(peak_open, stats["idle"] + stats["in_use"] + stats["opening"])
        _, err = await client.cmd("INCR", "storm")
        if err is not None:
            failures.append(str(err))
        await client.close()

    await asyncio.gather(*(one() for _ in range(tasks)))
    admin, _ = await levredis.connect(config)
    assert admin is not None
    assert await admin.cmd("GETDEL", "storm") == (str(tasks - len(failures)), None)
    await admin.close()
    return peak_open, failures


async def test_a_storm_of_connects_stays_under_the_cap_and_every_task_succeeds(
    small_server: RedisServer,
) -> None:
    tasks = size(2_000, 20_000)
    peak_open, failures = await storm({"host": "127.0.0.1", "port": small_server.port,
                                       "timeout": 30, "max_connections": 50}, tasks)
    assert failures == [] and peak_open <= 50
    FIGURES["connection storm"] = {"tasks": tasks, "max_connections": 50,
                                   "server maxclients": 60, "peak open": peak_open,
                                   "failed": len(failures)}


async def test_at_the_cap_a_timeout_says_it_waited_and_names_the_cap(
    redis_server: RedisServer,
) -> None:
    config = {"host": "127.0.0.1", "port": redis_server.port, "timeout": 0.2,
              "max_connections": 1}
    holder, _ = await levredis.connect(config)
    assert holder is not None
    value, err = await levredis.connect(config)
    assert value is None and isinstance(err, levredis.Timeout)
    assert "max_connections=1" in err and "no free connection" in err
    assert stats_for(redis_server.port)["waiting"] == 0
    await holder.close()


async def test_waiting_callers_are_served_first_come_first_served(
    redis_server: RedisServer,
) -> None:
    config = {"host": "127.0.0.1", "port": redis_server.port, "max_connections": 1}
    holder, _ = await levredis.connect(config)
    assert holder is not None
    order: list[int] = []

    async def wait_turn(n: int) -> None:
        client, err = await levredis.connect(config)
        assert client is not None, err
        order.append(n)
        await asyncio.sleep(0.01)
        await client.close()

    waiting = []
    for n in range(5):
        waiting.append(asyncio.ensure_future(wait_turn(n)))
        await asyncio.sleep(0.01)  # queued in this order
    assert stats_for(redis_server.port)["waiting"] == 5
    await holder.close()
    await asyncio.gather(*waiting)
    assert order == [0, 1, 2, 3, 4]
    assert stats_for(redis_server.port)["created"] == 1  # one connection, handed on


async def test_a_cancelled_waiter_leaks_nothing_and_the_next_one_is_served(
    redis_server: RedisServer,
) -> None:
    config = {"host": "127.0.0.1", "port": redis_server.port, "max_connections": 1}
    holder, _ = await levredis.connect(config)
    assert holder is not None
    cancelled = asyncio.ensure_future(levredis.connect(config))
    await asyncio.sleep(0.01)
    served = asyncio.ensure_future(levredis.connect(config))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await holder.close()
    client, err = await asyncio.wait_for(served, 2)
    assert client is not None, err
    assert await client.cmd("PING") == ("PONG", None)
    stats = stats_for(redis_server.port)
    assert stats["waiting"] == 0 and stats["in_use"] == 1 and stats["opening"] == 0
    await client.close()


async def test_a_connection_closed_at_release_frees_its_slot_for_a_waiter(
    redis_server: RedisServer,
) -> None:
    config = {"host": "127.0.0.1", "port": redis_server.port, "max_connections": 1}
    holder, _ = await levredis.connect(config)
    assert holder is not None
    waiter = asyncio.ensure_future(levredis.connect(config))
    await asyncio.sleep(0.01)
    await holder.close(no_keepalive=True)  # closed, not handed on: a slot frees
    client, err = await asyncio.wait_for(waiter, 2)
    assert client is not None, err
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()


async def test_a_server_refusing_connections_gives_a_clean_connect_error(
    small_server: RedisServer,
) -> None:
    base = {"host": "127.0.0.1", "port": small_server.port}
    held: list[levredis.Client] = []
    while len(held) < 70:  # fill the server up (through another pool key)
        client, err = await levredis.connect({**base, "db": 1})
        if client is None:
            assert err is not None
            assert "max number of clients reached" in err
            break
        held.append(client)
    assert 50 <= len(held) <= 60
    for _ in range(5):
        value, err = await levredis.connect({**base, "timeout": 2})
        assert value is None and isinstance(err, levredis.ServerError)
        assert "max number of clients reached" in err
    # No dead connection kept: the pool that never worked is not even listed.
    assert not [s for s in levredis.pool_stats() if s["key"].endswith(f":{small_server.port}/0")]
    for client in held:
        await client.close(no_keepalive=True)
    for _ in range(200):  # until the server has seen the closes
        client, err = await levredis.connect(base)
        if client is not None:
            break
        await asyncio.sleep(0.01)
    assert client is not None, err
    await client.close()


def test_max_connections_is_validated() -> None:
    from levredis._config import parse_config

    for bad in (0, -1, True, "10", 10**7):
        err = parse_config({"host": "h", "max_connections": bad})
        assert isinstance(err, levredis.ConfigError) and "max_connections" in err
    config = parse_config("redis://h:1/0?max_connections=7")
    assert not isinstance(config, levredis.ConfigError) and config.max_connections == 7


async def test_a_default_user_without_ping_permission_still_connects() -> None:
    server = RedisServer(["--user", "default", "on", "nopass", "~*", "-@all", "+get"]).start()
    try:
        client, err = await levredis.connect({"host": "127.0.0.1", "port": server.port})
        assert client is not None, err
        assert await client.cmd("GET", "nothing") == (None, "not found")
        await client.close()
    finally:
        server.cleanup()


async def test_a_server_wanting_a_password_says_so_to_connect() -> None:
    server = RedisServer(["--requirepass", "s3cret"]).start()
    try:
        value, err = await levredis.connect({"host": "127.0.0.1", "port": server.port})
        assert value is None and isinstance(err, levredis.ServerError) and "NOAUTH" in err
    finally:
        server.cleanup()


async def test_a_command_that_reconnects_keeps_one_deadline() -> None:
    from tests.fakepeer import FakePeer, read_command

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if peer.connections == 1:
            await read_command(reader)
            writer.write(b"+first\r\n")
            await writer.drain()
            return  # and closes
        await asyncio.sleep(0.3)  # a slow handshake...
        writer.write(b"+PONG\r\n")
        await read_command(reader)
        await asyncio.sleep(0.3)  # ...and a slow answer: 0.6 s in all
        writer.write(b"+late\r\n")
        await writer.drain()
        await reader.read()

    async with FakePeer(script, greet=False) as peer:
        # The first connection's handshake PING is answered by the script too.
        async def greeted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if peer.connections == 1:
                await read_command(reader)
                writer.write(b"+PONG\r\n")
            await script(reader, writer)

        peer.script = greeted
        client, err = await levredis.connect(
            {"host": "127.0.0.1", "port": peer.port, "timeout": 0.5})
        assert client is not None, err
        assert await client.cmd("GET", "a") == ("first", None)
        for _ in range(100):  # until the loss is seen
            if client._connection.error is not None:
                break
            await asyncio.sleep(0.01)
        value, err = await asyncio.wait_for(client.cmd("GET", "b"), 2)
        assert value is None and isinstance(err, levredis.Timeout)
        await client.close()


async def test_a_storm_of_connects_with_the_defaults_stays_under_the_default_cap(
    redis_server: RedisServer,
) -> None:
    tasks = size(3_000, 20_000)
    peak_open, failures = await storm(
        {"host": "127.0.0.1", "port": redis_server.port, "db": 7, "timeout": 60}, tasks)
    assert failures == [] and peak_open <= 1000  # the default max_connections
    FIGURES["connection storm, defaults"] = {"tasks": tasks, "peak open": peak_open,
                                             "failed": len(failures)}


async def test_commands_wait_while_the_transport_pauses_writing(
    redis_server: RedisServer,
) -> None:
    client, _ = await levredis.connect({"host": "127.0.0.1", "port": redis_server.port,
                                        "timeout": 5})
    assert client is not None
    connection = client._connection
    connection.pause_writing()  # as asyncio does past the write buffer's high-water mark
    waiting = asyncio.ensure_future(client.cmd("PING"))
    await asyncio.sleep(0.05)
    assert not waiting.done() and not connection.dispatch.waiters  # nothing sent yet
    connection.resume_writing()
    assert await asyncio.wait_for(waiting, 2) == ("PONG", None)
    await client.close()
