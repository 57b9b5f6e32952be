"""close() and the pool: reuse, capacity, keys, dirty connections, loops and fork."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import threading
from collections.abc import Coroutine
from typing import Any

import pytest
import trustme

import levredis
from levredis import _pool
from tests.clients import client_id, connect_or_fail
from tests.servers import ALICE, BOB, RedisServer

connect = connect_or_fail


async def test_close_returns_true_and_later_calls_say_closed(redis_server: RedisServer) -> None:
    client = await connect(redis_server.address)
    assert await client.close() is True
    assert await client.close() is True
    assert await client.close(no_keepalive=True) is True
    assert await client.cmd("PING") == (None, "closed")
    assert await client.pipeline([["PING"]]) == (None, "closed")
    assert await client.pipeline([]) == (None, "closed")
    assert await client.read() == (None, "closed")
    _, err = await client.cmd("PING")
    assert isinstance(err, levredis.ClosedError)


async def test_async_with_closes_into_the_pool(redis_server: RedisServer) -> None:
    async with await connect(redis_server.address) as client:
        first = await client_id(client)
    assert await client.cmd("PING") == (None, "closed")
    again = await connect(redis_server.address)
    assert await client_id(again) == first
    await again.close()


async def test_closed_connection_is_reused_most_recent_first(redis_server: RedisServer) -> None:
    a = await connect(redis_server.address)
    b = await connect(redis_server.address)
    id_a, id_b = await client_id(a), await client_id(b)
    await a.close()
    await b.close()
    c = await connect(redis_server.address)
    d = await connect(redis_server.address)
    assert await client_id(c) == id_b  # LIFO
    assert await client_id(d) == id_a
    await c.close()
    await d.close()


async def test_no_keepalive_closes_the_socket(redis_server: RedisServer) -> None:
    a = await connect(redis_server.address)
    first = await client_id(a)
    await a.close(no_keepalive=True)
    b = await connect(redis_server.address)
    assert await client_id(b) != first
    await b.close()


async def test_pool_capacity_comes_from_the_environment(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_CLIENT_POOL_SIZE", "1")
    a, b = await connect(redis_server.address), await connect(redis_server.address)
    await a.close()
    await b.close()  # the pool is full: closed
    [stats] = [s for s in levredis.pool_stats() if s["key"] == f"{redis_server.address}/0"]
    assert stats["idle"] == 1 and stats["in_use"] == 0 and stats["discarded"] >= 1


async def test_pool_size_zero_disables_pooling(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_CLIENT_POOL_SIZE", "0")
    a = await connect(redis_server.address)
    first = await client_id(a)
    await a.close()
    b = await connect(redis_server.address)
    assert await client_id(b) != first
    await b.close()


@pytest.mark.parametrize("value", ["many", "-3", "2.5", ""])
async def test_invalid_pool_size_means_the_default_with_a_warning(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    value: str,
) -> None:
    monkeypatch.setenv("REDIS_CLIENT_POOL_SIZE", value)
    _pool._env_cache.clear()
    _pool._warned.clear()
    with caplog.at_level(logging.WARNING, logger="levredis"):
        assert _pool.pool_size() == 20
    assert any("REDIS_CLIENT_POOL_SIZE" in r.getMessage() for r in caplog.records)
    a = await connect(redis_server.address)
    first = await client_id(a)
    await a.close()
    b = await connect(redis_server.address)
    assert await client_id(b) == first  # pooled with the default capacity
    await b.close()


async def test_idle_connections_older_than_five_seconds_are_checked_with_ping(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def pings() -> int:
        probe = await connect(f"{redis_server.address}/1")  # a pool of its own
        info, _ = await probe.cmd("INFO", "commandstats")
        await probe.close(no_keepalive=True)
        for line in str(info).splitlines():
            if line.startswith("cmdstat_ping:"):
                return int(line.split("calls=")[1].split(",")[0])
        return 0

    a = await connect(redis_server.address)
    first = await client_id(a)
    await a.close()
    before = await pings()
    b = await connect(redis_server.address)  # fresh: no PING
    assert await client_id(b) == first
    assert await pings() == before
    await b.close()
    monkeypatch.setattr(_pool, "FRESH_FOR", 0.0)  # as if it sat idle for 5 s
    c = await connect(redis_server.address)
    assert await client_id(c) == first
    assert await pings() == before + 1
    await c.close()


async def test_a_pooled_connection_that_died_is_discarded(own_server: RedisServer) -> None:
    a = await connect(own_server.address)
    await a.close()
    own_server.restart()
    await asyncio.sleep(0.05)
    b = await connect(own_server.address)
    assert await b.cmd("PING") == ("PONG", None)
    await b.close()


async def test_a_stale_connection_failing_its_ping_is_replaced(
    own_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await connect({"host": "127.0.0.1", "port": own_server.port, "timeout": 1})
    first = await client_id(a)
    await a.close()
    monkeypatch.setattr(_pool, "FRESH_FOR", 0.0)
    # Freeze the server for a moment: the pooled connection stays open but
    # its PING check (half the budget) times out; the new connection opened
    # in the other half is answered once the server runs again.
    own_server.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    loop = asyncio.get_running_loop()
    loop.call_later(1.0, own_server.process.send_signal, signal.SIGCONT)  # type: ignore[union-attr]
    b = await connect({"host": "127.0.0.1", "port": own_server.port, "timeout": 1.6})
    assert await client_id(b) != first
    [stats] = levredis.pool_stats()
    assert stats["discarded"] == 1 and stats["created"] == 2 and stats["reused"] == 0
    await b.close()


async def test_connect_returns_within_one_deadline_however_many_stale_connections(
    own_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"host": "127.0.0.1", "port": own_server.port, "timeout": 0.3}
    clients = [await connect(config) for _ in range(5)]
    for client in clients:
        await client.close()
    monkeypatch.setattr(_pool, "FRESH_FOR", 0.0)
    own_server.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        # Used to PING each stale connection with the full timeout, then
        # connect with it again: seconds against a frozen server.
        value, err = await asyncio.wait_for(levredis.connect(config), 1.0)
    finally:
        own_server.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    assert value is None and isinstance(err, levredis.Timeout)
    [stats] = levredis.pool_stats()
    assert stats["in_use"] == 0 and stats["opening"] == 0


# -- keys: db, credentials, TLS ------------------------------------------------------


async def test_each_db_has_its_own_pool(redis_server: RedisServer) -> None:
    a = await connect(f"{redis_server.address}/1")
    await a.close()
    b = await connect(f"{redis_server.address}/2")
    info, _ = await b.cmd("CLIENT", "INFO")
    assert " db=2 " in str(info)
    await b.close()


async def test_credentials_never_share_a_connection(acl_server: RedisServer) -> None:
    alice = {"host": "127.0.0.1", "port": acl_server.port, "auth": {"user": ALICE[0], "pass": ALICE[1]}}
    bob = {"host": "127.0.0.1", "port": acl_server.port, "auth": {"user": BOB[0], "pass": BOB[1]}}
    a = await connect(alice)
    await a.close()
    for config, expected in ((bob, "bob"), ({"host": "127.0.0.1", "port": acl_server.port}, "default"),
                             (alice, "alice")):
        client = await connect(config)
        assert await client.cmd("ACL", "WHOAMI") == (expected, None)
        await client.close()


async def test_a_wrong_password_never_gets_a_pooled_connection(acl_server: RedisServer) -> None:
    good = {"host": "127.0.0.1", "port": acl_server.port, "auth": {"user": ALICE[0], "pass": ALICE[1]}}
    a = await connect(good)
    await a.close()
    client, err = await levredis.connect(
        {"host": "127.0.0.1", "port": acl_server.port, "auth": {"user": ALICE[0], "pass": "guess"}})
    assert client is None and err is not None and err.startswith("WRONGPASS")


async def test_pool_stats_never_show_a_password(acl_server: RedisServer) -> None:
    a = await connect({"host": "127.0.0.1", "port": acl_server.port,
                       "auth": {"user": ALICE[0], "pass": ALICE[1]}})
    await a.close()
    text = repr(levredis.pool_stats())
    assert f"user={ALICE[0]}" in text and ALICE[1] not in text


# -- dirty connections are closed, not pooled ------------------------------------------

DIRTY = [
    [["SELECT", "3"]],
    [["MULTI"]],
    [["WATCH", "k"]],
    [["SUBSCRIBE", "ch"]],
    [["PSUBSCRIBE", "p*"]],
    [["CLIENT", "SETNAME", "dirty"]],
    [["HELLO", "2", "SETNAME", "dirty"]],
    [["AUTH", ALICE[0], ALICE[1]]],
    [["SELECT", "3"], ["RESET"], ["SELECT", "3"]],
]


@pytest.mark.parametrize("commands", DIRTY, ids=lambda c: " + ".join(str(a[0]) for a in c))
async def test_a_connection_left_in_session_state_is_not_pooled(
    acl_server: RedisServer, commands: list[list[object]]
) -> None:
    address = acl_server.address
    a = await connect(address)
    first = await client_id(a)
    for command in commands:
        await a.cmd(*command)
    await a.close()
    b = await connect(address)
    assert await client_id(b) != first
    info, _ = await b.cmd("CLIENT", "INFO")
    assert " db=0 " in str(info) and " name= " in str(info) and "flags=N " in str(info)
    assert await b.cmd("ACL", "WHOAMI") == ("default", None)
    assert await b.cmd("MULTI") == ("OK", None)  # not already inside one
    await b.cmd("DISCARD")
    await b.close()


async def test_monitor_connection_is_not_pooled(redis_server: RedisServer) -> None:
    a = await connect(redis_server.address)
    first = await client_id(a)
    await a.cmd("MONITOR")
    await a.close()
    b = await connect(redis_server.address)
    assert await client_id(b) != first
    assert await b.cmd("PING") == ("PONG", None)
    await b.close()


async def test_a_connection_that_owes_a_reply_is_not_pooled(redis_server: RedisServer) -> None:
    a = await connect(redis_server.address)
    first = await client_id(a)
    # In a pipeline a blocking command runs on the client's own connection.
    task = asyncio.create_task(a.pipeline([["BLPOP", "never-filled", 5]]))
    await asyncio.sleep(0.05)
    task.cancel()
    await a.close()
    b = await connect(redis_server.address)
    assert await client_id(b) != first
    assert await b.cmd("ECHO", "mine") == ("mine", None)
    await b.close()


async def test_exec_and_unwatch_leave_a_clean_connection(redis_server: RedisServer) -> None:
    a = await connect(redis_server.address)
    first = await client_id(a)
    await a.pipeline([["WATCH", "k"], ["MULTI"], ["SET", "k", "v"], ["EXEC"]])
    await a.cmd("SELECT", "0")
    await a.close()
    b = await connect(redis_server.address)
    assert await client_id(b) == first
    await b.cmd("DEL", "k")
    await b.close()


# -- loops and fork ----------------------------------------------------------------------


def test_a_socket_never_crosses_event_loops(redis_server: RedisServer) -> None:
    async def pooled_id() -> int:
        client = await connect(redis_server.address)
        ident = await client_id(client)
        await client.close()
        return ident

    first = asyncio.run(pooled_id())
    assert asyncio.run(pooled_id()) != first


def test_a_client_used_on_another_loop_says_so(redis_server: RedisServer) -> None:
    async def make() -> levredis.Client:
        return await connect(redis_server.address)

    client = asyncio.run(make())

    async def use() -> tuple[object, object]:
        return await client.cmd("PING")

    value, err = asyncio.run(use())
    assert value is None and isinstance(err, levredis.UsageError)
    asyncio.run(client.close())  # closing from another loop is allowed


def test_a_client_whose_loop_moved_to_another_thread_says_so(redis_server: RedisServer) -> None:
    # Made in this thread; its loop then runs in another; this thread runs its own.
    home = asyncio.new_event_loop()
    client = home.run_until_complete(connect(redis_server.address))
    runner = threading.Thread(target=home.run_forever, daemon=True)
    runner.start()
    try:
        async def use() -> tuple[object, object]:
            return await client.cmd("PING")

        value, err = asyncio.run(use())
        assert value is None and isinstance(err, levredis.UsageError)
        assert "another event loop" in err
        assert asyncio.run_coroutine_threadsafe(client.cmd("PING"), home).result(5) == (
            "PONG", None)
        asyncio.run_coroutine_threadsafe(client.close(), home).result(5)
    finally:
        home.call_soon_threadsafe(home.stop)
        runner.join(5)
        home.close()


def test_close_from_another_thread_is_done_on_the_clients_loop(
        redis_server: RedisServer) -> None:
    home = asyncio.new_event_loop()
    home.set_debug(True)  # asyncio's own check: a transport touched from another thread raises
    runner = threading.Thread(target=home.run_forever, daemon=True)
    runner.start()
    try:
        async def dirty() -> levredis.Client:
            client = await connect(redis_server.address)
            assert await client.cmd("SELECT", "1") == ("OK", None)  # not poolable
            return client

        client = asyncio.run_coroutine_threadsafe(dirty(), home).result(5)
        closed_in: list[str] = []
        transport = client._connection.transport
        assert transport is not None
        close = transport.close

        def spy() -> None:
            closed_in.append(threading.current_thread().name)
            close()

        transport.close = spy  # type: ignore[method-assign]
        assert asyncio.run(client.close()) is True  # from this thread's own loop
        assert closed_in == [runner.name]
        value, err = asyncio.run_coroutine_threadsafe(client.cmd("PING"), home).result(5)
        assert value is None and err == "closed"
    finally:
        home.call_soon_threadsafe(home.stop)
        runner.join(5)
        home.close()


def _drive(call: Coroutine[Any, Any, Any]) -> object:
    """Run a coroutine by hand, outside any event loop, as far as it goes."""
    try:
        call.send(None)
    except StopIteration as stop:
        return stop.value
    except BaseException as exc:
        return exc
    call.close()
    return "suspended"


def test_calls_driven_with_no_running_loop_say_so(redis_server: RedisServer) -> None:
    home = asyncio.new_event_loop()
    try:
        client = home.run_until_complete(connect(redis_server.address))
        answers = [_drive(client.cmd("PING")), _drive(client.pipeline([["PING"]])),
                   _drive(client.read())]
        elsewhere: list[object] = []
        thread = threading.Thread(target=lambda: elsewhere.append(_drive(client.cmd("PING"))))
        thread.start()
        thread.join()
        for answer in [*answers, *elsewhere]:
            assert isinstance(answer, tuple) and answer[0] is None, answer
            assert isinstance(answer[1], levredis.UsageError) and "no running event loop" in answer[1]
        assert home.run_until_complete(client.cmd("PING")) == ("PONG", None)
        home.run_until_complete(client.close())
    finally:
        home.close()


def test_a_client_whose_loop_is_open_but_idle_says_so_on_another(
        redis_server: RedisServer) -> None:
    # Same thread, its own loop still open (not running): the call runs on another.
    home = asyncio.new_event_loop()
    try:
        client = home.run_until_complete(connect(redis_server.address))

        async def use() -> tuple[object, object]:
            return await client.cmd("PING")

        value, err = asyncio.run(use())
        assert value is None and isinstance(err, levredis.UsageError)
        assert "another event loop" in err
        assert home.run_until_complete(client.cmd("PING")) == ("PONG", None)
        home.run_until_complete(client.close())
    finally:
        home.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Forking a process with threads (Python 3.12+ warns) is what users do; it is the point.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_never_reuses_the_parents_sockets(redis_server: RedisServer) -> None:
    loop = asyncio.new_event_loop()
    try:
        async def pooled() -> int:
            client = await connect(redis_server.address)
            ident = await client_id(client)
            await client.close()
            return ident

        parent_id = loop.run_until_complete(pooled())
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read_end)
            code = 1
            try:
                child_loop = asyncio.new_event_loop()
                child_id = child_loop.run_until_complete(pooled())
                os.write(write_end, str(child_id).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        child_id = int(os.read(read_end, 100) or b"0")
        os.close(read_end)
        os.waitpid(pid, 0)
        assert child_id not in (0, parent_id)
        assert loop.run_until_complete(pooled()) == parent_id  # the parent's pool is intact
    finally:
        loop.run_until_complete(levredis.close_pool())
        loop.close()


async def test_tls_connections_are_pooled_per_context(
    tls_server: RedisServer, trusting_context: ssl.SSLContext, tls_ca: trustme.CA
) -> None:
    other_context = ssl.create_default_context()
    tls_ca.configure_trust(other_context)
    config = {"host": "127.0.0.1", "port": tls_server.port, "ssl": trusting_context}
    a = await connect(config)
    first = await client_id(a)
    await a.close()
    b = await connect({**config, "ssl": other_context})
    assert await client_id(b) != first
    await b.close()
    c = await connect(config)
    assert await client_id(c) == first
    await c.close()
    keys = {s["key"] for s in levredis.pool_stats()}
    assert f"127.0.0.1:{tls_server.port}/0+ssl" in keys


async def test_a_connection_whose_read_timed_out_is_not_pooled(redis_server: RedisServer) -> None:
    a = await connect({"host": "127.0.0.1", "port": redis_server.port, "timeout": 0.05})
    first = await client_id(a)
    await a.cmd("SUBSCRIBE", "quiet")
    assert await a.read() == (None, "timeout")
    await a.cmd("UNSUBSCRIBE")
    await a.close()
    b = await connect({"host": "127.0.0.1", "port": redis_server.port, "timeout": 0.05})
    assert await client_id(b) != first
    await b.close()


async def test_a_connection_whose_command_timed_out_is_closed(own_server: RedisServer) -> None:
    config = {"host": "127.0.0.1", "port": own_server.port, "timeout": 0.2}
    a = await connect(config)
    own_server.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        assert await a.cmd("PING") == (None, "timeout")
    finally:
        own_server.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    await a.close()
    [stats] = levredis.pool_stats()
    assert stats["idle"] == 0 and stats["discarded"] == 1


async def test_a_redis_error_mid_pipeline_leaves_a_clean_connection_pooled(
    redis_server: RedisServer,
) -> None:
    a = await connect(redis_server.address)
    first = await client_id(a)
    results, err = await a.pipeline([["SET", "iso:s", "text"], ["INCR", "iso:s"], ["GET", "iso:s"]])
    assert err is None and results is not None and len(results[1]) == 2
    await a.close()
    b = await connect(redis_server.address)
    assert await client_id(b) == first  # nothing changed on the server: reused
    assert await b.cmd("GET", "iso:s") == ("text", None)
    await b.cmd("DEL", "iso:s")
    await b.close()


async def test_an_open_multi_after_an_error_mid_pipeline_is_not_pooled(
    redis_server: RedisServer,
) -> None:
    a = await connect(redis_server.address)
    first = await client_id(a)
    results, err = await a.pipeline([["MULTI"], ["SET", "iso:m", "1"], ["NOSUCHCOMMAND"]])
    assert err is None and results is not None and len(results[2]) == 2
    await a.close()
    b = await connect(redis_server.address)
    assert await client_id(b) != first
    assert await b.cmd("MULTI") == ("OK", None)  # not inside someone else's transaction
    assert await b.cmd("DISCARD") == ("OK", None)
    assert await b.cmd("EXISTS", "iso:m") == (0, None)
    await b.close()


async def test_a_refused_client_reply_off_leaves_the_connection_answering(
    redis_server: RedisServer,
) -> None:
    a = await connect(redis_server.address)
    first = await client_id(a)
    _, err = await a.cmd("CLIENT", "REPLY", "OFF")
    assert isinstance(err, levredis.UsageError)
    await a.close()
    b = await connect(redis_server.address)
    assert await client_id(b) == first  # never sent: the connection is as it was
    assert await b.cmd("ECHO", "answered") == ("answered", None)
    await b.close()
