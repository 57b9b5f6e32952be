"""Regressions from a hostile review of the connection cap, deadlines and blocking commands."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import textwrap
import time

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


# -- a third review: blocking commands on the client's own connection --------------------

async def test_a_cancelled_blpop_at_the_cap_does_not_hold_up_the_client(
    redis_server: RedisServer,
) -> None:
    client = await connect_or_fail(address(redis_server, db=8, max_connections=1))
    await client.cmd("DEL", "capq2")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.cmd("BLPOP", "capq2", 0), 0.2)
    # Unblocked over a short-lived extra connection, though at the cap.
    assert await asyncio.wait_for(client.cmd("PING"), 3) == ("PONG", None)
    await client.close()


async def test_a_full_cap_says_how_long_it_waited_without_a_configured_timeout(
    redis_server: RedisServer,
) -> None:
    from levredis import _pool
    from levredis._config import parse_config

    config = parse_config(address(redis_server, max_connections=1))
    assert not isinstance(config, levredis.ConfigError)
    holder = await connect_or_fail(address(redis_server, max_connections=1))
    loop = asyncio.get_running_loop()
    err = await _pool.acquire(config, _pool.pool_key(config), loop, loop.time() + 0.1)
    assert isinstance(err, levredis.Timeout) and "no free connection within" in err
    await holder.close()


async def test_unblocking_a_cancelled_blpop_never_cuts_short_another_callers(
    redis_server: RedisServer,
) -> None:
    client = await connect_or_fail(address(redis_server, timeout=10))
    other = await connect_or_fail(address(redis_server, db=3))
    assert await client.cmd("SELECT", 3) == ("OK", None)  # blocking commands run here now
    await other.cmd("DEL", "kb", "kc")
    staying = asyncio.ensure_future(client.cmd("BLPOP", "kb", 0))
    await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError):  # queued behind the first, then given up
        await asyncio.wait_for(client.cmd("BLPOP", "kc", 0), 0.2)
    await asyncio.sleep(0.3)
    assert not staying.done()  # not unblocked on the other caller's behalf
    await other.cmd("RPUSH", "kb", "for-b")
    assert await asyncio.wait_for(staying, 3) == (["kb", "for-b"], None)
    await other.cmd("RPUSH", "kc", "for-nobody")
    await asyncio.sleep(0.3)  # the given-up BLPOP pops it; it is put back
    assert await other.cmd("LRANGE", "kc", 0, -1) == (["for-nobody"], None)
    await client.close()
    await other.close()


def exchange(raw: socket.socket, text: str) -> bytes:
    """Send inline commands and read the answer, blocking the event loop meanwhile."""
    raw.sendall(text.encode())
    time.sleep(0.1)
    return raw.recv(100)


@pytest.mark.parametrize("mode", ["select", "cap"])
async def test_close_during_a_blpop_on_the_own_connection_loses_no_pop(
    redis_server: RedisServer, mode: str,
) -> None:
    extra = {"max_connections": 1} if mode == "cap" else {}
    client = await connect_or_fail(address(redis_server, **extra))
    db = 5 if mode == "select" else 0
    if mode == "select":
        await client.cmd("SELECT", db)
    key = f"owned-{mode}"
    raw = socket.create_connection(("127.0.0.1", redis_server.port))
    exchange(raw, f"SELECT {db}\r\nDEL {key}\r\n")
    task = asyncio.ensure_future(client.cmd("BLPOP", key, 0))
    await asyncio.sleep(0.2)  # blocked on the server
    exchange(raw, f"LPUSH {key} precious\r\n")  # popped for the task, no loop turn since
    await client.close()
    value, _ = await asyncio.wait_for(task, 10)
    await asyncio.sleep(0.3)
    left = exchange(raw, f"LLEN {key}\r\n")
    raw.close()
    # Exactly one of: the caller has it, or it is back in the list.
    assert (value is not None) != (left.strip() == b":1"), (value, left)


async def test_a_put_back_never_waits_behind_another_blpop_on_the_same_connection(
    redis_server: RedisServer,
) -> None:
    client = await connect_or_fail(address(redis_server, max_connections=1))
    raw = socket.create_connection(("127.0.0.1", redis_server.port))
    exchange(raw, "DEL shared\r\n")
    leaving = asyncio.ensure_future(client.cmd("BLPOP", "shared", 0))
    await asyncio.sleep(0.1)
    staying = asyncio.ensure_future(client.cmd("BLPOP", "shared", 0))
    await asyncio.sleep(0.1)
    leaving.cancel()
    exchange(raw, "LPUSH shared X\r\n")  # popped for the caller that left
    # Put back over another connection, it reaches the caller still waiting.
    assert await asyncio.wait_for(staying, 8) == (["shared", "X"], None)
    await asyncio.gather(leaving, return_exceptions=True)
    await client.close()
    raw.close()


async def test_two_blocking_calls_on_one_connection_each_keep_their_timeout(
    redis_server: RedisServer,
) -> None:
    client = await connect_or_fail(address(redis_server, timeout=0.5))
    assert await client.cmd("SELECT", 2) == ("OK", None)  # both run on this connection
    first = asyncio.ensure_future(client.cmd("BLPOP", "nothing-a", 0))
    second = asyncio.ensure_future(client.cmd("BLPOP", "nothing-b", 0))
    results = await asyncio.wait_for(asyncio.gather(first, second), 3)
    # gather() returns a list, typed as a tuple by typeshed: list() changes nothing but the type.
    assert list(results) == [(None, "timeout"), (None, "timeout")]
    await client.close()
