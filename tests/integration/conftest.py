from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import levredis
from tests.servers import RedisServer


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[levredis.Client]:
    """A client of the shared plain server, on db 9, closed after the test."""
    connected, err = await levredis.connect(f"{redis_server.address}/9")
    assert connected is not None, err
    await connected.cmd("FLUSHDB")
    yield connected
    await connected.close(no_keepalive=True)


@pytest.fixture(params=["python", "hiredis"], autouse=True)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every integration test runs with the pure parser and with hiredis."""
    from levredis import _hiredis

    if request.param == "hiredis":
        assert _hiredis.hiredis is not None, "hiredis is a test dependency: pip install hiredis"
    monkeypatch.setenv("LEVREDIS_PARSER", request.param)
    return str(request.param)
