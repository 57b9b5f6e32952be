"""Soak: a mixed workload for a while (5 s in `make test`, 2 min in `make stress`)
with shared clients, pipelines, pub/sub, pool churn and a server restart half-way.
Reports operations, errors by kind, and sockets and RSS at start and end.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import time
from collections import Counter

import pytest

import levredis
from tests.servers import RedisServer, process_fd_count
from tests.stressing import FIGURES, rss_bytes, size

SECONDS = float(os.environ.get("LEVREDIS_SOAK_SECONDS", size(5, 120)))
#: RSS may grow a little (allocator pools, caches); never with the work done.
RSS_SLACK = 48 * 1024 * 1024


class Soak:
    def __init__(self, server: RedisServer, deadline: float) -> None:
        self.config = {"host": "127.0.0.1", "port": server.port, "timeout": 2}
        self.deadline = deadline
        self.ops = 0
        self.errors: Counter[str] = Counter()
        self.mismatches = 0
        self.tokens = itertools.count()

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def note(self, err: object) -> None:
        self.errors[type(err).__name__] += 1

    async def shared_worker(self, client: levredis.Client) -> None:
        while self.running():
            token = f"t{next(self.tokens)}"
            value, err = await client.cmd("SET", f"soak:{token}", token, "EX", 30)
            if err is None:
                value, err = await client.cmd("GET", f"soak:{token}")
                if err is None and value != token:
                    self.mismatches += 1
            if err is not None:
                self.note(err)
                await asyncio.sleep(0.01)
            self.ops += 2

    async def pipeline_worker(self, client: levredis.Client) -> None:
        while self.running():
            token = f"p{next(self.tokens)}"
            results, err = await client.pipeline([["ECHO", f"{token}/{i}"] for i in range(20)])
            if err is None:
                if [r[0] for r in results or []] != [f"{token}/{i}" for i in range(20)]:
                    self.mismatches += 1
            else:
                self.note(err)
                await asyncio.sleep(0.01)
            self.ops += 20

    async def churn_worker(self) -> None:
        while self.running():
            client, err = await levredis.connect(self.config)
            if client is None:
                self.note(err)
                await asyncio.sleep(0.01)
                continue
            token = f"c{next(self.tokens)}"
            value, err = await client.cmd("ECHO", token)
            if err is None and value != token:
                self.mismatches += 1
            elif err is not None:
                self.note(err)
            await client.close()
            self.ops += 1

    async def pubsub(self) -> None:
        received = 0
        while self.running():
            subscriber, err = await levredis.connect({**self.config, "timeout": 0.5})
            publisher, err2 = await levredis.connect(self.config)
            if subscriber is None or publisher is None:
                self.note(err or err2)
                for client in (subscriber, publisher):
                    if client is not None:
                        await client.close()
                await asyncio.sleep(0.05)
                continue
            _, err = await subscriber.cmd("SUBSCRIBE", "soak:news")
            while err is None and self.running():
                token = f"m{next(self.tokens)}"
                _, err = await publisher.cmd("PUBLISH", "soak:news", token)
                if err is None:
                    message, err = await subscriber.read()
                    if err is None:
                        assert message is not None
                        if message["value"] != ["message", "soak:news", token]:
                            self.mismatches += 1
                        received += 1
                self.ops += 2
            if err is not None:
                self.note(err)
            await subscriber.close()
            await publisher.close()
        FIGURES.setdefault("soak messages received", 0)
        FIGURES["soak messages received"] += received


async def run_soak(server: RedisServer, seconds: float, restart: bool) -> Soak:
    soak = Soak(server, time.monotonic() + seconds)
    shared = []
    for _ in range(3):
        client, err = await levredis.connect(soak.config)
        assert client is not None, err
        shared.append(client)
    tasks = [asyncio.ensure_future(soak.shared_worker(shared[i % 3])) for i in range(24)]
    tasks += [asyncio.ensure_future(soak.pipeline_worker(shared[i % 3])) for i in range(6)]
    tasks += [asyncio.ensure_future(soak.churn_worker()) for _ in range(6)]
    tasks.append(asyncio.ensure_future(soak.pubsub()))
    if restart:
        await asyncio.sleep(seconds / 2)
        server.restart()
    await asyncio.gather(*tasks)
    for client in shared:
        await client.close()
    await levredis.close_pool()
    await asyncio.sleep(0.05)
    gc.collect()
    return soak


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_soak_mixed_workload_with_a_restart(own_server: RedisServer) -> None:
    # A short warm-up first: the allocator's pools and the caches fill once,
    # so what is compared is growth over the run itself.
    await run_soak(own_server, 1.0, restart=False)
    sockets_before, rss_before = process_fd_count(), rss_bytes()
    started = time.monotonic()
    soak = await run_soak(own_server, SECONDS, restart=True)
    sockets_after, rss_after = process_fd_count(), rss_bytes()
    FIGURES["soak"] = {
        "seconds": round(time.monotonic() - started, 1), "operations": soak.ops,
        "mismatches": soak.mismatches, "errors by kind": dict(soak.errors),
        "sockets before/after": [sockets_before, sockets_after],
        "rss MiB before/after": [round(rss_before / 2**20, 1), round(rss_after / 2**20, 1)],
    }
    assert soak.mismatches == 0
    assert soak.ops > 1000
    assert sum(soak.errors.values()) > 0  # the restart was felt ...
    assert set(soak.errors) <= {"NetworkError", "Timeout"}, soak.errors  # ... and only as that
    assert sockets_after <= sockets_before
    assert rss_after - rss_before < RSS_SLACK
