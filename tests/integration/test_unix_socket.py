"""Redis on a Unix socket: the mapping, URL and bare-path forms, ACL users, db, the pool."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import levredis
from tests.clients import client_id, connect_or_fail
from tests.servers import ALICE, RedisServer, acl_args


@pytest.fixture(scope="module")
def unix_server() -> Iterator[tuple[RedisServer, str]]:
    folder = tempfile.mkdtemp(prefix="levredis-unix-")
    path = str(Path(folder) / "redis.sock")
    server = RedisServer([*acl_args(), "--unixsocket", path, "--unixsocketperm", "700"]).start()
    yield server, path
    server.cleanup()


async def test_a_mapping_with_path_reaches_the_socket_on_its_db(
    unix_server: tuple[RedisServer, str],
) -> None:
    _, path = unix_server
    client = await connect_or_fail({"path": path, "db": 2, "timeout": 5})
    assert await client.cmd("SET", "where", "db2 over a socket") == ("OK", None)
    info, _ = await client.cmd("CLIENT", "INFO")
    assert " db=2 " in str(info) and "laddr=" + path in str(info)
    assert client.cfg["path"] == path and client.cfg["db"] == 2
    first = await client_id(client)
    await client.close()
    again = await connect_or_fail({"path": path, "db": 2})
    assert await client_id(again) == first  # pooled by path
    assert any(s["key"] == f"unix:{path}/2" for s in levredis.pool_stats())
    await again.close()


@pytest.mark.parametrize("scheme", ["unix", "redis+unix"])
async def test_urls_with_user_password_and_db(
    unix_server: tuple[RedisServer, str], scheme: str,
) -> None:
    _, path = unix_server
    client = await connect_or_fail(f"{scheme}://{ALICE[0]}:{ALICE[1]}@{path}?db=3")
    assert await client.cmd("ACL", "WHOAMI") == (ALICE[0], None)
    info, _ = await client.cmd("CLIENT", "INFO")
    assert " db=3 " in str(info)
    assert ALICE[1] not in repr(client.cfg) and ALICE[1] not in repr(client)
    await client.close()


async def test_a_bare_path_is_a_unix_socket(unix_server: tuple[RedisServer, str]) -> None:
    _, path = unix_server
    client = await connect_or_fail(path)
    assert await client.cmd("PING") == ("PONG", None)
    await client.close()


@pytest.mark.parametrize(
    "config",
    [{"path": "/tmp/x.sock", "host": "127.0.0.1"}, {"path": "/tmp/x.sock", "port": 6379},
     {"path": "relative.sock"}, {"path": "/tmp/x.sock", "ssl": True}, {"path": 7},
     "unix://host/tmp/x.sock", "unix:///tmp/x.sock?db=1&db=2", "unix:///tmp/x.sock?bad=1",
     "unix://user@/tmp/x.sock"],
)
async def test_bad_unix_socket_configs_are_config_errors(config: object) -> None:
    value, err = await levredis.connect(config)  # type: ignore[arg-type]
    assert value is None and isinstance(err, levredis.ConfigError)


async def test_a_missing_socket_is_a_network_error(tmp_path: Path) -> None:
    value, err = await levredis.connect({"path": str(tmp_path / "none.sock"), "timeout": 1})
    assert value is None and isinstance(err, levredis.NetworkError)
