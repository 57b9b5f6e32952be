"""The command line, checked against redis-cli itself on the same server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.servers import ALICE, RedisServer, free_port

REDIS_CLI = shutil.which("redis-cli") or "redis-cli"


def levredis(*args: str, env: dict[str, str] | None = None, stdin: str | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "levredis", *args], capture_output=True,
                          text=True, timeout=30, env={**os.environ, **(env or {})},
                          input=stdin, check=False)


def redis_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REDIS_CLI, *args], capture_output=True, text=True, timeout=30,
                          check=False)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    server.command("RPUSH", "list", "a", "b", "c")
    server.command("SET", "text", "x\x01y\"é\n")
    yield server
    server.cleanup()


COMMANDS = [
    ["PING"], ["ECHO", "PONG"], ["GET", "missing"], ["INCR", "counter"], ["GET", "text"],
    ["LRANGE", "list", "0", "-1"], ["LRANGE", "nothing", "0", "-1"], ["NOSUCHCOMMAND"],
    ["EVAL", "return {1, {'a', {'b', 'c'}}, {}, 'x', redis.status_reply('ST')}", "0"],
    ["EVAL", "local t = {} for i = 1, 12 do t[i] = {i, tostring(i)} end return t", "0"],
    ["HGETALL", "nohash"], ["SET", "k", "v"], ["INCR", "text"],
]


@pytest.mark.parametrize("mode", ["--no-raw", "--raw"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c)[:30])
def test_output_is_exactly_redis_clis(server: RedisServer, command: list[str], mode: str) -> None:
    server.command("DEL", "counter")
    ours = levredis("-p", str(server.port), mode, *command)
    server.command("DEL", "counter")
    theirs = redis_cli("-p", str(server.port), mode, *command)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout


def test_url_ping_prints_pong(server: RedisServer) -> None:
    result = levredis("-u", f"redis://127.0.0.1:{server.port}", "PING")
    assert (result.returncode, result.stdout) == (0, "PONG\n")


def test_db_option_selects_the_database(server: RedisServer) -> None:
    assert levredis("-p", str(server.port), "-n", "3", "SET", "where", "three").returncode == 0
    assert levredis("-p", str(server.port), "-n", "3", "GET", "where").stdout == "three\n"
    assert levredis("-p", str(server.port), "GET", "where").stdout == "\n"


def test_connection_failure_exits_non_zero_with_one_line() -> None:
    result = levredis("-p", str(free_port()), "PING")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Could not connect to Redis" in result.stderr and "connection refused" in result.stderr


def test_user_and_password_and_rediscli_auth(acl_server: RedisServer) -> None:
    port = str(acl_server.port)
    by_flag = levredis("-p", port, "--user", ALICE[0], "--pass", ALICE[1], "ACL", "WHOAMI")
    assert by_flag.stdout == "alice\n"
    by_env = levredis("-p", port, "--user", ALICE[0], "ACL", "WHOAMI",
                      env={"REDISCLI_AUTH": ALICE[1]})
    assert by_env.stdout == "alice\n"
    wrong = levredis("-p", port, "--user", ALICE[0], "PING", env={"REDISCLI_AUTH": "nope-pw"})
    assert wrong.returncode == 1 and "WRONGPASS" in wrong.stderr
    for result in (by_flag, by_env, wrong):
        assert ALICE[1] not in result.stdout + result.stderr
        assert "nope-pw" not in result.stdout + result.stderr


def test_tls_with_a_private_ca(tls_server: RedisServer, tls_ca: trustme.CA,
                               tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(ca_file)
    ok = levredis("-p", str(tls_server.port), "--tls", "--cacert", str(ca_file), "PING")
    assert (ok.returncode, ok.stdout) == (0, "PONG\n")
    untrusted = levredis("-p", str(tls_server.port), "--tls", "--timeout", "5", "PING")
    assert untrusted.returncode == 1 and "certificate" in untrusted.stderr


def test_commands_from_stdin_when_no_command_is_given(server: RedisServer) -> None:
    result = levredis("-p", str(server.port), "--no-raw",
                      stdin='SET piped "two words"\nGET piped\nEXISTS piped\nquit\nGET piped\n')
    assert result.stdout == 'OK\n"two words"\n(integer) 1\n'


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("levredis")
    assert script.exists()
    assert "redis-cli" in subprocess.run([str(script), "--help"], capture_output=True,
                                          text=True, check=False).stdout


def test_interactive_prompt_on_a_terminal_with_history(server: RedisServer, tmp_path: Path) -> None:
    import pty
    import select

    env = {**os.environ, "HOME": str(tmp_path), "TERM": "dumb"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: levredis on a terminal
        os.execve(sys.executable, [sys.executable, "-m", "levredis", "-p", str(server.port),
                                   "-n", "2"], env)
    output = b""

    def read_until(marker: bytes) -> None:
        nonlocal output
        while marker not in output:
            ready, _, _ = select.select([fd], [], [], 10)
            assert ready, f"no {marker!r} in {output!r}"
            output += os.read(fd, 4096)

    prompt = f"127.0.0.1:{server.port}[2]> ".encode()
    read_until(prompt)
    os.write(fd, b"SET tty:key 'hello there'\r")
    read_until(b"OK")
    os.write(fd, b"GET tty:key\r")
    read_until(b'"hello there"')
    os.write(fd, b"quit\r")
    os.waitpid(pid, 0)
    os.close(fd)
    assert output.count(prompt) >= 2
    history = (tmp_path / ".levredis_history").read_text()
    assert "GET tty:key" in history


def test_piped_lines_are_unquoted_byte_for_byte_like_redis_cli(server: RedisServer) -> None:
    # The example from redis-cli's quoting rules: \x41 and \n become bytes.
    lines = ('SET q "\\x41\\n"\nGET q\nSTRLEN q\nSET q2 \'it\\\'s\'\nGET q2\n'
             'SET q3 "unbalanced\nECHO "a\\tb"\n')
    ours = levredis("-p", str(server.port), "-n", "9", stdin=lines)
    theirs = subprocess.run([REDIS_CLI, "-p", str(server.port), "-n", "9"], input=lines,
                            capture_output=True, text=True, timeout=30, check=False)
    assert ours.stdout == theirs.stdout
    assert "2\n" in ours.stdout and "Invalid argument(s)" in ours.stdout


@pytest.mark.parametrize("command", [["LATENCY", "DOCTOR"], ["MEMORY", "DOCTOR"],
                                     ["latency", "doctor"]])
@pytest.mark.parametrize("mode", ["--raw", "--no-raw"])
def test_text_for_people_is_printed_as_it_is_like_redis_cli(
    server: RedisServer, command: list[str], mode: str,
) -> None:
    ours = levredis("-p", str(server.port), mode, *command)
    theirs = redis_cli("-p", str(server.port), mode, *command)
    assert ours.stdout == theirs.stdout and not ours.stdout.endswith("\n\n")


def test_info_is_printed_as_it_is_through_a_pipe_and_on_a_terminal(server: RedisServer) -> None:
    for mode in ("--raw", "--no-raw"):
        ours = levredis("-p", str(server.port), mode, "INFO", "keyspace")
        theirs = redis_cli("-p", str(server.port), mode, "INFO", "keyspace")
        assert ours.stdout == theirs.stdout
        assert ours.stdout.startswith("# Keyspace") and '"' not in ours.stdout


def test_the_verbatim_list_is_redis_clis() -> None:
    from levredis._cli import prints_verbatim

    for args in (["INFO"], ["info", "server"], ["LOLWUT"], ["CLUSTER", "NODES"],
                 ["client", "list"], ["CLIENT", "INFO"], ["LATENCY", "GRAPH", "command"],
                 ["MEMORY", "MALLOC-STATS"], ["DEBUG", "HTSTATS", "0"]):
        assert prints_verbatim(args), args
    for args in (["GET", "info"], ["CLUSTER", "NODES", "x"], ["LATENCY", "GRAPH"],
                 ["LATENCY", "DOCTOR", "x"], ["CLIENT", "ID"], ["MEMORY", "USAGE", "k"]):
        assert not prints_verbatim(args), args
