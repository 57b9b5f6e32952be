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


@pytest.fixture(params=["compiled", "pure"], autouse=True)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every integration test runs with the compiled fast paths and with pure Python alone."""
    from levredis import _cache, _resp

    if request.param == "compiled":
        assert _resp.speedups_available(), "the compiled parser is not built (pip install -e .)"
        assert _resp.compiled_encode is not None
    else:  # the encoder and the cache's check are chosen at import: set aside here
        monkeypatch.setattr(_resp, "compiled_encode", None)
        monkeypatch.setattr(_resp, "compiled_encode_many", None)
        monkeypatch.setattr(_cache, "plain_args", _cache.plain_args_pure)
    monkeypatch.setenv("LEVREDIS_SPEEDUPS", "1" if request.param == "compiled" else "0")
    return str(request.param)
