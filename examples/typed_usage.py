"""Typed use of levredis: mypy --strict checks this file in CI.

Shows the shapes: (value, err) tuples, narrowing on err, read() results as a
TypedDict, and error kinds.
"""

from __future__ import annotations

import asyncio
import os

import levredis


async def counter_value(client: levredis.Client, key: str) -> int:
    value, err = await client.cmd("INCR", key)
    if err is not None:
        raise RuntimeError(f"INCR failed: {err} ({type(err).__name__})")
    assert isinstance(value, int)
    return value


async def first_message(client: levredis.Client) -> str | None:
    result: levredis.ReadResult | None
    result, err = await client.read()
    if result is None:
        print("read() failed:", err)
        return None
    if result["type"] != "array":
        return None
    payload = result["value"]
    return str(payload[2]) if isinstance(payload, list) else None


async def main() -> None:
    client, err = await levredis.connect(os.environ.get("REDIS_URL", "127.0.0.1:6379"))
    if client is None:
        raise SystemExit(f"cannot connect: {err}")
    await client.cmd("DEL", "typed:n")
    print("counter:", await counter_value(client, "typed:n"))
    value, err = await client.cmd("GET", "typed:missing")
    if isinstance(err, levredis.NotFound):
        print("missing key: not found")
    else:
        print("unexpected:", value, err)
    results, err = await client.pipeline([["SET", "typed:s", "x"], ["INCR", "typed:s"]])
    if results is not None:
        for result in results:
            print("ok" if len(result) == 1 else "error:", *result[1:])
    stats: list[levredis.PoolStats] = levredis.pool_stats()
    print("pools:", len(stats))
    await client.cmd("DEL", "typed:n", "typed:s")
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
