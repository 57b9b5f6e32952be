"""The cluster client on a real local cluster: routing, redirects, pipelines, pub/sub."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

import levredis
from levredis._cluster import ClusterClient
from levredis._slots import key_slot
from tests.clients import cancel_after_steps
from tests.cluster.conftest import LocalCluster


async def connect(cluster: LocalCluster, **options: object) -> ClusterClient:
    client, err = await levredis.connect_cluster({"nodes": cluster.seeds[:2], "timeout": 5,
                                                  **options})
    assert client is not None, err
    return client


def node_of(cluster: LocalCluster, slot: int) -> tuple[str, str]:
    """(address, node id) of the primary serving ``slot``, asked of the servers."""
    for server in cluster.servers:
        if server.process is None:
            continue
        for line in server.command("CLUSTER", "NODES").splitlines():
            fields = line.split()
            if len(fields) < 9 or "master" not in fields[2] or "fail" in fields[2]:
                continue
            for part in fields[8:]:
                low, _, high = part.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return fields[1].split("@")[0], fields[0]
    raise AssertionError(f"no primary for slot {slot}")


def test_key_slot_matches_the_servers(cluster: LocalCluster) -> None:
    server = cluster.servers[0]
    rng = random.Random(3)
    keys = ["", "a", "{}", "{a", "a{}b{c}", "{user1000}.following", "foo{}{bar}", "é{ü}x"]
    keys += ["".join(rng.choice("ab{}xyz01") for _ in range(rng.randint(1, 12)))
             for _ in range(300)]
    for key in keys:
        expected = int(server.command("CLUSTER", "KEYSLOT", key)[1:].strip())
        assert key_slot(key.encode()) == expected, key


async def test_commands_reach_every_primary_and_read_back(cluster: LocalCluster) -> None:
    client = await connect(cluster)
    for i in range(300):
        assert await client.cmd("SET", f"route:{i}", i) == ("OK", None)
    for i in range(300):
        assert await client.cmd("GET", f"route:{i}") == (str(i), None)
    sizes = {}
    for server in cluster.servers:
        info = server.command("INFO", "replication")
        if "role:master" in info:
            sizes[server.port] = int(server.command("DBSIZE")[1:].strip())
    assert len(sizes) == 3 and all(size > 50 for size in sizes.values()), sizes
    assert await client.cmd("GET", "route:missing") == (None, "not found")
    await client.close()


async def test_hash_tags_keep_multi_key_commands_on_one_slot(cluster: LocalCluster) -> None:
    client = await connect(cluster)
    assert await client.cmd("MSET", "{cart:7}:a", 1, "{cart:7}:b", 2) == ("OK", None)
    assert await client.cmd("MGET", "{cart:7}:a", "{cart:7}:b") == (["1", "2"], None)
    value, err = await client.cmd("MGET", "cart:a", "cart:b")  # different slots
    assert value is None and isinstance(err, levredis.UsageError) and err.startswith("CROSSSLOT")
    await client.close()


async def test_movable_keys_are_found_by_the_server(cluster: LocalCluster) -> None:
    client = await connect(cluster)
    await client.cmd("SET", "eval:key", "found")
    assert await client.cmd("EVAL", "return redis.call('GET', KEYS[1])", 1, "eval:key") == (
        "found", None)
    await client.close()


async def test_pipelines_span_all_primaries_and_keep_order(cluster: LocalCluster) -> None:
    client = await connect(cluster)
    commands: list[list[object]] = [["SET", f"pipe:{i}", i] for i in range(60)]
    commands += [["GET", f"pipe:{i}"] for i in range(60)]
    commands += [["GET", "pipe:none"]]
    commands += [["INCR", "pipe:0"], ["HSET", "pipe:1", "f", "v"]]
    results, err = await client.pipeline(commands)
    assert err is None and results is not None
    assert results[:60] == [["OK"]] * 60
    assert results[60:120] == [[str(i)] for i in range(60)]
    assert results[120] == [None] and results[121] == [1]
    assert len(results[122]) == 2 and str(results[122][1]).startswith("WRONGTYPE")
    await client.close()


async def test_a_transaction_pipeline_runs_on_its_slot(cluster: LocalCluster) -> None:
    client = await connect(cluster)
    results, err = await client.pipeline([["MULTI"], ["INCR", "{tx}a"], ["INCR", "{tx}b"],
                                          ["EXEC"]])
    assert err is None and results is not None and results[3] == [[1, 1]]
    results, err = await client.pipeline([["MULTI"], ["INCR", "tx:a"], ["INCR", "tx:b"],
                                          ["EXEC"]])
    assert results is None and isinstance(err, levredis.UsageError)
    await client.cmd("DEL", "{tx}a", "{tx}b")
    await client.close()


def owner_and_other(cluster: LocalCluster, key: str) -> tuple[int, str, str, str, str]:
    """The key's slot, its primary (address, id), and another primary (address, id)."""
    slot = key_slot(key.encode())
    source, source_id = node_of(cluster, slot)
    target, target_id = next(node_of(cluster, s) for s in range(0, 16384, 997)
                             if node_of(cluster, s)[0] != source)
    return slot, source, source_id, target, target_id


async def test_moved_refreshes_the_map_and_retries(cluster: LocalCluster) -> None:
    client = await connect(cluster)
    key = "moved:key"
    slot, _, source_id, target, target_id = owner_and_other(cluster, key)
    assert await client.cmd("SET", key, "before") == ("OK", None)
    assert await client.cmd("DEL", key) == (1, None)  # an empty slot moves cleanly
    for server in cluster.servers:
        server.command("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
    try:
        # The client's map still says `source`: MOVED, refresh, retry on `target`.
        assert await client.cmd("SET", key, "after") == ("OK", None)
        assert await client.cmd("GET", key) == ("after", None)
        target_server = cluster.node_for(int(target.rsplit(":", 1)[1]))
        assert "after" in target_server.command("GET", key)
    finally:
        await client.cmd("DEL", key)
        for server in cluster.servers:
            server.command("CLUSTER", "SETSLOT", str(slot), "NODE", source_id)
        cluster.wait_ok()
    await client.close()


async def test_ask_during_a_migration_is_followed_once(cluster: LocalCluster) -> None:
    client = await connect(cluster)
    key = "ask:key"
    slot, source, source_id, target, target_id = owner_and_other(cluster, key)
    source_server = cluster.node_for(int(source.rsplit(":", 1)[1]))
    target_server = cluster.node_for(int(target.rsplit(":", 1)[1]))
    assert await client.cmd("SET", key, "migrating") == ("OK", None)
    target_server.command("CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
    source_server.command("CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
    source_server.command("MIGRATE", "127.0.0.1", str(target_server.port), key, "0", "5000")
    try:
        # The key now lives on the target while the slot is still the source's: ASK.
        assert await client.cmd("GET", key) == ("migrating", None)
        results, err = await client.pipeline([["GET", key], ["EXISTS", key]])
        assert (results, err) == ([["migrating"], [1]], None)
    finally:
        for server in (source_server, target_server):
            server.command("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        for server in cluster.servers:
            server.command("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        cluster.wait_ok()
    assert await client.cmd("GET", key) == ("migrating", None)
    await client.cmd("DEL", key)
    await client.close()


async def test_pub_sub_and_sharded_pub_sub(cluster: LocalCluster) -> None:
    subscriber = await connect(cluster)
    publisher = await connect(cluster)
    assert await subscriber.cmd("SUBSCRIBE", "cluster:news") == (
        ["subscribe", "cluster:news", 1], None)
    await publisher.cmd("PUBLISH", "cluster:news", "hello")
    assert await subscriber.read() == (
        {"type": "array", "value": ["message", "cluster:news", "hello"]}, None)
    await subscriber.close()
    sharded = await connect(cluster)
    assert await sharded.cmd("SSUBSCRIBE", "{shard}:ch") == (["ssubscribe", "{shard}:ch", 1], None)
    assert await publisher.cmd("SPUBLISH", "{shard}:ch", "sharded") == (1, None)
    assert await sharded.read() == (
        {"type": "array", "value": ["smessage", "{shard}:ch", "sharded"]}, None)
    await sharded.close()
    await publisher.close()


async def test_read_with_nothing_subscribed_is_the_same_usage_error_as_a_client(
    cluster: LocalCluster,
) -> None:
    client = await connect(cluster)
    value, err = await client.read()
    assert value is None and isinstance(err, levredis.UsageError) and "nothing to read" in err
    await client.close()


async def test_reads_from_replicas_when_asked(cluster: LocalCluster) -> None:
    client = await connect(cluster, read_from_replicas=True)
    keys = [f"replica:{i}" for i in range(30)]  # spread over every shard
    for key in keys:
        assert await client.cmd("SET", key, key) == ("OK", None)
    deadline = time.monotonic() + 10
    while True:  # replication is asynchronous: let the replicas catch up
        synced = all(
            info.count("offset=") == 0 or "lag=0" in info
            for info in (s.command("INFO", "replication") for s in cluster.servers))
        if synced or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    for key in keys:
        assert await client.cmd("GET", key) == (key, None)
    replica_gets = 0
    for server in cluster.servers:
        if "role:slave" in server.command("INFO", "replication"):
            for line in server.command("INFO", "commandstats").splitlines():
                if line.startswith("cmdstat_get:"):
                    replica_gets += int(line.split("calls=")[1].split(",")[0])
    assert replica_gets >= 1, (list(client._nodes), client._slots.replicas)
    await client.close()


async def test_config_validation() -> None:
    for config, what in (
        ({"nodes": ["127.0.0.1:7000"], "db": 2}, "a cluster has only db 0"),
        (["127.0.0.1:7000/3"], "a cluster has only db 0"),
        ({"nodes": []}, "nodes must be a non-empty list"),
        ("127.0.0.1:7000", "a cluster config is a list of nodes"),
        (["localhost"], "a port is required"),
        ({"nodes": ["h:1"], "read_from_replicas": "yes"}, "read_from_replicas must be a bool"),
        ({"nodes": ["h:1"], "timeout": -1}, "timeout must be"),
        ({"nodes": ["h:1"], "host": "h"}, "a cluster config names its nodes in 'nodes'"),
        ({"nodes": ["h:1"], "max_pushes": 0}, "max_pushes"),
        ({"nodes": ["h:1"], "password": "pw"}, "'password' is not a levredis key"),
    ):
        client, err = await levredis.connect_cluster(config)
        assert client is None and isinstance(err, levredis.ConfigError), config
        assert err.startswith("invalid redis config: ") and what in err, err


async def test_closed_cluster_client(cluster: LocalCluster) -> None:
    async with await connect(cluster) as client:
        assert await client.cmd("PING") == ("PONG", None)
        assert client.cfg["nodes"] == cluster.seeds[:2]
    assert await client.cmd("PING") == (None, "closed")
    assert await client.pipeline([["PING"]]) == (None, "closed")
    assert await client.read() == (None, "closed")


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_failover_recovers_on_its_own(own_cluster: LocalCluster) -> None:
    client = await connect(own_cluster)
    keys = [f"failover:{i}" for i in range(50)]
    for key in keys:
        assert await client.cmd("SET", key, key) == ("OK", None)
    victim_address, _ = node_of(own_cluster, key_slot(keys[0].encode()))
    victim = own_cluster.node_for(int(victim_address.rsplit(":", 1)[1]))
    # Replication is asynchronous: let the replica hold every write first, so
    # what is measured is the client, not writes Redis itself would lose.
    replica = next(s for s in own_cluster.servers
                   if f"master_port:{victim.port}\r\n" in s.command("INFO", "replication"))
    deadline = time.monotonic() + 10
    while replica.command("DBSIZE") != victim.command("DBSIZE"):
        assert time.monotonic() < deadline, "the replica did not catch up"
        await asyncio.sleep(0.05)
    victim.kill()
    started = time.monotonic()
    first_success = None
    errors = 0
    wrong = 0
    while time.monotonic() - started < 30:
        value, err = await client.cmd("GET", keys[0])
        if err is None:
            wrong += value != keys[0]
            first_success = time.monotonic() - started
            break
        errors += 1
        await asyncio.sleep(0.1)
    assert first_success is not None, "the client never recovered"
    assert wrong == 0
    for key in keys:  # every key answers, right value, on the new topology
        assert await client.cmd("GET", key) == (key, None)
    print(f"\nfailover: first success after {first_success:.2f} s, {errors} errors before")
    from tests.stressing import FIGURES

    FIGURES["cluster failover"] = {"error window s": round(first_success, 2), "errors": errors}
    await client.close()


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_resharding_under_traffic_loses_nothing(own_cluster: LocalCluster) -> None:
    client = await connect(own_cluster)
    written: dict[str, str] = {}
    wrong = 0
    errors: list[str] = []
    running = True

    async def worker(n: int) -> None:
        nonlocal wrong
        i = 0
        while running:
            key, value = f"reshard:{n}:{i % 40}", f"{n}-{i}"
            _, err = await client.cmd("SET", key, value)
            if err is None:
                written[key] = value
                got, err = await client.cmd("GET", key)
                if err is None and got != value:
                    wrong += 1
            if err is not None:
                errors.append(str(err))
            i += 1

    workers = [asyncio.ensure_future(worker(n)) for n in range(20)]
    await asyncio.sleep(0.3)
    ids = {line.split()[1].split("@")[0]: line.split()[0]
           for line in own_cluster.servers[0].command("CLUSTER", "NODES").splitlines()
           if "master" in line}
    source, target = sorted(ids.values())[:2]
    reshard = await asyncio.create_subprocess_exec(
        "redis-cli", "--cluster", "reshard", own_cluster.seeds[0], "--cluster-from", source,
        "--cluster-to", target, "--cluster-slots", "600", "--cluster-yes",
        "--cluster-pipeline", "10",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    assert await reshard.wait() == 0
    await asyncio.sleep(0.3)
    running = False
    await asyncio.gather(*workers)
    assert wrong == 0
    assert errors == [], errors[:5]  # MOVED and ASK were all followed
    for key, value in written.items():  # no write was lost
        assert await client.cmd("GET", key) == (value, None)
    redirects = client.redirects()
    assert redirects["MOVED"] + redirects["ASK"] > 0, redirects
    from tests.stressing import FIGURES

    FIGURES["cluster reshard under traffic"] = {
        "keys": len(written), "wrong": wrong, "errors": len(errors), **redirects}
    await client.close()


async def test_cluster_slots_gives_the_same_map_as_cluster_shards(cluster: LocalCluster) -> None:
    from levredis._slots import SlotMap

    client, _ = await levredis.connect(cluster.seeds[0])
    assert client is not None
    shards, err = await client.cmd("CLUSTER", "SHARDS")
    assert err is None
    slots, err = await client.cmd("CLUSTER", "SLOTS")
    assert err is None
    from_shards, from_slots = SlotMap.from_shards(shards), SlotMap.from_slots(slots)
    assert from_shards.covered() and from_slots.covered()
    assert from_shards.primaries == from_slots.primaries
    assert {k: sorted(v) for k, v in from_shards.replicas.items()} == {
        k: sorted(v) for k, v in from_slots.replicas.items()}
    await client.close()


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_clusterdown_is_retried_a_bounded_number_of_times(own_cluster: LocalCluster) -> None:
    client = await connect(own_cluster)
    key = "down:key"
    slot = key_slot(key.encode())
    owner_address, _ = node_of(own_cluster, slot)
    owner = own_cluster.node_for(int(owner_address.rsplit(":", 1)[1]))
    owner.command("CLUSTER", "DELSLOTS", str(slot))  # one slot unserved: the cluster is down
    deadline = time.monotonic() + 10
    while "cluster_state:fail" not in owner.command("CLUSTER", "INFO"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    value, err = await client.cmd("SET", key, "x")
    assert value is None and isinstance(err, levredis.ServerError) and err.code == "CLUSTERDOWN"
    assert client.redirects()["CLUSTERDOWN"] >= 2  # retried, then given up: never a loop
    owner.command("CLUSTER", "ADDSLOTS", str(slot))
    own_cluster.wait_ok()
    assert await client.cmd("SET", key, "x") == ("OK", None)
    await client.close()


async def test_cancelling_connect_cluster_leaks_no_node_connection(cluster: LocalCluster) -> None:
    for steps in range(0, 40, 3):
        await cancel_after_steps(lambda: levredis.connect_cluster(
            {"nodes": cluster.seeds[:2], "timeout": 5}), steps)
        for _ in range(100):
            if all(stats["in_use"] == 0 and stats["opening"] == 0
                   for stats in levredis.pool_stats()):
                break
            await asyncio.sleep(0.01)
        leaked = [s for s in levredis.pool_stats() if s["in_use"] or s["opening"]]
        assert leaked == [], (steps, leaked)
