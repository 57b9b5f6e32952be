"""Real redis-server processes for the tests, on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "redis-server"

ALICE = ("alice", "alice-secret-pw")
BOB = ("bob", "bob-secret-pw")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port p whose cluster bus port p + 10000 is free too.

    Both lie below the ephemeral range the system gives connections and
    ``free_port()`` (here 32768-60999): no other socket of the tests can take
    them between this check and the server's start.
    """
    import random

    low = 1024
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            low = int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    top = low - 10001 if low > 12000 else 55535  # no range known: as before
    while True:
        port = random.randint(min(2000, top), top)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def wait_for_port(port: int, host: str = "127.0.0.1", limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not open {host}:{port}") from None
            time.sleep(0.02)


class RedisServer:
    """One redis-server process; ``restart()`` keeps its port."""

    def __init__(self, extra: Sequence[str] = (), tls_port: bool = False,
                 port: int | None = None, cpu: int | None = None) -> None:
        self.port = port or free_port()
        #: Pin the server to this CPU (benchmarks: the client runs on another).
        self.cpu = cpu
        self.tls = tls_port
        self.extra = list(extra)
        self.dir = Path(tempfile.mkdtemp(prefix="levredis-test-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        port_args = ["--port", "0", "--tls-port", str(self.port)] if self.tls else [
            "--port", str(self.port)]
        pin = [] if self.cpu is None else ["taskset", "-c", str(self.cpu)]
        return [
            *pin, REDIS_SERVER, *port_args, "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"), *self.extra,
        ]

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        try:
            wait_for_port(self.port)
        except RuntimeError:
            log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"redis-server failed to start:\n{log}") from None
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def command(self, *args: str) -> str:
        """Run a command with a plain socket (no levredis), for checks and setup."""
        with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
            parts = [b"*%d\r\n" % len(args)]
            for arg in args:
                data = arg.encode()
                parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
            sock.sendall(b"".join(parts))
            return sock.recv(65536).decode(errors="replace")

    def cleanup(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)


def acl_args() -> list[str]:
    return [
        "--user", ALICE[0], "on", f">{ALICE[1]}", "~*", "&*", "+@all",
        "--user", BOB[0], "on", f">{BOB[1]}", "~bob:*", "+get", "+set", "+ping",
        "+acl|whoami", "+client|info",
    ]


def tls_args(cert: Path, key: Path, ca: Path) -> list[str]:
    return [
        "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
    ]


def process_fd_count() -> int:
    """Open sockets of this process (what a client could leak).

    Other descriptors are left out: uvloop's libuv, for one, keeps a spare
    descriptor on /dev/null once a server has accepted a connection.
    """
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def sockets_connected_to(port: int) -> int:
    """This process' open sockets whose remote end is ``port`` on loopback."""
    inodes = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count
