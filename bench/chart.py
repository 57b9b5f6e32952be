"""Bar chart of levredis' speed relative to each peer, per workload (uvloop)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loop = "uvloop" if "uvloop" in report["loops"] else next(iter(report["loops"]))
    figures = report["loops"][loop]
    mine = figures["levredis"]
    peers = [c for c in figures if not c.startswith("levredis")]
    workloads = list(mine)
    width = 0.8 / max(1, len(peers))
    fig, ax = plt.subplots(figsize=(11, 5))
    for n, peer in enumerate(peers):
        ratios = [
            mine[w]["figure"] / figures[peer][w]["figure"] if w in figures[peer] else 0
            for w in workloads
        ]
        positions = [i + n * width for i in range(len(workloads))]
        ax.bar(positions, ratios, width, label=f"vs {peer}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([i + width * (len(peers) - 1) / 2 for i in range(len(workloads))])
    ax.set_xticklabels([w.split(" ", 1)[0] for w in workloads])
    ax.set_ylabel("levredis speed / peer speed (higher is better)")
    ax.set_title(f"levredis relative to peers ({loop} loop, median of {report['rounds']} rounds)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
