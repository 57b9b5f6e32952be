"""The six workloads. Each returns (figure, unit, extra figures, a sample answer)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from bench.peers import Adapter

VALUE_64 = b"v" * 64
MIB = 1024 * 1024


@dataclass
class Sizes:
    """Operation counts; ``quick()`` shrinks them for the CI smoke run."""

    w1_gets: int = 20_000
    w2_pipelines: int = 50
    w2_size: int = 1_000
    w3_tasks: int = 100
    w3_gets: int = 500
    w4_gets: int = 200
    w5_pipelines: int = 20
    w5_size: int = 1_000
    w6_cycles: int = 2_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(w1_gets=300, w2_pipelines=3, w2_size=100, w3_tasks=10, w3_gets=30,
                   w4_gets=5, w5_pipelines=3, w5_size=100, w6_cycles=100)


@dataclass
class Outcome:
    figure: float
    unit: str
    extra: dict[str, float] = field(default_factory=dict)
    sample: Any = None


async def w1_sequential_get(adapter: Adapter, sizes: Sizes) -> Outcome:
    return await _sequential_get(adapter.get, adapter, sizes)


async def w1_unix_socket(adapter: Adapter, sizes: Sizes) -> Outcome:
    """W1 over a Unix socket (the same server), for the clients that reach one."""
    if adapter.unix_get is None:
        raise NotImplementedError
    return await _sequential_get(adapter.unix_get, adapter, sizes)


async def _sequential_get(get: Any, adapter: Adapter, sizes: Sizes) -> Outcome:
    latencies = []
    clock = time.perf_counter
    start = clock()
    for _ in range(sizes.w1_gets):
        t = clock()
        reply = await get("bench:get")
        latencies.append(clock() - t)
    elapsed = clock() - start
    latencies.sort()
    return Outcome(
        sizes.w1_gets / elapsed, "ops/s",
        {"p50_us": latencies[len(latencies) // 2] * 1e6,
         "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6},
        adapter.value(reply),
    )


async def w2_pipelined_set(adapter: Adapter, sizes: Sizes) -> Outcome:
    keys = [f"bench:set:{i}" for i in range(sizes.w2_size)]
    start = time.perf_counter()
    for _ in range(sizes.w2_pipelines):
        replies = await adapter.set_pipeline(keys, VALUE_64)
    elapsed = time.perf_counter() - start
    return Outcome(sizes.w2_pipelines * sizes.w2_size / elapsed, "commands/s",
                   sample=[adapter.value(r) for r in replies[:3]])


async def w3_shared_client(adapter: Adapter, sizes: Sizes) -> Outcome:
    get = adapter.get

    async def worker() -> Any:
        reply = None
        for _ in range(sizes.w3_gets):
            reply = await get("bench:get")
        return reply

    start = time.perf_counter()
    replies = await asyncio.gather(*(worker() for _ in range(sizes.w3_tasks)))
    elapsed = time.perf_counter() - start
    return Outcome(sizes.w3_tasks * sizes.w3_gets / elapsed, "ops/s",
                   sample=adapter.value(replies[0]))


async def w4_large_values(adapter: Adapter, sizes: Sizes) -> Outcome:
    get = adapter.get
    start = time.perf_counter()
    for _ in range(sizes.w4_gets):
        reply = await get("bench:big")
    elapsed = time.perf_counter() - start
    value = adapter.value(reply)
    return Outcome(sizes.w4_gets / elapsed, "MiB/s", sample=len(value))


async def w5_parser_bound(adapter: Adapter, sizes: Sizes) -> Outcome:
    start = time.perf_counter()
    for _ in range(sizes.w5_pipelines):
        replies = await adapter.lrange_pipeline("bench:list", sizes.w5_size)
    elapsed = time.perf_counter() - start
    return Outcome(sizes.w5_pipelines * sizes.w5_size / elapsed, "replies/s",
                   sample=adapter.value(replies[0])[:3])


async def w6_pool_churn(adapter: Adapter, sizes: Sizes) -> Outcome:
    start = time.perf_counter()
    for _ in range(sizes.w6_cycles):
        reply = await adapter.connect_ping_close()
    elapsed = time.perf_counter() - start
    return Outcome(sizes.w6_cycles / elapsed, "ops/s", sample=adapter.value(reply))


WORKLOADS = {
    "W1 sequential GET": w1_sequential_get,
    "W1 over a Unix socket": w1_unix_socket,
    "W2 pipelined SET x1000": w2_pipelined_set,
    "W3 100 tasks, one client": w3_shared_client,
    "W4 GET 1 MiB": w4_large_values,
    "W5 LRANGE 100 x1000": w5_parser_bound,
    "W6 connect/PING/close": w6_pool_churn,
}
