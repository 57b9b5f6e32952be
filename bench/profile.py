"""Where the time of one command goes: W1 (a sequential GET) and W2 (a pipelined SET).

    python -m bench.profile [--rounds 3] [--json PATH] [--quick]

A throwaway redis-server is pinned to CPU 0 and this process to CPU 1, as in
bench.against_c. Each workload runs twice on uvloop: once plain, for the wall
time per command, and once under cProfile (the standard library's
deterministic profiler), for how that time splits between levredis' layers,
the harness and the rest. The rest is what cProfile cannot see into: the
event loop's own C code and the kernel's recv/epoll and the server. The
profiler's own cost per recorded call is measured first (calibration) and
taken off each function's time; what remains of the profiled run is then
scaled to the plain wall time. The figures are estimates to a few tenths of
a µs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.against_c import new_loop, pinned_server
from bench.peers import Levredis
from bench.run import seed
from bench.workloads import Sizes, w1_sequential_get, w2_pipelined_set

#: (layer, test on a profiled function's (file, line, name)), first match wins.
LAYERS: list[tuple[str, Callable[[str, str], bool]]] = [
    ("harness (bench loop, clock, latency list)",
     lambda path, name: "/bench/" in path or name in ("<built-in method time.perf_counter>",
                                                      "<method 'append' of 'list' objects>",
                                                      "<method 'sort' of 'list' objects>")),
    ("encode (arguments to RESP bytes)",
     lambda path, name: "encode" in name),
    ("session state (plan, refusals)", lambda path, name: "_state.py" in path),
    ("parse (bytes to replies)",
     lambda path, name: "_resp" in path or "parse" in name or "next_reply" in name
     or "feed" in name),
    ("dispatch (reply to its caller)",
     lambda path, name: "_dispatch.py" in path or "set_result" in name),
    ("send (transport.write, the send syscall)",
     lambda path, name: "write" in name and ("Transport" in name or "transport" in name
                                              or "_protocol.py" in path)),
    ("client call (cmd/pipeline, futures, timeouts)",
     lambda path, name: "levredis" in path or "create_future" in name or "call_later" in name),
]
REST = "event loop and kernel (epoll, recv, task switches)"


def classify(key: tuple[str, int, str]) -> str:
    path, _, name = key
    for layer, test in LAYERS:
        if test(path, name):
            return layer
    return REST


async def _run(port: int, workload: Callable[..., Any], sizes: Sizes) -> float:
    adapter = Levredis()
    await adapter.open(port)
    try:
        return float((await workload(adapter, sizes)).figure)
    finally:
        await adapter.close()


def one(port: int, workload: Callable[..., Any], sizes: Sizes,
        profiler: cProfile.Profile | None) -> float:
    loop = new_loop()
    try:
        if profiler is None:
            return loop.run_until_complete(_run(port, workload, sizes))
        profiler.enable()
        try:
            return loop.run_until_complete(_run(port, workload, sizes))
        finally:
            profiler.disable()
    finally:
        loop.close()


def _empty() -> None:
    pass


def calibrate(calls: int = 200_000) -> float:
    """The profiler's own cost per recorded call, in seconds."""
    def run() -> None:
        for _ in range(calls):
            _empty()

    started = time.perf_counter()
    run()
    plain = time.perf_counter() - started
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(run)
    return max((time.perf_counter() - started - plain) / calls, 0.0)


def breakdown(port: int, workload: Callable[..., Any], sizes: Sizes, commands: int,
              rounds: int) -> dict[str, Any]:
    rates = [one(port, workload, sizes, None) for _ in range(rounds)]
    per_command_us = 1e6 / statistics.median(rates)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    one(port, workload, sizes, profiler)
    profiled_wall = time.perf_counter() - started
    per_call = calibrate()
    totals: dict[str, float] = {}
    calls = 0
    seen = 0.0
    for key, (_, ncalls, tottime, _, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        layer = classify(key)
        calls += ncalls
        seen += tottime
        totals[layer] = totals.get(layer, 0.0) + max(tottime - ncalls * per_call, 0.0)
    totals[REST] = totals.get(REST, 0.0) + max(profiled_wall - seen, 0.0)
    whole = sum(totals.values())
    layers = {layer: per_command_us * seconds / whole for layer, seconds in
              sorted(totals.items(), key=lambda item: -item[1])}
    return {"per_command_us": per_command_us, "commands_per_s": statistics.median(rates),
            "rounds": rates, "layers_us": layers, "commands": commands,
            "calls_per_command": calls / commands,
            "profiled_us_per_command": 1e6 * profiled_wall / commands}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few commands")
    args = parser.parse_args()
    server = pinned_server()
    sizes = Sizes.quick() if args.quick else Sizes()
    try:
        asyncio.run(seed(server.port))
        results = {
            "W1 sequential GET": breakdown(server.port, w1_sequential_get, sizes,
                                           sizes.w1_gets, args.rounds),
            "W2 pipelined SET x1000": breakdown(server.port, w2_pipelined_set, sizes,
                                                sizes.w2_pipelines * sizes.w2_size, args.rounds),
        }
    finally:
        server.cleanup()
    for name, result in results.items():
        print(f"{name}: {result['per_command_us']:.2f} µs per command "
              f"({result['commands_per_s']:,.0f}/s, median of {args.rounds}, uvloop, pinned; "
              f"{result['calls_per_command']:.1f} profiled calls per command)")
        for layer, micros in result["layers_us"].items():
            print(f"  {micros:6.2f} µs  {layer}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "results": results},
                                        indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
