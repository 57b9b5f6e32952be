"""A TCP proxy between a client and a real redis-server that misbehaves on cue.

Faults apply to what the server sends (replies), from the moment they are
armed, on every connection through the proxy:

- ``delay``   forward each chunk after a pause (latency)
- ``stall``   forward nothing more; keep the connection open
- ``trickle`` forward one byte at a time
- ``cut``     forward half of the next chunk, then close the connection
- ``rst``     reset the connection (RST) when the next chunk arrives
- ``garbage`` replace the next chunk with bytes that are not RESP

``slow_down(n, seconds)`` delays the replies of the n-th connection accepted
(from 0) alone: one slow link beside fast ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType

FAULTS = ("stall", "trickle", "cut", "rst", "garbage")


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.fault: str | None = None
        self.delay = 0.0
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._links: set[_Link] = set()
        #: Every link in the order accepted (for slow_down).
        self._accepted: list[_Link] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def arm(self, fault: str | None, delay: float = 0.0) -> None:
        """Apply ``fault`` (or none) to the replies of every connection, from now on."""
        self.fault = fault
        self.delay = delay
        for link in self._links:
            link.fault = None

    def slow_down(self, n: int, seconds: float) -> None:
        """Delay each reply chunk of the n-th connection accepted by ``seconds``."""
        self._accepted[n].delay = seconds

    def strike(self, fault: str) -> None:
        """Hit the connections open now (idle ones too), leaving new ones alone."""
        for link in list(self._links):
            writer = link.client
            if fault == "cut":
                writer.transport.close()
            elif fault == "rst":
                _reset(writer)
            elif fault == "garbage":
                writer.write(b"\x00\xffNOT RESP\r\n")
            else:  # stall, trickle: from their next reply on
                link.fault = fault

    async def __aenter__(self) -> FaultProxy:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _accept(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, server_writer}
        link = _Link(client_writer)
        self._links.add(link)
        self._accepted.append(link)
        upstream = asyncio.create_task(self._pipe(client_reader, server_writer))
        downstream = asyncio.create_task(self._replies(server_reader, link))
        self._tasks |= {upstream, downstream}
        try:
            await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (upstream, downstream):
                task.cancel()
            for writer in (client_writer, server_writer):
                writer.transport.abort()
                self._writers.discard(writer)
            self._tasks -= {upstream, downstream}
            self._links.discard(link)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    async def _replies(self, reader: asyncio.StreamReader, link: _Link) -> None:
        writer = link.client
        while data := await reader.read(65536):
            fault = link.fault or self.fault
            if self.delay or link.delay:
                await asyncio.sleep(self.delay or link.delay)
            if fault is None:
                writer.write(data)
            elif fault == "stall":
                await asyncio.Event().wait()  # forever (until the connection goes)
            elif fault == "trickle":
                for i in range(len(data)):
                    writer.write(data[i : i + 1])
                    await writer.drain()
                    await asyncio.sleep(0.0005)
            elif fault == "cut":
                writer.write(data[: max(1, len(data) // 2)])
                await writer.drain()
                return
            elif fault == "rst":
                _reset(writer)
                return
            elif fault == "garbage":
                writer.write(b"\x00\xffNOT RESP\r\n" + data[::-1])
            await writer.drain()


class _Link:
    """One proxied connection: the client side, and a fault of its own."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.fault: str | None = None
        self.delay = 0.0


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
