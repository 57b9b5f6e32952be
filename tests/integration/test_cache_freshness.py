"""The freshness checker (bench/freshness.py) on levredis' cache: 0 stale reads, under chaos.

5 s in `make test` (connections killed every 0.7 s or so, one server restart);
`make stress` runs it for 60 s, with coredis' and valkey-glide's caches beside it.
"""

from __future__ import annotations

import asyncio

import pytest

from bench.caching import LevredisClient
from bench.freshness import Chaos, check
from tests.servers import RedisServer
from tests.stressing import FIGURES, size


@pytest.fixture
def parser() -> str:
    return "resp3"  # one parser for RESP3: run once


def test_no_stale_read_through_kills_and_a_restart() -> None:
    server = RedisServer(["--appendonly", "yes", "--appendfsync", "always"]).start()
    try:
        chaos = Chaos(seconds=size(5, 60), kill_every=0.7, restart=True)
        figures = asyncio.run(check(LevredisClient(cache=True), server, chaos))
    finally:
        server.cleanup()
    FIGURES["cache freshness checker"] = figures
    assert figures["stale"] == 0, figures["examples"]
    assert figures["phantom"] == 0
    assert figures["kills"] >= 3 and figures["restarts"] == 1
    # The cache was used, and reads went on through the faults.
    assert figures["reads"] > 10_000 and figures["hit_ratio"] > 0.5
    assert figures["writes_acked"] > 500
