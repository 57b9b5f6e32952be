"""Pub/sub chat: one subscriber task prints what two publishers send, until "bye"."""

from __future__ import annotations

import asyncio
import os

import levredis

ADDRESS = os.environ.get("REDIS_URL", "127.0.0.1:6379")


async def subscriber(ready: asyncio.Event) -> list[str]:
    client, err = await levredis.connect(ADDRESS)
    if client is None:
        raise SystemExit(f"cannot connect: {err}")
    confirmation, err = await client.cmd("SUBSCRIBE", "chat:room")
    print("subscribed:", confirmation)
    ready.set()
    heard = []
    while True:
        message, err = await client.read()
        if message is None:
            print("subscriber stopped:", err)
            break
        value = message["value"]
        if not isinstance(value, list) or value[0] != "message":
            continue
        channel, text = str(value[1]), str(value[2])
        print(f"[{channel}] {text}")
        heard.append(text)
        if text == "bye":
            break
    await client.close()  # subscribed: closed, never pooled
    return heard


async def publisher(name: str, lines: list[str], ready: asyncio.Event) -> None:
    await ready.wait()
    client, err = await levredis.connect(ADDRESS)
    if client is None:
        raise SystemExit(f"cannot connect: {err}")
    for line in lines:
        receivers, _ = await client.cmd("PUBLISH", "chat:room", f"{name}: {line}")
        print(f"{name} -> {receivers!r} listener(s)")
        await asyncio.sleep(0.01)
    await client.close()


async def main() -> None:
    ready = asyncio.Event()
    listening = asyncio.create_task(subscriber(ready))
    await publisher("ann", ["hello", "how are you?"], ready)
    await publisher("bob", ["fine, thanks"], ready)
    await ready.wait()
    closer, _ = await levredis.connect(ADDRESS)
    assert closer is not None
    await closer.cmd("PUBLISH", "chat:room", "bye")
    await closer.close()
    heard = await listening
    print(f"{len(heard)} messages heard")


if __name__ == "__main__":
    asyncio.run(main())
