"""A real Sentinel set-up: 1 primary, 2 replicas, 3 sentinels, all on loopback.

Data nodes let in only the ACL user ``alice``; sentinels want their own
password. Both are what a production set-up usually has, and they prove the
two sets of credentials are kept apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.servers import REDIS_SERVER, RedisServer, free_port

SERVICE = "levredis-svc"
NODE_USER, NODE_PASS = "alice", "alice-node-pw"
SENTINEL_PASS = "sentinel-only-pw"
NODE_ACL = ["--user", "default", "off", "--user", NODE_USER, "on", f">{NODE_PASS}", "~*", "&*",
            "+@all", "--masteruser", NODE_USER, "--masterauth", NODE_PASS]


class SentinelServer(RedisServer):
    """``redis-server sentinel.conf --sentinel`` on a free port."""

    def __init__(self, primary_port: int) -> None:
        super().__init__()
        self.conf = self.dir / "sentinel.conf"
        self.conf.write_text("\n".join([
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2",
            f"sentinel down-after-milliseconds {SERVICE} 1000",
            f"sentinel failover-timeout {SERVICE} 10000",
            f"sentinel parallel-syncs {SERVICE} 2",
            f"sentinel auth-user {SERVICE} {NODE_USER}",
            f"sentinel auth-pass {SERVICE} {NODE_PASS}",
            f"requirepass {SENTINEL_PASS}",
            f"sentinel sentinel-pass {SENTINEL_PASS}",
            "",
        ]))

    def args(self) -> list[str]:
        return [REDIS_SERVER, str(self.conf), "--sentinel", "--port", str(self.port),
                "--bind", "127.0.0.1", "--dir", str(self.dir), "--daemonize", "no",
                "--logfile", str(self.dir / "redis.log")]

    def command(self, *args: str) -> str:
        return authenticated(self, ("AUTH", SENTINEL_PASS), args)


def node_command(server: RedisServer, *args: str) -> str:
    """A command on a data node, as alice."""
    return authenticated(server, ("AUTH", NODE_USER, NODE_PASS), args)


def authenticated(server: RedisServer, auth: tuple[str, ...], args: tuple[str, ...]) -> str:
    """The reply to ``args`` sent after ``auth`` with a plain socket (no levredis)."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), 5) as sock:
        parts = []
        for command in (auth, args):
            parts.append(b"*%d\r\n" % len(command))
            for arg in command:
                data = arg.encode()
                parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        sock.sendall(b"".join(parts))
        reply = b""
        while reply.count(b"\r\n") < 2 or not _complete(reply.split(b"\r\n", 1)[1]):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply.decode(errors="replace").split("\r\n", 1)[1]  # past AUTH's +OK


def _complete(data: bytes) -> bool:
    """Whether ``data`` holds one whole RESP2 reply."""
    def parse(at: int) -> int:
        end = data.index(b"\r\n", at)
        kind, line = data[at:at + 1], data[at + 1:end]
        if kind in b"+-:":
            return end + 2
        if kind == b"$":
            size = int(line)
            return end + 2 if size < 0 else end + 2 + size + 2
        position = end + 2
        for _ in range(max(int(line), 0)):
            position = parse(position)
        return position

    try:
        return parse(0) <= len(data)
    except (ValueError, IndexError):
        return False


class LocalSentinel:
    def __init__(self) -> None:
        primary_port = free_port()
        self.nodes = [RedisServer(NODE_ACL, port=primary_port)]
        self.nodes += [RedisServer([*NODE_ACL, "--replicaof", "127.0.0.1", str(primary_port)])
                       for _ in range(2)]
        self.sentinels = [SentinelServer(primary_port) for _ in range(3)]

    def start(self) -> LocalSentinel:
        for server in [*self.nodes, *self.sentinels]:
            server.start()
        self.wait_settled()
        return self

    def config(self, **options: object) -> dict[str, object]:
        return {"sentinels": [s.address for s in self.sentinels], "service": SERVICE,
                "sentinel_auth": {"user": "default", "pass": SENTINEL_PASS},
                "auth": {"user": NODE_USER, "pass": NODE_PASS}, "timeout": 10, **options}

    def primary(self) -> RedisServer:
        """The node whose ROLE is master (asked of the nodes, not of the sentinels)."""
        for node in self.nodes:
            if node.process is not None and node_command(node, "ROLE").startswith("*3\r\n$6\r\nmaster"):
                return node
        raise AssertionError("no primary")

    def wait_settled(self, limit: float = 30.0) -> None:
        """Every sentinel agrees on one live primary with 2 synced replicas and 2 peers."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                primary = self.primary()
                views = [s.command("SENTINEL", "MASTER", SERVICE) for s in self.sentinels
                         if s.process is not None]
                synced = node_command(primary, "INFO", "replication").count("state=online")
                if synced == 2 and all(
                        f"\r\n{primary.port}\r\n" in view and "num-slaves\r\n$1\r\n2" in view
                        and "num-other-sentinels\r\n$1\r\n2" in view
                        and "failover_in_progress" not in view and "s_down" not in view
                        for view in views):
                    return
            except (AssertionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError("the sentinels did not settle")

    def cleanup(self) -> None:
        for server in [*self.sentinels, *self.nodes]:
            server.cleanup()


@pytest.fixture(scope="module")
def sentinel() -> Iterator[LocalSentinel]:
    local = LocalSentinel().start()
    yield local
    local.cleanup()


@pytest.fixture
def own_sentinel() -> Iterator[LocalSentinel]:
    """A set-up of the test's own, free to fail over."""
    local = LocalSentinel().start()
    yield local
    local.cleanup()
