"""connect(): every config form, the handshake, and its failures, on real servers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import levredis
from tests.fakepeer import FakePeer, read_command
from tests.servers import ALICE, BOB, RedisServer


async def whoami(client: levredis.Client) -> object:
    value, err = await client.cmd("ACL", "WHOAMI")
    assert err is None, err
    return value


@pytest.fixture
def default_port() -> Iterator[None]:
    """Something answering on 127.0.0.1:6379: the machine's redis, or a throwaway one."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), 1).close()
    except OSError:
        server = RedisServer(port=6379).start()  # only touched with PING
        yield
        server.cleanup()
    else:
        yield


async def test_connect_with_no_config_reaches_127_0_0_1_6379(default_port: None) -> None:
    client, err = await levredis.connect()
    assert client is not None, err
    assert client.cfg["host"] == "127.0.0.1" and client.cfg["port"] == 6379
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()


async def test_connect_host_port_string(redis_server: RedisServer) -> None:
    client, err = await levredis.connect(redis_server.address)
    assert err is None and client is not None
    assert await client.cmd("PING") == ("PONG", None)
    assert client.cfg["db"] == 0
    await client.close()


async def test_connect_host_port_db_string_selects_the_db(redis_server: RedisServer) -> None:
    client, _ = await levredis.connect(f"{redis_server.address}/5")
    assert client is not None
    await client.cmd("SET", "connect:dbtest", "five")
    info, _ = await client.cmd("CLIENT", "INFO")
    assert " db=5 " in str(info)
    other, _ = await levredis.connect(redis_server.address)
    assert other is not None
    assert await other.cmd("GET", "connect:dbtest") == (None, "not found")
    await client.cmd("DEL", "connect:dbtest")
    await client.close()
    await other.close()


async def test_connect_ipv6_host_in_brackets() -> None:
    server = RedisServer(["--bind", "127.0.0.1", "::1"]).start()
    try:
        client, err = await levredis.connect(f"[::1]:{server.port}/2")
        assert err is None and client is not None
        assert client.cfg["host"] == "::1"
        info, _ = await client.cmd("CLIENT", "INFO")
        assert "addr=[::1]" in str(info) or "addr=::1" in str(info)
        assert " db=2 " in str(info)
        await client.close()
    finally:
        server.cleanup()


async def test_connect_url_with_user_password_and_db(acl_server: RedisServer) -> None:
    user, password = ALICE
    client, err = await levredis.connect(f"redis://{user}:{password}@127.0.0.1:{acl_server.port}/3")
    assert err is None and client is not None
    assert await whoami(client) == "alice"
    info, _ = await client.cmd("CLIENT", "INFO")
    assert " db=3 " in str(info)
    assert password not in repr(client) and password not in repr(client.cfg)
    await client.close()


async def test_connect_mapping_with_auth(acl_server: RedisServer) -> None:
    client, err = await levredis.connect(
        {"host": "127.0.0.1", "port": acl_server.port, "auth": {"user": BOB[0], "pass": BOB[1]},
         "timeout": 5, "app": "billing"})
    assert err is None and client is not None
    assert await whoami(client) == "bob"
    assert client.cfg["app"] == "billing"
    assert client.cfg["timeout"] == 5.0
    await client.close()


async def test_wrong_password_returns_the_servers_reason(acl_server: RedisServer) -> None:
    secret = "definitely-wrong-pw"
    client, err = await levredis.connect(
        {"host": "127.0.0.1", "port": acl_server.port, "auth": {"user": "alice", "pass": secret}})
    assert client is None
    assert isinstance(err, levredis.ServerError)
    assert err.startswith("WRONGPASS")
    assert secret not in err


async def test_select_of_a_missing_db_fails_the_connect(redis_server: RedisServer) -> None:
    client, err = await levredis.connect(f"{redis_server.address}/999")
    assert client is None
    assert err is not None and "DB index is out of range" in err


async def test_connection_refused() -> None:
    from tests.servers import free_port

    client, err = await levredis.connect(f"127.0.0.1:{free_port()}")
    assert client is None
    assert err == "connection refused"
    assert isinstance(err, levredis.NetworkError)


async def test_unknown_host_is_a_clear_error() -> None:
    client, err = await levredis.connect({"host": "no-such-host.invalid", "timeout": 5})
    assert client is None
    assert err is not None and "cannot resolve host" in err


async def test_invalid_config_opens_nothing() -> None:
    client, err = await levredis.connect({"host": "127.0.0.1", "port": 0})
    assert client is None
    assert isinstance(err, levredis.ConfigError)
    assert err == "invalid redis config: port must be an integer in 1..65535 (got 0)"


async def test_a_handshake_that_stalls_times_out_and_closes_the_socket() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)  # AUTH arrives; no answer, ever
        await reader.read()

    async with FakePeer(stall, greet=False) as peer:
        client, err = await levredis.connect(
            {"host": "127.0.0.1", "port": peer.port, "timeout": 0.2,
             "auth": {"user": "u", "pass": "p"}})
        assert client is None
        assert err == "timeout"
        assert isinstance(err, levredis.Timeout)


async def test_tls_connect_verifies_against_the_given_context(
    tls_server: RedisServer, trusting_context: ssl.SSLContext
) -> None:
    client, err = await levredis.connect(
        {"host": "127.0.0.1", "port": tls_server.port, "ssl": trusting_context, "db": 1})
    assert err is None and client is not None
    assert await client.cmd("PING") == ("PONG", None)
    assert client.cfg["ssl"] is trusting_context
    assert "tls" in repr(client)
    await client.close()


async def test_tls_with_the_system_trust_store_rejects_an_unknown_ca(tls_server: RedisServer) -> None:
    client, err = await levredis.connect(
        {"host": "127.0.0.1", "port": tls_server.port, "ssl": True, "timeout": 5})
    assert client is None
    assert isinstance(err, levredis.TLSError)
    assert "certificate verif" in err


async def test_rediss_url_uses_tls(tls_server: RedisServer) -> None:
    client, err = await levredis.connect(f"rediss://127.0.0.1:{tls_server.port}?timeout=5")
    assert client is None
    assert isinstance(err, levredis.TLSError)  # verified against the system store: refused


async def test_tls_against_a_plain_port_fails_clearly(redis_server: RedisServer) -> None:
    client, err = await levredis.connect(
        {"host": "127.0.0.1", "port": redis_server.port, "ssl": True, "timeout": 1})
    assert client is None
    assert isinstance(err, levredis.NetworkError)
    assert err != ""


async def test_no_running_loop_is_a_clear_error() -> None:
    coroutine = levredis.connect("127.0.0.1:6379")
    # Drive the coroutine by hand, outside any loop's task.
    loop_policy_loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        with pytest.raises(StopIteration) as stop:
            coroutine.send(None)
    finally:
        asyncio._set_running_loop(loop_policy_loop)
    client, err = stop.value.value
    assert client is None
    assert isinstance(err, levredis.UsageError) and "no running event loop" in err


async def test_tls_rejects_a_certificate_for_another_host_name(
    tls_ca: trustme.CA, trusting_context: ssl.SSLContext, tmp_path: Path
) -> None:
    from tests.servers import tls_args

    cert = tls_ca.issue_cert("other.example")
    cert_file, key_file, ca_file = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    tls_ca.cert_pem.write_to_path(ca_file)
    server = RedisServer(tls_args(cert_file, key_file, ca_file), tls_port=True).start()
    try:
        client, err = await levredis.connect(
            {"host": "127.0.0.1", "port": server.port, "ssl": trusting_context, "timeout": 5})
        assert client is None
        assert isinstance(err, levredis.TLSError)
        assert "127.0.0.1" in err or "match" in err or "mismatch" in err.lower()
    finally:
        server.cleanup()


async def test_plain_text_against_a_tls_port_never_works(tls_server: RedisServer) -> None:
    client, err = await levredis.connect(
        {"host": "127.0.0.1", "port": tls_server.port, "timeout": 1})
    # TCP alone succeeds; the handshake's PING finds out, so connect() says so.
    assert client is None and isinstance(err, levredis.NetworkError)


async def test_a_stalled_tls_handshake_times_out(
    tls_server: RedisServer, trusting_context: ssl.SSLContext
) -> None:
    from tests.faultproxy import FaultProxy

    async with FaultProxy(tls_server.port) as proxy:
        proxy.arm("stall")  # the server's handshake messages never arrive
        client, err = await levredis.connect(
            {"host": "127.0.0.1", "port": proxy.port, "ssl": trusting_context, "timeout": 0.3})
        assert client is None and err == "timeout"
