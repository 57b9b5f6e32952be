"""levredis against the C client that ships with Redis (redis-benchmark), pinned.

    python -m bench.against_c [--rounds 3] [--json PATH]

redis-server runs on CPU 0; this process, and the redis-benchmark it starts
(which inherits the affinity), on CPU 1, so client and server never share a
core (unpinned, redis-benchmark -c 1 swings 16k-108k requests/s on a 2-core
machine). Rounds interleave levredis and C. The workloads match bench.run's:

- W1 sequential GET of a 64-byte value, one connection  (C: -c 1 -P 1)
- W2 pipelined SET x1000, one connection                 (C: -c 1 -P 1000)
- W3 100 concurrent GETs on one client                   (C: -c 100 -P 1)

and, beside W1, a bare asyncio.Protocol doing W1's GETs with no parsing or
bookkeeping at all: the ceiling of any Python client on this loop.

levredis runs on uvloop when it is installed (the loop production services
use), asyncio otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.ceiling import bare_gets
from bench.peers import Levredis
from bench.run import seed
from bench.workloads import (
    VALUE_64,
    Sizes,
    w1_sequential_get,
    w2_pipelined_set,
    w3_shared_client,
)
from tests.servers import RedisServer

WORKLOADS: dict[str, tuple[Callable[..., Any], list[str], int]] = {
    # name: (levredis workload, redis-benchmark options and command, requests)
    "W1 sequential GET": (w1_sequential_get,
                          ["-c", "1", "-P", "1", "GET", "bench:get"], 20_000),
    "W2 pipelined SET x1000": (w2_pipelined_set,
                               ["-c", "1", "-P", "1000", "-r", "1000",
                                "SET", "bench:set:__rand_int__", VALUE_64.decode()], 50_000),
    "W3 100 tasks, one client": (w3_shared_client,
                                 ["-c", "100", "-P", "1", "GET", "bench:get"], 50_000),
}


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def c_figure(port: int, options: list[str], requests: int) -> float:
    """redis-benchmark's requests per second for one workload."""
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(requests), "--csv",
         *options],
        capture_output=True, text=True, timeout=300, check=True).stdout
    rows = list(csv.reader(io.StringIO(out)))
    return float(rows[-1][1])


#: W1's ceiling: a bare asyncio.Protocol (no parsing, no bookkeeping) beside C.
CEILING = "W1 ceiling: bare Protocol"


async def levredis_round(port: int, sizes: Sizes) -> dict[str, float]:
    adapter = Levredis()
    await adapter.open(port)
    try:
        figures = {name: (await workload(adapter, sizes)).figure
                   for name, (workload, _, _) in WORKLOADS.items()}
    finally:
        await adapter.close()
    figures[CEILING] = await bare_gets(port, sizes.w1_gets)
    return figures


def pinned_server() -> RedisServer:
    """A throwaway redis-server on CPU 0, this process moved to CPU 1 (given two CPUs)."""
    cpu: int | None = None
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
        cpu = 0
    return RedisServer(cpu=cpu).start()


def measure(rounds: int, quick: bool = False) -> dict[str, Any]:
    server = pinned_server()
    sizes = Sizes.quick() if quick else Sizes()
    names = [*WORKLOADS, CEILING]
    ours: dict[str, list[float]] = {name: [] for name in names}
    theirs: dict[str, list[float]] = {name: [] for name in names}
    try:
        asyncio.run(seed(server.port))
        for _ in range(rounds):
            loop = new_loop()
            try:
                figures = loop.run_until_complete(levredis_round(server.port, sizes))
            finally:
                loop.close()
            for name, (_, options, requests) in WORKLOADS.items():
                ours[name].append(figures[name])
                theirs[name].append(c_figure(server.port, options,
                                             requests // 20 if quick else requests))
            ours[CEILING].append(figures[CEILING])
            theirs[CEILING].append(theirs["W1 sequential GET"][-1])
    finally:
        server.cleanup()
    return {
        name: {"levredis": statistics.median(ours[name]), "c": statistics.median(theirs[name]),
               "ratio": statistics.median(ours[name]) / statistics.median(theirs[name]),
               "levredis_rounds": ours[name], "c_rounds": theirs[name]}
        for name in names
    }


def table(results: dict[str, Any], rounds: int) -> str:
    lines = [f"levredis against redis-benchmark (C), pinned, median of {rounds} rounds",
             f"{'workload':28} {'levredis /s':>12} {'C /s':>12} {'ratio':>7}"]
    for name, figures in results.items():
        lines.append(f"{name:28} {figures['levredis']:>12,.0f} {figures['c']:>12,.0f} "
                     f"{figures['ratio']:>7.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests")
    args = parser.parse_args()
    if shutil.which("redis-benchmark") is None:
        print("redis-benchmark not found: skipped")
        return 0
    results = measure(args.rounds, args.quick)
    print(table(results, args.rounds))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"),
                                         "rounds": args.rounds, "results": results}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
