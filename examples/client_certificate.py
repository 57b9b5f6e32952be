"""Mutual TLS: a server with `tls-auth-clients yes` and a client certificate.

    REDIS_TLS_PORT=6380 REDIS_CA=ca.pem REDIS_CERT=client.pem REDIS_KEY=client.key \\
    [REDIS_KEY_PASSWORD=...] python examples/client_certificate.py

The `ssl` mapping names the files; levredis checks them and builds the TLS
context when the config is read, shares it between equal configs (one pool),
and never shows the key's password.
"""

from __future__ import annotations

import asyncio
import os

import levredis


async def main() -> None:
    tls = {
        "ca": os.environ["REDIS_CA"],            # the CA that signed the server's certificate
        "cert": os.environ["REDIS_CERT"],        # this client's certificate ...
        "key": os.environ["REDIS_KEY"],          # ... and its private key
        "password": os.environ.get("REDIS_KEY_PASSWORD"),  # if the key is encrypted
    }
    config = {"host": os.environ.get("REDIS_TLS_HOST", "127.0.0.1"),
              "port": int(os.environ.get("REDIS_TLS_PORT", "6380")),
              "ssl": {k: v for k, v in tls.items() if v is not None}, "timeout": 5}
    client, err = await levredis.connect(config)
    if client is None:
        raise SystemExit(f"cannot connect: {err}")
    print("cfg ssl:", client.cfg["ssl"])
    print("PING ->", await client.cmd("PING"))
    await client.close()

    # Without a certificate the server refuses, and the error says why.
    _, err = await levredis.connect({**config, "ssl": {"ca": tls["ca"]}})
    print("without a certificate ->", type(err).__name__, "(mentions the client certificate:",
          "client certificate" in (err or ""), ")")


if __name__ == "__main__":
    asyncio.run(main())
