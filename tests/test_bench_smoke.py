"""The benchmark runs end to end, and every client gives the same answers.

A few hundred operations per workload: no timing is asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_runs_and_answers_match_across_clients(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    chart = tmp_path / "chart.png"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--rounds", "1", "--loops", "asyncio",
         "--json", str(out), "--chart", str(chart)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "answers match across clients" in completed.stdout
    report = json.loads(out.read_text())
    clients = report["loops"]["asyncio"]
    assert {"levredis", "redis-py+hiredis", "redis-py", "coredis",
            "valkey-glide"} <= set(clients), report.get("notes")
    assert len(clients["levredis"]) == 6
    assert report["peak_memory_ratio"]["levredis"] is not None
    assert chart.stat().st_size > 10_000
