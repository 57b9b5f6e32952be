"""Regressions from a hostile review of RESP3 and of TLS client certificates.

Each test is one finding (repro scripts resp3_* and tls_*): a push Redis 7.0
writes inside an array reply shifting every later reply onto the next caller;
RESET turning a RESP3 connection into a RESP2 one; read() refusing to wait
for tracking invalidations; nested invalidation pushes escaping
max_push_bytes; big numbers past 4,300 digits and map keys equal only in
Python; an encrypted key prompting on the terminal; odd ssl values raising;
relative certificate paths sharing a context; a RESP3 refusal over TLS blamed
on client certificates.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import levredis
from tests.fakepeer import FakePeer, read_command
from tests.integration.test_resp3 import connect3
from tests.servers import RedisServer, tls_args


@pytest.fixture(scope="module")
def debug_server() -> Iterator[RedisServer]:
    """A server of this module's own: keyspace events and DEBUG may be changed on it."""
    server = RedisServer(["--enable-debug-command", "yes"]).start()
    yield server
    server.cleanup()


def encrypted_client_files(folder: Path, password: bytes) -> tuple[Path, Path]:
    """A client certificate and its private key encrypted with ``password``, written
    to ``folder``: (certificate path, key path)."""
    from cryptography.hazmat.primitives import serialization

    issued = trustme.CA().issue_cert("client@levredis.test")
    cert, key = folder / "client.pem", folder / "client-encrypted.key"
    issued.cert_chain_pems[0].write_to_path(cert)
    private = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
    key.write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password)))
    return cert, key


# -- RESP3 -------------------------------------------------------------------------


async def test_a_push_inside_exec_s_array_is_a_push_and_replies_keep_their_callers(
    debug_server: RedisServer,
) -> None:
    # Redis 7.0 writes EXEC's "*N", then the message its PUBLISH made for this
    # (subscribed) connection, then the queued replies: the push is no element.
    client = await connect3(debug_server)
    await client.cmd("DEL", "a3:nokey")
    assert await client.cmd("SUBSCRIBE", "a3:ch") == (["subscribe", "a3:ch", 1], None)
    transaction, ping, get = await asyncio.gather(
        client.pipeline([["MULTI"], ["PUBLISH", "a3:ch", "x"], ["EXEC"]]),
        client.cmd("PING"), client.cmd("GET", "a3:nokey"))
    assert transaction == ([["OK"], ["QUEUED"], [[1]]], None)
    assert ping == ("PONG", None)
    assert get == (None, "not found")
    assert await asyncio.wait_for(client.read(), 5) == (
        {"type": "push", "value": ["message", "a3:ch", "x"]}, None)
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()


async def test_a_keyspace_event_inside_exec_does_not_shift_replies(
    debug_server: RedisServer,
) -> None:
    client = await connect3(debug_server)
    assert await client.cmd("CONFIG", "SET", "notify-keyspace-events", "KA") == ("OK", None)
    try:
        await client.cmd("DEL", "a3:k")
        assert (await client.cmd("SUBSCRIBE", "__keyspace@0__:a3:k"))[1] is None
        transaction, get, ping = await asyncio.gather(
            client.pipeline([["MULTI"], ["SET", "a3:k", "v"], ["EXEC"]]),
            client.cmd("GET", "a3:k"), client.cmd("PING"))
        assert transaction == ([["OK"], ["QUEUED"], [["OK"]]], None)
        assert get == ("v", None)  # not SET's "OK"
        assert ping == ("PONG", None)  # not GET's "v"
        assert await asyncio.wait_for(client.read(), 5) == (
            {"type": "push", "value": ["message", "__keyspace@0__:a3:k", "set"]}, None)
        await client.close()
    finally:
        debug_server.command("CONFIG", "SET", "notify-keyspace-events", "")


async def test_an_expiry_event_inside_mget_does_not_shift_replies(
    debug_server: RedisServer,
) -> None:
    # No transaction: MGET of a key that expires lazily while it is read.
    client = await connect3(debug_server)
    assert await client.cmd("CONFIG", "SET", "notify-keyspace-events", "Ex") == ("OK", None)
    assert (await client.cmd("DEBUG", "SET-ACTIVE-EXPIRE", "0"))[1] is None
    try:
        assert (await client.cmd("SUBSCRIBE", "__keyevent@0__:expired"))[1] is None
        assert await client.cmd("SET", "a3:a", "1") == ("OK", None)
        assert await client.cmd("SET", "a3:b", "2", "PX", "50") == ("OK", None)
        await asyncio.sleep(0.2)
        mget, get, ping = await asyncio.gather(
            client.cmd("MGET", "a3:a", "a3:b"), client.cmd("GET", "a3:a"), client.cmd("PING"))
        assert mget == (["1", None], None)
        assert get == ("1", None)  # not MGET's NULL for the expired key
        assert ping == ("PONG", None)
        assert await asyncio.wait_for(client.read(), 5) == (
            {"type": "push", "value": ["message", "__keyevent@0__:expired", "a3:b"]}, None)
        await client.close()
    finally:
        debug_server.command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        debug_server.command("CONFIG", "SET", "notify-keyspace-events", "")


async def test_reset_is_refused_on_resp3_and_the_connection_stays_resp3(
    redis_server: RedisServer,
) -> None:
    setup, err = await levredis.connect(redis_server.address)
    assert setup is not None, err
    await setup.cmd("DEL", "a3:h")
    await setup.cmd("HSET", "a3:h", "f", "v")
    client = await connect3(redis_server)
    assert await client.cmd("HGETALL", "a3:h") == ({"f": "v"}, None)
    value, err = await client.cmd("RESET")
    assert value is None and isinstance(err, levredis.UsageError), (value, err)
    assert "RESP2" in err, err
    # Not sent: the server still speaks RESP3 to it, and replies still decode so.
    assert await client.cmd("HGETALL", "a3:h") == ({"f": "v"}, None)
    info, err = await client.cmd("CLIENT", "INFO")
    assert err is None and isinstance(info, str) and "resp=3" in info, (info, err)
    await client.close()
    # Whatever went back to the RESP3 pool speaks RESP3.
    again = await connect3(redis_server)
    assert await again.cmd("HGETALL", "a3:h") == ({"f": "v"}, None)
    await again.close()
    await setup.cmd("DEL", "a3:h")
    await setup.close()


async def test_read_waits_for_a_tracking_invalidation(redis_server: RedisServer) -> None:
    tracked = await connect3(redis_server)
    writer, err = await levredis.connect(redis_server.address)
    assert writer is not None, err
    assert await tracked.cmd("CLIENT", "TRACKING", "ON") == ("OK", None)
    await tracked.cmd("GET", "a3:tracked")  # now tracked

    async def modify_later() -> None:
        await asyncio.sleep(0.2)
        assert await writer.cmd("SET", "a3:tracked", "new") == ("OK", None)

    task = asyncio.ensure_future(modify_later())
    started = time.monotonic()
    item, err = await asyncio.wait_for(tracked.read(), 5)  # started before any invalidation
    waited = time.monotonic() - started
    await task
    assert err is None and item is not None, err
    assert item["type"] == "push", item
    value = item["value"]
    assert isinstance(value, list) and value[0] == "invalidate", item
    assert value[1] == ["a3:tracked"], item
    assert waited >= 0.15, waited  # it waited for the write
    await tracked.close()
    await writer.cmd("DEL", "a3:tracked")
    await writer.close()


def queued_key_bytes(client: levredis.Client) -> int:
    """The bytes of the keys in the unread invalidation pushes (internals)."""
    total = 0
    for _, value in client._connection.dispatch.pushes:
        for item in value if isinstance(value, list) else ():
            for key in item if isinstance(item, list) else ():
                assert isinstance(key, str)
                total += len(key)
    return total


async def test_nested_invalidation_keys_count_toward_max_push_bytes(
    own_server: RedisServer,
) -> None:
    limit = 1024 * 1024
    rounds, per_round = 6, 2000
    tracked = await connect3(own_server, max_push_bytes=limit)
    writer, err = await levredis.connect(own_server.address)
    assert writer is not None, err
    assert await tracked.cmd("CLIENT", "TRACKING", "ON", "BCAST") == ("OK", None)
    written: set[str] = set()
    for round_ in range(rounds):
        args: list[object] = []
        for i in range(per_round):
            key = f"a3:{round_}:{i}:" + "x" * 500
            written.add(key)
            args += [key, "v"]
        assert await writer.cmd("MSET", *args) == ("OK", None)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)
    connection = tracked._connection
    dispatch = connection.dispatch
    queued = queued_key_bytes(tracked)
    # About 6 MB of key names were pushed; the queue stops near its bound.
    assert connection.reading_paused, (queued, dispatch.push_bytes)
    # Paused by the bytes (a few pushes queued, far below max_pushes), which
    # count the keys inside the pushes.
    assert len(dispatch.pushes) < 10, len(dispatch.pushes)
    assert dispatch.push_bytes > limit and dispatch.push_bytes >= queued > limit // 2, (
        queued, dispatch.push_bytes)
    assert queued < 4 * limit, queued  # (one push holds ~1 MB here)
    # And then everything can still be read, in order.
    seen: set[str] = set()
    while seen != written:
        item, err = await asyncio.wait_for(tracked.read(), 5)
        assert err is None and item is not None, (err, len(seen))
        value = item["value"]
        assert isinstance(value, list) and value[0] == "invalidate", value
        keys = value[1]
        assert isinstance(keys, list)
        seen.update(str(key) for key in keys)
    assert not connection.reading_paused
    assert dispatch.push_bytes == 0 and not dispatch.pushes
    assert await tracked.cmd("PING") == ("PONG", None)
    await tracked.close()
    await writer.close()


async def test_a_big_number_past_4300_digits_is_a_str_and_breaks_nothing(
    redis_server: RedisServer,
) -> None:
    client = await connect3(redis_server)
    big, ping = await asyncio.gather(
        client.cmd("EVAL", "redis.setresp(3); return {big_number=string.rep('7', 5000)}", 0),
        client.cmd("PING"))
    assert big == ("7" * 5000, None), (str(big)[:100])
    assert ping == ("PONG", None)
    value, err = await client.cmd(
        "EVAL", "redis.setresp(3); return {big_number=string.rep('7', 4000)}", 0)
    assert err is None and type(value) is int and value == int("7" * 4000)
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()


def typed(entries: object) -> list[tuple[str, str]]:
    """Entries with their types, so that 1, True and 1.0 are told apart."""
    assert isinstance(entries, list), entries
    return sorted((repr(entry), type(entry).__name__) for entry in entries)


def typed_pairs(value: object) -> list[list[object]]:
    """A map decoded as a list of [key, value] pairs, each key with its type."""
    assert isinstance(value, list), value
    result: list[list[object]] = []
    for pair in value:
        assert isinstance(pair, list) and len(pair) == 2, pair
        result.append([type(pair[0]), pair[0], pair[1]])
    return result


async def test_map_keys_and_set_members_equal_only_in_python_are_all_kept(
    redis_server: RedisServer,
) -> None:
    client = await connect3(redis_server)
    value, err = await client.cmd(
        "EVAL", "redis.setresp(3); return {map={[1]='a', [true]='b'}}", 0)
    assert err is None and isinstance(value, list) and len(value) == 2, (value, err)
    assert sorted(map(repr, typed_pairs(value))) == sorted(
        map(repr, [[int, 1, "a"], [bool, True, "b"]]))
    value, err = await client.cmd(
        "EVAL", "redis.setresp(3); return {set={[1]=true, [true]=true}}", 0)
    assert err is None and isinstance(value, list), (value, err)
    assert typed(value) == typed([1, True])
    # Keys that do not collide still make a dict, members a set.
    value, err = await client.cmd(
        "EVAL", "redis.setresp(3); return {map={[1]='a', [2]='b'}}", 0)
    assert (value, err) == ({1: "a", 2: "b"}, None)
    await client.close()


async def test_colliding_keys_from_the_wire_in_order() -> None:
    replies = {
        b"MAP": b"%2\r\n:1\r\n$1\r\na\r\n#t\r\n$1\r\nb\r\n",
        b"MAP3": b"%3\r\n:1\r\n$1\r\na\r\n#t\r\n$1\r\nb\r\n,1\r\n$1\r\nc\r\n",
        b"SET": b"~2\r\n:1\r\n#t\r\n",
    }

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert (await read_command(reader))[0] == b"HELLO"
        writer.write(b"%1\r\n$5\r\nproto\r\n:3\r\n")
        while True:
            command = await read_command(reader)
            writer.write(replies.get(command[0], b"+PONG\r\n"))
            await writer.drain()

    async with FakePeer(peer, greet=False) as fake:
        client, err = await levredis.connect({"host": "127.0.0.1", "port": fake.port,
                                              "protocol": 3, "timeout": 5})
        assert client is not None, err
        value, err = await client.cmd("MAP")
        assert err is None and isinstance(value, list), (value, err)
        assert typed_pairs(value) == [[int, 1, "a"], [bool, True, "b"]]
        value, err = await client.cmd("MAP3")
        assert err is None and isinstance(value, list), (value, err)
        assert typed_pairs(value) == [[int, 1, "a"], [bool, True, "b"], [float, 1.0, "c"]]
        value, err = await client.cmd("SET")
        assert err is None and isinstance(value, list), (value, err)
        assert [[type(m), m] for m in value] == [[int, 1], [bool, True]]
        assert await client.cmd("PING") == ("PONG", None)
        await client.close(no_keepalive=True)


# -- TLS -----------------------------------------------------------------------------

_PROMPT_CHILD = r"""
import asyncio, os, sys, time
os.setsid()
os.close(os.open(sys.argv[3], os.O_RDWR))  # the pty becomes the controlling terminal
import levredis

async def main():
    started = time.monotonic()
    client, err = await levredis.connect({
        "host": "127.0.0.1", "port": 1, "timeout": 1,
        "ssl": {"cert": sys.argv[1], "key": sys.argv[2]}})
    print(type(err).__name__, "|", err, "|", round(time.monotonic() - started, 2), flush=True)

asyncio.run(main())
"""


async def test_an_encrypted_key_without_password_is_a_config_error_never_a_prompt(
    tmp_path: Path,
) -> None:
    # Run where OpenSSL would prompt: a process with a controlling terminal.
    import pty

    cert, key = encrypted_client_files(tmp_path, b"the-key-password")
    master, slave = pty.openpty()
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _PROMPT_CHILD, str(cert), str(key), os.ttyname(slave),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(child.communicate(), 8)
        except TimeoutError:
            child.kill()
            await child.wait()
            pytest.fail("connect() blocked for 8 s (a pass phrase prompt on the terminal?)")
        os.set_blocking(master, False)
        try:
            on_terminal = os.read(master, 4096)
        except OSError:  # nothing written to the terminal
            on_terminal = b""
    finally:
        os.close(master)
        os.close(slave)
    assert b"pass phrase" not in on_terminal, on_terminal
    assert child.returncode == 0, err
    kind, message, took = out.decode().strip().split(" | ")
    assert kind == "ConfigError" and "ssl key is encrypted: give its password" in message, out
    assert float(took) < 2, out
    # In this process too (whatever its terminal): a ConfigError, at once.
    started = time.monotonic()
    client, error = await levredis.connect({"host": "127.0.0.1", "port": 1, "timeout": 1,
                                            "ssl": {"cert": str(cert), "key": str(key)}})
    assert client is None and isinstance(error, levredis.ConfigError), error
    assert "ssl key is encrypted: give its password" in error, error
    assert time.monotonic() - started < 2


class _BytesPath(os.PathLike):  # type: ignore[type-arg]
    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> bytes:
        return bytes(self.path)  # a real file, as bytes


class _RaisingPath(os.PathLike):  # type: ignore[type-arg]
    def __fspath__(self) -> str:
        raise TypeError("no path here")


class _IntPath(os.PathLike):  # type: ignore[type-arg]
    def __fspath__(self) -> int:
        return 5


async def test_odd_ssl_passwords_and_paths_are_config_errors_that_hide_the_password(
    tmp_path: Path,
) -> None:
    cert, key = encrypted_client_files(tmp_path, b"right-password")
    surrogate = "S3cr3tXq\ud800Zk9w"
    long_password = "L0ngS3cr3t-" * 182  # 2,002 bytes
    cases: list[tuple[dict[str, object], str | None]] = [
        ({"cert": str(cert), "key": str(key), "password": surrogate}, surrogate),
        ({"cert": str(cert), "key": str(key), "password": long_password}, long_password),
        ({"ca": _BytesPath(cert)}, None),
        ({"ca": _RaisingPath()}, None),
        ({"ca": _IntPath()}, None),
        ({"cert": _BytesPath(cert), "key": str(key), "password": "right-password"}, None),
    ]
    for tls, password in cases:
        try:
            client, err = await levredis.connect({"host": "127.0.0.1", "port": 1,
                                                  "timeout": 1, "ssl": tls})
        except Exception as exc:  # the bug: connect() raised
            pytest.fail(f"{tls!r}: connect() raised {type(exc).__name__}: {exc}")
        assert client is None and isinstance(err, levredis.ConfigError), (tls, err)
        assert err.startswith("invalid redis config: ssl"), err
        if password is not None:
            shown = f"{err!s} {err!r}"
            assert "S3cr3t" not in shown and "Zk9w" not in shown, shown
            assert "\ud800" not in shown and "\\ud800" not in shown, shown
            assert "position" not in shown, shown


def write_same_shape(files_a: dict[str, bytes], files_b: dict[str, bytes],
                     a: Path, b: Path) -> None:
    """Both sets with equal sizes (PEM allows text before BEGIN) and equal mtimes."""
    for name in files_a:
        data_a, data_b = files_a[name], files_b[name]
        size = max(len(data_a), len(data_b)) + 1
        (a / name).write_bytes(b"#" * (size - len(data_a) - 1) + b"\n" + data_a)
        (b / name).write_bytes(b"#" * (size - len(data_b) - 1) + b"\n" + data_b)
        for folder in (a, b):
            os.utime(folder / name, ns=(1_700_000_000 * 10**9,) * 2)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Path]]:
    """A server requiring client certificates; tenant-a's is trusted, tenant-b's not.

    Both folders hold client.pem and client.key of equal sizes and mtimes.
    """
    root = tmp_path_factory.mktemp("tenants")
    trusted, untrusted = trustme.CA(), trustme.CA()
    server_cert = trusted.issue_cert("127.0.0.1", "localhost")
    ca_file, server_pem, server_key = root / "ca.pem", root / "server.pem", root / "server.key"
    trusted.cert_pem.write_to_path(ca_file)
    server_cert.cert_chain_pems[0].write_to_path(server_pem)
    server_cert.private_key_pem.write_to_path(server_key)
    a, b = root / "tenant-a", root / "tenant-b"
    a.mkdir()
    b.mkdir()
    cert_a = trusted.issue_cert("tenant-a@levredis.test")
    cert_b = untrusted.issue_cert("tenant-b@levredis.test")
    write_same_shape(
        {"client.pem": cert_a.cert_chain_pems[0].bytes(),
         "client.key": cert_a.private_key_pem.bytes()},
        {"client.pem": cert_b.cert_chain_pems[0].bytes(),
         "client.key": cert_b.private_key_pem.bytes()}, a, b)
    assert (a / "client.pem").stat().st_size == (b / "client.pem").stat().st_size
    server = RedisServer(["--tls-cert-file", str(server_pem), "--tls-key-file", str(server_key),
                          "--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "yes"],
                         tls_port=True).start()
    yield server, root
    server.cleanup()


async def test_relative_certificate_paths_from_two_folders_are_two_certificates(
    tenants: tuple[RedisServer, Path],
) -> None:
    server, root = tenants
    config = {"host": "127.0.0.1", "port": server.port, "timeout": 5,
              "ssl": {"ca": str(root / "ca.pem"), "cert": "client.pem", "key": "client.key"}}
    here = os.getcwd()
    try:
        os.chdir(root / "tenant-a")
        client, err = await levredis.connect(dict(config))
        assert client is not None, err
        assert await client.cmd("PING") == ("PONG", None)
        await client.close()  # pooled
        os.chdir(root / "tenant-b")  # an untrusted certificate of the same size and mtime
        for _ in range(2):  # with A's connection in the pool, then with none
            client, err = await levredis.connect(dict(config))
            if client is not None:
                await client.close(no_keepalive=True)
            assert client is None, "tenant-b's config connected: it used tenant-a's certificate"
            assert isinstance(err, levredis.TLSError), err
            await levredis.close_pool()
        os.chdir(root / "tenant-a")
        client, err = await levredis.connect(dict(config))
        assert client is not None, err
        await client.close()
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def tls_without_hello(tls_ca: trustme.CA,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Path]]:
    """A TLS server that answers HELLO as Redis 5 does (unknown command)."""
    folder = tmp_path_factory.mktemp("nohello")
    issued = tls_ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = folder / "server.pem", folder / "server.key", folder / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(cert)
    issued.private_key_pem.write_to_path(key)
    tls_ca.cert_pem.write_to_path(ca_file)
    server = RedisServer([*tls_args(cert, key, ca_file), "--rename-command", "HELLO", ""],
                         tls_port=True).start()
    yield server, ca_file
    server.cleanup()


async def test_a_resp3_refusal_over_tls_is_no_certificate_error(
    tls_without_hello: tuple[RedisServer, Path],
) -> None:
    server, ca_file = tls_without_hello
    config = {"host": "127.0.0.1", "port": server.port, "timeout": 5,
              "ssl": {"ca": str(ca_file)}}
    client, err = await levredis.connect({**config, "protocol": 3})
    assert client is None and isinstance(err, levredis.NetworkError), err
    assert not isinstance(err, levredis.TLSError), err
    assert "does not speak RESP3" in err and "use protocol 2" in err, err
    assert "client certificate" not in err and "TLS handshake" not in err, err
    # The TLS side itself is fine: protocol 2 works.
    client, err = await levredis.connect(config)
    assert client is not None, err
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()
