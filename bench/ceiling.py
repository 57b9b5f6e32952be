"""The round-trip ceiling: how fast can any Python client do sequential GETs here?

A bare asyncio.Protocol writes one GET and awaits one future per reply — no
parsing, no bookkeeping — next to levredis' own loop, on both event loops;
then the same for W4's 1 MiB value (the bare protocol only counts the bytes,
and a bare BufferedProtocol receives them into one preallocated buffer), with
redis-py+hiredis' W4 in the same conditions when it is installed:

    python -m bench.ceiling [PORT]
"""

from __future__ import annotations

import asyncio
import sys
import time

import levredis

COUNT = 20_000
GET = b"*2\r\n$3\r\nGET\r\n$9\r\nbench:get\r\n"


MIB = 1024 * 1024
BIG_GET = b"*2\r\n$3\r\nGET\r\n$9\r\nbench:big\r\n"
BIG_REPLY = len(b"$%d\r\n" % MIB) + MIB + 2


class _Counting(asyncio.Protocol):
    """Counts a 1 MiB reply's bytes, keeping none."""

    future: asyncio.Future[None]
    got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= BIG_REPLY:
            self.future.set_result(None)


class _Receiving(asyncio.BufferedProtocol):
    """Receives a 1 MiB reply straight into one preallocated buffer."""

    future: asyncio.Future[None]
    got = 0

    def __init__(self) -> None:
        self.view = memoryview(bytearray(BIG_REPLY + 65_536))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view[self.got:]

    def buffer_updated(self, nbytes: int) -> None:
        self.got += nbytes
        if self.got >= BIG_REPLY:
            self.future.set_result(None)


class _Bare(asyncio.Protocol):
    """Resolves its future at the first bytes of a reply (a short one comes whole)."""

    future: asyncio.Future[None]
    got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.future.set_result(None)


async def _bare_rate(port: int, protocol: type[_Bare | _Counting | _Receiving],
                     request: bytes, count: int) -> float:
    """Sequential requests per second through a bare protocol."""
    loop = asyncio.get_running_loop()
    transport, made = await loop.create_connection(protocol, "127.0.0.1", port)
    bare: _Bare | _Counting | _Receiving = made  # type: ignore[assignment]
    started = time.perf_counter()
    for _ in range(count):
        bare.got = 0
        bare.future = loop.create_future()
        transport.write(request)
        await bare.future
    rate = count / (time.perf_counter() - started)
    transport.close()
    return rate


async def bare_big_gets(port: int, protocol: type[_Counting | _Receiving],
                        count: int = 200) -> float:
    """MiB/s of sequential 1 MiB GETs through a bare protocol."""
    return await _bare_rate(port, protocol, BIG_GET, count)


async def bare_gets(port: int, count: int = COUNT) -> float:
    """Sequential GETs per second through a bare protocol: the most any Python client gets."""
    return await _bare_rate(port, _Bare, GET, count)


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
    name = type(loop).__module__.split(".")[0]
    print(f"{name:8} bare protocol {ceiling:8,.0f} ops/s   levredis {ours:8,.0f} ops/s "
          f"({ours / ceiling:.0%} of the ceiling)")
    await client.cmd("SET", "bench:big", b"b" * MIB)
    counting = await bare_big_gets(port, _Counting)
    receiving = await bare_big_gets(port, _Receiving)
    started = time.perf_counter()
    for _ in range(200):
        await client.cmd("GET", "bench:big")
    big = 200 / (time.perf_counter() - started)
    await client.close()
    peer = await redis_py_big_gets(port)
    print(f"{name:8} GET 1 MiB: bare protocol {counting:6,.0f} MiB/s, bare BufferedProtocol "
          f"{receiving:6,.0f} MiB/s, levredis {big:6,.0f} MiB/s"
          + ("" if peer is None else f", redis-py+hiredis {peer:6,.0f} MiB/s"))


async def redis_py_big_gets(port: int, count: int = 200) -> float | None:
    """redis-py+hiredis's W4 in the same conditions (None when it is not installed)."""
    from bench.peers import RedisPy

    peer = RedisPy(hiredis=True)
    if peer.missing:
        return None
    await peer.open(port)
    try:
        started = time.perf_counter()
        for _ in range(count):
            await peer.get("bench:big")
        return count / (time.perf_counter() - started)
    finally:
        await peer.close()


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
