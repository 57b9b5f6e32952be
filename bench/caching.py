"""W7 — hot reads through a client-side cache, side by side with the peers' caches.

    python -m bench.caching [--quick] [--rounds 3] [--seconds 3] [--json PATH]

100 tasks share one client and read 1,000 hot keys (Zipf-like: key i is read
in proportion to 1/(i+1)) while one writer, on a connection of its own, SETs
a random key of a fixed 1% of them (10 keys) 1,000 times a second. Figure:
reads per second over the whole run, median of the rounds.

Every task does one round trip (PING) before each 100 reads and checks each of
those reads against the versions acknowledged before that PING was sent (the
freshness rule 1 of docs/caching.md): a read older than that is *stale*.

Clients: levredis with its cache and without it, redis-py + hiredis (no cache
in its asyncio client), coredis with its tracking cache, valkey-glide with its
cache in server-assisted mode (CLIENT TRACKING BCAST) — its default mode, a
TTL cache that hears nothing from the server, is in the freshness checker
(bench/freshness.py) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import levredis
from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parent.parent
KEYS = 1_000
WRITTEN = 10  # 1% of the keys
WRITES_PER_SECOND = 1_000
TASKS = 100
READS_PER_ROUND_TRIP = 100
CACHE_KB = 64 * 1024


class CachingClient:
    """One client, its cache on or off.

    ``get`` is the client's own coroutine function (no layer of the harness
    around it); ``version`` reads the version out of its reply, ``one`` is its
    reply for version 1 (most keys never change: compared, not converted).
    """

    name = ""
    missing: str | None = None
    get: Callable[[str], Awaitable[Any]]
    one: Any = b"1"

    @staticmethod
    def version(reply: Any) -> int:
        return 0 if reply is None else int(reply)

    async def open(self, port: int) -> None:
        raise NotImplementedError

    async def ping(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def hits(self) -> int | None:
        return None


class LevredisClient(CachingClient):
    def __init__(self, cache: bool) -> None:
        self.cache = cache
        self.name = "levredis cache" if cache else "levredis"

    async def open(self, port: int) -> None:
        config: dict[str, Any] = {"host": "127.0.0.1", "port": port, "timeout": 10}
        if self.cache:
            config.update(protocol=3, cache={"max_entries": 100_000})
        client, err = await levredis.connect(config)
        if client is None:
            raise RuntimeError(err)
        self.client = client
        self.get = functools.partial(client.cmd, "GET")

    one = ("1", None)

    @staticmethod
    def version(reply: Any) -> int:
        value, err = reply
        if err is not None and err != "not found":
            raise RuntimeError(err)
        return 0 if value is None else int(value)

    async def ping(self) -> None:
        _, err = await self.client.cmd("PING")
        if err is not None:
            raise RuntimeError(err)

    async def close(self) -> None:
        await self.client.close()

    def hits(self) -> int | None:
        for pool in levredis.pool_stats():
            if "cache" in pool:
                return pool["cache"]["hits"]
        return None


class RedisPyClient(CachingClient):
    name = "redis-py+hiredis"

    def __init__(self) -> None:
        try:
            import hiredis  # noqa: F401
            import redis.asyncio  # noqa: F401
        except ImportError as exc:
            self.missing = f"redis-py or hiredis not installed ({exc})"

    async def open(self, port: int) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis(host="127.0.0.1", port=port, max_connections=200)
        self.get = self.client.get

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


class CoredisClient(CachingClient):
    name = "coredis cache"

    def __init__(self) -> None:
        try:
            import coredis  # noqa: F401
        except ImportError as exc:
            self.missing = f"coredis not installed ({exc})"

    async def open(self, port: int) -> None:
        import coredis
        from coredis.patterns.cache import LRUCache

        self.client = coredis.Redis(host="127.0.0.1", port=port, decode_responses=False,
                                    cache=LRUCache(max_keys=100_000))
        await self.client.__aenter__()
        self.get = self.client.get

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.__aexit__(None, None, None)


class GlideClient(CachingClient):
    def __init__(self, server_assisted: bool = True) -> None:
        self.server_assisted = server_assisted
        self.name = "valkey-glide cache" + ("" if server_assisted else " (TTL 60 s)")
        try:
            import glide  # noqa: F401
        except ImportError as exc:
            self.missing = f"valkey-glide not installed ({exc})"

    async def open(self, port: int) -> None:
        from glide import GlideClient as Glide
        from glide import GlideClientConfiguration, NodeAddress, ProtocolVersion
        from glide_shared.cache import ClientSideCache  # type: ignore[import-untyped]

        cache = ClientSideCache.create(
            max_cache_kb=CACHE_KB, entry_ttl_ms=0 if self.server_assisted else 60_000,
            server_assisted=self.server_assisted)
        config = GlideClientConfiguration([NodeAddress("127.0.0.1", port)],
                                          protocol=ProtocolVersion.RESP3,
                                          client_side_cache=cache, request_timeout=10_000)
        self.client = await Glide.create(config)
        self.get = self.client.get

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.close()


def w7_clients() -> list[CachingClient]:
    return [LevredisClient(cache=True), LevredisClient(cache=False), RedisPyClient(),
            CoredisClient(), GlideClient(server_assisted=True)]


# -- the shared bookkeeping: what was written and acknowledged ------------------------------


class Ledger:
    """Per key: the latest version issued and the latest acknowledged (one writer per key)."""

    def __init__(self, keys: list[str]) -> None:
        self.issued = dict.fromkeys(keys, 0)
        self.acked = dict.fromkeys(keys, 0)

    async def load(self, port: int) -> None:
        """Every key written once, so each starts at a known version."""
        writer, err = await levredis.connect({"host": "127.0.0.1", "port": port})
        assert writer is not None, err
        await writer.cmd("FLUSHALL")
        await writer.pipeline([["SET", key, 1] for key in self.issued])
        for key in self.issued:
            self.issued[key] = self.acked[key] = 1
        await writer.close(no_keepalive=True)


def zipf_sequence(count: int, keys: int, seed: int = 7) -> list[int]:
    """Key indexes drawn with weight 1/(i+1)."""
    weights = [1 / (i + 1) for i in range(keys)]
    return random.Random(seed).choices(range(keys), weights=weights, k=count)


async def w7_round(client: CachingClient, port: int, seconds: float) -> dict[str, Any]:
    keys = [f"w7:{i}" for i in range(KEYS)]
    ledger = Ledger(keys)
    await ledger.load(port)
    written = random.Random(11).sample(keys, WRITTEN)
    sequence = zipf_sequence(20_000, KEYS)
    await client.open(port)
    stop = asyncio.Event()
    reads = stale = errors = wrong = 0

    async def writer() -> None:
        own, err = await levredis.connect({"host": "127.0.0.1", "port": port})
        assert own is not None, err
        pick = random.Random(3).choice
        interval = 1 / WRITES_PER_SECOND
        next_at = time.perf_counter()
        while not stop.is_set():
            key = pick(written)
            version = ledger.issued[key] + 1
            ledger.issued[key] = version
            if (await own.cmd("SET", key, version))[1] is None:
                ledger.acked[key] = version
            next_at += interval
            delay = next_at - time.perf_counter()
            await asyncio.sleep(delay if delay > 0 else 0)
        await own.close(no_keepalive=True)

    async def reader(offset: int) -> None:
        nonlocal reads, stale, errors, wrong
        get, version, one = client.get, client.version, client.one
        position = offset
        length = len(sequence)
        acked = ledger.acked
        while not stop.is_set():
            # What is acknowledged before the round trip (only the written keys
            # ever move past version 1).
            floors = {key: acked[key] for key in written}
            try:
                await client.ping()
            except Exception:
                errors += 1
                continue
            for _ in range(READS_PER_ROUND_TRIP):
                key = keys[sequence[position]]
                position = (position + 1) % length
                try:
                    reply = await get(key)
                    reads += 1
                    if key in floors:
                        if version(reply) < floors[key]:
                            stale += 1
                    elif reply != one:
                        wrong += 1
                except Exception:
                    errors += 1

    write_task = asyncio.ensure_future(writer())
    readers = [asyncio.ensure_future(reader(i * 197)) for i in range(TASKS)]
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*readers, write_task)
    elapsed = time.perf_counter() - started
    hits = client.hits()
    await client.close()
    await levredis.close_pool()
    return {"reads_per_s": reads / elapsed, "reads": reads, "stale": stale, "errors": errors,
            "wrong": wrong,
            "hit_ratio": None if hits is None or not reads else hits / reads}


def run_w7(seconds: float, rounds: int, clients: list[CachingClient],
           pin: bool = False) -> dict[str, Any]:
    """Each client's rounds in turn; ``pin``: the server on CPU 0, this process on CPU 1."""
    if pin:
        os.sched_setaffinity(0, {1})
    server = RedisServer(cpu=0 if pin else None).start()
    results: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        # Rounds interleaved (A B C, A B C ...): a slow spell of the machine
        # falls on every client alike.
        for _ in range(rounds):
            for client in clients:
                if client.missing:
                    results[client.name] = {"skipped": client.missing}
                    continue
                runs.setdefault(client.name, []).append(
                    asyncio.run(w7_round(client, server.port, seconds)))
    finally:
        server.cleanup()
    for name, outcomes in runs.items():
        results[name] = {
            "reads_per_s": statistics.median(o["reads_per_s"] for o in outcomes),
            "rounds": [o["reads_per_s"] for o in outcomes],
            "stale": sum(o["stale"] for o in outcomes),
            "errors": sum(o["errors"] for o in outcomes),
            "wrong": sum(o["wrong"] for o in outcomes),
            "reads": sum(o["reads"] for o in outcomes),
            "hit_ratio": outcomes[-1]["hit_ratio"],
        }
    return results


def table(results: dict[str, Any]) -> str:
    ours = results.get("levredis cache", {}).get("reads_per_s")
    lines = [f"{'W7 hot reads, 100 tasks':32} {'reads/s':>12} {'levredis cache is':>17} "
             f"{'stale':>7} {'wrong':>7} {'errors':>7}"]
    for name, figures in results.items():
        if "skipped" in figures:
            lines.append(f"{name:32} skipped: {figures['skipped']}")
            continue
        ratio = f"{ours / figures['reads_per_s']:.2f}x" if ours else "-"
        lines.append(f"{name:32} {figures['reads_per_s']:>12,.0f} {ratio:>17} "
                     f"{figures['stale']:>7} {figures['wrong']:>7} {figures['errors']:>7}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", default="", help="comma-separated subset of names")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--pin", action="store_true",
                        help="server on CPU 0, clients on CPU 1 (needs 2 CPUs)")
    args = parser.parse_args()
    seconds, rounds = (0.5, 1) if args.quick else (args.seconds, args.rounds)
    wanted = {name for name in args.clients.split(",") if name}
    clients = [c for c in w7_clients() if not wanted or c.name in wanted]
    results = run_w7(seconds, rounds, clients, pin=args.pin and (os.cpu_count() or 1) >= 2)
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"),
                                         "seconds": seconds, "rounds": rounds,
                                         "results": results}, indent=2))
        print(f"wrote {args.json}")
    ours = results.get("levredis cache", {})
    return 1 if ours.get("stale") or ours.get("wrong") or ours.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
