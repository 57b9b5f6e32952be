"""The cluster client under chaos (tests/cluster/chaos.py): traffic from 50 tasks
while connections are killed, nodes stopped, primaries killed and failed over,
replicas restarted and slots resharded.

About 20 s of traffic in ``make test``, 120 s with LEVREDIS_STRESS=1; on the
asyncio loop only (the heavy run once, not once per loop). The checks of the
harness itself are tested first, with no cluster and with a lying client.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.cluster.chaos import (
    FAULT_KINDS,
    ChaosConfig,
    CounterModel,
    KeyModel,
    LevredisAdapter,
    Message,
    Outcome,
    PubSubChecker,
    Window,
    Windows,
    key_slot,
    run_chaos,
    summary,
)
from tests.cluster.conftest import LocalCluster
from tests.stressing import FIGURES, size

SEED = int(os.environ.get("LEVREDIS_CHAOS_SEED", "1"))


def test_key_model_accepts_only_acknowledged_or_later_unacknowledged_values() -> None:
    windows = Windows()
    model = KeyModel("{k}")
    assert model.check(None, windows) == ("ok", 0)  # never written: absent
    model.attempt("a").acked_at = 1.0
    failed = model.attempt("b")  # errored: it may or may not have run
    assert failed.acked_at is None
    assert model.check("a", windows)[0] == "ok"
    assert model.check("b", windows)[0] == "ok"
    assert model.check("x", windows)[0] == "wrong"  # never written
    assert model.check(None, windows)[0] == "wrong"  # an acknowledged write vanished
    model.attempt("c").acked_at = 2.0
    assert model.check("b", windows)[0] == "wrong"  # unacknowledged, before the last ack
    assert model.check("a", windows)[0] == "wrong"  # older than the last ack
    assert model.final("c", windows) == "ok"
    assert model.final("a", windows) == "outside"


def test_key_model_excuses_only_writes_inside_a_failover_window_of_its_slot() -> None:
    slot = key_slot("{k}")
    model = KeyModel("{k}")
    model.attempt("a").acked_at = 1.0
    model.attempt("b").acked_at = 9.0
    other_slot = Windows()
    other_slot.items.append(Window(7.0, 9.5, [((slot + 1) % 16384, (slot + 1) % 16384)], "x"))
    assert model.check("a", other_slot)[0] == "wrong"
    windows = Windows()
    windows.items.append(Window(7.0, 9.5, [(slot, slot)], "x", end=11.0))
    assert model.check("a", windows) == ("rollback", 1)  # "b" was lost by Redis
    assert model.check("a", windows) == ("rollback", 0)  # counted once
    assert model.final("a", windows) == "inside"
    model.attempt("c").acked_at = 12.0  # after the window: not loseable
    assert model.check("a", windows)[0] == "wrong"
    assert model.final("b", windows) == "outside"


def test_counter_model_catches_a_double_increment_and_a_lost_one() -> None:
    windows = Windows()
    counter = CounterModel("{n}")
    for expected in (1, 2, 3):
        counter.sent += 1
        assert counter.check(expected, float(expected), windows)[0] == "ok"
    counter.sent += 1  # this INCR failed: it may have run
    counter.sent += 1
    assert counter.check(5, 5.0, windows)[0] == "ok"
    counter.sent += 1
    assert counter.check(7, 6.0, windows)[0] == "wrong"  # 6 sent: one ran twice
    counter.sent += 1
    assert counter.check(8, 7.0, windows)[0] == "ok"  # re-based: counted once
    counter.sent += 1
    assert counter.check(8, 8.0, windows)[0] == "wrong"  # not above the last reply
    assert counter.final(8, windows) == "ok"
    assert counter.final(7, windows) == "outside"
    assert counter.final(99, windows) == "over"


def test_pubsub_checker_flags_duplicates_reordering_and_strangers() -> None:
    checker = PubSubChecker("ch")
    checker.sent = 10
    checker.acked = set(range(1, 11))
    assert checker.receive(Message("ch", "1"))
    assert checker.receive(Message("ch", "3"))
    assert not checker.receive(Message("ch", "3"))
    assert not checker.receive(Message("ch", "2"))
    assert not checker.receive(Message("ch", "11"))  # never sent
    assert not checker.receive(Message("other", "4"))
    assert not checker.receive(Message("ch", "hello"))
    assert checker.receive(Message("ch", "10"))
    assert dict(checker.wrong) == {"duplicate": 1, "out_of_order": 1, "foreign": 3}
    assert checker.missed() == 6  # 2 came late: wrong, but not missed


class LyingAdapter(LevredisAdapter):
    """levredis, except that every 97th GET answers garbage, and every SET of
    the first key set is acknowledged but never sent."""

    gets = 0
    victim: str | None = None

    async def get(self, key: str) -> Outcome:
        self.gets += 1
        if self.gets % 97 == 0:
            return "garbage", None
        return await super().get(key)

    async def set(self, key: str, value: str) -> Outcome:
        self.victim = self.victim or key
        if key == self.victim:
            return "OK", None
        return await super().set(key, value)

    async def set_get(self, set_key: str, value: str, get_key: str) -> tuple[Outcome, Outcome]:
        self.victim = self.victim or set_key
        if set_key == self.victim:
            return ("OK", None), await super().get(get_key)
        return await super().set_get(set_key, value, get_key)


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_the_harness_catches_a_lying_client(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cluster import chaos

    async def lying(seeds: list[str]) -> Any:
        honest = await LevredisAdapter.open(seeds)
        return LyingAdapter(honest.client, honest.subscriber)

    monkeypatch.setitem(chaos.ADAPTERS, "levredis", lying)
    figures = await run_chaos(cluster, "levredis", ChaosConfig(
        seconds=2, tasks=10, faults=(), warmup=0, tail=0.2, seed=SEED))
    assert figures["wrong_by_op"].get("get", 0) > 0, figures["wrong_by_op"]
    assert figures["acked_writes_missing"]["outside_failover_window"] >= 1
    assert figures["errors_by_kind"] == {}


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_chaos_on_a_cluster(own_cluster: LocalCluster) -> None:
    figures = await run_chaos(own_cluster, "levredis", ChaosConfig(
        seconds=size(16, 120), seed=SEED))
    FIGURES["cluster chaos"] = summary(figures)
    kinds = [fault["kind"] for fault in figures["faults"]]
    assert set(kinds) == set(FAULT_KINDS), kinds
    assert [f for f in figures["faults"] if f["failed"]] == [], figures["faults"]
    assert figures["operations_total"] > 1000
    assert figures["raised"] == 0 and figures["hung_workers"] == 0, figures["error_examples"]
    assert figures["wrong_answers"] == 0, figures["wrong_examples"]
    missing = figures["acked_writes_missing"]
    assert missing["outside_failover_window"] == 0, missing["examples"]
    assert figures["final_counters_over_attempts"] == 0, missing["examples"]
    dropped = [f for f in figures["faults"] if f["kind"] == "client-kill"]
    assert all(f["recovery_s"] is not None for f in dropped), dropped
    # Pub/sub must heal; a publisher's messages keep their order (PUBLISH goes
    # to its channel's node) and only ever come from it. A duplicate is reported,
    # not asserted: when the subscriber's node dies, the node it moves to may
    # deliver again a message still travelling between nodes (docs/cluster.md).
    assert figures["pubsub"]["healed_at_end"], figures["pubsub"]
    wrong = figures["pubsub"]["wrong_by_kind"]
    assert wrong.get("out_of_order", 0) == 0 and wrong.get("foreign", 0) == 0, figures["pubsub"]
