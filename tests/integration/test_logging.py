"""DEBUG records tell the pool's story; nothing is formatted when DEBUG is off."""

from __future__ import annotations

import logging

import pytest

import levredis
from levredis import _pool
from tests.servers import ALICE, RedisServer


async def test_debug_records_for_connect_handshake_pool_and_close(
    acl_server: RedisServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"host": "127.0.0.1", "port": acl_server.port, "db": 2,
              "auth": {"user": ALICE[0], "pass": ALICE[1]}}
    with caplog.at_level(logging.DEBUG, logger="levredis"):
        client, _ = await levredis.connect(config)
        assert client is not None
        await client.close()
        monkeypatch.setattr(_pool, "FRESH_FOR", 0.0)
        again, _ = await levredis.connect(config)
        assert again is not None
        await again.close(no_keepalive=True)
    text = "\n".join(r.getMessage() for r in caplog.records)
    for expected in ("miss, connecting", "handshake", "AUTH + SELECT", "connected",
                     "connection returned", "PING check passed", "hit",
                     "connection closed, not pooled (close(no_keepalive=True))"):
        assert expected in text, expected
    assert ALICE[1] not in text


async def test_no_record_is_built_when_debug_is_off(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="levredis"):
        client, _ = await levredis.connect(redis_server.address)
        assert client is not None
        for _ in range(10):
            await client.cmd("PING")
        await client.close()
    assert caplog.records == []
