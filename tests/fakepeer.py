"""A scripted TCP peer, for faults a real redis-server cannot produce on cue.

The script gets each received chunk and the writer; it may answer garbage,
stall, or close mid-reply. Used only where a real server cannot misbehave.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class FakePeer:
    """A TCP peer running ``script`` per connection.

    With ``greet`` (the default) it first answers the PING a client sends
    when it connects without AUTH or SELECT, so scripts start at the first
    command a test sends.
    """

    def __init__(self, script: Script, greet: bool = True) -> None:
        self.script = script
        self.greet = greet
        self.server: asyncio.Server | None = None
        self.port = 0
        self.received = bytearray()
        self.connections = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.greet:
                assert await read_command(reader) == [b"PING"]
                writer.write(b"+PONG\r\n")
                await writer.drain()
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> FakePeer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 2)


async def read_command(reader: asyncio.StreamReader) -> list[bytes]:
    """Read one RESP command (an array of bulk strings) from the client."""
    header = await reader.readline()
    if not header:
        raise asyncio.IncompleteReadError(b"", None)
    count = int(header[1:])
    args = []
    for _ in range(count):
        size = int((await reader.readline())[1:])
        args.append((await reader.readexactly(size + 2))[:-2])
    return args


def replying(*replies: bytes, then_stall: bool = True) -> Script:
    """Answer each command with the next canned reply; then stall (or close)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for reply in replies:
            await read_command(reader)
            writer.write(reply)
            await writer.drain()
        if then_stall:
            await reader.read()  # until the client goes away

    return script
