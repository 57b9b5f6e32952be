"""read(): type tags, pub/sub messages kept in order, MONITOR, and read timeouts."""

from __future__ import annotations

import asyncio

import levredis
from tests.fakepeer import FakePeer, read_command
from tests.servers import RedisServer


async def connect(address: str, **extra: object) -> levredis.Client:
    host, port = address.split(":")
    client, err = await levredis.connect({"host": host, "port": int(port), **extra})
    assert client is not None, err
    return client


SUBSCRIBED_TO_X = b"*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n"


async def test_read_tags_every_type_exactly() -> None:
    # Once subscribed, whatever no command owes is a push, tagged as it was sent.
    unsolicited = (b"+OK\r\n$2\r\nOK\r\n:5\r\n-ERR nope\r\n$-1\r\n*-1\r\n"
                   b"*3\r\n$1\r\na\r\n$-1\r\n-E inner\r\n")

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)
        writer.write(SUBSCRIBED_TO_X + unsolicited)
        await writer.drain()
        await reader.read()

    async with FakePeer(script) as peer:
        client = await connect(peer.address, timeout=2)
        assert await client.cmd("SUBSCRIBE", "x") == (["subscribe", "x", 1], None)
        got = [await client.read() for _ in range(7)]
        assert got == [
            ({"type": "simple", "value": "OK"}, None),
            ({"type": "bulk", "value": "OK"}, None),
            ({"type": "integer", "value": 5}, None),
            ({"type": "error", "value": "ERR nope"}, None),
            ({"type": "bulk", "value": None}, None),
            ({"type": "array", "value": None}, None),
            ({"type": "array", "value": ["a", None, "E inner"]}, None),
        ]
        await client.close()


async def test_subscribe_then_read_messages(redis_server: RedisServer) -> None:
    subscriber = await connect(redis_server.address, timeout=5)
    publisher = await connect(redis_server.address)
    assert await subscriber.cmd("SUBSCRIBE", "news") == (["subscribe", "news", 1], None)
    for i in range(3):
        await publisher.cmd("PUBLISH", "news", f"item {i}")
    for i in range(3):
        assert await subscriber.read() == (
            {"type": "array", "value": ["message", "news", f"item {i}"]}, None)
    await subscriber.close()
    await publisher.close()


async def test_multi_channel_subscribe_keeps_extra_confirmations_for_read(
    redis_server: RedisServer,
) -> None:
    subscriber = await connect(redis_server.address, timeout=5)
    assert await subscriber.cmd("SUBSCRIBE", "a", "b", "c") == (["subscribe", "a", 1], None)
    # The next command must get its own reply, not a confirmation of b or c.
    assert await subscriber.cmd("PSUBSCRIBE", "p*") == (["psubscribe", "p*", 4], None)
    assert await subscriber.read() == ({"type": "array", "value": ["subscribe", "b", 2]}, None)
    assert await subscriber.read() == ({"type": "array", "value": ["subscribe", "c", 3]}, None)
    first, err = await subscriber.cmd("UNSUBSCRIBE")  # all channels: one reply each
    assert err is None and isinstance(first, list) and first[0] == "unsubscribe"
    rest = [await subscriber.read() for _ in range(2)]
    channels: list[str] = []
    counts: list[levredis.Reply] = []
    for confirmation in [first] + [r[0]["value"] for r in rest if r[0] is not None]:
        assert isinstance(confirmation, list)
        channel = confirmation[1]
        assert isinstance(channel, str)
        channels.append(channel)
        counts.append(confirmation[2])
    assert sorted(channels) == ["a", "b", "c"] and counts == [3, 2, 1]
    assert await subscriber.cmd("PING") == (["pong", ""], None)
    await subscriber.close()


async def test_messages_that_arrive_while_a_cmd_waits_are_kept_in_order(
    redis_server: RedisServer,
) -> None:
    subscriber = await connect(redis_server.address, timeout=5)
    publisher = await connect(redis_server.address)
    await subscriber.cmd("SUBSCRIBE", "flood")
    count = 300

    async def publish() -> None:
        for i in range(count):
            await publisher.cmd("PUBLISH", "flood", str(i))

    async def resubscribe() -> list[levredis.Reply]:
        replies: list[levredis.Reply] = []
        for name in ("x1", "x2", "x3", "x4"):
            await asyncio.sleep(0.001)
            value, err = await subscriber.cmd("SUBSCRIBE", name)
            assert err is None
            replies.append(value)
        return replies

    _, replies = await asyncio.gather(publish(), resubscribe())
    assert replies == [["subscribe", f"x{i}", i + 1] for i in range(1, 5)]
    messages = []
    for _ in range(count):
        result, err = await subscriber.read()
        assert err is None and result is not None
        messages.append(result["value"])
    assert messages == [["message", "flood", str(i)] for i in range(count)]
    await subscriber.close()
    await publisher.close()


async def test_pattern_messages(redis_server: RedisServer) -> None:
    subscriber = await connect(redis_server.address, timeout=5)
    publisher = await connect(redis_server.address)
    await subscriber.cmd("PSUBSCRIBE", "ev.*")
    await publisher.cmd("PUBLISH", "ev.one", "1")
    assert await subscriber.read() == (
        {"type": "array", "value": ["pmessage", "ev.*", "ev.one", "1"]}, None)
    await subscriber.close()
    await publisher.close()


async def test_a_message_shaped_reply_is_a_reply_when_not_subscribed(client: levredis.Client) -> None:
    await client.cmd("RPUSH", "l", "message", "ch", "data")
    assert await client.cmd("LRANGE", "l", 0, -1) == (["message", "ch", "data"], None)


async def test_monitor_lines_are_simple_strings(redis_server: RedisServer) -> None:
    monitor = await connect(redis_server.address, timeout=5)
    other = await connect(redis_server.address)
    assert await monitor.cmd("MONITOR") == ("OK", None)
    await other.cmd("ECHO", "watched")
    for _ in range(20):
        result, err = await monitor.read()
        assert err is None and result is not None
        assert result["type"] == "simple"
        if '"ECHO" "watched"' in str(result["value"]):
            break
    else:
        raise AssertionError("the ECHO never showed up in MONITOR")
    _, err = await monitor.cmd("GET", "k")
    assert isinstance(err, levredis.UsageError)
    await monitor.close()
    await other.close()


async def test_read_timeout_before_any_byte_keeps_the_connection(redis_server: RedisServer) -> None:
    subscriber = await connect(redis_server.address, timeout=0.1)
    publisher = await connect(redis_server.address)
    await subscriber.cmd("SUBSCRIBE", "quiet")
    value, err = await subscriber.read()
    assert value is None and err == "timeout"
    await publisher.cmd("PUBLISH", "quiet", "late")
    assert await subscriber.read() == ({"type": "array", "value": ["message", "quiet", "late"]},
                                       None)
    await subscriber.close()
    await publisher.close()


async def test_read_timeout_mid_value_closes_the_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)
        writer.write(SUBSCRIBED_TO_X + b"*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$5\r\nhel")
        await writer.drain()  # and nothing more
        await reader.read()

    async with FakePeer(script) as peer:
        client = await connect(peer.address, timeout=0.3)
        assert (await client.cmd("SUBSCRIBE", "x"))[1] is None
        assert await client.read() == (None, "timeout")
        value, err = await client.read()
        assert value is None and err == "timeout"  # closed: the error stays
        await client.close()


async def test_cancelled_read_loses_no_message(redis_server: RedisServer) -> None:
    subscriber = await connect(redis_server.address, timeout=5)
    publisher = await connect(redis_server.address)
    await subscriber.cmd("SUBSCRIBE", "c")
    for _ in range(20):
        task = asyncio.create_task(subscriber.read())
        await asyncio.sleep(0)
        task.cancel()
    await publisher.cmd("PUBLISH", "c", "kept")
    assert await subscriber.read() == ({"type": "array", "value": ["message", "c", "kept"]}, None)
    await subscriber.close()
    await publisher.close()


async def test_read_on_a_closed_peer_returns_the_error() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)
        writer.write(SUBSCRIBED_TO_X)
        await writer.drain()

    async with FakePeer(script) as peer:
        client = await connect(peer.address, timeout=2)
        assert await client.cmd("SUBSCRIBE", "x") == (["subscribe", "x", 1], None)
        value, err = await client.read()
        assert value is None and isinstance(err, levredis.NetworkError)
        await client.close()
