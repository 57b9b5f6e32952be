"""The bounded-under-load runs, for levredis and redis-py side by side.

    python -m bench.bounds [--quick] [--json PATH]

Three runs against throwaway redis-servers, each client in a fresh process
state: a connection storm (many concurrent connect → INCR → close tasks
under a cap of 50 connections, on a server that accepts 60 clients), a slow
pub/sub consumer against a flooding publisher, and a consumer loop of
``wait_for(BLPOP jobs 0, 0.02)`` against a producer. Prints peak sockets,
RSS growth, failures and jobs lost for each client.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import levredis
from tests.servers import RedisServer, process_fd_count
from tests.stressing import rss_bytes

Run = Callable[[int, dict[str, Any]], Awaitable[dict[str, Any]]]


async def sampled(work: Awaitable[Any]) -> tuple[Any, int]:
    """Run ``work`` while sampling the process' open sockets; (result, peak)."""
    peak = process_fd_count()
    task = asyncio.ensure_future(work)
    while not task.done():
        peak = max(peak, process_fd_count())
        await asyncio.sleep(0.02)
    return task.result(), peak


# -- connection storm ----------------------------------------------------------------

async def storm_levredis(port: int, size: dict[str, Any]) -> dict[str, Any]:
    config = {"host": "127.0.0.1", "port": port, "timeout": 60, "max_connections": 50}
    failures = 0

    async def one() -> None:
        nonlocal failures
        client, err = await levredis.connect(config)
        if client is None:
            failures += 1
            return
        _, err = await client.cmd("INCR", "storm")
        failures += err is not None
        await client.close()

    before = rss_bytes()
    _, peak = await sampled(asyncio.gather(*(one() for _ in range(size["storm"]))))
    await levredis.close_pool()
    return {"tasks": size["storm"], "failed": failures, "peak sockets": peak,
            "RSS growth MiB": round((rss_bytes() - before) / 2**20, 1)}


async def storm_redis_py(port: int, size: dict[str, Any]) -> dict[str, Any]:
    import redis.asyncio as redis

    pool = redis.BlockingConnectionPool(host="127.0.0.1", port=port, max_connections=50,
                                        timeout=60)
    failures = 0

    async def one() -> None:
        nonlocal failures
        client = redis.Redis(connection_pool=pool)
        try:
            await client.incr("storm")
        except Exception:
            failures += 1
        finally:
            await client.aclose(close_connection_pool=False)

    before = rss_bytes()
    _, peak = await sampled(asyncio.gather(*(one() for _ in range(size["storm"]))))
    await pool.disconnect()
    return {"tasks": size["storm"], "failed": failures, "peak sockets": peak,
            "RSS growth MiB": round((rss_bytes() - before) / 2**20, 1)}


# -- slow consumer ----------------------------------------------------------------------

async def flood(publish: Callable[[list[str]], Awaitable[object]], seconds: float) -> int:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    sent = 0
    while loop.time() < end:
        try:
            await publish([f"{sent + n}:{'x' * 200}" for n in range(500)])
        except Exception:
            return sent
        sent += 500
    return sent


async def consumer_levredis(port: int, size: dict[str, Any]) -> dict[str, Any]:
    config = {"host": "127.0.0.1", "port": port, "timeout": 30}
    subscriber, _ = await levredis.connect(config)
    publisher, _ = await levredis.connect(config)
    assert subscriber is not None and publisher is not None
    await subscriber.cmd("SUBSCRIBE", "flood")

    async def publish(payloads: list[str]) -> object:
        _, err = await publisher.pipeline([["PUBLISH", "flood", p] for p in payloads])
        if err is not None:
            raise RuntimeError(err)
        return None

    async def read() -> int | None:
        message, err = await subscriber.read()
        return None if err is not None else int(message["value"][2].split(":")[0])  # type: ignore[index]

    result = await consume(publish, read, size["seconds"])
    await subscriber.close()
    await publisher.close()
    return result


async def consumer_redis_py(port: int, size: dict[str, Any]) -> dict[str, Any]:
    import redis.asyncio as redis

    client = redis.Redis(host="127.0.0.1", port=port)
    publisher = redis.Redis(host="127.0.0.1", port=port)
    pubsub = client.pubsub()
    await pubsub.subscribe("flood")
    await pubsub.get_message(timeout=1)  # the confirmation

    async def publish(payloads: list[str]) -> object:
        async with publisher.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.publish("flood", payload)
            return await pipe.execute()

    async def read() -> int | None:
        try:
            message = await pubsub.get_message(timeout=5)
        except Exception:
            return None
        if message is None:
            return None
        return int(message["data"].split(b":")[0])

    result = await consume(publish, read, size["seconds"])
    await pubsub.aclose()
    await client.aclose()
    await publisher.aclose()
    return result


async def consume(publish: Callable[[list[str]], Awaitable[object]],
                  read: Callable[[], Awaitable[int | None]], seconds: float) -> dict[str, Any]:
    gc.collect()
    before = peak = rss_bytes()
    flooding = asyncio.ensure_future(flood(publish, seconds))
    received: list[int] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        number = await read()
        if number is None:
            break
        received.append(number)
        peak = max(peak, rss_bytes())
        await asyncio.sleep(0.005)  # ~200 messages a second
    sent = await flooding
    peak = max(peak, rss_bytes())
    return {"seconds": seconds, "published": sent, "read": len(received),
            "in order, no gap": received == list(range(len(received))),
            "peak RSS growth MiB": round((peak - before) / 2**20, 1)}


# -- blocking-pop cancellation --------------------------------------------------------

async def jobs_run(pop: Callable[[], Awaitable[str | None]],
                   push: Callable[[str], Awaitable[object]],
                   length: Callable[[], Awaitable[int]], jobs: int) -> dict[str, Any]:
    received: list[str] = []

    async def produce() -> None:
        for n in range(jobs):
            await asyncio.sleep(0.002 if n % 3 else 0.02)
            await push(f"job-{n}")

    producing = asyncio.ensure_future(produce())
    cancelled = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + jobs * 0.05 + 10
    while len(received) < jobs and loop.time() < end:
        try:
            job = await asyncio.wait_for(pop(), 0.02)
        except TimeoutError:
            cancelled += 1
            continue
        if job is not None:
            received.append(job)
    await producing
    await asyncio.sleep(0.5)  # recoveries settle
    left = await length()
    return {"jobs pushed": jobs, "received": len(received), "left in the list": left,
            "lost": jobs - len(received) - left, "calls cancelled": cancelled}


async def jobs_levredis(port: int, size: dict[str, Any]) -> dict[str, Any]:
    config = {"host": "127.0.0.1", "port": port}
    consumer, _ = await levredis.connect(config)
    producer, _ = await levredis.connect(config)
    assert consumer is not None and producer is not None
    await producer.cmd("DEL", "jobs")

    async def pop() -> str | None:
        value, _ = await consumer.cmd("BLPOP", "jobs", 0)
        return value[1] if isinstance(value, list) else None  # type: ignore[return-value]

    async def length() -> int:
        value, _ = await producer.cmd("LLEN", "jobs")
        return int(value)  # type: ignore[arg-type]

    result = await jobs_run(pop, lambda job: producer.cmd("RPUSH", "jobs", job), length,
                            size["jobs"])
    await consumer.close()
    await producer.close()
    return result


async def jobs_redis_py(port: int, size: dict[str, Any]) -> dict[str, Any]:
    import redis.asyncio as redis

    consumer = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    producer = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    await producer.delete("jobs")

    async def pop() -> str | None:
        value = await consumer.blpop(["jobs"], 0)
        return value[1] if value else None

    async def length() -> int:
        return int(await producer.llen("jobs"))

    result = await jobs_run(pop, lambda job: producer.rpush("jobs", job), length, size["jobs"])
    await consumer.aclose()
    await producer.aclose()
    return result


RUNS: dict[str, dict[str, tuple[Run, list[str]]]] = {
    "connection storm (max 50 connections, server maxclients 60)": {
        "levredis": (storm_levredis, ["--maxclients", "60"]),
        "redis-py": (storm_redis_py, ["--maxclients", "60"]),
    },
    "slow consumer vs a flooding publisher": {
        "levredis": (consumer_levredis, []),
        "redis-py": (consumer_redis_py, []),
    },
    "BLPOP consumer loop with wait_for(0.02)": {
        "levredis": (jobs_levredis, []),
        "redis-py": (jobs_redis_py, []),
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    size = ({"storm": 2_000, "seconds": 3, "jobs": 40} if args.quick
            else {"storm": 20_000, "seconds": 20, "jobs": 300})
    report: dict[str, dict[str, Any]] = {}
    for title, clients in RUNS.items():
        report[title] = {}
        for name, (run, server_args) in clients.items():
            server = RedisServer(server_args).start()
            try:
                report[title][name] = asyncio.run(asyncio.wait_for(run(server.port, size), 600))
            except Exception as exc:
                report[title][name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            finally:
                server.cleanup()
            print(f"{title} | {name}: {json.dumps(report[title][name])}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
