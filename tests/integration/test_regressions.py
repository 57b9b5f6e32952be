"""Regression tests for bugs found by the stress runs."""

from __future__ import annotations

import asyncio

import levredis
from levredis._config import parse_config
from levredis._connection import open_connection
from levredis._resp import encode_command
from tests.servers import RedisServer


async def test_a_request_on_a_connection_lost_meanwhile_fails_at_once(
    redis_server: RedisServer,
) -> None:
    # Found by the storm with a restart: a caller resumed after reconnecting,
    # the new connection was lost before its command went out, and the
    # command waited forever (its timeout found nothing left to fail).
    config = parse_config({"host": "127.0.0.1", "port": redis_server.port, "timeout": 1})
    assert not isinstance(config, levredis.Error)
    connection = await open_connection(config, asyncio.get_running_loop(), config.timeout)
    assert not isinstance(connection, levredis.Error)
    connection.abort(levredis.NetworkError("connection reset by peer"))
    single = connection.request(encode_command(["PING"]))
    batch = connection.request_batch(encode_command(["PING"]), 1, None)
    reader = connection.wait_push()
    for future in (single, batch, reader):
        assert future.done() and future.result() == "connection reset by peer"


async def test_a_timeout_never_leaves_its_caller_waiting(redis_server: RedisServer) -> None:
    config = parse_config({"host": "127.0.0.1", "port": redis_server.port})
    assert not isinstance(config, levredis.Error)
    connection = await open_connection(config, asyncio.get_running_loop(), config.timeout)
    assert not isinstance(connection, levredis.Error)
    stray: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    connection.abort(levredis.NetworkError("gone"))
    connection.time_out(stray)  # type: ignore[arg-type]
    assert stray.done() and stray.result() == "timeout"
