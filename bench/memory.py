"""Peak memory of one large GET, per client, in a fresh process.

    python -m bench.memory CLIENT PORT KEY

prints the growth of the process' peak RSS (bytes) while one GET of KEY runs.
"""

from __future__ import annotations

import asyncio
import resource
import sys

from bench.peers import all_adapters


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def measure(name: str, port: int, key: str) -> int:
    [adapter] = [a for a in all_adapters() if a.name == name]
    await adapter.open(port)
    await adapter.get("bench:get")  # warm: connection open, code paths loaded
    before = peak_rss()
    reply = await adapter.get(key)
    after = peak_rss()
    size = len(adapter.value(reply))
    await adapter.close()
    print(after - before, size)
    return after - before


if __name__ == "__main__":
    asyncio.run(measure(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
