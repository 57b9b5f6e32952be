"""A fixed-window rate limiter shared by 200 concurrent tasks on one client.

Each task asks permission for a user; at most LIMIT requests per user pass in a
window. One client serves every task: levredis matches each reply to its caller.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import levredis

LIMIT = 10
WINDOW = 60


async def allowed(client: levredis.Client, user: str) -> bool:
    window = int(time.time() // WINDOW)
    results, _ = await client.pipeline([
        ["INCR", f"rate:{user}:{window}"],
        ["EXPIRE", f"rate:{user}:{window}", WINDOW * 2],
    ])
    if results is None:
        return False  # fail closed when Redis is unreachable
    count = results[0][0]
    return isinstance(count, int) and count <= LIMIT


async def main() -> None:
    client, err = await levredis.connect(os.environ.get("REDIS_URL", "127.0.0.1:6379"))
    if client is None:
        raise SystemExit(f"cannot connect: {err}")
    users = [f"user{n}" for n in range(5)]
    window = int(time.time() // WINDOW)
    await client.cmd("DEL", *(f"rate:{u}:{window}" for u in users))
    verdicts = await asyncio.gather(*(allowed(client, users[i % 5]) for i in range(200)))
    passed = Counter(users[i % 5] for i, ok in enumerate(verdicts) if ok)
    print("allowed per user:", dict(sorted(passed.items())))
    print("refused:", verdicts.count(False))
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
