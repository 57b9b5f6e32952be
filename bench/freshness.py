"""The freshness checker: stale reads through a client-side cache, under chaos.

    python -m bench.freshness [--clients NAME,...|all] [--seconds 60] [--json PATH]

For each client: a fresh redis-server (AOF, fsync always, so a restart keeps
every acknowledged write), 5 writers on connections of their own (plain
levredis clients, each the only writer of 40 of the 200 keys, SETting
increasing versions), and 20 tasks reading through ONE caching client. Each
reader snapshots the versions acknowledged so far, does one round trip (PING)
on the caching client, then reads 10 keys:

- **stale**: a version older than the one acknowledged before that PING was
  sent — a break of the freshness rule 1 (docs/caching.md);
- **phantom**: a version never written.

Chaos: every connection of the server killed (CLIENT KILL TYPE normal) every
``--kill-every`` seconds, and the server restarted once, half-way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import levredis
from bench.caching import (
    CachingClient,
    CoredisClient,
    GlideClient,
    Ledger,
    LevredisClient,
)
from tests.servers import RedisServer

KEYS = 200
WRITERS = 5
READERS = 20
READS_PER_ROUND_TRIP = 10
WRITE_PAUSE = 0.002


@dataclass
class Chaos:
    seconds: float = 60.0
    kill_every: float = 2.0
    restart: bool = True
    seed: int = 5


def checker_clients() -> list[CachingClient]:
    return [LevredisClient(cache=True), CoredisClient(), GlideClient(server_assisted=True),
            GlideClient(server_assisted=False)]


async def check(client: CachingClient, server: RedisServer, chaos: Chaos) -> dict[str, Any]:
    keys = [f"fresh:{n}" for n in range(KEYS)]
    ledger = Ledger(keys)
    await ledger.load(server.port)
    await client.open(server.port)
    stop = asyncio.Event()
    figures: dict[str, Any] = {"reads": 0, "stale": 0, "phantom": 0, "read_errors": 0,
                               "writes_acked": 0, "write_errors": 0, "kills": 0,
                               "restarts": 0, "examples": []}

    async def writer(own: list[str], seed: int) -> None:
        pick = random.Random(seed).choice
        connection: levredis.Client | None = None
        while not stop.is_set():
            if connection is None:
                connection, _ = await levredis.connect(
                    {"host": "127.0.0.1", "port": server.port, "timeout": 2})
                if connection is None:
                    await asyncio.sleep(0.05)
                    continue
            key = pick(own)
            version = ledger.issued[key] + 1
            ledger.issued[key] = version
            _, err = await connection.cmd("SET", key, version)
            if err is None:
                ledger.acked[key] = version
                figures["writes_acked"] += 1
            else:
                figures["write_errors"] += 1
                await asyncio.sleep(0.05)
            await asyncio.sleep(WRITE_PAUSE)
        if connection is not None:
            await connection.close(no_keepalive=True)

    async def reader(seed: int) -> None:
        pick = random.Random(seed).choice
        get, version_of = client.get, client.version
        while not stop.is_set():
            floors = dict(ledger.acked)
            try:
                await client.ping()
                for _ in range(READS_PER_ROUND_TRIP):
                    key = pick(keys)
                    version = version_of(await get(key))
                    figures["reads"] += 1
                    if version < floors[key]:
                        figures["stale"] += 1
                        if len(figures["examples"]) < 5:
                            figures["examples"].append(
                                {"key": key, "read": version, "acked_before": floors[key]})
                    elif version > ledger.issued[key]:
                        figures["phantom"] += 1
            except Exception:
                figures["read_errors"] += 1
                await asyncio.sleep(0.01)

    async def faults() -> None:
        rng = random.Random(chaos.seed)
        started = time.monotonic()
        restarted = not chaos.restart
        while not stop.is_set():
            await asyncio.sleep(chaos.kill_every * rng.uniform(0.5, 1.5))
            if stop.is_set():
                break
            if not restarted and time.monotonic() - started > chaos.seconds / 2:
                await asyncio.to_thread(server.restart)
                figures["restarts"] += 1
                restarted = True
            else:
                await asyncio.to_thread(server.command, "CLIENT", "KILL", "TYPE", "normal")
                figures["kills"] += 1

    tasks = [asyncio.ensure_future(writer(keys[n::WRITERS], n)) for n in range(WRITERS)]
    tasks += [asyncio.ensure_future(reader(100 + n)) for n in range(READERS)]
    tasks.append(asyncio.ensure_future(faults()))
    started = time.perf_counter()
    await asyncio.sleep(chaos.seconds)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    hits = client.hits()
    figures["hit_ratio"] = None if hits is None or not figures["reads"] else round(
        hits / figures["reads"], 3)
    await client.close()
    await levredis.close_pool()
    return figures


def run_checker(client: CachingClient, chaos: Chaos) -> dict[str, Any]:
    server = RedisServer(["--appendonly", "yes", "--appendfsync", "always"]).start()
    try:
        return asyncio.run(check(client, server, chaos))
    finally:
        server.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="levredis cache",
                        help="comma-separated names, or 'all'")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--kill-every", type=float, default=2.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    chaos = Chaos(seconds=args.seconds, kill_every=args.kill_every)
    known = [client.name for client in checker_clients()]
    wanted = known if args.clients == "all" else args.clients.split(",")
    unknown = [name for name in wanted if name not in known]
    if unknown:
        parser.error(f"unknown client {', '.join(unknown)} (known: {', '.join(known)}, or all)")
    results: dict[str, Any] = {}
    for client in checker_clients():
        if client.name not in wanted:
            continue
        if client.missing:
            results[client.name] = {"skipped": client.missing}
            continue
        results[client.name] = run_checker(client, chaos)
        figures = results[client.name]
        print(f"{client.name:32} reads {figures['reads']:>9,}  stale {figures['stale']:>6,}  "
              f"phantom {figures['phantom']}  read errors {figures['read_errors']:,}  "
              f"writes {figures['writes_acked']:,}  kills {figures['kills']}  "
              f"restarts {figures['restarts']}  hit ratio {figures['hit_ratio']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"),
                                         "chaos": chaos.__dict__, "results": results},
                                        indent=2))
        print(f"wrote {args.json}")
    ours = results.get("levredis cache", {})
    return 1 if ours.get("stale") or ours.get("phantom") else 0


if __name__ == "__main__":
    sys.exit(main())
