"""Every reply reaches the caller that sent its command: the cases that once broke it.

Each test reproduces a way replies used to reach the wrong caller (or a value
came out of a broken stream), against a real redis-server unless only a fake
peer can misbehave on cue.
"""

from __future__ import annotations

import asyncio

import levredis
from tests.clients import client_id, connect_or_fail
from tests.fakepeer import FakePeer, read_command
from tests.servers import RedisServer


async def connect(address: str, **extra: object) -> levredis.Client:
    """``host:port[/db]`` with extra config keys."""
    where, _, db = address.partition("/")
    host, port = where.rsplit(":", 1)
    return await connect_or_fail({"host": host, "port": int(port), "db": int(db or 0), **extra})


# -- RESET ends pub/sub: the server sends no unsubscribe confirmations ------------------

async def test_after_reset_a_reply_shaped_like_a_message_goes_to_its_caller(
    redis_server: RedisServer,
) -> None:
    client = await connect(f"{redis_server.address}/9", timeout=5)
    other = await connect(f"{redis_server.address}/9")
    await other.cmd("HSET", "shaped", "message", "m", "x", "y")
    assert (await client.cmd("SUBSCRIBE", "ch"))[1] is None
    assert await client.cmd("RESET") == ("RESET", None)
    assert await client.cmd("SELECT", 9) == ("OK", None)
    for _ in range(20):  # each caller its own reply, none shifted onto the next
        value, err = await client.cmd("HGETALL", "shaped")
        assert err is None and isinstance(value, list)
        assert sorted(value[0::2]) == ["message", "x"]  # type: ignore[type-var]
        assert await client.cmd("PING") == ("PONG", None)
    message, err = await client.read()  # nothing can arrive any more
    assert message is None and isinstance(err, levredis.UsageError)
    await client.close()
    await other.close()


async def test_a_read_waiting_when_reset_ends_pub_sub_is_told_at_once(
    redis_server: RedisServer,
) -> None:
    client = await connect(redis_server.address, timeout=5)
    await client.cmd("SUBSCRIBE", "ch")
    reader = asyncio.create_task(client.read())
    await asyncio.sleep(0.05)
    assert await client.cmd("RESET") == ("RESET", None)
    value, err = await asyncio.wait_for(reader, 2)
    assert value is None and isinstance(err, levredis.UsageError) and "nothing to read" in err
    await client.close()


async def test_a_read_waiting_when_the_last_unsubscribe_lands_is_told_at_once(
    redis_server: RedisServer,
) -> None:
    client = await connect(redis_server.address, timeout=5)
    await client.cmd("SUBSCRIBE", "a", "b")
    assert (await client.read())[0] == {"type": "array", "value": ["subscribe", "b", 2]}
    reader = asyncio.create_task(client.read())
    await asyncio.sleep(0.05)
    first, err = await client.cmd("UNSUBSCRIBE")  # the server picks the order
    assert err is None and first[0::2] == ["unsubscribe", 1]  # type: ignore[index]
    last, err = await asyncio.wait_for(reader, 2)
    assert err is None and last is not None
    assert last["value"][0::2] == ["unsubscribe", 0]  # type: ignore[index]
    assert {first[1], last["value"][1]} == {"a", "b"}  # type: ignore[index]
    value, err = await client.read()
    assert value is None and isinstance(err, levredis.UsageError)
    await client.close()


async def test_messages_received_before_reset_stay_readable(redis_server: RedisServer) -> None:
    client = await connect(redis_server.address, timeout=5)
    publisher = await connect(redis_server.address)
    await client.cmd("SUBSCRIBE", "before")
    for text in ("one", "two"):
        await publisher.cmd("PUBLISH", "before", text)
    assert await client.cmd("PING") == (["pong", ""], None)  # both messages are in
    assert await client.cmd("RESET") == ("RESET", None)
    for text in ("one", "two"):
        assert await client.read() == (
            {"type": "array", "value": ["message", "before", text]}, None)
    value, err = await client.read()
    assert value is None and isinstance(err, levredis.UsageError)
    await client.close()
    await publisher.close()


async def test_reset_leaves_a_connection_like_a_new_one_so_it_is_pooled(
    redis_server: RedisServer,
) -> None:
    a = await connect(redis_server.address)
    first = await client_id(a)
    await a.pipeline([["SUBSCRIBE", "x"], ["PSUBSCRIBE", "y*"]])
    assert await a.cmd("RESET") == ("RESET", None)
    await a.close()
    b = await connect(redis_server.address)
    assert await client_id(b) == first
    assert await b.cmd("PING") == ("PONG", None)
    await b.close()


# -- SUBSCRIBE and MONITOR inside MULTI are refused before anything is sent -----------

async def test_subscribe_inside_multi_is_refused_and_nothing_is_sent(
    redis_server: RedisServer,
) -> None:
    client = await connect(redis_server.address, timeout=5)
    publisher = await connect(redis_server.address)
    assert await client.cmd("MULTI") == ("OK", None)
    for name in ("SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "MONITOR"):
        value, err = await client.cmd(name, "ch") if name != "MONITOR" else await client.cmd(name)
        assert value is None and isinstance(err, levredis.UsageError) and "MULTI" in err
    assert await client.cmd("PING") == ("QUEUED", None)
    assert await client.cmd("EXEC") == (["PONG"], None)  # nothing else was queued
    for _ in range(50):
        await publisher.cmd("PUBLISH", "ch", "m")
        assert await client.cmd("PING") == ("PONG", None)
    await client.close()
    await publisher.close()


async def test_a_pipeline_with_subscribe_inside_multi_is_refused_whole(
    redis_server: RedisServer,
) -> None:
    client = await connect(redis_server.address)
    value, err = await client.pipeline([["MULTI"], ["SUBSCRIBE", "ch"], ["EXEC"]])
    assert value is None and isinstance(err, levredis.UsageError)
    assert await client.pipeline([["MULTI"], ["PING"], ["EXEC"]]) == (
        [["OK"], ["QUEUED"], [["PONG"]]], None)
    await client.close()


# -- large replies while other tasks read() and subscribe ------------------------------

async def test_a_large_reply_arrives_whole_while_others_read_and_subscribe(
    redis_server: RedisServer,
) -> None:
    client = await connect(f"{redis_server.address}/9", timeout=30)
    items = [f"item-{i}" for i in range(200_000)]
    for start in range(0, len(items), 10_000):
        await client.cmd("RPUSH", "big", *items[start : start + 10_000])
    for _ in range(3):
        big = asyncio.create_task(client.cmd("LRANGE", "big", 0, -1))
        await asyncio.sleep(0)
        subscribe = asyncio.create_task(client.cmd("SUBSCRIBE", "side"))
        reader = asyncio.create_task(client.read())
        value, err = await big
        assert err is None and value == items
        assert await subscribe == (["subscribe", "side", 1], None)
        reader.cancel()
        assert await client.cmd("UNSUBSCRIBE", "side") == (["unsubscribe", "side", 0], None)
    await client.cmd("DEL", "big")
    await client.close()


# -- a read() pending at close() -------------------------------------------------------

async def test_a_read_pending_at_close_never_gets_the_next_users_message(
    redis_server: RedisServer,
) -> None:
    a = await connect(redis_server.address, timeout=5)
    await a.cmd("SUBSCRIBE", "chan-a")
    stale = asyncio.create_task(a.read())
    await asyncio.sleep(0.05)
    await a.cmd("UNSUBSCRIBE")  # clean again, but a read() still waits on it
    await a.close()
    b = await connect(redis_server.address, timeout=5)
    publisher = await connect(redis_server.address)
    await b.cmd("SUBSCRIBE", "chan-b")
    await publisher.cmd("PUBLISH", "chan-b", "secret-for-B")
    assert await b.read() == ({"type": "array", "value": ["message", "chan-b", "secret-for-B"]},
                              None)
    value, err = await asyncio.wait_for(stale, 2)
    assert value is None and err is not None and "secret" not in str(err)
    await b.close()
    await publisher.close()


async def test_a_read_waiting_at_close_gets_closed_and_the_connection_is_not_pooled(
    redis_server: RedisServer,
) -> None:
    a = await connect(redis_server.address, timeout=5)
    first = await client_id(a)
    await a.cmd("SUBSCRIBE", "waiting")
    reader = asyncio.create_task(a.read())
    await asyncio.sleep(0.05)
    await a.close()
    assert await asyncio.wait_for(reader, 2) == (None, "closed")
    b = await connect(redis_server.address)
    assert await client_id(b) != first
    await b.close()


# -- a read() timeout never closes a connection for another caller's partial reply ------

async def test_read_timeout_while_another_callers_reply_is_partial_keeps_the_connection(
) -> None:
    confirm = b"*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n"
    second = b"*3\r\n$9\r\nsubscribe\r\n$1\r\ny\r\n:2\r\n"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)
        writer.write(confirm)
        await read_command(reader)
        writer.write(second[:20])  # SUBSCRIBE y's reply, cut short
        await writer.drain()
        await asyncio.sleep(0.6)
        writer.write(second[20:])
        await writer.drain()
        await reader.read()

    async with FakePeer(script) as peer:
        client = await connect(peer.address, timeout=2)
        assert (await client.cmd("SUBSCRIBE", "x"))[1] is None
        pending = asyncio.create_task(client.cmd("SUBSCRIBE", "y"))
        await asyncio.sleep(0.1)
        client._timeout = 0.2  # the read() alone times out
        assert await client.read() == (None, "timeout")
        client._timeout = 2
        assert await pending == (["subscribe", "y", 2], None)
        assert peer.connections == 1
        await client.close(no_keepalive=True)


# -- the server unsubscribes on its own (a shard channel's slot moved) ------------------

async def test_an_unsolicited_unsubscribe_goes_to_read_not_to_the_waiting_caller() -> None:
    confirm = b"*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n"
    dropped = b"*3\r\n$12\r\nsunsubscribe\r\n$1\r\ns\r\n:0\r\n"
    pong = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)
        writer.write(confirm)
        await read_command(reader)
        writer.write(dropped + pong)
        await writer.drain()
        await reader.read()

    async with FakePeer(script) as peer:
        client = await connect(peer.address, timeout=2)
        assert (await client.cmd("SSUBSCRIBE", "s"))[1] is None
        assert await client.cmd("PING") == (["pong", ""], None)
        assert await client.read() == (
            {"type": "array", "value": ["sunsubscribe", "s", 0]}, None)
        value, err = await client.read()  # nothing is subscribed any more
        assert value is None and isinstance(err, levredis.UsageError)
        await client.close(no_keepalive=True)


# -- arguments are read the way the server reads them ---------------------------------

async def test_select_of_the_same_db_as_an_int_keeps_the_connection_poolable(
    redis_server: RedisServer,
) -> None:
    a = await connect(f"{redis_server.address}/0")
    first = await client_id(a)
    assert await a.cmd("SELECT", 0) == ("OK", None)
    await a.close()
    b = await connect(f"{redis_server.address}/0")
    assert await client_id(b) == first
    assert await b.cmd("SELECT", 4) == ("OK", None)
    assert await b.cmd("SELECT", b"0") == ("OK", None)  # back where the key promises
    await b.close()
    c = await connect(f"{redis_server.address}/0")
    assert await client_id(c) == first
    await c.close()


async def test_a_pooled_connection_that_selected_another_db_is_never_handed_out(
    redis_server: RedisServer,
) -> None:
    a = await connect(f"{redis_server.address}/0")
    first = await client_id(a)
    assert await a.cmd("SELECT", 5) == ("OK", None)
    await a.close()
    b = await connect(f"{redis_server.address}/0")
    assert await client_id(b) != first
    await b.close()


async def test_hello_2_is_accepted_as_an_int_too(redis_server: RedisServer) -> None:
    client = await connect(redis_server.address)
    for version in (2, "2", b"2"):
        value, err = await client.cmd("HELLO", version)
        assert err is None and isinstance(value, list)
    value, err = await client.cmd("HELLO", 3)
    assert value is None and isinstance(err, levredis.UsageError)
    await client.close(no_keepalive=True)


async def test_read_where_nothing_can_arrive_is_a_usage_error_at_once(
    redis_server: RedisServer,
) -> None:
    client = await connect(redis_server.address)  # no timeout: it would wait forever
    value, err = await asyncio.wait_for(client.read(), 2)
    assert value is None and isinstance(err, levredis.UsageError)
    assert "nothing to read" in err
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()


# -- a list subclass whose length and items disagree --------------------------------------


class _Lying(list):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return 1


async def test_a_list_subclass_in_a_pipeline_cannot_inject_commands(
        redis_server: RedisServer) -> None:
    # Its header once came from __len__ and its items from iteration: the
    # server saw an extra command, whose reply went to another caller.
    client = await connect(redis_server.address, decode=False, timeout=5)
    pipe = asyncio.ensure_future(client.pipeline([_Lying(["ECHO", "mine", "$4", "PING"])]))
    other = asyncio.ensure_future(client.cmd("ECHO", "theirs"))
    mine, theirs = await asyncio.gather(pipe, other)
    assert theirs == (b"theirs", None)
    results, err = mine
    assert err is None and results is not None and len(results) == 1
    assert results[0][0] is None and "wrong number of arguments" in str(results[0][1])
    assert await client.cmd("ECHO", "after") == (b"after", None)
    await client.close()


# -- what is planned is what was encoded, whatever the caller changes while a call waits ---


async def _kill(client: levredis.Client, address: str) -> None:
    """Kill the client's connection from another one: its next call reconnects (an await)."""
    ident = await client_id(client)
    killer = await connect(address)
    await killer.cmd("CLIENT", "KILL", "ID", str(ident))
    await killer.close()
    await asyncio.sleep(0.1)


async def test_a_command_added_to_a_pipeline_while_it_reconnects_is_not_planned(
        redis_server: RedisServer) -> None:
    client = await connect(redis_server.address, timeout=5)
    await client.pipeline([["SET", "own:a", "A"], ["SET", "own:b", "B"]])
    await _kill(client, redis_server.address)
    commands = [["GET", "own:a"]]

    async def meddle() -> None:
        await asyncio.sleep(0)
        commands.append(["GET", "own:a"])  # another task adds to the list
        commands[0].append("extra")  # and changes the command itself

    async def other() -> tuple[object, object]:
        await asyncio.sleep(0.05)
        return await client.cmd("GET", "own:b")

    meddling = asyncio.ensure_future(meddle())
    theirs = asyncio.ensure_future(other())
    assert await client.pipeline(commands) == ([["A"]], None)
    assert await theirs == ("B", None)
    await meddling
    await client.close()


async def test_a_buffer_changed_while_select_reconnects_leaves_no_wrong_db_pooled(
        redis_server: RedisServer) -> None:
    client = await connect(redis_server.address, timeout=5)
    await _kill(client, redis_server.address)
    db = bytearray(b"1")

    async def meddle() -> None:
        await asyncio.sleep(0)
        db[:] = b"0"

    meddling = asyncio.ensure_future(meddle())
    assert await client.cmd("SELECT", db) == ("OK", None)  # SELECT 1, as encoded
    await meddling
    await client.close()  # on db 1: closed, not pooled
    second = await connect(redis_server.address)
    assert await second.cmd("SET", "own:where", "here") == ("OK", None)
    info, err = await second.cmd("CLIENT", "INFO")
    assert err is None and " db=0 " in str(info), info
    await second.cmd("DEL", "own:where")
    await second.close()
