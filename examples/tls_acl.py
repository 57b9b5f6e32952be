"""TLS with a private CA, as an ACL user.

    REDIS_TLS_HOST=127.0.0.1 REDIS_TLS_PORT=6380 REDIS_CA=ca.pem \\
    REDIS_USER=alice REDIS_PASS=... python examples/tls_acl.py

The password comes from the environment and is never printed: the client's repr
and cfg show *** in its place.
"""

from __future__ import annotations

import asyncio
import os
import ssl

import levredis


async def main() -> None:
    context = ssl.create_default_context(cafile=os.environ["REDIS_CA"])
    client, err = await levredis.connect({
        "host": os.environ.get("REDIS_TLS_HOST", "127.0.0.1"),
        "port": int(os.environ.get("REDIS_TLS_PORT", "6380")),
        "ssl": context,
        "auth": {"user": os.environ["REDIS_USER"], "pass": os.environ["REDIS_PASS"]},
        "timeout": 5,
    })
    if client is None:
        raise SystemExit(f"cannot connect: {err}")
    print("connected:", client)
    print("cfg:", client.cfg)
    print("ACL WHOAMI ->", await client.cmd("ACL", "WHOAMI"))
    print("PING ->", await client.cmd("PING"))
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
