"""Every example script runs against a real server, and says what it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from tests.servers import ALICE, RedisServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, env: dict[str, str]) -> str:
    completed = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True,
                               text=True, timeout=60, env={**os.environ, **env}, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.fixture
def url(own_server: RedisServer) -> dict[str, str]:
    return {"REDIS_URL": f"redis://{own_server.address}"}


def test_quickstart(url: dict[str, str]) -> None:
    out = run("quickstart.py", url)
    assert "GET greeting       -> ('hello', None)" in out
    assert "GET missing        -> (None, 'not found')" in out
    assert "GET after close    -> (None, 'closed')" in out


def test_pipeline_bulk_load(url: dict[str, str]) -> None:
    out = run("pipeline_bulk_load.py", url)
    assert "loaded 10000 keys" in out
    assert "['value-0', 'value-9999', None] None" in out


def test_pubsub_chat(url: dict[str, str]) -> None:
    out = run("pubsub_chat.py", url)
    assert "[chat:room] ann: hello" in out and "[chat:room] bob: fine, thanks" in out
    assert "4 messages heard" in out


def test_watch_transaction_keeps_the_total(url: dict[str, str]) -> None:
    out = run("watch_transaction.py", url)
    assert "total: 1000" in out


def test_rate_limiter_lets_ten_per_user_through(url: dict[str, str]) -> None:
    out = run("rate_limiter.py", url)
    assert "{'user0': 10, 'user1': 10, 'user2': 10, 'user3': 10, 'user4': 10}" in out
    assert "refused: 150" in out


def test_typed_usage(url: dict[str, str]) -> None:
    out = run("typed_usage.py", url)
    assert "counter: 1" in out and "missing key: not found" in out


def test_tls_acl(tls_ca: trustme.CA, tmp_path: Path) -> None:
    from tests.servers import acl_args, tls_args

    cert = tls_ca.issue_cert("127.0.0.1")
    files = {name: tmp_path / f"{name}.pem" for name in ("cert", "key", "ca")}
    cert.cert_chain_pems[0].write_to_path(files["cert"])
    cert.private_key_pem.write_to_path(files["key"])
    tls_ca.cert_pem.write_to_path(files["ca"])
    server = RedisServer([*tls_args(files["cert"], files["key"], files["ca"]), *acl_args()],
                         tls_port=True).start()
    try:
        out = run("tls_acl.py", {
            "REDIS_TLS_PORT": str(server.port), "REDIS_CA": str(files["ca"]),
            "REDIS_USER": ALICE[0], "REDIS_PASS": ALICE[1]})
    finally:
        server.cleanup()
    assert "ACL WHOAMI -> ('alice', None)" in out and "PING -> ('PONG', None)" in out
    assert ALICE[1] not in out and "***" in out


def test_client_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_cert, client_cert = ca.issue_cert("127.0.0.1"), ca.issue_cert("client@example")
    files = {name: tmp_path / f"{name}.pem" for name in ("cert", "key", "ca", "ccert", "ckey")}
    server_cert.cert_chain_pems[0].write_to_path(files["cert"])
    server_cert.private_key_pem.write_to_path(files["key"])
    client_cert.cert_chain_pems[0].write_to_path(files["ccert"])
    client_cert.private_key_pem.write_to_path(files["ckey"])
    ca.cert_pem.write_to_path(files["ca"])
    server = RedisServer(["--tls-cert-file", str(files["cert"]), "--tls-key-file",
                          str(files["key"]), "--tls-ca-cert-file", str(files["ca"]),
                          "--tls-auth-clients", "yes"], tls_port=True).start()
    try:
        out = run("client_certificate.py", {
            "REDIS_TLS_PORT": str(server.port), "REDIS_CA": str(files["ca"]),
            "REDIS_CERT": str(files["ccert"]), "REDIS_KEY": str(files["ckey"])})
    finally:
        server.cleanup()
    assert "PING -> ('PONG', None)" in out
    assert "without a certificate -> TLSError (mentions the client certificate: True )" in out


def test_sentinel() -> None:
    from tests.sentinel.conftest import NODE_PASS, NODE_USER, SENTINEL_PASS, SERVICE, LocalSentinel

    local = LocalSentinel().start()
    try:
        out = run("sentinel.py", {
            "REDIS_SENTINELS": ",".join(s.address for s in local.sentinels),
            "REDIS_SERVICE": SERVICE, "REDIS_USER": NODE_USER, "REDIS_PASS": NODE_PASS,
            "SENTINEL_PASS": SENTINEL_PASS})
        primary = local.primary().address
    finally:
        local.cleanup()
    assert f"primary at {primary} open>" in out
    assert "INCR -> (1, None)" in out and "replica ROLE -> slave" in out
    assert NODE_PASS not in out and SENTINEL_PASS not in out
