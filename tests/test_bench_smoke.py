"""The benchmark runs end to end, and every client gives the same answers.

A few hundred operations per workload: no timing is asserted here. With only
``levredis[test]`` installed it runs levredis alone (and no chart); with the
``bench`` extra, every peer installed runs too. ``make test`` installs them all
and sets ``LEVREDIS_BENCH_PEERS=all``, so there a missing peer fails the test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_benchmark_runs_and_answers_match_across_clients(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    chart = tmp_path / "chart.png"
    charting = installed("matplotlib")
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--rounds", "1", "--loops", "asyncio",
         "--json", str(out), *(["--chart", str(chart)] if charting else [])],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "answers match across clients" in completed.stdout
    report = json.loads(out.read_text())
    clients = report["loops"]["asyncio"]
    expected = {"levredis"}
    if os.environ.get("LEVREDIS_BENCH_PEERS") == "all":
        expected |= {"redis-py+hiredis", "redis-py", "coredis", "valkey-glide"}
        assert charting, "make test installs matplotlib (the bench extra)"
    else:
        if installed("redis"):
            expected.add("redis-py")
        if installed("redis") and installed("hiredis"):
            expected.add("redis-py+hiredis")
        if installed("coredis"):
            expected.add("coredis")
        if installed("glide"):
            expected.add("valkey-glide")
    assert expected <= set(clients), report.get("notes")
    assert len(clients["levredis"]) == 7  # W1 to W6, and W1 over a Unix socket
    if "redis-py" in expected:
        assert "W1 over a Unix socket" in clients["redis-py"]
    assert report["peak_memory_ratio"]["levredis"] is not None
    if charting:
        assert chart.stat().st_size > 10_000


def test_w7_runs_with_no_stale_read(tmp_path: Path) -> None:
    """W7 end to end for a moment: every client installed, 0 stale or wrong reads for ours."""
    out = tmp_path / "w7.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.caching", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    ours = results["levredis cache"]
    assert ours["reads"] > 0 and ours["stale"] == 0 and ours["wrong"] == 0
    assert ours["errors"] == 0
    if os.environ.get("LEVREDIS_BENCH_PEERS") == "all":
        for name in ("levredis", "redis-py+hiredis", "coredis cache", "valkey-glide cache"):
            assert results[name].get("reads", 0) > 0, (name, results[name])


def test_the_c_comparison_profile_chart_and_importtime_run(tmp_path: Path) -> None:
    """bench.against_c (redis-benchmark beside levredis, pinned), bench.profile,
    bench.layers, the chart with both panels, and bench.importtime."""
    against_c = tmp_path / "against_c.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.against_c", "--quick", "--rounds", "1",
         "--json", str(against_c)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    for workload in ("W1 sequential GET", "W2 pipelined SET x1000", "W3 100 tasks, one client"):
        assert workload in completed.stdout
    completed = subprocess.run(
        [sys.executable, "-m", "bench.profile", "--quick", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "µs per command" in completed.stdout and "encode (arguments" in completed.stdout
    completed = subprocess.run([sys.executable, "-m", "bench.layers", "--quick"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "W2 encode" in completed.stdout and "W1 parse + dispatch" in completed.stdout
    if installed("matplotlib"):
        chart = tmp_path / "ratios.png"
        completed = subprocess.run(
            [sys.executable, "-m", "bench.chart", str(ROOT / "docs/bench/latest.json"),
             str(against_c), str(chart)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert completed.returncode == 0, completed.stderr[-3000:]
        assert chart.stat().st_size > 10_000
    completed = subprocess.run([sys.executable, "-m", "bench.importtime", "--runs", "1"],
                               cwd=ROOT, capture_output=True, text=True, timeout=120,
                               check=False)
    assert completed.returncode == 0 and "levredis   import" in completed.stdout
