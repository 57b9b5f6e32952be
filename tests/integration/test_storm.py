"""Cancellation storm: many tasks, shared and pooled connections, random
cancellations at random moments, behind a latency-adding proxy. Every command
carries a token of its own; a reply with another caller's token is a mismatch,
and there must be none.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import levredis
from tests.faultproxy import FaultProxy
from tests.servers import RedisServer
from tests.stressing import FIGURES, size


def loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


class Storm:
    def __init__(self, address: str, seed: int) -> None:
        self.address = address
        self.rng = random.Random(seed)
        self.commands = 0  # commands sent (each of a pipeline counts)
        self.outcomes: Counter[str] = Counter()
        self.mismatches = 0
        self.clients: list[levredis.Client] = []

    async def open(self, shared: int) -> None:
        for _ in range(shared):
            client, err = await levredis.connect(self.config())
            assert client is not None, err
            self.clients.append(client)

    def config(self) -> dict[str, object]:
        host, port = self.address.split(":")
        return {"host": host, "port": int(port), "timeout": 5}

    async def one_operation(self, worker: int, n: int) -> None:
        token = f"{worker}:{n}:{self.rng.random()}"
        pooled = self.rng.random() < 0.2
        if pooled:
            client, err = await levredis.connect(self.config())
            if client is None:
                self.outcomes[f"connect error: {type(err).__name__}"] += 1
                return
        else:
            client = self.rng.choice(self.clients)
        try:
            if self.rng.random() < 0.5:
                self.commands += 1
                value, err = await client.cmd("ECHO", token)
                replies = [value]
            else:
                count = self.rng.randint(2, 6)
                self.commands += count
                results, err = await client.pipeline([["ECHO", f"{token}/{i}"]
                                                      for i in range(count)])
                replies = [r[0] for r in results] if results else []
                if results is not None:
                    expected = [f"{token}/{i}" for i in range(count)]
                    if replies != expected:
                        self.mismatches += 1
                    replies = [token] if replies == expected else replies
            if err is None and replies[0] != token:
                self.mismatches += 1
            self.outcomes["ok" if err is None else f"error: {type(err).__name__}"] += 1
        finally:
            if pooled:
                await client.close()

    async def worker(self, worker: int, operations: int) -> None:
        for n in range(operations):
            mode = self.rng.random()
            try:
                if mode < 0.15:
                    task = asyncio.ensure_future(self.one_operation(worker, n))
                    await asyncio.sleep(self.rng.choice([0, 0, 0.0002, 0.001, 0.003]))
                    task.cancel()
                    try:
                        await task
                        self.outcomes["finished before cancel"] += 1
                    except asyncio.CancelledError:
                        self.outcomes["cancelled"] += 1
                elif mode < 0.3:
                    await asyncio.wait_for(self.one_operation(worker, n),
                                           self.rng.choice([0.0005, 0.002, 0.01]))
                elif mode < 0.45:
                    async with asyncio.timeout(self.rng.choice([0.0005, 0.002, 0.01])):
                        await self.one_operation(worker, n)
                else:
                    await self.one_operation(worker, n)
            except TimeoutError:
                self.outcomes["timed out (wait_for/timeout)"] += 1

    async def run(self, workers: int, operations: int) -> None:
        await asyncio.gather(*(self.worker(w, operations) for w in range(workers)))

    async def check_clients_still_answer(self) -> None:
        for client in self.clients:
            token = f"after:{self.rng.random()}"
            value, err = await client.cmd("ECHO", token)
            if err is None:
                assert value == token
            else:  # a restart may have left it reconnecting: one more call
                assert await client.cmd("ECHO", token) == (token, None)
            await client.close()
        fresh, err = await levredis.connect(self.config())
        assert fresh is not None, err
        assert await fresh.cmd("ECHO", "fresh") == ("fresh", None)
        await fresh.close()


async def test_cancellation_storm_never_mismatches_a_reply(
    own_server: RedisServer, parser: str
) -> None:
    workers, operations = 50, size(90, 1500)
    async with FaultProxy(own_server.port) as proxy:
        proxy.arm(None, delay=0.0005)  # latency: replies are in flight when cancels land
        storm = Storm(proxy.address, seed=11)
        await storm.open(shared=4)
        await storm.run(workers, operations)
        await storm.check_clients_still_answer()
    assert storm.mismatches == 0
    assert storm.commands >= size(10_000, 150_000)
    assert storm.outcomes["ok"] > 0 and storm.outcomes["cancelled"] > 0
    FIGURES[f"cancellation storm ({loop_name()}, {parser} parser)"] = {
        "commands": storm.commands, "mismatches": storm.mismatches, **storm.outcomes}


async def test_cancellation_storm_with_a_server_restart_midway(
    own_server: RedisServer, parser: str
) -> None:
    workers, operations = 50, size(40, 600)
    async with FaultProxy(own_server.port) as proxy:
        proxy.arm(None, delay=0.0005)
        storm = Storm(proxy.address, seed=23)
        await storm.open(shared=4)
        run = asyncio.ensure_future(storm.run(workers, operations))
        while storm.commands < 2_000 and not run.done():  # well under way
            await asyncio.sleep(0.005)
        own_server.restart()
        await run
        await storm.check_clients_still_answer()
    assert storm.mismatches == 0
    assert any(key.startswith("error") for key in storm.outcomes), storm.outcomes
    FIGURES[f"storm with a restart ({loop_name()}, {parser} parser)"] = {
        "commands": storm.commands, "mismatches": storm.mismatches, **storm.outcomes}
