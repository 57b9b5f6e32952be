"""levredis: an asyncio Redis client where every call returns ``(value, err)``.

::

    import asyncio, levredis

    async def main():
        client, err = await levredis.connect("127.0.0.1:6379")
        if client is None:
            raise SystemExit(f"redis: {err}")
        await client.cmd("SET", "greeting", "hello")
        value, err = await client.cmd("GET", "greeting")   # ("hello", None)
        await client.close()

    asyncio.run(main())
"""

from ._client import Client, ReadResult, ReplyType, close_pool, connect, pool_stats
from ._cluster import ClusterClient, connect_cluster
from ._errors import (
    ClosedError,
    ConfigError,
    Error,
    NetworkError,
    NotFound,
    ProtocolError,
    ServerError,
    Timeout,
    TLSError,
    UsageError,
)
from ._pool import PoolStats
from ._resp import Reply
from ._sentinel import SentinelClient, connect_sentinel

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ClosedError",
    "ClusterClient",
    "ConfigError",
    "Error",
    "NetworkError",
    "NotFound",
    "PoolStats",
    "ProtocolError",
    "ReadResult",
    "Reply",
    "ReplyType",
    "SentinelClient",
    "ServerError",
    "TLSError",
    "Timeout",
    "UsageError",
    "__version__",
    "close_pool",
    "connect",
    "connect_cluster",
    "connect_sentinel",
    "pool_stats",
]
