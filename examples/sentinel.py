"""Redis behind Sentinel: ask the sentinels where the primary is, and follow it.

    REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379 REDIS_SERVICE=cache \\
    REDIS_USER=app REDIS_PASS=... SENTINEL_PASS=... python examples/sentinel.py

The sentinels' password and the data nodes' credentials are separate keys;
neither is ever printed.
"""

from __future__ import annotations

import asyncio
import os

import levredis


async def main() -> None:
    config = {
        "sentinels": os.environ["REDIS_SENTINELS"].split(","),
        "service": os.environ["REDIS_SERVICE"],
        "auth": {"user": os.environ["REDIS_USER"], "pass": os.environ["REDIS_PASS"]},
        "timeout": 5,
    }
    if os.environ.get("SENTINEL_PASS"):
        config["sentinel_auth"] = {"user": "default", "pass": os.environ["SENTINEL_PASS"]}
    client, err = await levredis.connect_sentinel(config)
    if client is None:
        raise SystemExit(f"cannot reach the service: {err}")
    print("client:", client)
    print("INCR ->", await client.cmd("INCR", "example:visits"))

    # Reads that may lag a little can go to a replica.
    replica, err = await levredis.connect_sentinel({**config, "role": "replica"})
    if replica is None:
        raise SystemExit(f"no replica: {err}")
    role, _ = await replica.cmd("ROLE")
    print("replica ROLE ->", role[0] if isinstance(role, list) else role)
    await replica.close()
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
