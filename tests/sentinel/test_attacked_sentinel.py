"""Regressions from a hostile review of connect_sentinel() (repro scripts sentinel_*).

Each test is one finding: a cancelled search leaving a node's client open;
clients found during a forced failover writing to the old primary; a garbage
port raising; one stale sentinel stopping discovery; rediss:// sentinel URLs
spoken in plain text and URL credentials ignored; one silent sentinel
hanging the search.

Misbehaving sentinels are FakePeers; the nodes (and the honest sentinels,
where there are any) are real servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest

import levredis
from tests.clients import cancel_after_steps
from tests.fakepeer import FakePeer, Script, read_command
from tests.sentinel.conftest import SENTINEL_PASS, SERVICE, LocalSentinel
from tests.servers import RedisServer, sockets_connected_to


def bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def naming(address: str, switch: asyncio.Event | None = None,
           switch_to: str = "") -> Script:
    """A sentinel that names ``address`` for any SENTINEL question.

    It accepts AUTH, answers PING and SUBSCRIBE; once ``switch`` is set it
    publishes ``+switch-master svc 127.0.0.1 1 <switch_to>`` to a subscriber.
    """
    host, port = address.rsplit(":", 1)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            command = await read_command(reader)
            name = command[0].upper()
            if name in (b"PING",):
                writer.write(b"+PONG\r\n")
            elif name == b"AUTH":
                writer.write(b"+OK\r\n")
            elif name == b"SENTINEL":
                writer.write(b"*2\r\n" + bulk(host) + bulk(port))
            elif name == b"SUBSCRIBE":
                channel = command[1].decode()
                writer.write(b"*3\r\n" + bulk("subscribe") + bulk(channel) + b":1\r\n")
                if channel == "+switch-master" and switch is not None:
                    await writer.drain()
                    await switch.wait()
                    message = f"svc 127.0.0.1 1 {switch_to}"
                    writer.write(b"*3\r\n" + bulk("message") + bulk(channel) + bulk(message))
            else:
                writer.write(b"-ERR unknown command\r\n")
            await writer.drain()

    return script


@contextlib.asynccontextmanager
async def fake(script: Script) -> AsyncIterator[FakePeer]:
    """A FakePeer (no greeting) whose connections are all closed when it stops."""
    async with FakePeer(script, greet=False) as peer:
        try:
            yield peer
        finally:
            await levredis.close_pool()  # pooled connections to it end its scripts
            await asyncio.sleep(0.05)


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts the connection, never answers (a frozen host)."""
    await reader.read()


@pytest.fixture
def node() -> Iterator[RedisServer]:
    """A plain node (no password) for the fake sentinels to name."""
    server = RedisServer().start()
    yield server
    server.cleanup()


# -- a cancelled search -------------------------------------------------------------


async def test_cancelling_while_the_node_s_role_is_checked_leaves_no_client() -> None:
    async def frozen_node(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)  # the connect PING
        writer.write(b"+PONG\r\n")
        await reader.read()  # ROLE: never answered

    async with fake(frozen_node) as fake_node, \
            fake(naming(fake_node.address)) as fake_sentinel:
        config = {"sentinels": [fake_sentinel.address], "service": "svc", "timeout": 5}
        for delay in (0.0, 0.001, 0.01, 0.05, 0.3):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                task = asyncio.ensure_future(levredis.connect_sentinel(config))
                await asyncio.sleep(delay)
                open_before = sockets_connected_to(fake_node.port)
                task.cancel()
                try:
                    client, _ = await task
                except asyncio.CancelledError:
                    pass
                else:  # (done before the cancel: no node answers ROLE)
                    pytest.fail(f"connect_sentinel() returned {client!r}")
                await asyncio.sleep(0.1)
                still_open = sockets_connected_to(fake_node.port)
                gc.collect()
                await asyncio.sleep(0.05)
            unclosed = [str(w.message) for w in caught if "unclosed" in str(w.message)]
            assert unclosed == [], (delay, unclosed)
            assert still_open == 0, (delay, open_before, still_open)
            assert all(s["in_use"] == 0 for s in levredis.pool_stats()), levredis.pool_stats()
        # The last cancel did land while ROLE was awaited.
        assert open_before == 1, open_before


async def test_cancelling_connect_sentinel_at_many_points_leaves_nothing_open(
    sentinel: LocalSentinel,
) -> None:
    node_ports = [n.port for n in sentinel.nodes]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for turns in range(0, 150):  # every loop turn of the search, one by one
            await cancel_after_steps(lambda: levredis.connect_sentinel(sentinel.config()),
                                     turns, pause=0)
            busy = [s for s in levredis.pool_stats() if s["in_use"] or s["opening"]]
            assert busy == [], (turns, busy)
        gc.collect()
        await asyncio.sleep(0.05)
    unclosed = [str(w.message) for w in caught if "unclosed" in str(w.message)]
    assert unclosed == [], unclosed
    await levredis.close_pool()
    await asyncio.sleep(0.1)
    assert [sockets_connected_to(port) for port in node_ports] == [0, 0, 0]


# -- a forced failover ----------------------------------------------------------------


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_clients_created_during_a_forced_failover_lose_no_acknowledged_write(
    own_sentinel: LocalSentinel,
) -> None:
    local = own_sentinel
    config = local.config(timeout=5)
    acked: list[tuple[str, float, str | None]] = []
    errors: dict[str, int] = {}
    stop = False

    async def worker(number: int) -> None:
        count = 0
        while not stop:
            client, err = await levredis.connect_sentinel(config)
            if client is None:
                errors[str(err)[:60]] = errors.get(str(err)[:60], 0) + 1
                await asyncio.sleep(0.01)
                continue
            key = f"w{number}:{count}"
            count += 1
            _, err = await client.cmd("SET", key, "1")
            if err is None:
                acked.append((key, time.monotonic(), client.address))
            else:
                errors[err[:60]] = errors.get(err[:60], 0) + 1
            await client.close()

    tasks = [asyncio.ensure_future(worker(n)) for n in range(20)]
    try:
        await asyncio.sleep(1.0)
        old = local.primary().address
        started = time.monotonic()
        assert "+OK" in local.sentinels[0].command("SENTINEL", "FAILOVER", SERVICE)
        # Until writes land on the new primary for a while.
        deadline = started + 12
        while not any(where != old for _, at, where in acked if at > started):
            assert time.monotonic() < deadline, ("no write reached a new primary", errors)
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
    finally:
        stop = True
        await asyncio.gather(*tasks)
    checker, err = await levredis.connect_sentinel(config)
    assert checker is not None, err
    assert checker.address != old, (checker.address, old)
    missing = []
    for start in range(0, len(acked), 500):
        chunk = acked[start:start + 500]
        results, err = await checker.pipeline([["EXISTS", key] for key, _, _ in chunk])
        assert results is not None, err
        missing += [(key, round(at - started, 3), where)
                    for (key, at, where), (exists,) in zip(chunk, results, strict=True)
                    if exists == 0]
    await checker.close()
    during = [key for key, at, _ in acked if at > started]
    assert len(during) > 100, (len(during), errors)  # clients were made during the failover
    assert missing == [], (f"{len(missing)} of {len(acked)} acknowledged writes missing "
                           f"(old primary {old})", missing[:5])


# -- garbage from a sentinel ----------------------------------------------------------------


async def test_a_non_numeric_port_from_a_sentinel_is_an_error_not_an_exception() -> None:
    async with fake(naming("127.0.0.1:notaport")) as peer:
        try:
            client, err = await levredis.connect_sentinel(
                {"sentinels": [peer.address], "service": "svc", "timeout": 1})
        except Exception as exc:  # the bug: it raised ValueError
            pytest.fail(f"connect_sentinel() raised {type(exc).__name__}: {exc}")
    assert client is None and isinstance(err, (levredis.ProtocolError, levredis.NetworkError))
    assert "notaport" in err and "sentinel" in err, err


async def test_the_error_for_a_garbage_port_names_the_sentinel_that_gave_it() -> None:
    async with fake(naming("127.0.0.1:notaport")) as peer:
        client, err = await levredis.connect_sentinel(
            {"sentinels": [peer.address], "service": "svc", "timeout": 1})
    assert client is None and err is not None
    assert peer.address in err, err


async def test_a_switch_master_with_a_garbage_port_does_not_make_cmd_raise(
    node: RedisServer,
) -> None:
    publish = asyncio.Event()
    async with fake(naming(node.address, publish, "127.0.0.1 garbage")) as peer:
        client, err = await levredis.connect_sentinel(
            {"sentinels": [peer.address], "service": "svc", "timeout": 1})
        assert client is not None, err
        assert await client.cmd("PING") == ("PONG", None)
        await asyncio.sleep(0.3)  # the watcher subscribes
        publish.set()
        await asyncio.sleep(0.3)  # the event arrives
        try:
            result = await client.cmd("PING")
        except Exception as exc:  # the bug: ValueError
            pytest.fail(f"cmd() raised {type(exc).__name__} after a garbage +switch-master")
        finally:
            await client.close()
        # The sentinel still names the node: it is still the one used.
        assert result == ("PONG", None), result


# -- one bad sentinel among good ones ------------------------------------------------------


async def test_a_first_sentinel_naming_a_replica_does_not_stop_the_others(
    sentinel: LocalSentinel,
) -> None:
    primary = sentinel.primary()
    replica = next(n for n in sentinel.nodes if n is not primary)
    async with fake(naming(replica.address)) as stale:
        config = sentinel.config(timeout=3)
        config["sentinels"] = [stale.address, *config["sentinels"]]  # type: ignore[misc]
        started = time.monotonic()
        client, err = await levredis.connect_sentinel(config)
        took = time.monotonic() - started
        assert client is not None, err
        assert client.address == primary.address
        role, err = await client.cmd("ROLE")
        assert err is None and isinstance(role, list) and role[0] == "master", (role, err)
        await client.close()
    assert took < 2.5, took


# -- rediss:// and credentials in sentinel URLs -----------------------------------------


async def test_a_rediss_sentinel_url_speaks_tls() -> None:
    received = bytearray()

    async def capture(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.extend(data)
            if data.startswith(b"*"):
                writer.write(b"-ERR fake sentinel\r\n")
                await writer.drain()

    secret = "sentinel-SECRET-pw"
    async with fake(capture) as peer:
        client, err = await levredis.connect_sentinel({
            "sentinels": [f"rediss://{peer.address}"], "service": "svc", "timeout": 1,
            "sentinel_auth": {"user": "default", "pass": secret}})
    assert client is None and err is not None
    assert received[:1] == b"\x16", bytes(received[:40])  # a TLS handshake record
    assert b"AUTH" not in received and secret.encode() not in received
    # The same with TLS turned off for the sentinels: a contradiction, refused.
    client, err = await levredis.connect_sentinel({
        "sentinels": ["rediss://127.0.0.1:26379"], "service": "svc", "sentinel_ssl": False})
    assert client is None and isinstance(err, levredis.ConfigError), err
    assert "rediss://" in err, err


async def test_credentials_in_a_sentinel_url_are_sent() -> None:
    received = bytearray()

    async def capture(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            received.extend(b" ".join(await read_command(reader)) + b"\n")
            writer.write(b"-ERR fake sentinel\r\n")
            await writer.drain()

    async with fake(capture) as peer:
        client, err = await levredis.connect_sentinel({
            "sentinels": [f"redis://someone:url-pw@{peer.address}"], "service": "svc",
            "timeout": 1})
    assert client is None and err is not None
    assert received.startswith(b"AUTH someone url-pw\n"), bytes(received[:80])


async def test_credentials_in_sentinel_urls_log_in_to_real_sentinels(
    sentinel: LocalSentinel,
) -> None:
    config = sentinel.config()
    del config["sentinel_auth"]
    config["sentinels"] = [f"redis://default:{SENTINEL_PASS}@{s.address}"
                           for s in sentinel.sentinels]
    client, err = await levredis.connect_sentinel(config)
    assert client is not None, err
    assert client.address == sentinel.primary().address
    assert await client.cmd("PING") == ("PONG", None)
    assert SENTINEL_PASS not in repr(client) and SENTINEL_PASS not in str(client.cfg)
    await client.close()
    # A URL's own credentials win over sentinel_auth, which fills in the others.
    config = sentinel.config()
    config["sentinel_auth"] = {"user": "default", "pass": "not-the-sentinel-pw"}
    config["sentinels"] = [f"redis://default:{SENTINEL_PASS}@{sentinel.sentinels[0].address}"]
    client, err = await levredis.connect_sentinel(config)
    assert client is not None, err
    await client.close()


# -- silent sentinels --------------------------------------------------------------------


async def test_silent_sentinels_cost_one_timeout_in_all() -> None:
    async with contextlib.AsyncExitStack() as stack:
        peers = [await stack.enter_async_context(fake(silent)) for _ in range(4)]
        started = time.monotonic()
        client, err = await asyncio.wait_for(levredis.connect_sentinel({
            "sentinels": [peer.address for peer in peers], "service": "svc",
            "timeout": 0.5}), 10)
        took = time.monotonic() - started
    assert client is None and isinstance(err, levredis.NetworkError), err
    assert took < 1.5, took  # not 4 x 0.5 s


async def test_a_silent_first_sentinel_without_timeout_does_not_hang_the_search(
    sentinel: LocalSentinel,
) -> None:
    config = sentinel.config()
    del config["timeout"]  # no timeout at all
    async with fake(silent) as frozen:
        config["sentinels"] = [frozen.address, *config["sentinels"]]  # type: ignore[misc]
        started = time.monotonic()
        try:
            client, err = await asyncio.wait_for(levredis.connect_sentinel(config), 12)
        except TimeoutError:
            pytest.fail("connect_sentinel() hung on a silent sentinel listed first")
        took = time.monotonic() - started
        assert client is not None, err
        assert client.address == sentinel.primary().address
        assert await client.cmd("PING") == ("PONG", None)
        await client.close()
    assert took < 10, took
