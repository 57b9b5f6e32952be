"""A password never shows up in an error, a repr, a log record or an exception."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterator

import pytest

import levredis
from tests.faultproxy import FAULTS, FaultProxy
from tests.servers import RedisServer, free_port

SECRET = "Pw-7f3c9e-do-not-leak"
USER = "carol"


@pytest.fixture(scope="module")
def carol_server() -> Iterator[RedisServer]:
    server = RedisServer(["--user", USER, "on", f">{SECRET}", "~*", "&*", "+@all"]).start()
    yield server
    server.cleanup()


async def test_no_failure_ever_shows_the_password(
    carol_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def note(*things: object) -> None:
        seen.extend(repr(t) for t in things)
        seen.extend(str(t) for t in things)

    async def attempt(config: object) -> None:
        client, err = await levredis.connect(config)  # type: ignore[arg-type]
        note(client, err)
        if client is not None:
            await client.close()

    auth = {"user": USER, "pass": SECRET}
    good = {"host": "127.0.0.1", "port": carol_server.port, "auth": auth, "timeout": 0.3}
    with caplog.at_level(logging.DEBUG, logger="levredis"):  # restored afterwards
        # Invalid configs that carry the password.
        for config in (
            {**good, "port": 0}, {**good, "db": -1}, {**good, "auth": {"user": "", "pass": SECRET}},
            {**good, "auth": SECRET}, {**good, "auth": {"user": USER, "pass": [SECRET]}},
            f"redis://{USER}:{SECRET}@127.0.0.1:0/x", f"redis://{USER}:{SECRET}@h/1?bad=1",
            f"http://{USER}:{SECRET}@h", f"redis://{USER}:{SECRET}@h:99999",
        ):
            await attempt(config)
        # Network and server failures, with the password in play.
        await attempt({**good, "port": free_port()})
        await attempt({**good, "auth": {"user": USER, "pass": SECRET + "x"}})
        await attempt({**good, "ssl": True})
        await attempt({**good, "ssl": ssl.create_default_context()})
        for fault in FAULTS:
            async with FaultProxy(carol_server.port) as proxy:
                proxy.arm(fault)
                await attempt({**good, "port": proxy.port})
        # A working client: its repr, cfg, pool stats, and commands that fail.
        client, err = await levredis.connect(good)
        assert client is not None, err
        note(client, client.cfg, client.cfg["auth"], dict(client.cfg), levredis.pool_stats())
        note(*(await client.cmd("AUTH", USER, SECRET + "wrong")))
        note(*(await client.cmd("AUTH", USER, None)))
        note(*(await client.pipeline([["AUTH", USER, SECRET], ["AUTH", USER, True]])))
        note(*(await client.pipeline([["AUTH", USER, SECRET + "!"], ["GET", "k"]])))
        await client.close()
        note(client)
        # A lost connection, and the reconnect that follows.
        again, _ = await levredis.connect(good)
        assert again is not None
        carol_server.restart()
        note(*(await again.cmd("PING")), *(await again.cmd("PING")))
        await again.close()
        await asyncio.sleep(0)
    records = [r.getMessage() for r in caplog.records] + [str(r.args) for r in caplog.records]
    assert any("carol" in r for r in records), "DEBUG records were captured"
    for text in seen + records:
        assert SECRET not in text, text
