"""Optimistic transaction: move credit between accounts with WATCH/MULTI/EXEC, retrying
when a concurrent writer touched the watched keys. Ten tasks transfer at once; the
total never changes."""

from __future__ import annotations

import asyncio
import os
import random

import levredis

ADDRESS = os.environ.get("REDIS_URL", "127.0.0.1:6379")


async def transfer(source: str, target: str, amount: int) -> int:
    """Returns how many attempts it took."""
    # WATCH state lives on a connection: each transfer uses a client of its own.
    client, err = await levredis.connect(ADDRESS)
    if client is None:
        raise SystemExit(f"cannot connect: {err}")
    attempts = 0
    try:
        while True:
            attempts += 1
            await client.cmd("WATCH", source, target)
            balance, err = await client.cmd("GET", source)
            if int(str(balance or 0)) < amount:
                await client.cmd("UNWATCH")
                return attempts
            results, err = await client.pipeline([
                ["MULTI"],
                ["DECRBY", source, amount],
                ["INCRBY", target, amount],
                ["EXEC"],
            ])
            if results is not None and results[3] != [None]:  # [None]: EXEC aborted
                return attempts
            await asyncio.sleep(random.random() / 1000)
    finally:
        await client.close()


async def main() -> None:
    setup, _ = await levredis.connect(ADDRESS)
    assert setup is not None
    await setup.pipeline([["SET", "acct:a", 500], ["SET", "acct:b", 500]])
    attempts = await asyncio.gather(*(
        transfer(*(("acct:a", "acct:b") if i % 2 else ("acct:b", "acct:a")), 7)
        for i in range(10)
    ))
    balances, _ = await setup.cmd("MGET", "acct:a", "acct:b")
    assert isinstance(balances, list)
    print("balances:", balances, "total:", sum(int(str(b)) for b in balances))
    print("attempts per transfer:", attempts)
    await setup.cmd("DEL", "acct:a", "acct:b")
    await setup.close()


if __name__ == "__main__":
    asyncio.run(main())
