"""Open one connection: TCP or TLS, then AUTH and SELECT, within the timeout.

Any failure closes the socket and comes back as an error value carrying the
server's or the operating system's reason.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from ._cache import Cache, CacheStats, CommandRules, known_rules, remember_rules
from ._config import Config
from ._errors import (
    CLOSED,
    CLOSED_AFTER_TLS_HANDSHAKE,
    Error,
    NetworkError,
    TLSError,
    error_from_exception,
)
from ._protocol import PushLimits, RedisProtocol
from ._resp import Reply, encode_command
from ._tls import tls_for

log: Final = logging.getLogger("levredis")

_PING: Final[list[object]] = ["PING"]
#: How a server without RESP3 (Redis 5 and older) answers HELLO.
_NO_HELLO: Final = "ERR unknown command"


def _handshake(config: Config) -> list[list[object]]:
    commands: list[list[object]] = []
    if config.protocol == 3:
        hello: list[object] = ["HELLO", 3]
        if config.auth is not None:
            hello += ["AUTH", config.auth["user"], config.auth["pass"]]
        commands.append(hello)
    elif config.auth is not None:
        commands.append(["AUTH", config.auth["user"], config.auth["pass"]])
    if config.db:
        commands.append(["SELECT", config.db])
    if config.readonly:
        commands.append(["READONLY"])  # a cluster replica's reads are served here
    if config.cache is not None:
        commands.append(config.cache.tracking_command())
    if not commands:
        # A server that refuses the connection (maxclients) says so and
        # closes: a PING makes that the answer to connect(), not a surprise
        # on the first command.
        commands.append(_PING)
    return commands


async def open_connection(
    config: Config, loop: asyncio.AbstractEventLoop, limit: float | None,
    cache_stats: CacheStats | None = None,
) -> RedisProtocol | Error:
    """Connect, log in and select the db within ``limit`` seconds: the connection, or why not.

    With a cache in the config, tracking is on and the server's command
    table is known (asked once per server) before the connection is handed out.
    """
    connection: RedisProtocol | None = None
    try:
        async with asyncio.timeout(limit):
            def protocol() -> RedisProtocol:
                made = RedisProtocol(loop, config.db, config.decode, config.auth is not None,
                                     PushLimits(config.max_pushes, config.max_push_bytes),
                                     resp3=config.protocol == 3)
                if config.cache is not None:
                    made.attach_cache(Cache(config.cache, made.state, cache_stats))
                return made

            if config.path is not None:
                _, connection = await loop.create_unix_connection(protocol, config.path)
            else:
                context, server_hostname = tls_for(config.ssl, config.host)
                _, connection = await loop.create_connection(
                    protocol, config.host, config.port, ssl=context,
                    server_hostname=server_hostname,
                )
            commands = _handshake(config)
            if commands:
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("handshake %s: %s", config.describe(),
                              " + ".join(str(c[0]) for c in commands))
                # One future each, so a refusal followed by the server closing
                # (maxclients, ACL) is reported in the server's own words.
                replies = [connection.request(encode_command(command)) for command in commands]
                hello: Reply = None
                for command, reply in zip(commands, replies, strict=True):
                    answer = await reply
                    if command[0] == "HELLO":
                        hello = answer
                    if isinstance(answer, Error) and not (
                            command == _PING and answer.startswith("NOPERM")):
                        # (A default user without +ping is still connected.)
                        if command[0] == "HELLO" and answer.startswith(_NO_HELLO):
                            answer = NetworkError(
                                f"the server does not speak RESP3 ({answer}): it needs "
                                "Redis 6 or newer; use protocol 2")
                        raise _Failed(answer)
            if connection.cache is not None:
                rules = await _command_rules(connection, config, hello)
                if isinstance(rules, Error):
                    raise _Failed(rules)
                connection.cache.rules = rules
    except Exception as exc:
        error = exc.error if isinstance(exc, _Failed) else error_from_exception(exc)
        if (connection is not None and config.ssl is not False
                and type(error) is NetworkError and connection.error is not None):
            # A server that rejects a client certificate may close before its
            # alert can be read: say what that most likely means.
            error = TLSError(f"{error} {CLOSED_AFTER_TLS_HANDSHAKE}")
        if connection is not None:
            connection.abort(error)
        log.debug("connect %s failed: %s", config.describe(), error)
        return error
    except BaseException:
        # Cancelled: close what was opened and let the cancellation through.
        if connection is not None:
            connection.abort(CLOSED)
        raise
    log.debug("connected %s", config.describe())
    return connection


async def _command_rules(
    connection: RedisProtocol, config: Config, hello: Reply
) -> CommandRules | Error:
    """The server's command table for the cache: remembered, or read from COMMAND."""
    version = ""
    if isinstance(hello, dict):
        found = hello.get("version", hello.get(b"version"))
        version = found.decode() if isinstance(found, bytes) else str(found)
    rules = known_rules(config.address, version)
    if rules is None:
        table = await connection.request(encode_command(["COMMAND"]))
        if isinstance(table, Error):
            return NetworkError(f"the cache needs the server's command table: COMMAND "
                                f"failed ({table})")
        rules = CommandRules(table)
        remember_rules(config.address, version, rules)
    return rules


async def ping(connection: RedisProtocol, limit: float) -> bool:
    """True when the connection answers PING within ``limit`` seconds."""
    if connection.error is not None:
        return False
    future = connection.ping()
    handle = connection.loop.call_later(limit, connection.time_out, future)
    try:
        reply = await future
    finally:
        handle.cancel()
    return reply == "PONG" or reply == b"PONG"


class _Failed(Exception):
    """Carries a handshake's error value out of the timeout block."""

    def __init__(self, error: Error) -> None:
        super().__init__(error)
        self.error = error
