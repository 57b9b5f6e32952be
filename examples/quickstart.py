"""Quickstart: connect, run commands, pipeline, and close — printing every result."""

import asyncio
import os

import levredis


async def main() -> None:
    client, err = await levredis.connect(os.environ.get("REDIS_URL", "127.0.0.1:6379"))
    if client is None:
        raise SystemExit(f"cannot connect: {err}")

    print("SET greeting hello ->", await client.cmd("SET", "quickstart:greeting", "hello"))
    print("GET greeting       ->", await client.cmd("GET", "quickstart:greeting"))
    print("GET missing        ->", await client.cmd("GET", "quickstart:missing"))
    await client.cmd("DEL", "quickstart:counter")
    print("INCR counter       ->", await client.cmd("INCR", "quickstart:counter"))
    print("INCR greeting      ->", await client.cmd("INCR", "quickstart:greeting"))

    results, err = await client.pipeline([
        ["SET", "quickstart:a", "1"],
        ["SET", "quickstart:b", "2"],
        ["MGET", "quickstart:a", "quickstart:b"],
        ["GET", "quickstart:missing"],
        ["INCR", "quickstart:greeting"],
    ])
    print("pipeline           ->", results, err)

    await client.cmd("DEL", "quickstart:greeting", "quickstart:counter",
                     "quickstart:a", "quickstart:b")
    print("close              ->", await client.close())
    print("GET after close    ->", await client.cmd("GET", "quickstart:greeting"))


if __name__ == "__main__":
    asyncio.run(main())
