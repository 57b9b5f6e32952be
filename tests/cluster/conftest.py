"""A real local Redis Cluster: 6 redis-server processes, 3 primaries with a replica each."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.servers import RedisServer, free_cluster_port

REDIS_CLI = shutil.which("redis-cli") or "redis-cli"


class LocalCluster:
    def __init__(self) -> None:
        self.servers = self._new_servers()

    @staticmethod
    def _new_servers() -> list[RedisServer]:
        return [
            RedisServer(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                         "--cluster-node-timeout", "1000", "--cluster-replica-validity-factor",
                         "0"], port=free_cluster_port())
            for _ in range(6)
        ]

    def start(self) -> LocalCluster:
        # A cluster bus port (port + 10000) can be taken between the check and
        # the server's start (an ephemeral port of another test's connection):
        # the nodes then never meet. Start over on other ports, a few times.
        for attempt in range(3):
            try:
                for server in self.servers:
                    server.start()
                subprocess.run([REDIS_CLI, "--cluster", "create",
                                *(s.address for s in self.servers),
                                "--cluster-replicas", "1", "--cluster-yes"],
                               check=True, capture_output=True, timeout=30)
                self.wait_ok()
                return self
            except (subprocess.SubprocessError, RuntimeError):
                self.cleanup()
                if attempt == 2:
                    raise
                self.servers = self._new_servers()
        return self

    def wait_ok(self, limit: float = 30.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            live = [s for s in self.servers if s.process is not None]
            replicas_synced = all(
                "master_link_status:up" in info or "role:master" in info
                for info in (s.command("INFO", "replication") for s in live))
            if replicas_synced and all(
                    "cluster_state:ok" in s.command("CLUSTER", "INFO") for s in live):
                return
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def give_slot_away(self, slot: int, source_id: str) -> None:
        """Move a slot holding no key from its primary (``source_id``) to another, at once."""
        target_id = next(line.split()[0] for line in
                         self.servers[0].command("CLUSTER", "NODES").splitlines()
                         if "master" in line and source_id not in line)
        for server in self.servers:
            if "role:master" in server.command("INFO", "replication"):
                server.command("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        self.wait_ok()

    @property
    def seeds(self) -> list[str]:
        return [s.address for s in self.servers]

    def node_for(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def cleanup(self) -> None:
        for server in self.servers:
            server.cleanup()


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    local = LocalCluster().start()
    yield local
    local.cleanup()


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A cluster of the test's own, free to lose a node."""
    local = LocalCluster().start()
    yield local
    local.cleanup()
