"""W3 on a Redis Cluster: 100 tasks x 500 GET over keys in every slot range,
levredis' cluster client against redis-py's RedisCluster, in one run.

    python -m bench.cluster [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import levredis
from tests.cluster.conftest import LocalCluster

TASKS, GETS, KEYS = 100, 500, 1000


async def w3(get: Any) -> float:
    async def worker(n: int) -> None:
        for i in range(GETS):
            key = f"bench:{(n * GETS + i) % KEYS}"
            value = await get(key)
            if isinstance(value, tuple):
                value = value[0]
            assert value == key.encode() or value == key, (key, value)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(TASKS)))
    return TASKS * GETS / (time.perf_counter() - started)


async def run(seeds: list[str], rounds: int) -> dict[str, float]:
    cluster, err = await levredis.connect_cluster({"nodes": seeds, "decode": False})
    assert cluster is not None, err
    for i in range(KEYS):
        await cluster.cmd("SET", f"bench:{i}", f"bench:{i}")
    ours = sorted([await w3(lambda k: cluster.cmd("GET", k)) for _ in range(rounds)])
    await cluster.close()
    figures = {"levredis": ours[len(ours) // 2]}
    try:
        from redis.asyncio.cluster import RedisCluster
    except ImportError:
        return figures
    host, port = seeds[0].split(":")
    theirs_client = RedisCluster(host=host, port=int(port))
    await theirs_client.initialize()
    theirs = sorted([await w3(theirs_client.get) for _ in range(rounds)])
    await theirs_client.aclose()
    figures["redis-py RedisCluster"] = theirs[len(theirs) // 2]
    return figures


def report(loop: str, figures: dict[str, float]) -> str:
    line = f"{loop}: " + ", ".join(f"{client} {ops:,.0f} ops/s" for client, ops in figures.items())
    if len(figures) == 2:
        line += f" -> {figures['levredis'] / figures['redis-py RedisCluster']:.2f}x"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    local = LocalCluster().start()
    try:
        print(report("asyncio", asyncio.run(run(local.seeds, args.rounds))))
        try:
            import uvloop
        except ImportError:
            return
        print(report("uvloop", uvloop.run(run(local.seeds, args.rounds))))
    finally:
        local.cleanup()


if __name__ == "__main__":
    main()
