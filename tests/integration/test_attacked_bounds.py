"""Regressions from a hostile review of the connection cap, deadlines and blocking commands."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap

import pytest

import levredis
from tests.clients import connect_or_fail
from tests.servers import RedisServer


def address(server: RedisServer, **extra: object) -> dict[str, object]:
    return {"host": "127.0.0.1", "port": server.port, **extra}


async def test_a_cancelled_open_hands_its_slot_to_the_next_waiter(own_server: RedisServer) -> None:
    config = address(own_server, max_connections=1)
    own_server.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        opening = asyncio.ensure_future(levredis.connect(config))  # its PING hangs
        await asyncio.sleep(0.1)
        queued = asyncio.ensure_future(levredis.connect(config))
        await asyncio.sleep(0.05)
        opening.cancel()
    finally:
        own_server.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    client, err = await asyncio.wait_for(queued, 5)
    assert client is not None, err
    await client.close()


async def test_a_cancelled_ping_check_hands_its_slot_to_the_next_waiter(
    own_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from levredis import _pool

    config = address(own_server, max_connections=1)
    pooled = await connect_or_fail(config)
    await pooled.close()
    monkeypatch.setattr(_pool, "FRESH_FOR", 0.0)
    own_server.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        checking = asyncio.ensure_future(levredis.connect(config))  # PINGs the stale one
        await asyncio.sleep(0.1)
        queued = asyncio.ensure_future(levredis.connect(config))
        await asyncio.sleep(0.05)
        checking.cancel()
    finally:
        own_server.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    client, err = await asyncio.wait_for(queued, 5)
    assert client is not None, err
    await client.close()


async def test_a_command_waiting_for_the_write_buffer_keeps_its_timeout(
    own_server: RedisServer,
) -> None:
    client = await connect_or_fail(address(own_server, timeout=0.5))
    own_server.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        big = asyncio.ensure_future(client.cmd("SET", "k", b"x" * (32 << 20)))  # fills buffers
        await asyncio.sleep(0.05)
        value, err = await asyncio.wait_for(client.cmd("PING"), 3)
        assert value is None and isinstance(err, levredis.NetworkError)
        assert (await big)[0] is None
    finally:
        own_server.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    await client.close()


async def test_blpop_at_the_cap_runs_on_the_clients_own_connection(
    redis_server: RedisServer,
) -> None:
    client = await connect_or_fail(address(redis_server, db=5, max_connections=1))
    other = await connect_or_fail(address(redis_server, db=5))
    await other.cmd("DEL", "capq")
    blpop = asyncio.ensure_future(client.cmd("BLPOP", "capq", 0))
    await asyncio.sleep(0.05)
    await other.cmd("RPUSH", "capq", "x")
    assert await asyncio.wait_for(blpop, 5) == (["capq", "x"], None)
    await client.close()
    await other.close()


async def test_blmpop_reads_its_direction_after_the_keys(
    redis_server: RedisServer,
) -> None:
    from levredis._blocking import put_back

    # A key named "right", popping LEFT: put back at the head.
    assert put_back("BLMPOP", ["BLMPOP", 0, 1, "right", "LEFT"], ["right", ["a"]]) == [
        "LPUSH", "right", "a"]
    assert put_back("BLMPOP", ["BLMPOP", 0, 2, "left", "x", "RIGHT", "COUNT", 2],
                    ["left", ["c", "b"]]) == ["RPUSH", "left", "b", "c"]


async def test_blpop_after_select_cancelled_loses_nothing_and_blocks_nobody(
    redis_server: RedisServer,
) -> None:
    client = await connect_or_fail(address(redis_server, timeout=5))
    other = await connect_or_fail(address(redis_server, db=1))
    await other.cmd("DEL", "sq")
    assert await client.cmd("SELECT", 1) == ("OK", None)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.cmd("BLPOP", "sq", 0), 0.1)
    # The client is not stuck behind the abandoned BLPOP...
    assert await asyncio.wait_for(client.cmd("PING"), 3) == ("PONG", None)
    # ...and the next element is not popped for the caller that left.
    await other.cmd("RPUSH", "sq", "kept")
    await asyncio.sleep(0.1)
    assert await other.cmd("LRANGE", "sq", 0, -1) == (["kept"], None)
    await client.close()
    await other.close()


def test_an_element_popped_as_asyncio_run_ends_is_put_back(redis_server: RedisServer) -> None:
    # A worker blocked in BLPOP; an element arrives; main closes and returns.
    script = textwrap.dedent(f"""
        import asyncio, levredis
        async def main():
            config = {{"host": "127.0.0.1", "port": {redis_server.port}, "db": 6}}
            client, _ = await levredis.connect(config)
            other, _ = await levredis.connect(config)
            await other.cmd("DEL", "endq")
            worker = asyncio.ensure_future(client.cmd("BLPOP", "endq", 0))
            await asyncio.sleep(0.05)
            await other.cmd("RPUSH", "endq", "job")
            await client.close()
            await other.close()
            print(await worker)
        asyncio.run(main())
        async def check():
            other, _ = await levredis.connect(
                {{"host": "127.0.0.1", "port": {redis_server.port}, "db": 6}})
            print(await other.cmd("LRANGE", "endq", 0, -1))
            await other.close()
        asyncio.run(check())
    """)
    for _ in range(5):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        worker, left = done.stdout.strip().splitlines()
        # Either the worker got it before close(), or it is back in the list.
        assert ("job" in worker) != ("job" in left), done.stdout + done.stderr
        assert "Task was destroyed" not in done.stderr


async def test_configs_with_different_caps_are_different_pools(redis_server: RedisServer) -> None:
    capped = address(redis_server, max_connections=2)
    clients = [await connect_or_fail(address(redis_server)) for _ in range(3)]
    mine = [await connect_or_fail(capped) for _ in range(2)]
    for stats in levredis.pool_stats():
        assert stats["idle"] + stats["in_use"] <= stats["max_connections"]
    for client in clients + mine:
        await client.close()


async def test_keys_that_never_worked_leave_no_pool_behind(redis_server: RedisServer) -> None:
    for n in range(50):
        value, err = await levredis.connect(
            address(redis_server, auth={"user": "nobody", "pass": f"wrong-{n}"}))
        assert value is None and err is not None
    assert not [s for s in levredis.pool_stats() if "nobody" in s["key"]]
