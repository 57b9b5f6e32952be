"""Small helpers the integration tests share: connect or fail, and a connection's id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import levredis


async def connect_or_fail(config: object) -> levredis.Client:
    """``levredis.connect(config)``, asserting it worked."""
    client, err = await levredis.connect(config)  # type: ignore[arg-type]
    assert client is not None, err
    return client


async def client_id(client: levredis.Client) -> int:
    """The server's CLIENT ID of the client's connection: tells connections apart."""
    value, err = await client.cmd("CLIENT", "ID")
    assert isinstance(value, int), err
    return value


async def cancel_after_steps(start: Callable[[], Awaitable[Any]], steps: int,
                             pause: float = 0.001) -> None:
    """Start a connect-like call, cancel it after ``steps`` sleeps of ``pause``
    (0: single loop turns), close what it made."""
    task = asyncio.ensure_future(start())
    for _ in range(steps):
        await asyncio.sleep(pause)
    task.cancel()
    try:
        client, _ = await task
    except asyncio.CancelledError:
        return
    assert client is not None
    await client.close()
