"""Peak memory of one large GET, per client, in a fresh process.

    python -m bench.memory CLIENT PORT KEY

prints the growth of the process' peak RSS (bytes) while one GET of KEY runs.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bench.peers import all_adapters


def reset_peak() -> None:
    # The high-water mark is inherited from the parent process; "5" resets it
    # to the current RSS (Linux 4.0+).
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


async def measure(name: str, port: int, key: str) -> int:
    [adapter] = [a for a in all_adapters() if a.name == name]
    await adapter.open(port)
    await adapter.get("bench:get")  # warm: connection open, code paths loaded
    reset_peak()
    before = peak_rss()
    reply = await adapter.get(key)
    after = peak_rss()
    size = len(adapter.value(reply))
    await adapter.close()
    print(after - before, size)
    return after - before


if __name__ == "__main__":
    asyncio.run(measure(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
