"""Markdown tables from a benchmark JSON file (for docs/performance.md and the README).

    python -m bench.report docs/bench/latest.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PEERS = ["redis-py+hiredis", "redis-py", "coredis", "valkey-glide"]


def figures_table(report: dict[str, Any], loop: str) -> str:
    figures = report["loops"][loop]
    clients = list(figures)
    workloads = list(figures["levredis"])
    lines = ["| workload | " + " | ".join(clients) + " |",
             "|---|" + "---:|" * len(clients)]
    for workload in workloads:
        cells = []
        for client in clients:
            outcome = figures[client].get(workload)
            cells.append(f"{outcome['figure']:,.0f}" if outcome else "n/a")
        unit = figures["levredis"][workload]["unit"]
        lines.append(f"| {workload} ({unit}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_table(report: dict[str, Any], loop: str, mine: str = "levredis") -> str:
    figures = report["loops"][loop]
    peers = [p for p in PEERS if p in figures]
    lines = ["| workload | " + " | ".join(f"x {p}" for p in peers) + " |",
             "|---|" + "---:|" * len(peers)]
    for workload, outcome in figures[mine].items():
        cells = []
        for peer in peers:
            theirs = figures[peer].get(workload)
            cells.append(f"{outcome['figure'] / theirs['figure']:.2f}x" if theirs else "n/a")
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    report = json.loads(Path(sys.argv[1]).read_text())
    for loop in report["loops"]:
        print(f"\n### {loop}: operations per second\n\n{figures_table(report, loop)}")
        print(f"\n### {loop}: levredis relative to each peer\n\n{ratio_table(report, loop)}")
    memory = report.get("peak_memory_ratio", {})
    if memory:
        print("\n### Peak memory of one 100 MiB GET (growth / value size)\n")
        print("| " + " | ".join(memory) + " |")
        print("|" + "---:|" * len(memory))
        print("| " + " | ".join(f"{v:.2f}x" if v else "n/a" for v in memory.values()) + " |")


if __name__ == "__main__":
    main()
