"""Bulk load: write 10,000 keys in pipelines of 1,000 commands, then read some back."""

from __future__ import annotations

import asyncio
import os
import time

import levredis


async def main() -> None:
    client, err = await levredis.connect(os.environ.get("REDIS_URL", "127.0.0.1:6379"))
    if client is None:
        raise SystemExit(f"cannot connect: {err}")
    started = time.perf_counter()
    for start in range(0, 10_000, 1_000):
        results, err = await client.pipeline(
            [["SET", f"bulk:{i}", f"value-{i}", "EX", 60] for i in range(start, start + 1_000)]
        )
        if results is None:
            raise SystemExit(f"pipeline failed: {err}")
        failed = [r for r in results if len(r) == 2]
        if failed:
            raise SystemExit(f"{len(failed)} commands failed, first: {failed[0][1]!r}")
    elapsed = time.perf_counter() - started
    print(f"loaded 10000 keys in {elapsed:.3f} s")
    values, err = await client.cmd("MGET", "bulk:0", "bulk:9999", "bulk:10000")
    print("MGET bulk:0 bulk:9999 bulk:10000 ->", values, err)
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
