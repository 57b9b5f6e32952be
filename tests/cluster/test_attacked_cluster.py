"""Regressions from a hostile review of the cluster client: each test fails if
its finding comes back (r01 ... r14: the review's repro scripts)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import levredis
from levredis._cluster import ClusterClient
from levredis._slots import key_slot
from tests.cluster.conftest import LocalCluster
from tests.cluster.test_cluster import connect, node_of
from tests.cluster.test_healing import client_flags, eventually, replica_of
from tests.servers import RedisServer

SECRET = "hunter2-SECRET"


def server_at(cluster: LocalCluster, address: str) -> RedisServer:
    return cluster.node_for(int(address.rsplit(":", 1)[1]))


def primaries(cluster: LocalCluster) -> list[RedisServer]:
    return [s for s in cluster.servers
            if s.process is not None and "role:master" in s.command("INFO", "replication")]


def calls_of(server: RedisServer, name: str) -> int:
    """How many times ``server`` ran ``name`` (INFO commandstats)."""
    found = re.search(rf"cmdstat_{name}:calls=(\d+)", server.command("INFO", "commandstats"))
    return int(found.group(1)) if found else 0


def integer(reply: str) -> int:
    """A raw ``:n`` reply of ``RedisServer.command``."""
    assert reply.startswith(":"), reply
    return int(reply[1:].strip())


def node_id(server: RedisServer) -> str:
    return server.command("CLUSTER", "MYID").split("\r\n")[1]


def in_use() -> int:
    return sum(stats["in_use"] + stats["opening"] for stats in levredis.pool_stats())


def is_nothing_to_read(err: object) -> bool:
    return isinstance(err, levredis.UsageError) and "nothing to read" in err


# -- r01: a refused DISCARD / MULTI must not poison a connection others use ----------


async def test_r01_refused_transaction_pieces_leave_other_callers_alone(
    cluster: LocalCluster,
) -> None:
    # Before: the transaction ran on the node's shared connection; DISCARD
    # refused left it inside MULTI (the next SET answered "QUEUED", never run),
    # MULTI refused left the WATCH on it (another caller's EXEC aborted: [None]).
    plain = [["OK"], ["QUEUED"], [["OK"]]]
    client = await connect(cluster)
    try:
        assert await client.cmd("SET", "{atk01}k", "before") == ("OK", None)
        await client.pipeline([["MULTI"], ["INCR", "{atk01}n"], ["DISCARD", "oops"]])
        assert await client.cmd("SET", "{atk01}k", "after") == ("OK", None)
        assert await client.cmd("GET", "{atk01}k") == ("after", None)
        assert await client.pipeline([["MULTI"], ["SET", "{atk01}b", 1], ["EXEC"]]) == (
            plain, None)
    finally:
        await client.close()
    client = await connect(cluster)
    try:
        await client.pipeline([["WATCH", "{atk01}a"], ["MULTI", "oops"], ["INCR", "{atk01}a"],
                               ["EXEC"]])
        assert await client.cmd("SET", "{atk01}a", 100) == ("OK", None)  # the watched key
        for _ in range(3):  # no EXEC aborted by a WATCH someone else left
            assert await client.pipeline([["MULTI"], ["SET", "{atk01}b", 1], ["EXEC"]]) == (
                plain, None)
        assert await client.cmd("GET", "{atk01}k") == ("after", None)
    finally:
        await client.close()
    # Nor did a poisoned connection go back to the (process-wide) pool.
    other = await connect(cluster)
    try:
        assert await other.cmd("SET", "{atk01}k", "other") == ("OK", None)
        assert await other.cmd("GET", "{atk01}k") == ("other", None)
        assert await other.pipeline([["MULTI"], ["SET", "{atk01}b", 2], ["EXEC"]]) == (
            plain, None)
        await other.cmd("DEL", "{atk01}k", "{atk01}n", "{atk01}a", "{atk01}b")
    finally:
        await other.close()


# -- r02: a sequential publisher's messages arrive in order ----------------------------


async def test_r02_a_sequential_publisher_is_received_in_order(cluster: LocalCluster) -> None:
    # Before: each PUBLISH went to a random primary and the cluster bus links
    # raced: hundreds of inversions per second.
    count = 1000
    # Per run: the other loop's run may still have messages travelling between nodes.
    channel = f"atk02:orders:{uuid.uuid4().hex}"
    subscriber = await connect(cluster)
    publisher = await connect(cluster)
    try:
        assert (await subscriber.cmd("SUBSCRIBE", channel))[1] is None
        for i in range(count):
            assert (await publisher.cmd("PUBLISH", channel, i))[1] is None
        received: list[int] = []
        for _ in range(count):
            item, err = await subscriber.read()
            assert err is None and item is not None, (len(received), err)
            value = item["value"]
            assert isinstance(value, list) and value[:2] == ["message", channel], value
            received.append(int(str(value[2])))
        assert received == list(range(count))
    finally:
        await subscriber.close()
        await publisher.close()


# -- r03: an SSUBSCRIBE refused its connection is not kept ----------------------------


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_r03_a_ssubscribe_whose_node_refused_the_connection_is_not_kept(
    own_cluster: LocalCluster,
) -> None:
    # Before: the channel stayed in the wanted set but was never subscribed
    # again: SPUBLISH reached nobody and read() only ever timed out.
    subscriber = await connect(own_cluster, timeout=1)
    channel = "atk03:news"
    try:
        owner = server_at(own_cluster, node_of(own_cluster, key_slot(channel.encode()))[0])
        owner.stop()
        try:
            value, err = await subscriber.cmd("SSUBSCRIBE", channel)
        finally:
            owner.start()
        deadline = time.monotonic() + 15
        while not all("cluster_state:ok" in s.command("CLUSTER", "INFO")
                      for s in own_cluster.servers):  # (its replica may still resync)
            assert time.monotonic() < deadline, "the cluster did not heal"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # time enough for a background restore, were there one
        assert value is None and isinstance(err, levredis.NetworkError), (value, err)
        assert channel.encode() not in subscriber._pubsub.wanted["ssubscribe"]
        assert await subscriber.cmd("SPUBLISH", channel, "m") == (0, None)
        _, err = await subscriber.read()
        assert is_nothing_to_read(err), err
    finally:
        await subscriber.close()


# -- r04: a subscribe cancelled before it was sent leaves nothing behind --------------


async def test_r04_a_subscribe_cancelled_before_it_was_sent_leaves_no_phantom(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: the channel stayed wanted (never made on any server, never
    # restored), the subscriber connection stayed open with no pump, and
    # read() timed out instead of saying "nothing to read".
    from levredis._client import connect_with as real_connect

    async def slow_connect(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.2)  # the subscriber connection is opening ...
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr("levredis._cluster_pubsub.connect_with", slow_connect)
    subscriber = await connect(cluster, timeout=1)
    publisher = await connect(cluster)
    attempts = (("SUBSCRIBE", "atk04:c", "PUBLISH"), ("SSUBSCRIBE", "atk04:s", "SPUBLISH"))
    try:
        for _, channel, publish in attempts:  # (the publisher's node connections, first)
            assert await publisher.cmd(publish, channel, "hello") == (0, None)
        held = in_use()
        made = {s.port: calls_of(s, "subscribe") + calls_of(s, "ssubscribe")
                for s in cluster.servers}
        for kind, channel, publish in attempts:
            task = asyncio.ensure_future(subscriber.cmd(kind, channel))
            await asyncio.sleep(0.05)
            task.cancel()  # ... when the caller gives up (asyncio.timeout, wait_for)
            with pytest.raises(asyncio.CancelledError):
                await task
            assert channel.encode() not in subscriber._pubsub.wanted[kind.lower()]
            assert await publisher.cmd(publish, channel, "hello") == (0, None)

        pubsub = subscriber._pubsub
        deadline = time.monotonic() + 3  # the openings end (0.2 s): let them settle
        while (pubsub._feeds or pubsub._opening or in_use() != held) and (
                time.monotonic() < deadline):
            await asyncio.sleep(0.05)
        assert not pubsub._feeds and not pubsub._opening, (
            f"subscriber connections kept with nothing subscribed: {list(pubsub._feeds)}")
        assert in_use() == held, levredis.pool_stats()
        value, err = await subscriber.read()
        assert value is None and is_nothing_to_read(err), (value, err)
        assert made == {s.port: calls_of(s, "subscribe") + calls_of(s, "ssubscribe")
                        for s in cluster.servers}  # nothing was sent
        assert sum(len(flags) for flags in client_flags(cluster, "pubsub").values()) == 0
    finally:
        await subscriber.close()
        await publisher.close()


# -- r05: calls keep their deadline while no node answers ------------------------------


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_r05_calls_return_within_their_timeout_while_no_node_answers(
    own_cluster: LocalCluster,
) -> None:
    # Before: a call waited for the shared map refresh, whose backoff sleep
    # (doubling to 2 s) ignored the call's deadline: 0.3 s calls took 2 s.
    client = await connect(own_cluster, timeout=0.3)
    try:
        assert await client.cmd("SET", "atk05:{x}", 1) == ("OK", None)
        for server in own_cluster.servers:
            server.kill()
        calls: list[tuple[str, Callable[[], Awaitable[tuple[Any, Any]]]]] = [
            ("cmd", lambda: client.cmd("GET", "atk05:{x}")),
            ("pipeline", lambda: client.pipeline([["GET", "atk05:a"], ["GET", "atk05:b"]])),
            ("transaction", lambda: client.pipeline([["MULTI"], ["GET", "atk05:{x}"],
                                                     ["EXEC"]])),
        ]
        for round_ in range(5):
            for what, call in calls:
                started = time.monotonic()
                value, err = await call()
                took = time.monotonic() - started
                assert value is None and err is not None, (what, value)
                assert took < 1.0, (round_, what, took, err)
    finally:
        await client.close()


# -- r06: read() is told "nothing to read" when the last subscription ends ------------


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_r06_a_waiting_read_ends_when_the_last_subscription_ends_during_a_restore(
    own_cluster: LocalCluster,
) -> None:
    # Before: the waiting read() was not woken; it waited for its timeout.
    subscriber = await connect(own_cluster, timeout=10)
    channel = "atk06:news"
    try:
        assert await subscriber.cmd("SSUBSCRIBE", channel) == (
            ["ssubscribe", channel, 1], None)
        server_at(own_cluster, node_of(own_cluster, key_slot(channel.encode()))[0]).kill()
        _, err = await subscriber.read()  # the gap notice; the restore now retries
        assert isinstance(err, levredis.NetworkError), err
        reader = asyncio.ensure_future(subscriber.read())
        await asyncio.sleep(0.1)
        assert (await subscriber.cmd("SUNSUBSCRIBE", channel))[1] is None
        done, _ = await asyncio.wait({reader}, timeout=2)
        if not done:
            reader.cancel()
            await asyncio.wait({reader})
        assert done, "the waiting read() was not told 'nothing to read'"
        value, err = reader.result()
        assert value is None and is_nothing_to_read(err), (value, err)
    finally:
        await subscriber.close()


# -- r07: nothing published after UNSUBSCRIBE returned is read ------------------------


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_r07_no_message_published_after_unsubscribe_is_read_during_a_restore(
    cluster: LocalCluster,
) -> None:
    # Before: the restore subscribed the channel anyway and unsubscribed it
    # only later; what came in between reached read() (~1 trial in 5).
    subscriber = await connect(cluster, timeout=2)
    publisher, err = await levredis.connect(cluster.seeds[0])  # one node: in order
    assert publisher is not None, err
    sequence = 0
    running = True

    async def publish(channel: str) -> None:
        nonlocal sequence
        while running:
            sequence += 1
            await publisher.cmd("PUBLISH", channel, sequence)

    late: list[tuple[int, int, list[int]]] = []
    try:
        for trial in range(30):
            channel = f"atk07:{trial}"
            assert (await subscriber.cmd("SUBSCRIBE", channel))[1] is None
            running = True
            task = asyncio.ensure_future(publish(channel))
            try:
                await asyncio.sleep(0.02)
                for server in cluster.servers:  # the subscriber connection is lost
                    server.command("CLIENT", "KILL", "TYPE", "pubsub")
                while (await subscriber.read())[1] is None:  # up to the gap notice
                    pass
                turns = trial % 6
                for _ in range(turns):
                    await asyncio.sleep(0)
                if turns >= 4:
                    await asyncio.sleep(0.0005 * (turns - 3))
                assert (await subscriber.cmd("UNSUBSCRIBE", channel))[1] is None
                first_after = sequence + 1  # published after UNSUBSCRIBE returned
                await asyncio.sleep(0.1)
            finally:
                running = False
                await task
            seen = []
            while True:
                item, err = await subscriber.read()
                if err is not None:
                    break
                assert item is not None
                value = item["value"]
                assert isinstance(value, list)
                if value[0] == "message" and value[1] == channel and int(
                        str(value[2])) >= first_after:
                    seen.append(int(str(value[2])))
            if seen:
                late.append((trial, first_after, seen[:5]))
        assert late == []
    finally:
        await subscriber.close()
        await publisher.close()


# -- r08: unread pub/sub messages are bounded by max_push_bytes ------------------------


def held_by(client: ClusterClient) -> int:
    """Bytes of unread messages the client holds: its queue and its connections'."""
    pubsub = client._pubsub
    queued = 0
    for item, _ in pubsub._queue:
        value = item["value"] if item is not None else None
        if isinstance(value, list):
            queued += sum(len(part) for part in value if isinstance(part, (str, bytes)))
    connections = sum(feed.client._connection.dispatch.push_bytes
                      for feed in pubsub._feeds.values())
    return queued + connections


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_r08_unread_messages_are_bounded_by_max_push_bytes(cluster: LocalCluster) -> None:
    # Before: the queue was bounded by max_pushes only: 2000 x 100 KB unread
    # messages (~200 MB) were all held by the client.
    limit = 1 << 20
    count, size = 2000, 100_000
    channel = "atk08:big"
    subscriber = await connect(cluster, max_push_bytes=limit)
    publisher: levredis.Client | None = None
    limits = {}
    try:
        assert (await subscriber.cmd("SUBSCRIBE", channel))[1] is None
        # The server holds what the client does not read (no output limit for now).
        for server in cluster.servers:
            limits[server.port] = server.command(
                "CONFIG", "GET", "client-output-buffer-limit").split("\r\n")[4]
            server.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0")
        publisher, err = await levredis.connect(subscriber._pubsub._feeds[None].address)
        assert publisher is not None, err
        filler = "x" * size
        peak = 0
        for i in range(count):
            assert await publisher.cmd("PUBLISH", channel, f"{i:06d}{filler}") == (1, None)
            if i % 50 == 0:
                peak = max(peak, held_by(subscriber))
        for _ in range(10):  # and once everything had time to arrive
            await asyncio.sleep(0.05)
            peak = max(peak, held_by(subscriber))
        assert peak <= 4 * limit, f"{peak / 2**20:.1f} MiB held for max_push_bytes = 1 MiB"
        assert len(subscriber._pubsub._queue) < count // 2
        for i in range(count):  # then reading drains everything, in order
            item, err = await subscriber.read()
            assert err is None and item is not None, (i, err)
            value = item["value"]
            assert isinstance(value, list) and value[:2] == ["message", channel]
            assert value[2] == f"{i:06d}{filler}", (i, str(value[2])[:6])
    finally:
        for server in cluster.servers:
            if server.port in limits:
                server.command("CONFIG", "SET", "client-output-buffer-limit",
                               limits[server.port])
        await subscriber.close()
        if publisher is not None:
            await publisher.close()


# -- r09: no secret in config errors or in repr(cfg) ----------------------------------


async def test_r09_config_errors_and_cfg_never_show_a_secret(cluster: LocalCluster) -> None:
    # Before: the whole URL, password included, was echoed in the ConfigError;
    # repr(cluster.cfg) showed api_token in clear, and cfg was a mutable dict.
    url = f"redis://alice:{SECRET}@127.0.0.1:7000"
    for config in ({"nodes": url}, {"nodes": [url], "host": url},
                   {"nodes": f"redis://u:{SECRET}@h:1"}):
        client, err = await levredis.connect_cluster(config)
        assert client is None and isinstance(err, levredis.ConfigError), err
        assert SECRET not in str(err) and SECRET not in repr(err), err
    client = await connect(cluster, api_token=SECRET)
    try:
        assert SECRET not in repr(client.cfg) and "***" in repr(client.cfg), repr(client.cfg)
        with pytest.raises(TypeError):
            client.cfg["timeout"] = 1  # type: ignore[index]
    finally:
        await client.close()


# -- r10: WAIT counts the replicas of the shard that took the write --------------------


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_r10_wait_is_not_answered_by_another_shard(cluster: LocalCluster) -> None:
    # Before: WAIT went to a random primary (and on another connection than
    # the write): 1 at once, a false replication ack, 2 times in 3.
    key = "{atk10}key"
    primary, _ = node_of(cluster, key_slot(key.encode()))
    replica = server_at(cluster, replica_of(cluster, primary))
    assert replica.process is not None
    client = await connect(cluster)
    try:
        for i in range(5):
            os.kill(replica.process.pid, signal.SIGSTOP)
            try:
                assert await client.cmd("SET", key, i) == ("OK", None)
                assert await client.cmd("WAIT", 1, 300) == (0, None), i
            finally:
                os.kill(replica.process.pid, signal.SIGCONT)
        os.kill(replica.process.pid, signal.SIGSTOP)
        try:
            results, err = await client.pipeline([["SET", key, "p"], ["WAIT", 1, 300]])
        finally:
            os.kill(replica.process.pid, signal.SIGCONT)
        assert err is None and results == [["OK"], [0]], (results, err)
        await client.cmd("DEL", key)
    finally:
        await client.close()
        cluster.wait_ok()


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_r10_wait_runs_on_the_connection_that_wrote() -> None:
    # Before: WAIT was taken for a blocking command and ran on a connection of
    # its own, which had written nothing: 1 at once, whatever the replica.
    primary = RedisServer(["--repl-diskless-sync-delay", "0"]).start()
    replica = RedisServer(["--replicaof", "127.0.0.1", str(primary.port)])
    client: levredis.Client | None = None
    try:
        replica.start()
        deadline = time.monotonic() + 10
        while "state=online" not in primary.command("INFO", "replication"):
            assert time.monotonic() < deadline, "the replica did not sync"
            await asyncio.sleep(0.05)
        client, err = await levredis.connect(primary.address)
        assert client is not None, err
        # The replica acknowledges (once it has, a connection that wrote
        # nothing is answered "1" at once by WAIT).
        assert await client.cmd("SET", "atk10:single", 0) == ("OK", None)
        assert await client.cmd("WAIT", 1, 5000) == (1, None)
        assert replica.process is not None
        os.kill(replica.process.pid, signal.SIGSTOP)
        try:
            assert await client.cmd("SET", "atk10:single", 1) == ("OK", None)
            assert await client.cmd("WAIT", 1, 300) == (0, None)
        finally:
            os.kill(replica.process.pid, signal.SIGCONT)
    finally:
        if client is not None:
            await client.close()
        replica.cleanup()
        primary.cleanup()


# -- r11: keyspace-wide commands answer for the whole cluster, or are refused ---------


async def test_r11_keyspace_wide_commands_cover_every_primary(cluster: LocalCluster) -> None:
    # Before: DBSIZE, KEYS, FLUSHALL went to one random primary (a third of
    # the data) and SCAN's cursor hopped between nodes.
    for server in primaries(cluster):  # a clean slate: counts are exact
        server.command("FLUSHALL")
    client = await connect(cluster)
    try:
        names = [f"atk11:{i}" for i in range(300)]
        for name in names:
            assert await client.cmd("SET", name, 1) == ("OK", None)
        assert all(integer(s.command("DBSIZE")) > 50 for s in primaries(cluster))
        for _ in range(3):
            assert await client.cmd("DBSIZE") == (len(names), None)
        keys, err = await client.cmd("KEYS", "*")
        assert err is None and isinstance(keys, list) and sorted(map(str, keys)) == sorted(names)
        value, err = await client.cmd("SCAN", 0)
        assert value is None and isinstance(err, levredis.UsageError) and "primaries" in err
        results, err = await client.pipeline([["SET", "atk11:0", 2], ["DBSIZE"]])
        assert results is None and isinstance(err, levredis.UsageError), (results, err)
        assert await client.pipeline([["PING"]]) == ([["PONG"]], None)
        assert await client.cmd("PING") == ("PONG", None)
        assert (await client.cmd("FLUSHALL"))[1] is None
        assert [integer(s.command("DBSIZE")) for s in primaries(cluster)] == [0, 0, 0]
        assert await client.cmd("DBSIZE") == (0, None)
    finally:
        await client.close()


# -- r12: one blocking call runs once ----------------------------------------------------


async def test_r12_a_blocking_command_runs_once_when_its_node_client_is_dropped(
    cluster: LocalCluster,
) -> None:
    # Before: the dropped node client's BLMOVE came back "closed", was taken
    # for "not sent" and sent again: two BLMOVEs on the server, two elements moved.
    client = await connect(cluster)
    source, target = "{atk12}src", "{atk12}dst"
    try:
        owner = client._slots.primaries[key_slot(b"atk12")]
        assert owner is not None
        server = server_at(cluster, owner)
        await client.cmd("DEL", source, target)
        shared_id, err = await client._nodes[(owner, False)].cmd("CLIENT", "ID")
        assert err is None
        before = calls_of(server, "blmove")
        call = asyncio.ensure_future(client.cmd("BLMOVE", source, target, "LEFT", "RIGHT", 3))
        await asyncio.sleep(0.1)  # blocked on the server
        server.command("CLIENT", "KILL", "ID", str(shared_id))  # the shared connection fails
        await asyncio.sleep(0.05)
        await client.cmd("GET", "{atk12}x")  # another call reaches that node
        await asyncio.sleep(0.2)
        server.command("RPUSH", source, "a", "b")
        assert await call == ("a", None)
        await asyncio.sleep(0.2)
        assert calls_of(server, "blmove") - before == 1
        assert await client.cmd("LRANGE", target, 0, -1) == (["a"], None)
        assert await client.cmd("LRANGE", source, 0, -1) == (["b"], None)
        await client.cmd("DEL", source, target)
    finally:
        await client.close()


# -- r13: a slot move queues few gap notices, within max_pushes -------------------------


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_r13_a_slot_move_of_many_shard_channels_does_not_flood_the_queue(
    cluster: LocalCluster,
) -> None:
    # Before: one gap notice per shard channel, queued past max_pushes
    # (and a restore task each).
    max_pushes = 100
    channels = [f"{{atk13}}:{i}" for i in range(300)]
    slot = key_slot(b"atk13")
    subscriber = await connect(cluster, timeout=1, max_pushes=max_pushes)
    publisher = await connect(cluster)
    source = server_at(cluster, node_of(cluster, slot)[0])
    target = next(s for s in primaries(cluster) if s is not source)
    others = [s for s in cluster.servers if s not in (source, target)]
    moved = False
    peak = 0
    watching = True

    async def watch_queue() -> None:
        nonlocal peak
        while watching:
            peak = max(peak, len(subscriber._pubsub._queue))
            await asyncio.sleep(0.002)

    watcher = asyncio.ensure_future(watch_queue())
    try:
        for channel in channels:
            assert (await subscriber.cmd("SSUBSCRIBE", channel))[1] is None
        source_id, target_id = node_id(source), node_id(target)
        target.command("CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
        source.command("CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        moved = True
        for server in [target, source, *others]:
            server.command("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        counter, err = await levredis.connect(target.address)
        assert counter is not None, err
        try:
            async def all_on_the_target() -> bool:
                counts, err = await counter.cmd("PUBSUB", "SHARDNUMSUB", *channels)
                assert err is None and isinstance(counts, list)
                return all(n == 1 for n in counts[1::2])

            await eventually(all_on_the_target)
        finally:
            await counter.close()
        await asyncio.sleep(0.2)
        assert peak <= max_pushes, peak
        gaps = 0
        while True:  # nothing was published: gap notices only, then a timeout
            item, err = await subscriber.read()
            if err == "timeout":
                break
            assert item is None and isinstance(err, levredis.NetworkError), (item, err)
            gaps += 1
        assert 1 <= gaps <= 5, gaps
        for channel in channels:  # every channel is subscribed again, where it is now
            assert await publisher.cmd("SPUBLISH", channel, "m") == (1, None), channel
        assert peak <= max_pushes, peak
    finally:
        watching = False
        await watcher
        await subscriber.close()
        await publisher.close()
        if moved:  # the slot holds no key: give it back at once
            for server in cluster.servers:
                server.command("CLUSTER", "SETSLOT", str(slot), "NODE", node_id(source))
            cluster.wait_ok()


# -- r14: a per-node connection limit too small for the cluster client is refused ------


async def test_r14_max_connections_below_three_is_refused(cluster: LocalCluster) -> None:
    # Before: accepted; with max_connections=1 the subscriber connection and
    # the node's shared one starved each other (SUBSCRIBE or GET timed out).
    for limit in (1, 2):
        client, err = await levredis.connect_cluster(
            {"nodes": cluster.seeds[:2], "timeout": 1, "max_connections": limit})
        if client is not None:
            await client.close()
        assert client is None and isinstance(err, levredis.ConfigError), (limit, err)
        assert "max_connections" in err and "at least 3" in err, err
    client = await connect(cluster, timeout=1, max_connections=3)
    try:
        assert await client.cmd("SUBSCRIBE", "atk14:news") == (
            ["subscribe", "atk14:news", 1], None)
        address = client._pubsub._feeds[None].address
        key = next(f"atk14:{i}" for i in range(100_000)
                   if client._slots.primaries[key_slot(f"atk14:{i}".encode())] == address)
        assert await client.cmd("SET", key, "v") == ("OK", None)  # the subscriber's node
        assert await client.cmd("GET", key) == ("v", None)
        await client.cmd("DEL", key)
    finally:
        await client.close()
