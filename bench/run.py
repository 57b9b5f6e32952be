"""Benchmark levredis side by side with other Python Redis clients.

    python -m bench.run [--quick] [--rounds 3] [--loops asyncio,uvloop]

Starts one throwaway redis-server on a free port, runs the six workloads for
every client that is installed, on each loop, and prints the median figure
and the ratio of levredis to each peer. Writes a JSON file and a PNG chart.
Exits non-zero when the clients' answers differ.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import levredis
from bench.peers import Adapter, all_adapters
from bench.workloads import MIB, VALUE_64, WORKLOADS, Outcome, Sizes
from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parent.parent
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop

    LOOPS["uvloop"] = uvloop.new_event_loop
except ImportError:
    pass

MEMORY_VALUE = 100 * MIB


async def seed(port: int) -> None:
    client, err = await levredis.connect({"host": "127.0.0.1", "port": port})
    assert client is not None, err
    await client.pipeline([
        ["FLUSHALL"],
        ["SET", "bench:get", VALUE_64],
        ["SET", "bench:big", b"b" * MIB],
        ["RPUSH", "bench:list", *(f"item-{i:04d}" for i in range(100))],
        ["SET", "bench:huge", b"h" * MEMORY_VALUE],
    ])
    await client.close(no_keepalive=True)


async def run_client(adapter: Adapter, port: int, sizes: Sizes, rounds: int,
                     socket_path: str | None = None) -> dict[str, list[Outcome]]:
    await adapter.open(port)
    if socket_path is not None:
        await adapter.open_unix(socket_path)
    results: dict[str, list[Outcome]] = {}
    try:
        for name, workload in WORKLOADS.items():
            results[name] = []
            for _ in range(rounds):
                try:
                    results[name].append(await workload(adapter, sizes))
                except NotImplementedError:
                    break
    finally:
        await adapter.close_unix()
        await adapter.close()
    return results


def median_outcome(outcomes: list[Outcome]) -> Outcome:
    ordered = sorted(outcomes, key=lambda o: o.figure)
    return ordered[len(ordered) // 2]


def peak_memory(name: str, port: int) -> float | None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.memory", name, str(port), "bench:huge"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    if completed.returncode != 0:
        print(f"peak memory of {name} not measured: {completed.stderr.strip()[-300:]}")
        return None
    grown, size = (int(x) for x in completed.stdout.split())
    return grown / size if size else None


def table(loop: str, figures: dict[str, dict[str, Outcome]], memory: dict[str, float | None],
          notes: dict[str, str]) -> str:
    clients = list(figures)
    peers = [c for c in clients if not c.startswith("levredis")]
    lines = [f"\n== {loop} loop ==", ""]
    header = f"{'workload':28}" + "".join(f"{c:>18}" for c in clients)
    header += "".join(f"{'x ' + p:>20}" for p in peers)
    lines += [header, "-" * len(header)]
    for workload in WORKLOADS:
        row = f"{workload:28}"
        for client in clients:
            outcome = figures[client].get(workload)
            row += f"{outcome.figure:>18,.0f}" if outcome else f"{'n/a':>18}"
        mine = figures["levredis"].get(workload)
        for peer in peers:
            theirs = figures[peer].get(workload)
            ratio = mine.figure / theirs.figure if mine and theirs else None
            row += f"{ratio:>19.2f}x" if ratio else f"{'n/a':>20}"
        lines.append(row)
    p50 = "".join(f"{figures[c]['W1 sequential GET'].extra['p50_us']:>18.1f}" for c in clients)
    p99 = "".join(f"{figures[c]['W1 sequential GET'].extra['p99_us']:>18.1f}" for c in clients)
    lines += [f"{'W1 p50 latency (us)':28}{p50}", f"{'W1 p99 latency (us)':28}{p99}"]
    if memory:
        row = "".join(f"{memory[c]:>17.2f}x" if memory.get(c) else f"{'n/a':>18}"
                      for c in clients)
        lines.append(f"{'W4 peak memory / 100 MiB':28}{row}")
    for client, note in notes.items():
        lines.append(f"note: {client}: {note}")
    return "\n".join(lines)


def check_answers(figures: dict[str, dict[str, Outcome]]) -> list[str]:
    problems = []
    reference = figures["levredis"]
    for client, outcomes in figures.items():
        for workload, outcome in outcomes.items():
            if workload in reference and outcome.sample != reference[workload].sample:
                problems.append(f"{client} {workload}: {outcome.sample!r} != "
                                f"levredis {reference[workload].sample!r}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred ops per workload")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loops", default=",".join(LOOPS))
    parser.add_argument("--clients", default="", help="comma-separated subset")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--chart", type=Path, default=None)
    parser.add_argument("--text", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args()
    sizes = Sizes.quick() if args.quick else Sizes()
    wanted = {c for c in args.clients.split(",") if c}

    socket_dir = tempfile.mkdtemp(prefix="levredis-bench-")
    socket_path = os.path.join(socket_dir, "redis.sock")
    server = RedisServer(["--maxmemory", "2gb", "--proto-max-bulk-len", "512mb",
                          "--unixsocket", socket_path, "--unixsocketperm", "700"]).start()
    report: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count(), "redis": server.command("INFO", "server")
                    .split("redis_version:")[1].split("\r\n")[0]},
        "sizes": sizes.__dict__, "rounds": args.rounds, "loops": {},
        "date": time.strftime("%Y-%m-%d"),
    }
    problems: list[str] = []
    tables: list[str] = []
    try:
        asyncio.run(seed(server.port))
        for loop_name in args.loops.split(","):
            figures: dict[str, dict[str, Outcome]] = {}
            notes: dict[str, str] = {}
            for adapter in all_adapters():
                if wanted and adapter.name not in wanted:
                    continue
                if adapter.missing:
                    notes[adapter.name] = f"skipped: {adapter.missing}"
                    continue
                loop = LOOPS[loop_name]()
                try:
                    results = loop.run_until_complete(
                        run_client(adapter, server.port, sizes, args.rounds, socket_path))
                finally:
                    loop.close()
                figures[adapter.name] = {w: median_outcome(o) for w, o in results.items() if o}
                if "W6 connect/PING/close" not in figures[adapter.name]:
                    notes[adapter.name] = "W6 n/a: no connection pool to check out of"
            memory: dict[str, float | None] = {}
            if not args.no_memory and loop_name == "asyncio":
                memory = {name: peak_memory(name, server.port) for name in figures}
                report["peak_memory_ratio"] = memory
            tables.append(table(loop_name, figures, memory, notes))
            print(tables[-1])
            problems += check_answers(figures)
            report["loops"][loop_name] = {
                client: {w: {"figure": o.figure, "unit": o.unit, **o.extra}
                         for w, o in outcomes.items()}
                for client, outcomes in figures.items()
            }
            report.setdefault("notes", {}).update(notes)
    finally:
        server.cleanup()
        shutil.rmtree(socket_dir, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.json}")
    if args.text:
        header = (f"levredis benchmark, {report['date']}: Python {report['machine']['python']}, "
                  f"Redis {report['machine']['redis']}, {report['machine']['cpus']} CPUs, "
                  f"median of {args.rounds} rounds")
        args.text.write_text(header + "\n" + "\n".join(tables) + "\n")
        print(f"wrote {args.text}")
    if args.chart:
        from bench.chart import draw

        draw(report, args.chart)
        print(f"wrote {args.chart}")
    if problems:
        print("\nANSWERS DIFFER:\n" + "\n".join(problems))
        return 1
    print("answers match across clients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
