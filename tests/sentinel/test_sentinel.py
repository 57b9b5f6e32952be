"""connect_sentinel() on a real Sentinel set-up (1 primary, 2 replicas, 3 sentinels)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import levredis
from tests.clients import cancel_after_steps
from tests.sentinel.conftest import (
    NODE_PASS,
    SENTINEL_PASS,
    SERVICE,
    LocalSentinel,
    node_command,
)
from tests.servers import free_port
from tests.stressing import FIGURES


async def connect(local: LocalSentinel, **options: object) -> levredis.SentinelClient:
    client, err = await levredis.connect_sentinel(local.config(**options))
    assert client is not None, err
    return client


async def test_commands_go_to_the_primary_the_sentinels_name(sentinel: LocalSentinel) -> None:
    client = await connect(sentinel)
    assert client.address == sentinel.primary().address
    assert await client.cmd("SET", "sentinel:k", "v") == ("OK", None)
    assert await client.cmd("GET", "sentinel:k") == ("v", None)
    assert await client.pipeline([["DEL", "sentinel:n"], ["INCR", "sentinel:n"],
                                  ["GET", "sentinel:k"]]) in (
        ([[0], [1], ["v"]], None), ([[1], [1], ["v"]], None))
    role, err = await client.cmd("ROLE")
    assert err is None and isinstance(role, list) and role[0] == "master"
    assert client.cfg["service"] == SERVICE and client.cfg["role"] == "primary"
    assert client.cfg["sentinels"] == [s.address for s in sentinel.sentinels]
    shown = repr(client) + str(client.cfg)
    assert NODE_PASS not in shown and SENTINEL_PASS not in shown
    await client.close()
    assert await client.cmd("PING") == (None, "closed")


async def test_a_replica_when_asked(sentinel: LocalSentinel) -> None:
    client = await connect(sentinel, role="replica")
    replicas = {node.address for node in sentinel.nodes} - {sentinel.primary().address}
    assert client.address in replicas
    role, err = await client.cmd("ROLE")
    assert err is None and isinstance(role, list) and role[0] == "slave"
    value, err = await client.cmd("SET", "sentinel:on-replica", 1)  # a replica refuses writes
    assert value is None and isinstance(err, levredis.ServerError) and err.code == "READONLY"
    await client.close()


async def test_sentinel_credentials_are_separate_from_the_nodes(sentinel: LocalSentinel) -> None:
    config = sentinel.config()
    config["sentinel_auth"] = {"user": "default", "pass": "wrong-sentinel-pw"}
    client, err = await levredis.connect_sentinel(config)
    assert client is None and isinstance(err, levredis.ServerError), err
    assert "wrong-sentinel-pw" not in err and "WRONGPASS" in err
    config = sentinel.config(auth={"user": "alice", "pass": "wrong-node-pw"})
    client, err = await levredis.connect_sentinel(config)
    assert client is None and "WRONGPASS" in str(err) and "wrong-node-pw" not in str(err)


async def test_an_unknown_service_or_no_sentinel_is_a_clear_error(sentinel: LocalSentinel) -> None:
    client, err = await levredis.connect_sentinel(sentinel.config(service="nope", timeout=1))
    assert client is None and isinstance(err, levredis.NetworkError)
    assert "does not know service 'nope'" in err
    config = sentinel.config(timeout=1)
    config["sentinels"] = [f"127.0.0.1:{free_port()}"]
    client, err = await levredis.connect_sentinel(config)
    assert client is None and isinstance(err, levredis.NetworkError) and "refused" in err
    # A dead sentinel first: the one that answered is asked first from then on.
    dead = f"127.0.0.1:{free_port()}"
    config = sentinel.config()
    config["sentinels"] = [dead, *config["sentinels"]]  # type: ignore[misc]
    client, err = await levredis.connect_sentinel(config)
    assert client is not None, err
    order = [s.address for s in client._sentinels]
    assert order[0] != dead and order.index(dead) == 1, (order, dead)
    await client.close()


def connections_received(local: LocalSentinel) -> int:
    return sum(int(s.command("INFO", "stats").split("total_connections_received:")[1]
                   .split()[0]) for s in local.sentinels)


async def test_a_refusal_is_not_retried(sentinel: LocalSentinel) -> None:
    before = connections_received(sentinel)
    config = sentinel.config(timeout=30)
    config["sentinel_auth"] = {"user": "default", "pass": "wrong-sentinel-pw"}
    client, err = await levredis.connect_sentinel(config)
    assert client is None and isinstance(err, levredis.ServerError) and "WRONGPASS" in err
    # One round (each sentinel once, plus the checks' own), not 30 s of attempts.
    assert connections_received(sentinel) - before <= 2 * len(sentinel.sentinels) + 3


async def test_config_validation() -> None:
    for config, what in (
        ("127.0.0.1:26379", "a sentinel config is a mapping"),
        ({"service": "s"}, "sentinels must be a non-empty list"),
        ({"sentinels": [], "service": "s"}, "sentinels must be a non-empty list"),
        ({"sentinels": ["h:1"]}, "service must be"),
        ({"sentinels": ["h:1"], "service": "s", "role": "master"}, "role must be"),
        ({"sentinels": ["h:1"], "service": "s", "host": "h"}, "no 'host'"),
        ({"sentinels": ["h"], "service": "s"}, "a port is required"),
        ({"sentinels": ["h:1"], "service": "s", "timeout": -1}, "timeout must be"),
        ({"sentinels": ["h:1"], "service": "s", "sentinel_auth": {"user": "u"}},
         "invalid redis config: sentinel_auth"),
        ({"sentinels": ["h:1"], "service": "s", "password": "pw"}, "not a levredis key"),
    ):
        client, err = await levredis.connect_sentinel(config)
        assert client is None and isinstance(err, levredis.ConfigError), config
        assert err.startswith("invalid redis config: ") and what in err, err


async def writers_through_a_failover(local: LocalSentinel, fault: str) -> dict[str, object]:
    """20 tasks write and read back unique values while ``fault`` happens.

    A read that returns something never written to its key is a wrong answer.
    A read that returns an older value of the same writer means the write it
    follows was lost; so does an acknowledged write missing at the end. Both
    are told apart by when the write was acknowledged: before the client left
    the old primary (the window asynchronous replication leaves open) or after.
    """
    client = await connect(local)
    subscriber = await connect(local)  # holds session state: must not move silently
    assert (await subscriber.cmd("SUBSCRIBE", "failover:news"))[1] is None
    old = local.primary()
    loop = asyncio.get_running_loop()
    acked: dict[str, tuple[str, float]] = {}
    wrong: list[tuple[str, object]] = []
    stale: list[float] = []  # when the write a stale read followed was acknowledged
    errors: list[str] = []
    last_ok: dict[int, float] = {}
    writes: list[int] = []
    running = True

    async def writer(n: int) -> None:
        i = 0
        while running:
            key, value = f"failover:{n}:{i % 50}", f"{n}-{i}"
            _, err = await client.cmd("SET", key, value)
            if err is None:
                writes.append(1)
                acked[key] = (value, loop.time())
                got, err = await client.cmd("GET", key)
                if err is None and got != value:
                    earlier = isinstance(got, str) and got.startswith(f"{n}-") and \
                        int(got.split("-")[1]) % 50 == i % 50 and int(got.split("-")[1]) < i
                    if earlier:
                        stale.append(acked[key][1])
                    else:
                        wrong.append((key, got))
            if err is None:
                last_ok[n] = loop.time()
            else:
                errors.append(str(err))
                await asyncio.sleep(0.01)
            i += 1

    tasks = [asyncio.ensure_future(writer(n)) for n in range(20)]
    await asyncio.sleep(0.5)
    started = loop.time()
    if fault == "SENTINEL FAILOVER":
        assert "+OK" in local.sentinels[0].command("SENTINEL", "FAILOVER", SERVICE)
    else:
        old.kill()
    deadline = loop.time() + 30
    while client.address == old.address or any(t < started for t in last_ok.values()):
        assert loop.time() < deadline, (client.address, errors[-3:])
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    running = False
    await asyncio.gather(*tasks)
    switched = client.switched_at
    assert switched is not None and client.address != old.address
    missing = [at for key, (value, at) in acked.items()
               if await client.cmd("GET", key) != (value, None)]
    await client.close()
    old_pool = [s for s in levredis.pool_stats() if s["key"].startswith(old.address)]
    assert all(s["idle"] == 0 for s in old_pool), old_pool  # never pooled
    for _ in range(100):  # its connection was killed or is left: it says so
        _, held = await subscriber.cmd("PING")
        if held is not None:
            break
        await asyncio.sleep(0.05)
    assert isinstance(held, levredis.NetworkError), held
    await subscriber.close()
    if fault != "SENTINEL FAILOVER":
        old.start()  # it comes back as a replica of the new primary
    local.wait_settled()
    return {
        "writes acknowledged": len(writes), "keys": len(acked), "wrong answers": len(wrong),
        "acknowledged writes missing, acked before the switch": sum(t <= switched for t in missing),
        "acknowledged writes missing, acked after the switch": sum(t > switched for t in missing),
        "stale reads after a lost write": len(stale),
        "stale reads after the switch": sum(t > switched for t in stale),
        "errors": len(errors),
        "fault to switch (s)": round(switched - started, 2),
        "wrong": wrong[:3],
    }


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_a_forced_failover_loses_no_acknowledged_write(own_sentinel: LocalSentinel) -> None:
    figures = await writers_through_a_failover(own_sentinel, "SENTINEL FAILOVER")
    FIGURES["sentinel: SENTINEL FAILOVER under 20 writers"] = figures
    # The client leaves the old primary when the failover starts promoting, so
    # the old one accepts nothing that the new one lacks.
    assert figures["wrong answers"] == 0, figures
    assert figures["acknowledged writes missing, acked before the switch"] == 0, figures
    assert figures["acknowledged writes missing, acked after the switch"] == 0, figures
    assert figures["stale reads after a lost write"] == 0, figures


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_the_primary_killed_is_followed(own_sentinel: LocalSentinel) -> None:
    figures = await writers_through_a_failover(own_sentinel, "SIGKILL")
    FIGURES["sentinel: primary SIGKILLed under 20 writers"] = figures
    assert figures["wrong answers"] == 0, figures
    # What the dead primary acknowledged but had not replicated is lost (the
    # documented window); nothing acknowledged after the switch may be.
    assert figures["acknowledged writes missing, acked after the switch"] == 0, figures
    assert figures["stale reads after the switch"] == 0, figures


async def test_cancelling_connect_sentinel_leaks_nothing(sentinel: LocalSentinel) -> None:
    for steps in range(0, 30, 3):
        await cancel_after_steps(lambda: levredis.connect_sentinel(sentinel.config()), steps)
        leaked = [s for s in levredis.pool_stats() if s["in_use"] or s["opening"]]
        assert leaked == [], (steps, leaked)
    await levredis.close_pool()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert all("_watch" not in repr(t) for t in tasks), tasks


def test_node_command_helper_reaches_the_nodes(sentinel: LocalSentinel) -> None:
    assert node_command(sentinel.primary(), "PING") == "+PONG\r\n"


async def test_a_write_refused_with_readonly_goes_once_to_the_primary_found_again(
    sentinel: LocalSentinel,
) -> None:
    from levredis._client import connect_with

    client = await connect(sentinel)
    assert await client.cmd("DEL", "sentinel:readonly") in ((0, None), (1, None))
    # As if the node had been demoted under the client: point it at a replica.
    replica = next(n for n in sentinel.nodes if n.address != client.address)
    stale, err = await connect_with(dataclasses.replace(
        client._template, host="127.0.0.1", port=replica.port))
    assert stale is not None, err
    primary_client, client._client, client._address = client._client, stale, replica.address
    assert await client.cmd("INCR", "sentinel:readonly") == (1, None)  # ran once, on the primary
    assert client.address == sentinel.primary().address
    assert await client.cmd("GET", "sentinel:readonly") == ("1", None)
    assert primary_client is not None
    await primary_client.close()
    await client.close()


async def test_sentinel_ssl_applies_to_the_sentinels(sentinel: LocalSentinel) -> None:
    # These sentinels and nodes speak plain TCP: over TLS they do not answer,
    # and the error says which side it was.
    for options in ({"sentinel_ssl": True}, {"ssl": True}):  # ssl is the sentinels' default
        client, err = await levredis.connect_sentinel(sentinel.config(timeout=1, **options))
        assert client is None and isinstance(err, levredis.NetworkError), (options, err)
        assert "(sentinel 127.0.0.1:" in err, err
    client, err = await levredis.connect_sentinel(
        sentinel.config(ssl=True, sentinel_ssl=False, timeout=1))
    assert client is None and isinstance(err, levredis.NetworkError), err
    assert "(node 127.0.0.1:" in err, err


async def test_a_cache_through_sentinel(sentinel: LocalSentinel) -> None:
    """connect_sentinel() takes the client-side cache for its data nodes."""
    client = await connect(sentinel, protocol=3, cache={"max_entries": 100})
    writer = await connect(sentinel)
    assert await writer.cmd("SET", "sentinel:cached", "one") == ("OK", None)
    assert await client.cmd("GET", "sentinel:cached") == ("one", None)
    assert await client.cmd("GET", "sentinel:cached") == ("one", None)
    caching = [pool["cache"] for pool in levredis.pool_stats() if "cache" in pool]
    assert caching and caching[0]["hits"] == 1
    assert await writer.cmd("SET", "sentinel:cached", "two") == ("OK", None)
    assert await client.cmd("PING") == ("PONG", None)
    assert await client.cmd("GET", "sentinel:cached") == ("two", None)
    await writer.close()
    await client.close()
