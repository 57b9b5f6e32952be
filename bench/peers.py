"""One adapter per client: the same operations, each done the client's own way.

Every adapter exposes the raw coroutine functions the workloads call, so the
harness adds no layer of its own around a client's calls. Values come back
normalized to ``bytes``/``int``/lists so answers can be compared across clients.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import levredis


def _norm(value: Any) -> Any:
    if value is True:  # redis-py and coredis turn +OK into True
        return b"OK"
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


class Adapter:
    name = ""
    #: Why this client cannot run here, if it cannot.
    missing: str | None = None

    async def open(self, port: int) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # Raw coroutine functions, bound once.
    get: Callable[[str], Awaitable[Any]]
    #: GET over a Unix socket, for the clients that have one (see open_unix).
    unix_get: Callable[[str], Awaitable[Any]] | None = None

    async def open_unix(self, path: str) -> None:
        """Connect over the server's Unix socket too, if this client can."""

    async def close_unix(self) -> None:
        pass

    async def set_pipeline(self, keys: list[str], value: bytes) -> list[Any]:
        raise NotImplementedError

    async def lrange_pipeline(self, key: str, count: int) -> list[Any]:
        raise NotImplementedError

    async def connect_ping_close(self) -> Any:
        raise NotImplementedError

    def value(self, reply: Any) -> Any:
        """A reply as bytes/int/list, to compare answers across clients."""
        return _norm(reply)


class Levredis(Adapter):
    """levredis as installed."""

    name = "levredis"

    async def open(self, port: int) -> None:
        self.config = {"host": "127.0.0.1", "port": port, "decode": False}
        client, err = await levredis.connect(self.config)
        assert client is not None, err
        self.client = client
        self.get = functools.partial(client.cmd, "GET")

    async def close(self) -> None:
        await self.client.close()
        await levredis.close_pool()

    async def open_unix(self, path: str) -> None:
        client, err = await levredis.connect({"path": path, "decode": False})
        assert client is not None, err
        self.unix_client = client
        self.unix_get = functools.partial(client.cmd, "GET")

    async def close_unix(self) -> None:
        if self.unix_get is not None:
            await self.unix_client.close()

    async def set_pipeline(self, keys: list[str], value: bytes) -> list[Any]:
        results, err = await self.client.pipeline([["SET", k, value] for k in keys])
        assert err is None, err
        return [r[0] for r in results or []]

    async def lrange_pipeline(self, key: str, count: int) -> list[Any]:
        results, err = await self.client.pipeline([["LRANGE", key, 0, -1]] * count)
        assert err is None, err
        return [r[0] for r in results or []]

    async def connect_ping_close(self) -> Any:
        client, err = await levredis.connect(self.config)
        assert client is not None, err
        value, err = await client.cmd("PING")
        await client.close()
        return value

    def value(self, reply: Any) -> Any:
        if isinstance(reply, tuple):
            reply = reply[0]
        return _norm(reply)


class RedisPy(Adapter):
    name = "redis-py"

    def __init__(self, hiredis: bool) -> None:
        self.hiredis = hiredis
        self.name = "redis-py+hiredis" if hiredis else "redis-py"
        try:
            import redis.asyncio  # noqa: F401
            from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
            from redis.utils import HIREDIS_AVAILABLE
        except ImportError as exc:
            self.missing = f"redis-py not installed ({exc})"
            return
        if hiredis and not HIREDIS_AVAILABLE:
            self.missing = "hiredis not installed"
        self.parser_class = _AsyncHiredisParser if hiredis else _AsyncRESP2Parser

    async def open(self, port: int) -> None:
        import redis.asyncio as aioredis

        self.pool = aioredis.ConnectionPool(host="127.0.0.1", port=port,
                                            parser_class=self.parser_class)
        self.client = aioredis.Redis(connection_pool=self.pool)
        self.get = self.client.get

    async def close(self) -> None:
        await self.client.aclose()
        await self.pool.disconnect()

    async def open_unix(self, path: str) -> None:
        import redis.asyncio as aioredis

        self.unix_pool = aioredis.ConnectionPool(
            connection_class=aioredis.UnixDomainSocketConnection, path=path,
            parser_class=self.parser_class)
        self.unix_client = aioredis.Redis(connection_pool=self.unix_pool)
        self.unix_get = self.unix_client.get

    async def close_unix(self) -> None:
        if self.unix_get is not None:
            await self.unix_client.aclose()
            await self.unix_pool.disconnect()

    async def set_pipeline(self, keys: list[str], value: bytes) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.set(k, value)
        return await pipe.execute()

    async def lrange_pipeline(self, key: str, count: int) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for _ in range(count):
            pipe.lrange(key, 0, -1)
        return await pipe.execute()

    async def connect_ping_close(self) -> Any:
        import redis.asyncio as aioredis

        client = aioredis.Redis(connection_pool=self.pool)
        value = await client.ping()
        await client.aclose()
        return b"PONG" if value is True else value


class Coredis(Adapter):
    name = "coredis"

    def __init__(self) -> None:
        try:
            import coredis  # noqa: F401
        except ImportError as exc:
            self.missing = f"coredis not installed ({exc})"

    async def open(self, port: int) -> None:
        import coredis

        self.client = coredis.Redis(host="127.0.0.1", port=port, decode_responses=False)
        self._context = self.client.__aenter__()
        await self._context
        self.get = self.client.get

    async def close(self) -> None:
        await self.client.__aexit__(None, None, None)

    async def set_pipeline(self, keys: list[str], value: bytes) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for k in keys:
                pipe.set(k, value)
        return list(pipe.results or ())

    async def lrange_pipeline(self, key: str, count: int) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for _ in range(count):
                pipe.lrange(key, 0, -1)
        return list(pipe.results or ())

    async def connect_ping_close(self) -> Any:
        value = await self.client.ping()
        return value


class Glide(Adapter):
    name = "valkey-glide"

    def __init__(self) -> None:
        try:
            import glide  # noqa: F401
        except ImportError as exc:
            self.missing = f"valkey-glide not installed ({exc})"

    async def open(self, port: int) -> None:
        from glide import GlideClient, GlideClientConfiguration, NodeAddress

        self.config = GlideClientConfiguration([NodeAddress("127.0.0.1", port)],
                                               request_timeout=60_000)
        self.client = await GlideClient.create(self.config)
        self.get = self.client.get

    async def close(self) -> None:
        await self.client.close()

    async def set_pipeline(self, keys: list[str], value: bytes) -> list[Any]:
        from glide import Batch

        batch = Batch(is_atomic=False)
        for k in keys:
            batch.set(k, value)
        return list(await self.client.exec(batch, raise_on_error=True) or ())

    async def lrange_pipeline(self, key: str, count: int) -> list[Any]:
        from glide import Batch

        batch = Batch(is_atomic=False)
        for _ in range(count):
            batch.lrange(key, 0, -1)
        return list(await self.client.exec(batch, raise_on_error=True) or ())

    async def connect_ping_close(self) -> Any:
        raise NotImplementedError("valkey-glide has no connection pool to check out of")

    def value(self, reply: Any) -> Any:
        return _norm(b"OK" if reply == "OK" else reply)


def all_adapters() -> list[Adapter]:
    return [Levredis(), RedisPy(hiredis=True), RedisPy(hiredis=False),
            Coredis(), Glide()]
