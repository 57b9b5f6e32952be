"""TLS with client certificates: the ``ssl`` mapping form against a real server
with ``tls-auth-clients yes`` (certificates from trustme)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import levredis
from tests.servers import RedisServer

KEY_PASSWORD = "client-key-secret-pw"


class Files:
    def __init__(self, folder: Path, ca: trustme.CA, other_ca: trustme.CA) -> None:
        self.ca = folder / "ca.pem"
        ca.cert_pem.write_to_path(self.ca)
        client = ca.issue_cert("client@levredis.test")
        self.cert, self.key = folder / "client.pem", folder / "client.key"
        client.cert_chain_pems[0].write_to_path(self.cert)
        client.private_key_pem.write_to_path(self.key)
        # The same key, encrypted with a password.
        from cryptography.hazmat.primitives import serialization

        private = serialization.load_pem_private_key(client.private_key_pem.bytes(), None)
        self.encrypted_key = folder / "client-encrypted.key"
        self.encrypted_key.write_bytes(private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode())))
        stranger = other_ca.issue_cert("stranger@levredis.test")
        self.stranger_cert, self.stranger_key = folder / "stranger.pem", folder / "stranger.key"
        stranger.cert_chain_pems[0].write_to_path(self.stranger_cert)
        stranger.private_key_pem.write_to_path(self.stranger_key)


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Files]]:
    """A TLS-only server that requires a client certificate from its CA."""
    folder = tmp_path_factory.mktemp("mtls")
    ca = trustme.CA()
    files = Files(folder, ca, trustme.CA())
    server_cert = ca.issue_cert("127.0.0.1", "localhost", "redis.internal")
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    server_cert.cert_chain_pems[0].write_to_path(cert_file)
    server_cert.private_key_pem.write_to_path(key_file)
    server = RedisServer(["--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file),
                          "--tls-ca-cert-file", str(files.ca), "--tls-auth-clients", "yes"],
                         tls_port=True).start()
    yield server, files
    server.cleanup()


async def test_a_client_certificate_from_the_mapping_form(
    mtls: tuple[RedisServer, Files],
) -> None:
    server, files = mtls
    config = {"host": "127.0.0.1", "port": server.port,
              "ssl": {"ca": str(files.ca), "cert": str(files.cert), "key": str(files.key)}}
    client, err = await levredis.connect(config)
    assert client is not None, err
    assert await client.cmd("SET", "mtls", "ok") == ("OK", None)
    assert await client.cmd("GET", "mtls") == ("ok", None)
    await client.close()
    # Equal settings share a context, hence a pool: the connection is reused.
    again, err = await levredis.connect(dict(config))
    assert again is not None, err
    assert await again.cmd("PING") == ("PONG", None)
    await again.close()
    (stats,) = [s for s in levredis.pool_stats() if str(server.port) in s["key"]]
    assert stats["created"] == 1 and stats["reused"] >= 1 and "+ssl" in stats["key"]


async def test_an_encrypted_key_with_its_password_which_is_never_shown(
    mtls: tuple[RedisServer, Files],
) -> None:
    server, files = mtls
    tls = {"ca": files.ca, "cert": files.cert, "key": files.encrypted_key,
           "password": KEY_PASSWORD}  # paths may be pathlib.Path
    client, err = await levredis.connect({"host": "127.0.0.1", "port": server.port, "ssl": tls})
    assert client is not None, err
    assert await client.cmd("PING") == ("PONG", None)
    shown = [repr(client), str(client.cfg), repr(client.cfg), repr(client.cfg["ssl"]),
             str(levredis.pool_stats())]
    assert all(KEY_PASSWORD not in text for text in shown), shown
    assert client.cfg["ssl"]["cert"] == str(files.cert) and "'password': ***" in repr(client.cfg["ssl"])
    await client.close()
    _, err = await levredis.connect({"host": "127.0.0.1", "port": server.port,
                                     "ssl": {**tls, "password": "wrong-password"}})
    assert isinstance(err, levredis.ConfigError) and "could not be loaded" in err
    assert "wrong-password" not in err and KEY_PASSWORD not in err


async def test_a_missing_or_foreign_client_certificate_is_a_clear_error(
    mtls: tuple[RedisServer, Files],
) -> None:
    server, files = mtls
    for tls in ({"ca": str(files.ca)},
                {"ca": str(files.ca), "cert": str(files.stranger_cert),
                 "key": str(files.stranger_key)}):
        client, err = await levredis.connect({"host": "127.0.0.1", "port": server.port,
                                              "ssl": tls, "timeout": 5})
        assert client is None and isinstance(err, levredis.TLSError), (tls, err)
        assert "client certificate" in err, err


async def test_verify_false_and_server_hostname(mtls: tuple[RedisServer, Files]) -> None:
    server, files = mtls
    with_cert = {"cert": str(files.cert), "key": str(files.key)}
    # The system trust store does not know the test CA: verification fails ...
    _, err = await levredis.connect({"host": "127.0.0.1", "port": server.port,
                                     "ssl": with_cert, "timeout": 5})
    assert isinstance(err, levredis.TLSError) and "verification failed" in err
    # ... unless it is turned off (encrypted, not authenticated: say so in your config).
    client, err = await levredis.connect({"host": "127.0.0.1", "port": server.port,
                                          "ssl": {**with_cert, "verify": False}})
    assert client is not None, err
    await client.close()
    # The server's certificate names redis.internal (and 127.0.0.1): verify that name.
    config = {"host": "127.0.0.1", "port": server.port,
              "ssl": {**with_cert, "ca": str(files.ca), "server_hostname": "redis.internal"}}
    client, err = await levredis.connect(config)
    assert client is not None, err
    await client.close()
    config["ssl"]["server_hostname"] = "elsewhere.example"  # type: ignore[index]
    _, err = await levredis.connect(config)
    assert isinstance(err, levredis.TLSError) and "verification failed" in err


async def test_an_ssl_context_is_still_accepted(mtls: tuple[RedisServer, Files]) -> None:
    server, files = mtls
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.cert), str(files.key))
    client, err = await levredis.connect({"host": "127.0.0.1", "port": server.port,
                                          "ssl": context})
    assert client is not None, err
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()


async def test_the_ssl_mapping_is_validated(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("not a certificate")
    for tls, what in (
        ({"ca": str(tmp_path / "missing.pem")}, "ssl ca: no such file"),
        ({"cert": 42}, "ssl cert must be a file path"),
        ({"key": str(pem)}, "ssl key needs its cert"),
        ({"password": "pw-in-error?"}, "give cert (and key) too"),
        ({"cert": str(pem), "password": 7}, "ssl password must be a str"),
        ({"verify": "no"}, "ssl verify must be a bool"),
        ({"server_hostname": ""}, "server_hostname must be a non-empty str"),
        ({"certfile": str(pem)}, "ssl has no key 'certfile'"),
        ({"cert": str(pem)}, "ssl files could not be loaded"),
        ({"ca": str(pem)}, "ssl files could not be loaded"),
    ):
        client, err = await levredis.connect({"host": "127.0.0.1", "ssl": tls})
        assert client is None and isinstance(err, levredis.ConfigError), (tls, err)
        assert err.startswith("invalid redis config: ") and what in err, (tls, err)
        assert "pw-in-error?" not in err
    _, err = await levredis.connect({"host": "127.0.0.1", "ssl": "yes"})
    assert isinstance(err, levredis.ConfigError) and "ssl must be a bool" in err


async def test_a_renewed_certificate_file_makes_new_connections_use_it(
    mtls: tuple[RedisServer, Files], tmp_path: Path,
) -> None:
    import os
    import shutil

    server, files = mtls
    cert = tmp_path / "renewed.pem"
    shutil.copy(files.cert, cert)
    config = {"host": "127.0.0.1", "port": server.port,
              "ssl": {"ca": str(files.ca), "cert": str(cert), "key": str(files.key)}}
    first, err = await levredis.connect(config)
    assert first is not None, err
    await first.close()
    stat = os.stat(cert)
    os.utime(cert, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # renewed in place
    second, err = await levredis.connect(config)
    assert second is not None, err
    await second.close()
    stats = [s for s in levredis.pool_stats() if str(server.port) in s["key"]]
    assert len(stats) == 2 and all(s["created"] == 1 and s["reused"] == 0 for s in stats)
