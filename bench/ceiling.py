"""The round-trip ceiling: how fast can any Python client do sequential GETs here?

A bare asyncio.Protocol writes one GET and awaits one future per reply — no
parsing, no bookkeeping — next to levredis' own loop, on both event loops:

    python -m bench.ceiling [PORT]
"""

from __future__ import annotations

import asyncio
import sys
import time

import levredis

COUNT = 20_000
GET = b"*2\r\n$3\r\nGET\r\n$9\r\nbench:get\r\n"


class _Bare(asyncio.Protocol):
    future: asyncio.Future[bytes]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.future.set_result(data)


async def bare_gets(port: int, count: int = COUNT) -> float:
    """Sequential GETs per second through a bare protocol: the most any Python client gets."""
    loop = asyncio.get_running_loop()
    transport, bare = await loop.create_connection(_Bare, "127.0.0.1", port)
    started = time.perf_counter()
    for _ in range(count):
        bare.future = loop.create_future()
        transport.write(GET)
        await bare.future
    rate = count / (time.perf_counter() - started)
    transport.close()
    return rate


async def measure(port: int) -> None:
    loop = asyncio.get_running_loop()
    client, err = await levredis.connect({"host": "127.0.0.1", "port": port, "decode": False})
    assert client is not None, err
    await client.cmd("SET", "bench:get", b"v" * 64)
    ceiling = await bare_gets(port)
    started = time.perf_counter()
    for _ in range(COUNT):
        await client.cmd("GET", "bench:get")
    ours = COUNT / (time.perf_counter() - started)
    await client.close()
    name = type(loop).__module__.split(".")[0]
    print(f"{name:8} bare protocol {ceiling:8,.0f} ops/s   levredis {ours:8,.0f} ops/s "
          f"({ours / ceiling:.0%} of the ceiling)")


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    asyncio.run(measure(port))
    try:
        import uvloop
    except ImportError:
        return
    uvloop.run(measure(port))


if __name__ == "__main__":
    main()
