"""Fixtures: real redis-server processes (plain, ACL, TLS) and loop selection.

Every async test runs twice, on the default asyncio loop and on uvloop.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import pytest
import trustme

import levredis
from tests.servers import RedisServer, acl_args, tls_args

new_uvloop: Callable[[], asyncio.AbstractEventLoop] | None
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a test dependency
    new_uvloop = None
else:
    new_uvloop = uvloop.new_event_loop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop,
    }
    if new_uvloop is not None:
        factories["uvloop"] = new_uvloop
    return factories


@pytest.fixture(autouse=True)
async def _close_pooled_connections() -> AsyncIterator[None]:
    """Each test starts and ends with an empty pool on its own loop."""
    await levredis.close_pool()
    yield
    await levredis.close_pool()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A plain server shared by the tests that do not break it."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server of the test's own, free to stop, restart or kill."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def acl_server() -> Iterator[RedisServer]:
    """Users alice (all commands) and bob (GET/SET on bob:* only); default has no password."""
    server = RedisServer(acl_args()).start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A TLS-only server whose certificate (127.0.0.1, localhost) comes from ``tls_ca``."""
    folder: Path = tmp_path_factory.mktemp("tls")
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    tls_ca.cert_pem.write_to_path(ca_file)
    server = RedisServer(tls_args(cert_file, key_file, ca_file), tls_port=True).start()
    yield server
    server.cleanup()


@pytest.fixture
def trusting_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the test CA (and verifies host names)."""
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print (and with LEVREDIS_FIGURES=path, save) what the stress runs measured."""
    import json
    import os

    from tests.stressing import FIGURES

    if not FIGURES:
        return
    terminalreporter.section("levredis figures")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name}: {json.dumps(value)}")
    target = os.environ.get("LEVREDIS_FIGURES")
    if target:
        with open(target, "w") as out:
            json.dump(FIGURES, out, indent=2)


@pytest.fixture(autouse=True)
async def _hang_report() -> AsyncIterator[None]:
    """With LEVREDIS_HANG_REPORT=seconds, print every task's stack if a test runs that long."""
    import os
    import sys

    limit = float(os.environ.get("LEVREDIS_HANG_REPORT", "0"))
    if not limit:
        yield
        return

    async def report() -> None:
        await asyncio.sleep(limit)
        print(f"\n--- still running after {limit} s; tasks:", file=sys.stderr)
        for task in asyncio.all_tasks():
            if task is asyncio.current_task():
                continue
            print(f"{task.get_name()}:", file=sys.stderr)
            awaited: object = task.get_coro()
            while awaited is not None:  # down the chain of awaits
                frame = getattr(awaited, "cr_frame", None)
                if frame is None:
                    print(f"    awaiting {awaited!r}", file=sys.stderr)
                    break
                print(f"    {frame.f_code.co_filename}:{frame.f_lineno} "
                      f"{frame.f_code.co_name}", file=sys.stderr)
                awaited = getattr(awaited, "cr_await", None)

    watchdog = asyncio.ensure_future(report())
    yield
    watchdog.cancel()
