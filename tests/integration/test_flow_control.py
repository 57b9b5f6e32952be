"""Flow control: a slow reader stops the socket being read; nothing is lost or reordered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

import levredis
from tests.servers import RedisServer
from tests.stressing import FIGURES, rss_bytes, size


def message_data(message: levredis.ReadResult | None) -> str:
    """The data of a pub/sub message ``["message", channel, data]`` that read() returned."""
    assert message is not None
    value = message["value"]
    assert isinstance(value, list)
    data = value[2]
    assert isinstance(data, str)
    return data


@pytest.fixture
def strict_server() -> Iterator[RedisServer]:
    """Drops a pub/sub client more than 4 MB behind (2 MB for 2 s)."""
    server = RedisServer(["--client-output-buffer-limit", "pubsub 4mb 2mb 2"]).start()
    yield server
    server.cleanup()


async def test_a_slow_subscriber_against_a_flood_stays_bounded_and_in_order(
    strict_server: RedisServer,
) -> None:
    config = {"host": "127.0.0.1", "port": strict_server.port, "timeout": 10,
              "max_pushes": 2_000}
    subscriber, _ = await levredis.connect(config)
    publisher, _ = await levredis.connect(config)
    assert subscriber is not None and publisher is not None
    await subscriber.cmd("SUBSCRIBE", "flood")
    seconds = size(3, 20)
    payload = "x" * 200
    sent = 0

    async def flood() -> None:
        nonlocal sent
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            _, err = await publisher.pipeline(
                [["PUBLISH", "flood", f"{sent + n}:{payload}"] for n in range(500)])
            if err is not None:
                return
            sent += 500

    before = rss_bytes()
    flooding = asyncio.ensure_future(flood())
    received: list[int] = []
    paused_seen = False
    error = None
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:  # a reader of ~200 messages a second
        message, err = await subscriber.read()
        if err is not None:
            error = err
            break
        received.append(int(message_data(message).split(":")[0]))
        paused_seen = paused_seen or subscriber._connection.reading_paused
        await asyncio.sleep(0.005)
    growth = rss_bytes() - before
    await flooding
    # Then everything still kept comes out in order, and the error last.
    while error is None:
        message, err = await subscriber.read()
        if err is not None:
            error = err
            break
        received.append(int(message_data(message).split(":")[0]))
        if len(received) > sent:
            break
    assert received == list(range(len(received)))  # in order, no gap
    assert paused_seen
    assert growth < 100 * 1024 * 1024
    assert isinstance(error, levredis.NetworkError)  # the server dropped the laggard
    FIGURES["slow consumer"] = {"seconds": seconds, "published": sent,
                                "received in order": len(received),
                                "RSS growth MiB": round(growth / 2**20, 1),
                                "end": str(error)}
    with contextlib.suppress(Exception):
        await subscriber.close()
    await publisher.close()


async def test_reading_resumes_below_the_low_water_mark(redis_server: RedisServer) -> None:
    config = {"host": "127.0.0.1", "port": redis_server.port, "timeout": 5, "max_pushes": 100}
    subscriber, _ = await levredis.connect(config)
    publisher, _ = await levredis.connect(config)
    assert subscriber is not None and publisher is not None
    await subscriber.cmd("SUBSCRIBE", "lw")
    await publisher.pipeline([["PUBLISH", "lw", str(n)] for n in range(300)])
    connection = subscriber._connection
    for _ in range(200):
        if connection.reading_paused:
            break
        await asyncio.sleep(0.01)
    assert connection.reading_paused
    got = [int(message_data((await subscriber.read())[0])) for _ in range(300)]
    assert got == list(range(300))
    assert not connection.reading_paused
    await subscriber.close()
    await publisher.close()


def test_push_limits_are_validated() -> None:
    from levredis._config import parse_config

    for key, bad in (("max_pushes", 0), ("max_push_bytes", 10), ("max_pushes", True)):
        err = parse_config({"host": "h", key: bad})
        assert isinstance(err, levredis.ConfigError) and key in err
