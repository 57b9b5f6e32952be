"""Bar charts of levredis' speed relative to each peer and to C, per workload (uvloop).

    python -m bench.chart PEERS_JSON [AGAINST_C_JSON] OUT_PNG

PEERS_JSON is bench.run's report, AGAINST_C_JSON bench.against_c's: with it,
a second panel shows levredis against redis-benchmark (pinned, W1-W3).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def draw(report: dict[str, Any], path: Path, against_c: dict[str, Any] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loop = "uvloop" if "uvloop" in report["loops"] else next(iter(report["loops"]))
    figures = report["loops"][loop]
    mine = figures["levredis"]
    peers = [c for c in figures if not c.startswith("levredis")]
    workloads = list(mine)
    width = 0.8 / max(1, len(peers))
    if against_c is None:
        fig, ax = plt.subplots(figsize=(11, 5))
    else:
        fig, (ax, c_ax) = plt.subplots(1, 2, figsize=(15, 5), width_ratios=[3, 1])
    for n, peer in enumerate(peers):
        ratios = [
            mine[w]["figure"] / figures[peer][w]["figure"] if w in figures[peer] else 0
            for w in workloads
        ]
        positions = [i + n * width for i in range(len(workloads))]
        ax.bar(positions, ratios, width, label=f"vs {peer}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([i + width * (len(peers) - 1) / 2 for i in range(len(workloads))])
    ax.set_xticklabels([w.split(" ", 1)[0] + (" unix" if "Unix" in w else "") for w in workloads])
    ax.set_ylabel("levredis speed / peer speed (higher is better)")
    ax.set_title(f"levredis relative to peers ({loop} loop, unpinned, "
                 f"median of {report['rounds']} rounds)")
    ax.legend()
    if against_c is not None:
        results = against_c["results"]
        names = list(results)
        bars = c_ax.bar(range(len(names)), [results[n]["ratio"] for n in names], 0.6,
                        color="tab:gray", label="vs redis-benchmark (C)")
        c_ax.bar_label(bars, fmt="%.2f")
        c_ax.axhline(1.0, color="black", linewidth=0.8)
        c_ax.set_xticks(range(len(names)))
        c_ax.set_xticklabels(["W1 bare" if "ceiling" in n else n.split(" ", 1)[0]
                              for n in names])
        c_ax.set_title(f"levredis relative to C (pinned, median of {against_c['rounds']})")
        c_ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__)
        return 2
    report = json.loads(Path(argv[0]).read_text())
    against_c = json.loads(Path(argv[1]).read_text()) if len(argv) == 3 else None
    draw(report, Path(argv[-1]), against_c)
    print(f"wrote {argv[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
