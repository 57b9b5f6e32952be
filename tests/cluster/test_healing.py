"""The cluster client heals itself: dropped connections, lost subscribers, moved
shard channels, replicas that come late, refused session changes, cancellation."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine
from typing import Any

import pytest

import levredis
from levredis._cluster import ClusterClient
from levredis._slots import key_slot
from tests.cluster.conftest import LocalCluster
from tests.cluster.test_cluster import connect, node_of
from tests.servers import sockets_connected_to


def kill_clients(cluster: LocalCluster, kind: str = "normal") -> None:
    """CLIENT KILL TYPE ``kind`` on every live node (the checker's own socket is spared)."""
    for server in cluster.servers:
        if server.process is not None:
            server.command("CLIENT", "KILL", "TYPE", kind)


def client_flags(cluster: LocalCluster, kind: str = "normal") -> dict[int, list[str]]:
    """Per node port, the flags of each client connection of ``kind`` but the checker's."""
    found: dict[int, list[str]] = {}
    for server in cluster.servers:
        lines = server.command("CLIENT", "LIST", "TYPE", kind).splitlines()
        found[server.port] = [field.split("=", 1)[1] for line in lines
                              if "cmd=client" not in line
                              for field in line.split() if field.startswith("flags=")]
    return found


def replica_of(cluster: LocalCluster, primary_address: str) -> str:
    for server in cluster.servers:
        info = server.command("INFO", "replication")
        if "role:slave" in info and f"master_port:{primary_address.rsplit(':', 1)[1]}" in info:
            return server.address
    raise AssertionError(f"no replica of {primary_address}")


async def eventually(check: object, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not healed in time"
        await asyncio.sleep(0.05)


async def test_a_killed_node_connection_costs_at_most_the_call_in_flight(
    cluster: LocalCluster,
) -> None:
    client = await connect(cluster)
    keys = [f"heal:{i}" for i in range(30)]  # on every primary
    for key in keys:
        assert await client.cmd("SET", key, key) == ("OK", None)
    for _ in range(3):
        kill_clients(cluster)
        errors = [err for key in keys for _, err in [await client.cmd("GET", key)]
                  if err is not None]
        assert len(errors) <= 3, errors  # only the first call on each dead connection
        assert all(isinstance(err, levredis.NetworkError) for err in errors), errors
        for key in keys:
            assert await client.cmd("GET", key) == (key, None)
    await client.close()


async def test_replica_connections_send_readonly_as_setup_and_survive_a_kill(
    cluster: LocalCluster,
) -> None:
    client = await connect(cluster, read_from_replicas=True)
    assert await client.cmd("SET", "heal:{r}", "v") == ("OK", None)
    primary, _ = node_of(cluster, key_slot(b"heal:{r}"))
    replica = cluster.node_for(int(replica_of(cluster, primary).rsplit(":", 1)[1]))

    async def replicated() -> bool:
        # (A replica is used once CLUSTER SHARDS calls it "online": the map is
        # read again while a shard has none.)
        return (await client.cmd("GET", "heal:{r}") == ("v", None)
                and (replica.address, True) in client._nodes)

    await eventually(replicated)
    # The replica serves it on a READONLY connection (flag "r"), set up at connect.
    assert any("r" in flags for flags in client_flags(cluster)[replica.port])
    for _ in range(3):
        kill_clients(cluster)
        results = [await client.cmd("GET", "heal:{r}") for _ in range(10)]
        assert sum(err is not None for _, err in results) <= 1, results
        assert results[-5:] == [("v", None)] * 5  # healed: no "close this client" for ever
    await asyncio.sleep(0.05)  # the loop sees the sockets close: no call fails at all
    kill_clients(cluster)
    await asyncio.sleep(0.1)
    assert [await client.cmd("GET", "heal:{r}") for _ in range(5)] == [("v", None)] * 5
    await client.close()


async def test_a_transaction_cut_by_a_lost_connection_does_not_poison_the_node(
    cluster: LocalCluster,
) -> None:
    client = await connect(cluster)
    # A huge transaction in flight while its connection is killed: the node's
    # client held "inside MULTI" and a plain client would refuse every call.
    big = [["SET", "{tx}:k", "x" * 1000]] * 3000
    task = asyncio.ensure_future(client.pipeline([["MULTI"], *big, ["EXEC"]]))
    await asyncio.sleep(0.005)
    kill_clients(cluster)
    await task
    for i in range(20):
        assert await client.cmd("SET", "{tx}:k", i) == ("OK", None) or i == 0
    assert await client.cmd("GET", "{tx}:k") == ("19", None)
    await client.close()


async def test_session_changing_commands_are_refused_before_anything_is_sent(
    cluster: LocalCluster,
) -> None:
    client = await connect(cluster)
    before = {s.port: s.command("INFO", "commandstats") for s in cluster.servers}
    for command in (["SELECT", 1], ["CLIENT", "SETNAME", "mine"], ["CLIENT", "REPLY", "OFF"],
                    ["CLIENT", "TRACKING", "ON"], ["MULTI"], ["EXEC"], ["DISCARD"],
                    ["WATCH", "k"], ["UNWATCH"], ["AUTH", "user", "pw"], ["HELLO", "3"],
                    ["MONITOR"], ["RESET"], ["READONLY"], ["READWRITE"], ["QUIT"],
                    ["client", "no-evict", "on"]):
        value, err = await client.cmd(*command)
        assert value is None and isinstance(err, levredis.UsageError), (command, err)
        assert "refused on a cluster client" in err and "pw" not in err
    refused: tuple[list[list[object]], ...] = (
        [["SELECT", 1], ["SET", "a", 1]], [["MULTI"], ["SELECT", 1], ["EXEC"]],
        [["WATCH", "k"], ["GET", "k"]], [["MULTI"], ["INCR", "k"]],
        [["EXEC"]], [["MULTI"], ["MULTI"], ["EXEC"]],
        [["GET", "k"], ["MULTI"], ["EXEC"]])
    for pipeline in refused:
        results, err = await client.pipeline(pipeline)
        assert results is None and isinstance(err, levredis.UsageError), (pipeline, err)
    after = {s.port: s.command("INFO", "commandstats") for s in cluster.servers}
    for port, stats in after.items():  # none of them reached a server
        for name in ("select", "multi", "watch", "auth", "hello", "monitor", "reset",
                     "readwrite", "quit"):
            assert (f"cmdstat_{name}:" in stats) == (f"cmdstat_{name}:" in before[port]) or \
                _calls(stats, name) == _calls(before[port], name), (port, name)
    # The shared connections are as they were: every call still works.
    for i in range(200):
        assert await client.cmd("SET", f"session:{i}", i) == ("OK", None)
    assert all("name=mine" not in s.command("CLIENT", "LIST") for s in cluster.servers)
    # A one-slot transaction, WATCH included, is a pipeline and runs.
    results, err = await client.pipeline([["WATCH", "{t}a"], ["MULTI"], ["INCR", "{t}a"],
                                          ["INCR", "{t}b"], ["EXEC"]])
    assert err is None and results is not None and results[0] == ["OK"]
    assert isinstance(results[-1][0], list) and len(results[-1][0]) == 2
    results, err = await client.pipeline([["MULTI"], ["PING"], ["DISCARD"]])
    assert err is None and results == [["OK"], ["QUEUED"], ["OK"]]
    await client.close()


def _calls(stats: str, name: str) -> int:
    for line in stats.splitlines():
        if line.startswith(f"cmdstat_{name}:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def channels_on_every_shard(cluster: LocalCluster) -> list[str]:
    """Shard channels whose slots are served by three different primaries."""
    found: dict[str, str] = {}
    for i in range(200):
        channel = f"heal:shard:{i}"
        found.setdefault(node_of(cluster, key_slot(channel.encode()))[0], channel)
        if len(found) == 3:
            break
    return list(found.values())


async def read_until(client: ClusterClient, wanted: set[tuple[str, str]],
                     publish: object, token: str = "", limit: float = 15.0) -> list[str]:
    """Read until each (kind, channel) in ``wanted`` got a message whose payload
    is ``token`` (when given); the errors seen."""
    errors: list[str] = []
    deadline = time.monotonic() + limit
    while wanted:
        assert time.monotonic() < deadline, (wanted, errors)
        await publish()  # type: ignore[operator]
        item, err = await client.read()
        if err is not None:
            if err != "timeout":
                errors.append(err)
            continue
        assert item is not None
        value = item["value"]
        assert isinstance(value, list)
        if not token or value[-1] == token:
            wanted.discard((str(value[0]), str(value[-2])))
    return errors


async def test_sharded_subscriptions_are_routed_by_slot_one_connection_per_shard(
    cluster: LocalCluster,
) -> None:
    subscriber = await connect(cluster, timeout=0.2)
    publisher = await connect(cluster)
    channels = channels_on_every_shard(cluster)
    for channel in channels:
        assert await subscriber.cmd("SSUBSCRIBE", channel) == (
            ["ssubscribe", channel, 1], None)
    value, err = await subscriber.cmd("SSUBSCRIBE", channels[0], channels[1])
    assert value is None and isinstance(err, levredis.UsageError) and "CROSSSLOT" in err
    for channel in channels:
        assert await publisher.cmd("SPUBLISH", channel, "m") == (1, None)
    got = set()
    for _ in channels:
        item, err = await subscriber.read()
        assert err is None and item is not None
        got.add(tuple(item["value"]))  # type: ignore[arg-type]
    assert got == {("smessage", channel, "m") for channel in channels}
    pubsub = client_flags(cluster, "pubsub")
    for channel in channels:  # each on its own primary's connection
        primary, _ = node_of(cluster, key_slot(channel.encode()))
        assert len(pubsub[int(primary.rsplit(":", 1)[1])]) == 1
    assert await subscriber.cmd("SUNSUBSCRIBE") is not None
    item, err = await subscriber.read()
    while err is None:  # the other shards' confirmations, then nothing to read
        item, err = await subscriber.read()
    assert isinstance(err, levredis.UsageError) and "nothing to read" in err
    await subscriber.close()
    await publisher.close()


async def test_a_subscriber_whose_connections_drop_subscribes_again(
    cluster: LocalCluster,
) -> None:
    subscriber = await connect(cluster, timeout=0.2)
    publisher = await connect(cluster)
    channels = channels_on_every_shard(cluster)
    assert await subscriber.cmd("SUBSCRIBE", "heal:news") == (
        ["subscribe", "heal:news", 1], None)
    assert (await subscriber.cmd("PSUBSCRIBE", "heal:p*"))[1] is None
    for channel in channels:
        assert (await subscriber.cmd("SSUBSCRIBE", channel))[1] is None

    token = "before"

    async def publish() -> None:
        await publisher.cmd("PUBLISH", "heal:news", token)
        await publisher.cmd("PUBLISH", "heal:pattern", token)
        for channel in channels:
            await publisher.cmd("SPUBLISH", channel, token)

    everything = {("message", "heal:news"), ("pmessage", "heal:pattern"),
                  *(("smessage", channel) for channel in channels)}
    assert await read_until(subscriber, set(everything), publish, token) == []
    for round_ in range(2):
        kill_clients(cluster, "pubsub")
        token = f"after kill {round_}"
        errors = await read_until(subscriber, set(everything), publish, token)
        # Each lost connection is reported once, in order with the messages.
        assert 1 <= len(errors) <= 4, errors
        assert all(isinstance(e, levredis.NetworkError) and "subscribing again" in e
                   for e in errors), errors
    # Still one connection per shard plus one for SUBSCRIBE, nothing leaked.
    assert sum(len(flags) for flags in client_flags(cluster, "pubsub").values()) == 4
    assert subscriber.pubsub_restored() >= 2 * (len(channels) + 2)
    await subscriber.close()
    await publisher.close()
    assert sum(len(flags) for flags in client_flags(cluster, "pubsub").values()) == 0


async def test_unsubscribing_everything_ends_reading(cluster: LocalCluster) -> None:
    subscriber = await connect(cluster, timeout=1)
    assert (await subscriber.cmd("SUBSCRIBE", "heal:a", "heal:b"))[1] is None
    assert await subscriber.read() == (
        {"type": "array", "value": ["subscribe", "heal:b", 2]}, None)
    waiting = asyncio.ensure_future(subscriber.read())
    await asyncio.sleep(0.05)
    assert (await subscriber.cmd("UNSUBSCRIBE"))[1] is None
    item, err = await waiting  # the extra confirmation, then nothing more can come
    assert err is None and item is not None
    _, err = await subscriber.read()
    assert isinstance(err, levredis.UsageError) and "nothing to read" in err
    await subscriber.close()


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_a_shard_channel_whose_slot_moves_follows_it(own_cluster: LocalCluster) -> None:
    subscriber = await connect(own_cluster, timeout=0.2)
    publisher = await connect(own_cluster)
    channel = "heal:moving"
    slot = key_slot(channel.encode())
    assert (await subscriber.cmd("SSUBSCRIBE", channel))[1] is None

    token = "before"

    async def publish() -> None:
        await publisher.cmd("SPUBLISH", channel, token)

    assert await read_until(subscriber, {("smessage", channel)}, publish, token) == []
    source, source_id = node_of(own_cluster, slot)
    own_cluster.give_slot_away(slot, source_id)
    token = "after the move"
    errors = await read_until(subscriber, {("smessage", channel)}, publish, token)
    assert len(errors) == 1 and "subscribing again" in errors[0], errors
    assert node_of(own_cluster, slot)[0] != source
    await subscriber.close()
    await publisher.close()


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_a_replica_that_comes_later_is_found_without_a_manual_refresh(
    own_cluster: LocalCluster,
) -> None:
    primary, _ = node_of(own_cluster, key_slot(b"late:{x}"))
    replica = own_cluster.node_for(int(replica_of(own_cluster, primary).rsplit(":", 1)[1]))
    replica.kill()

    def replica_gone() -> bool:
        return all(f":{replica.port}@" not in line or "fail" in line
                   for line in own_cluster.servers[0].command("CLUSTER", "NODES").splitlines())

    deadline = time.monotonic() + 15
    while not replica_gone():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    client = await connect(own_cluster, read_from_replicas=True)
    assert client._slots.replicas[primary] == []
    assert await client.cmd("SET", "late:{x}", "v") == ("OK", None)
    replica.start()

    async def served_by_the_replica() -> bool:
        await client.cmd("GET", "late:{x}")
        return (f"127.0.0.1:{replica.port}", True) in client._nodes

    await eventually(served_by_the_replica, 20)
    await client.close()


def operation(client: ClusterClient, kind: str, i: int) -> Coroutine[Any, Any, object]:
    if kind == "get":
        return client.cmd("GET", f"cancel:{i}")
    if kind == "set":
        return client.cmd("SET", f"cancel:{i}", i)
    if kind == "pipeline":
        return client.pipeline([["SET", f"c:{j}", j] for j in range(20)])
    if kind == "subscribe":
        return client.cmd("SUBSCRIBE", f"cancel:ch:{i}")
    if kind == "ssubscribe":
        return client.cmd("SSUBSCRIBE", f"cancel:sch:{i}")
    if kind == "read":
        return client.read()
    return client.pipeline([["MULTI"], ["INCR", "{c}n"], ["EXEC"]])


async def test_cancelled_cluster_calls_leak_nothing(cluster: LocalCluster) -> None:
    rng = random.Random(11)
    client = await connect(cluster, timeout=2)
    for i in range(150):
        kind = rng.choice(["get", "set", "pipeline", "subscribe", "ssubscribe", "read",
                           "tx"])
        coro = operation(client, kind, i)
        task = asyncio.ensure_future(coro)
        await asyncio.sleep(rng.choice([0, 0, 0.0005, 0.001, 0.003]))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if i % 25 == 0:
            kill_clients(cluster, rng.choice(["normal", "pubsub"]))
    assert await client.cmd("SET", "cancel:last", 1) == ("OK", None)
    await client.close()
    await levredis.close_pool()
    assert [s for s in levredis.pool_stats() if s["in_use"] or s["opening"]] == []
    deadline = time.monotonic() + 2  # (closed sockets go at the loop's next turns)
    while any(sockets_connected_to(s.port) for s in cluster.servers):
        assert time.monotonic() < deadline, {
            s.port: sockets_connected_to(s.port) for s in cluster.servers}
        await asyncio.sleep(0.01)


def map_reads(cluster: LocalCluster) -> int:
    return sum(_calls(s.command("INFO", "commandstats"), "cluster|shards")
               for s in cluster.servers if s.process is not None)


async def test_an_idle_client_reads_no_map_and_a_busy_one_reads_it_periodically(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from levredis import _cluster

    monkeypatch.setattr(_cluster, "REFRESH_PERIOD", 0.1)
    client = await connect(cluster)
    idle_start = map_reads(cluster)
    await asyncio.sleep(0.6)
    assert map_reads(cluster) == idle_start  # idle: nothing sent
    busy_start = map_reads(cluster)
    for _ in range(12):
        assert await client.cmd("GET", "periodic") == (None, "not found")
        await asyncio.sleep(0.05)
    assert map_reads(cluster) >= busy_start + 2
    await client.close()


async def test_the_map_is_read_with_backoff_while_no_node_answers() -> None:
    from levredis._cluster import MAX_REFRESH_GAP, REFRESH_INTERVAL, parse_cluster_config
    from tests.servers import free_port

    parsed = parse_cluster_config([f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"])
    assert not isinstance(parsed, levredis.ConfigError)
    client = ClusterClient(*parsed)
    gaps = []
    for _ in range(6):
        err = await client.refresh()
        assert isinstance(err, levredis.NetworkError) and "refused" in err
        gaps.append(client._gap)
    assert gaps == [min(REFRESH_INTERVAL * 2 ** n, MAX_REFRESH_GAP) for n in range(1, 7)]
    await client.close()


async def test_a_node_that_stalls_is_passed_over_when_reading_the_map(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from levredis import _cluster
    from tests.fakepeer import FakePeer

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(_cluster, "NODE_ANSWER_LIMIT", 0.2)
    async with FakePeer(stall) as peer:
        async with asyncio.timeout(30):  # no timeout of its own: only the limit saves it
            client, err = await levredis.connect_cluster([peer.address, cluster.seeds[0]])
        assert client is not None, err
        assert await client.cmd("SET", "stalled", 1) == ("OK", None)
        await client.close()


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_during_a_failover_calls_not_sent_wait_for_the_new_primary(
    own_cluster: LocalCluster,
) -> None:
    client = await connect(own_cluster, timeout=15)
    key = "failover:{wait}"
    assert await client.cmd("SET", key, "before") == ("OK", None)
    primary, _ = node_of(own_cluster, key_slot(key.encode()))
    replica = replica_of(own_cluster, primary)
    victim = own_cluster.node_for(int(primary.rsplit(":", 1)[1]))
    deadline = time.monotonic() + 10
    while "lag=0" not in victim.command("INFO", "replication"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    victim.kill()
    await asyncio.sleep(0.2)  # the client sees its connection close
    # Refused connections mean "not sent": the call waits for the promotion.
    assert await client.cmd("SET", key, "after") == ("OK", None)
    assert node_of(own_cluster, key_slot(key.encode()))[0] == replica
    assert await client.cmd("GET", key) == ("after", None)
    await client.close()


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_an_unreachable_replica_leaves_its_reads_to_the_primary(
    own_cluster: LocalCluster,
) -> None:
    client = await connect(own_cluster, read_from_replicas=True)
    key = "replica:{gone}"
    assert await client.cmd("SET", key, "v") == ("OK", None)
    primary, _ = node_of(own_cluster, key_slot(key.encode()))
    replica = own_cluster.node_for(int(replica_of(own_cluster, primary).rsplit(":", 1)[1]))

    async def served_by_the_replica() -> bool:
        return (await client.cmd("GET", key) == ("v", None)
                and (replica.address, True) in client._nodes)

    await eventually(served_by_the_replica, 20)
    keys = [stats["key"] for stats in levredis.pool_stats()]
    assert f"{replica.address}/0 readonly" in keys and f"{primary}/0" in keys
    replica.kill()
    await asyncio.sleep(0.2)
    for _ in range(5):  # refused: the primary answers, no error
        assert await client.cmd("GET", key) == ("v", None)
    await client.close()


async def test_the_pub_sub_queue_is_bounded_by_max_pushes(cluster: LocalCluster) -> None:
    subscriber = await connect(cluster, timeout=5, max_pushes=10)
    publisher = await connect(cluster)
    assert (await subscriber.cmd("SUBSCRIBE", "bounded"))[1] is None
    sent = 3000
    results, err = await publisher.pipeline([["PUBLISH", "bounded", i] for i in range(sent)])
    assert err is None and results is not None
    await asyncio.sleep(0.3)
    assert len(subscriber._pubsub._queue) <= 10
    for i in range(sent):  # nothing lost, in order
        assert await subscriber.read() == (
            {"type": "array", "value": ["message", "bounded", str(i)]}, None)
    await subscriber.close()
    await publisher.close()


async def test_a_subscribe_answered_by_a_network_error_is_kept(cluster: LocalCluster) -> None:
    subscriber = await connect(cluster, timeout=0.2)
    publisher = await connect(cluster)
    assert (await subscriber.cmd("SUBSCRIBE", "kept:a"))[1] is None
    kill_clients(cluster, "pubsub")
    value, err = await subscriber.cmd("SUBSCRIBE", "kept:b")  # on the killed connection
    assert value is None and isinstance(err, levredis.NetworkError), (value, err)

    async def publish() -> None:
        await publisher.cmd("PUBLISH", "kept:b", "b")

    errors = await read_until(subscriber, {("message", "kept:b")}, publish, "b")
    assert len(errors) == 1 and "subscribing again" in errors[0]
    await subscriber.close()
    await publisher.close()


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_a_transaction_whose_slot_moved_is_sent_again_on_the_new_map(
    own_cluster: LocalCluster,
) -> None:
    client = await connect(own_cluster)
    key = "moved:{tx}"
    slot = key_slot(key.encode())
    assert await client.cmd("GET", key) == (None, "not found")  # the map is read now
    _, source_id = node_of(own_cluster, slot)
    own_cluster.give_slot_away(slot, source_id)
    # The client's map still names the old owner: EXEC aborts there (MOVED), nothing runs.
    results, err = await client.pipeline([["MULTI"], ["INCR", key], ["INCR", key], ["EXEC"]])
    assert err is None and results is not None and results[-1] == [[1, 2]], results
    assert client.redirects()["MOVED"] >= 1
    assert await client.cmd("GET", key) == ("2", None)  # ran once
    await client.close()


async def test_the_cluster_client_speaks_resp3_when_asked(cluster: LocalCluster) -> None:
    client = await connect(cluster, protocol=3, read_from_replicas=True)
    assert client.cfg["protocol"] == 3
    await client.cmd("DEL", "r3:{c}h")
    assert await client.cmd("HSET", "r3:{c}h", "f", "v") == (1, None)
    assert await client.cmd("HGETALL", "r3:{c}h") == ({"f": "v"}, None)
    # The command table's flags come as sets in RESP3: reads still know they are reads.
    assert client._commands.readonly(["GET", "k"]) and not client._commands.readonly(["SET", "k"])
    results, err = await client.pipeline([["HGETALL", "r3:{c}h"], ["GET", "r3:{c}none"]])
    assert err is None and results == [[{"f": "v"}], [None]]
    assert (await client.cmd("SSUBSCRIBE", "r3:{c}ch"))[1] is None
    publisher = await connect(cluster)
    assert await publisher.cmd("SPUBLISH", "r3:{c}ch", "hi") == (1, None)
    assert await client.read() == (
        {"type": "push", "value": ["smessage", "r3:{c}ch", "hi"]}, None)
    await publisher.close()
    await client.close()
    assert any(s["key"].endswith(" resp3") for s in levredis.pool_stats())
