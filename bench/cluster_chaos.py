"""Chaos on a Redis Cluster: levredis' ClusterClient and redis-py's RedisCluster
under the same faults (tests/cluster/chaos.py), side by side.

    python -m bench.cluster_chaos --client levredis|redis-py|both --seconds 120 [--json PATH]

Each client gets a fresh local cluster (3 primaries, 3 replicas) of its own;
the fault schedule comes from --seed, so both clients see the same kinds in
the same order. Definitions (wrong answers, failover windows, time to
recover) are in tests/cluster/chaos.py's docstring.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from typing import Any

from tests.cluster.chaos import FAULT_KINDS, ChaosConfig, run_chaos
from tests.cluster.conftest import LocalCluster


def run_one(client: str, config: ChaosConfig) -> dict[str, Any]:
    local = LocalCluster().start()
    try:
        return asyncio.run(run_chaos(local, client, config))
    finally:
        local.cleanup()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    pubsub = figures["pubsub"]
    missing = figures["acked_writes_missing"]
    out = [
        ("traffic s", _fmt(figures["traffic_s"])),
        ("operations", _fmt(figures["operations_total"])),
    ]
    for op, counts in figures["operations"].items():
        out.append((f"  {op} ok/err/wrong",
                    f"{counts.get('ok', 0)}/{counts.get('error', 0)}/{counts.get('wrong', 0)}"))
    out += [
        ("wrong answers", _fmt(figures["wrong_answers"])),
        ("acked writes missing, outside window", _fmt(missing["outside_failover_window"])),
        ("acked writes missing, inside window", _fmt(missing["inside_failover_window"])),
        ("acked writes lost seen by reads", _fmt(figures["acked_writes_lost_seen"])),
        ("final counters over INCRs sent", _fmt(figures["final_counters_over_attempts"])),
        ("errors", _fmt(sum(figures["errors_by_kind"].values()))),
        ("exceptions escaping the client", _fmt(figures["raised"])),
        ("hung workers at the end", _fmt(figures["hung_workers"])),
        ("unexpected failovers", _fmt(figures["unexpected_failovers"])),
        ("pub/sub published (acked)",
         f"{pubsub['published']} ({pubsub['published_acked']})"),
        ("pub/sub received", _fmt(pubsub["received"])),
        ("pub/sub missed", _fmt(pubsub["missed"])),
        ("pub/sub wrong", _fmt(pubsub["wrong"])),
        ("pub/sub gaps (healed)", f"{pubsub['gaps']} ({pubsub['gaps_healed']})"),
        ("pub/sub longest gap s", _fmt(pubsub["longest_gap_s"])),
        ("pub/sub healed at end", _fmt(pubsub["healed_at_end"])),
    ]
    for kind in FAULT_KINDS:
        stats = figures["recovery_by_kind"].get(kind)
        if stats is None:
            continue
        out.append((f"recover {kind} n/ok/median/max s",
                    f"{stats['count']}/{stats['recovered']}/{_fmt(stats['median_s'])}/"
                    f"{_fmt(stats['max_s'])}"))
    lags = [f["recovery_s"] - f["failover_s"] for f in figures["faults"]
            if f["kind"] == "primary-kill" and f["recovery_s"] is not None
            and f.get("failover_s") is not None]
    if lags:
        out.append(("primary-kill: recovery after failover median/max s",
                    f"{statistics.median(lags):.3f}/{max(lags):.3f}"))
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    columns = [dict(rows(figures)) for figures in results.values()]
    labels = list(dict.fromkeys(label for figures in results.values()
                                for label, _ in rows(figures)))
    width = max(len(label) for label in labels)
    widths = [max(len(name), *(len(c.get(label, "")) for label in labels))
              for name, c in zip(names, columns, strict=True)]
    lines = [" " * width + "  " + "  ".join(n.rjust(w) for n, w in zip(names, widths,
                                                                        strict=True))]
    for label in labels:
        lines.append(label.ljust(width) + "  " + "  ".join(
            c.get(label, "").rjust(w) for c, w in zip(columns, widths, strict=True)))
    errors = "\n".join(
        f"{name} errors by kind: {json.dumps(figures['errors_by_kind'])}"
        for name, figures in results.items())
    return "\n".join(lines) + "\n" + errors


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--client", choices=["levredis", "redis-py", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    clients = ["levredis", "redis-py"] if args.client == "both" else [args.client]
    results: dict[str, dict[str, Any]] = {}
    for client in clients:
        print(f"running {client} for {args.seconds:.0f} s ...", file=sys.stderr, flush=True)
        results[client] = run_one(client, ChaosConfig(seconds=args.seconds, tasks=args.tasks,
                                                       seed=args.seed))
    print(table(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
