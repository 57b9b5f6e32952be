"""Shared clients and cancellation: every caller gets its own reply, always."""

from __future__ import annotations

import asyncio
import random

import levredis
from tests.servers import RedisServer


async def test_many_tasks_share_one_client_and_each_gets_its_own_reply(
    client: levredis.Client,
) -> None:
    async def worker(n: int) -> None:
        for i in range(50):
            token = f"{n}:{i}"
            assert await client.cmd("ECHO", token) == (token, None)

    await asyncio.gather(*(worker(n) for n in range(100)))


async def test_commands_go_out_in_call_order(client: levredis.Client) -> None:
    tasks = [asyncio.create_task(client.cmd("RPUSH", "order", i)) for i in range(500)]
    await asyncio.gather(*tasks)
    values, _ = await client.cmd("LRANGE", "order", 0, -1)
    assert values == [str(i) for i in range(500)]


async def test_cancelled_get_never_hands_its_reply_to_the_next_caller(
    client: levredis.Client,
) -> None:
    await client.cmd("SET", "victim", "victim-value")
    for _ in range(50):
        task = asyncio.create_task(client.cmd("GET", "victim"))
        await asyncio.sleep(0)  # written, reply not read yet
        task.cancel()
        assert await client.cmd("ECHO", "next") == ("next", None)


async def test_a_blocked_cancelled_command_does_not_swallow_the_next_reply(
    client: levredis.Client, redis_server: RedisServer
) -> None:
    blocked = asyncio.create_task(client.cmd("BLPOP", "later", 2))
    await asyncio.sleep(0.05)
    blocked.cancel()
    follow = asyncio.create_task(client.cmd("ECHO", "after"))
    pusher, _ = await levredis.connect(f"{redis_server.address}/9")
    assert pusher is not None
    await pusher.cmd("RPUSH", "later", "for-blpop")
    assert await follow == ("after", None)
    await pusher.close()


async def test_wait_for_and_timeout_cancellations_keep_replies_matched(
    client: levredis.Client,
) -> None:
    rng = random.Random(7)
    mismatches = 0

    async def caller(n: int) -> None:
        nonlocal mismatches
        for i in range(40):
            token = f"{n}-{i}"
            try:
                if rng.random() < 0.5:
                    value, err = await asyncio.wait_for(client.cmd("ECHO", token),
                                                        rng.choice([0, 0.0001, 0.001, 1]))
                else:
                    async with asyncio.timeout(rng.choice([0, 0.0001, 0.001, 1])):
                        results, err = await client.pipeline([["ECHO", token], ["ECHO", token]])
                    value = results[0][0] if results else None
                    if results and results[1][0] != token:
                        mismatches += 1
            except TimeoutError:
                continue
            if err is None and value != token:
                mismatches += 1

    await asyncio.gather(*(caller(n) for n in range(30)))
    assert mismatches == 0
    assert await client.cmd("ECHO", "final") == ("final", None)


async def test_cancelled_callers_on_a_pooled_connection_never_leak_into_the_next_user(
    redis_server: RedisServer,
) -> None:
    for round_ in range(20):
        first, _ = await levredis.connect(redis_server.address)
        assert first is not None
        tasks = [asyncio.create_task(first.cmd("ECHO", f"old-{round_}-{i}")) for i in range(5)]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await first.close()  # replies owed: must not be pooled
        second, _ = await levredis.connect(redis_server.address)
        assert second is not None
        assert await second.cmd("ECHO", f"new-{round_}") == (f"new-{round_}", None)
        await second.close()


async def test_closing_a_client_while_others_wait_tells_them(client: levredis.Client) -> None:
    waiting = asyncio.create_task(client.cmd("BLPOP", "nothing", 5))
    await asyncio.sleep(0.05)
    await client.close()
    assert await waiting == (None, "closed")
