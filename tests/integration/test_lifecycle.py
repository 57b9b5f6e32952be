"""Lifecycle: clients dropped without close(), loops that end, close() itself, fork, threads."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import warnings

import pytest

import levredis
from tests.clients import connect_or_fail
from tests.servers import RedisServer


async def connect(server: RedisServer, **extra: object) -> levredis.Client:
    return await connect_or_fail({"host": "127.0.0.1", "port": server.port, **extra})


async def connected_clients(admin: levredis.Client) -> int:
    info, _ = await admin.cmd("INFO", "clients")
    line = next(row for row in str(info).splitlines() if row.startswith("connected_clients:"))
    return int(line.split(":")[1])


async def wait_for_clients(admin: levredis.Client, count: int) -> int:
    for _ in range(200):
        now = await connected_clients(admin)
        if now == count:
            return now
        await asyncio.sleep(0.01)
    return await connected_clients(admin)


@pytest.mark.filterwarnings("default:unclosed <levredis:ResourceWarning")
async def test_a_client_dropped_without_close_warns_and_its_socket_is_closed(
    redis_server: RedisServer,
) -> None:
    admin = await connect(redis_server, db=1)
    before = await connected_clients(admin)
    dropped = await connect(redis_server)
    assert await connected_clients(admin) == before + 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del dropped
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "unclosed <levredis.Client" in
               str(w.message) for w in caught)
    assert await wait_for_clients(admin, before) == before
    await admin.close()


def test_the_pools_of_a_finished_asyncio_run_are_closed(redis_server: RedisServer) -> None:
    async def pooled() -> None:
        client = await connect(redis_server)
        await client.cmd("PING")
        await client.close()  # back to the pool, still open

    async def count() -> int:
        admin = await connect(redis_server, db=2)
        try:
            return await wait_for_clients(admin, 1)
        finally:
            await admin.close(no_keepalive=True)

    before = asyncio.run(count())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(pooled())
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert asyncio.run(count()) == before  # the pooled connection was closed, not dropped


async def test_close_returns_once_the_socket_is_closed(redis_server: RedisServer) -> None:
    client = await connect(redis_server)
    connection = client._connection
    await client.close(no_keepalive=True)
    assert connection.closed.done()
    assert connection.transport is not None and connection.transport.is_closing()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Forking a process with threads (Python 3.12+ warns) is what users do; it is the point.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_closing_an_inherited_client_leaves_the_parent_working(
    redis_server: RedisServer,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(connect(redis_server, timeout=5))
        assert loop.run_until_complete(client.cmd("PING")) == ("PONG", None)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: the same loop object, the parent's sockets
            code = 1
            try:
                os.close(read_end)
                value, err = loop.run_until_complete(client.cmd("PING"))
                loop.run_until_complete(client.close())
                os.write(write_end, f"{value!s}|{err}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        said = os.read(read_end, 1000).decode()
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        assert said.startswith("None|") and "fork()" in said
        # The parent's socket is still registered and answers.
        async def still_works() -> tuple[object, object]:
            return await asyncio.wait_for(client.cmd("PING"), 5)

        assert loop.run_until_complete(still_works()) == ("PONG", None)
        loop.run_until_complete(client.close())
    finally:
        loop.run_until_complete(levredis.close_pool())
        loop.close()


def test_threads_each_with_their_own_loop_share_the_registry_safely(
    redis_server: RedisServer,
) -> None:
    errors: list[BaseException] = []

    async def work() -> None:
        for _ in range(50):
            client = await connect(redis_server)
            assert await client.cmd("PING") == ("PONG", None)
            await client.close()
            levredis.pool_stats()

    def run() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


@pytest.mark.filterwarnings("default:unclosed <levredis:ResourceWarning")
async def test_in_debug_mode_an_unclosed_client_says_where_it_was_made(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    try:
        dropped = await connect(redis_server)
    finally:
        loop.set_debug(False)
    with caplog.at_level(logging.WARNING, logger="levredis"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        del dropped
        gc.collect()
    [record] = [r for r in caplog.records if "created at" in r.getMessage()]
    assert "test_lifecycle.py" in record.getMessage()
