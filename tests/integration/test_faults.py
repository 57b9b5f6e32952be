"""Bad input from the server, timeouts, and lost connections."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest

import levredis
from tests.fakepeer import FakePeer, read_command, replying
from tests.servers import RedisServer, process_fd_count


async def connect_to(peer: FakePeer, timeout: float = 2) -> levredis.Client:
    client, err = await levredis.connect({"host": "127.0.0.1", "port": peer.port,
                                          "timeout": timeout})
    assert client is not None, err
    return client


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (b"!oops\r\n", "unknown reply type byte 0x21"),
        (b"$abc\r\n", "invalid bulk length"),
        (b"$-7\r\n", "invalid bulk length"),
        (b"*-2\r\n", "invalid array length"),
        (b":notanumber\r\n", "invalid integer"),
        (b"*1\r\n" * 20_000 + b":1\r\n", None),  # deep, but valid
        (b"$3\r\nabcdef\r\n+OK\r\n", "not followed by CRLF"),  # never the value 'abc'
        (b":1_000\r\n", "invalid integer"),
        (b"$ 3\r\nabc\r\n", "invalid bulk length"),
    ],
)
async def test_garbage_replies_are_protocol_errors_that_close_only_that_connection(
    reply: bytes, problem: str | None, redis_server: RedisServer,
) -> None:
    healthy, _ = await levredis.connect(redis_server.address)
    assert healthy is not None
    async with FakePeer(replying(reply)) as peer:
        client = await connect_to(peer)
        value, err = await client.cmd("GET", "k")
        if problem is None:
            assert err is None and isinstance(value, list)
        else:
            assert value is None
            assert isinstance(err, levredis.ProtocolError) and problem in err, err
            assert await client.cmd("PING") != ("PONG", None) or peer.connections == 2
        assert await healthy.cmd("PING") == ("PONG", None)
        await client.close()
    await healthy.close()


async def test_a_bulk_length_over_512_mb_is_refused_at_once() -> None:
    async with FakePeer(replying(b"$999999999999\r\n")) as peer:
        client = await connect_to(peer, timeout=5)
        value, err = await client.cmd("GET", "k")
        assert value is None
        assert isinstance(err, levredis.ProtocolError) and "512 MB" in err
        await client.close()


async def test_a_value_cut_off_mid_way_is_not_kept_by_its_failed_connection() -> None:
    # 24 MiB of an announced 512 MB arrive, then the peer goes: the client,
    # still held by the caller, keeps none of it.
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)
        writer.write(b"$536870912\r\n")
        for _ in range(96):
            writer.write(b"v" * 262_144)
            await writer.drain()
        writer.transport.abort()

    async with FakePeer(script) as peer:
        client = await connect_to(peer, timeout=10)
        tracemalloc.start()
        try:
            value, err = await client.cmd("GET", "k")
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert value is None and isinstance(err, levredis.NetworkError), err
        assert held < 4 * 1024 * 1024, held  # the client is alive; the 24 MiB are gone
        await client.close()


async def test_peer_closing_mid_reply_is_a_network_error() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)
        writer.write(b"$10\r\nhalf")
        await writer.drain()

    async with FakePeer(script) as peer:
        client = await connect_to(peer)
        value, err = await client.cmd("GET", "k")
        assert value is None and err == "connection closed by server"
        await client.close()


async def test_a_stalled_reply_times_out_and_the_next_call_reconnects() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        command = await read_command(reader)
        if command == [b"GET", b"slow"]:
            await reader.read()  # never answers
        else:
            writer.write(b"+PONG\r\n")
            await writer.drain()
            await reader.read()

    async with FakePeer(script) as peer:
        client = await connect_to(peer, timeout=0.2)
        assert await client.cmd("GET", "slow") == (None, "timeout")
        assert await client.cmd("PING") == ("PONG", None)  # a fresh connection
        assert peer.connections == 2
        await client.close()


async def test_timeout_in_a_pipeline_fails_it_with_timeout() -> None:
    async with FakePeer(replying(b"+OK\r\n")) as peer:
        client = await connect_to(peer, timeout=0.2)
        assert await client.pipeline([["SET", "a", "1"], ["GET", "a"]]) == (None, "timeout")
        await client.close()


async def test_a_reply_no_command_asked_for_is_a_protocol_error() -> None:
    # Outside pub/sub and MONITOR a server never sends one: it would shift
    # every later reply onto the wrong caller, so the connection is closed.
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)
        writer.write(b"+first\r\n+extra\r\n")
        await writer.drain()
        await reader.read()

    async with FakePeer(script) as peer:
        client = await connect_to(peer)
        assert await client.cmd("PING") == ("first", None)
        connection = client._connection
        for _ in range(200):
            if connection.error is not None:
                break
            await asyncio.sleep(0.01)
        assert isinstance(connection.error, levredis.ProtocolError)
        assert "no command asked for" in connection.error
        await client.close(no_keepalive=True)


async def test_server_restart_fails_one_call_then_recovers(own_server: RedisServer) -> None:
    client, _ = await levredis.connect(own_server.address)
    assert client is not None
    assert await client.cmd("SET", "k", "v") == ("OK", None)
    own_server.restart()
    value, err = await client.cmd("GET", "k")
    assert value is None and isinstance(err, levredis.NetworkError)
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()


async def test_a_lost_connection_that_held_state_is_not_silently_replaced(
    own_server: RedisServer,
) -> None:
    client, _ = await levredis.connect(own_server.address)
    assert client is not None
    assert await client.cmd("MULTI") == ("OK", None)
    own_server.restart()
    _, err = await client.cmd("SET", "k", "v")
    assert isinstance(err, levredis.NetworkError)
    value, err = await client.cmd("SET", "k", "v")  # must not run outside the transaction
    assert value is None and isinstance(err, levredis.NetworkError)
    assert "held session state" in err
    await client.close()
    fresh, _ = await levredis.connect(own_server.address)
    assert fresh is not None
    assert await fresh.cmd("EXISTS", "k") == (0, None)
    await fresh.close()


async def test_reconnect_failure_is_reported_and_retried_later(own_server: RedisServer) -> None:
    client, _ = await levredis.connect({"host": "127.0.0.1", "port": own_server.port,
                                        "timeout": 1})
    assert client is not None
    own_server.stop()
    for _ in range(3):
        value, err = await client.cmd("PING")
        assert value is None and isinstance(err, levredis.NetworkError)
    own_server.start()
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()


async def test_failed_connections_leave_no_file_descriptor(own_server: RedisServer) -> None:
    before = process_fd_count()
    for _ in range(30):
        client, _ = await levredis.connect(own_server.address)
        assert client is not None
        await client.cmd("CLIENT", "KILL", "SKIPME", "no")
        await client.cmd("PING")
        await client.close()
    async with FakePeer(replying(b"!garbage\r\n")) as peer:
        for _ in range(30):
            bad = await connect_to(peer)
            await bad.cmd("PING")
            await bad.close()
    await levredis.close_pool()
    await asyncio.sleep(0.05)
    assert process_fd_count() <= before + 2
