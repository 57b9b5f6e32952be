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
