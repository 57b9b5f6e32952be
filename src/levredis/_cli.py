"""``levredis`` / ``python -m levredis``: a command line shaped like redis-cli.

    levredis -u redis://127.0.0.1:6379 PING        # PONG
    levredis -n 2 LRANGE queue 0 -1                # 1) "a" ...
    levredis                                        # 127.0.0.1:6379> prompt

Replies print as redis-cli prints them on a terminal (``"a"``, ``(integer) 3``,
``(nil)``, ``(error) ERR ...``, numbered arrays); with ``--raw``, or when the
output is not a terminal, as plain text.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from ._client import Client, connect
from ._errors import Error, NotFound, ServerError
from ._resp import Reply, SimpleString

HISTORY = Path.home() / ".levredis_history"
_ESCAPES = {0x5C: "\\\\", 0x22: '\\"', 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x07: "\\a",
            0x08: "\\b"}


def quoted(value: str | bytes) -> str:
    """A string as redis-cli shows it: in quotes, unprintable bytes as \\xHH."""
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    out = ['"']
    for byte in data:
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)


def format_tty(value: Reply, prefix: str = "") -> str:
    """redis-cli's terminal format, nested arrays indented under their number."""
    if value is None:
        return "(nil)\n"
    if isinstance(value, ServerError):
        return f"(error) {value}\n"
    if isinstance(value, SimpleString):
        return f"{value}\n"
    if isinstance(value, (str, bytes)):
        return quoted(value) + "\n"
    if isinstance(value, bool):  # RESP3 only; the CLI speaks RESP2
        return "(true)\n" if value else "(false)\n"
    if isinstance(value, int):
        return f"(integer) {value}\n"
    if isinstance(value, float):
        return f"(double) {value}\n"
    if isinstance(value, dict):
        value = [part for pair in value.items() for part in pair]
    elif isinstance(value, set):
        value = list(value)
    if not value:
        return "(empty array)\n"
    width = len(str(len(value)))
    inner = prefix + " " * (width + 2)
    out = []
    for number, item in enumerate(value, 1):
        if number > 1:
            out.append(prefix)
        out.append(f"{number:>{width}}) ")
        out.append(format_tty(item, inner))
    return "".join(out)


def format_raw(value: Reply) -> str:
    """redis-cli's --raw format: the bare text, array elements on their own lines."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(format_raw(item) for item in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="levredis", add_help=False,
        description="Run Redis commands with levredis (options as in redis-cli).")
    cli.add_argument("--help", action="help", help="show this help and exit")
    cli.add_argument("-u", dest="url", help="server URL: redis://[user:pass@]host[:port][/db]")
    cli.add_argument("-h", dest="host", default="127.0.0.1", help="server host (127.0.0.1)")
    cli.add_argument("-p", dest="port", type=int, default=6379, help="server port (6379)")
    cli.add_argument("-n", dest="db", type=int, default=None, help="database number")
    cli.add_argument("--user", help="ACL user (with --pass)")
    cli.add_argument("--pass", "-a", dest="password",
                     help="password (or set REDISCLI_AUTH, which is safer)")
    cli.add_argument("--tls", action="store_true", help="connect with TLS")
    cli.add_argument("--cacert", help="CA certificate file to verify the server with")
    cli.add_argument("--timeout", type=float, default=None, help="seconds per call")
    cli.add_argument("--raw", dest="raw", action="store_true", default=None,
                     help="plain output (the default when not on a terminal)")
    cli.add_argument("--no-raw", dest="raw", action="store_false",
                     help="redis-cli's terminal output even when not on a terminal")
    cli.add_argument("command", nargs=argparse.REMAINDER, help="a command and its arguments")
    return cli


def build_config(options: argparse.Namespace) -> str | dict[str, Any]:
    """The connect() config for these options; the password never leaves it."""
    password = options.password or os.environ.get("REDISCLI_AUTH")
    context: ssl.SSLContext | bool = False
    if options.tls or options.cacert:
        context = ssl.create_default_context(cafile=options.cacert)
    if options.url and not (password or options.db is not None or context or options.timeout):
        return str(options.url)
    config: dict[str, Any] = {"host": options.host, "port": options.port}
    if options.url:
        from ._config import parse_config

        parsed = parse_config(options.url)
        if isinstance(parsed, Error):
            return str(options.url)  # connect() reports the problem
        config = {"host": parsed.host, "port": parsed.port, "db": parsed.db,
                  "ssl": parsed.ssl, "auth": dict(parsed.auth) if parsed.auth else None}
    if options.db is not None:
        config["db"] = options.db
    if context:
        config["ssl"] = context
    if password:
        config["auth"] = {"user": options.user or "default", "pass": password}
    if options.timeout:
        config["timeout"] = options.timeout
    return config


async def run_command(client: Client, args: Sequence[str]) -> tuple[Reply, Error | None]:
    connection = client._connection  # the CLI wants simple strings told apart
    connection.parser.mark_simple = True
    value, err = await client.cmd(*args)
    if isinstance(err, NotFound):
        return None, None  # NULL prints as (nil), it is not an error here
    return value, err


def prints_verbatim(args: Sequence[str]) -> bool:
    """Whether redis-cli prints this command's reply as it is, in any mode.

    The list is redis-cli's own (``cliSendCommand`` in Redis 7.0's
    redis-cli.c): text meant for people, printed without quotes, prefixes or
    an added line end, on a terminal and through a pipe alike.
    """
    count = len(args)
    name = args[0].lower() if args else ""
    sub = args[1].lower() if count >= 2 else ""
    return (
        name in ("info", "lolwut")
        or (name == "debug" and sub in ("htstats", "htstats-key", "client-eviction"))
        or (name == "memory" and sub in ("malloc-stats", "doctor"))
        or (name == "cluster" and count == 2 and sub in ("nodes", "info"))
        or (name == "client" and sub in ("list", "info"))
        or (name == "latency" and ((count == 3 and sub == "graph")
                                   or (count == 2 and sub == "doctor")))
        or (name == "proxy" and sub == "info")
    )


def show(value: Reply, err: Error | None, raw: bool, out: TextIO,
         verbatim: bool = False) -> None:
    if verbatim:
        out.write(f"{err}\n" if err is not None else format_raw(value))
    elif err is not None:
        # redis-cli's raw mode follows an error with an empty line.
        out.write(f"{err}\n\n" if raw else f"(error) {err}\n")
    elif raw:
        out.write(format_raw(value) + "\n")
    else:
        out.write(format_tty(value))
    out.flush()


def prompt_for(options: argparse.Namespace, client: Client) -> str:
    cfg = client.cfg
    host = f"[{cfg['host']}]" if ":" in cfg["host"] else cfg["host"]
    db = f"[{cfg['db']}]" if cfg["db"] else ""
    return f"{host}:{cfg['port']}{db}> "


# The escapes redis-cli reads inside double quotes.
_UNESCAPES: Final[dict[int, bytes]] = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t",
                                       ord("b"): b"\b", ord("a"): b"\a"}
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
_SPACE: Final = frozenset(b" \n\r\t\v\f")


def split_line(line: str) -> list[str] | None:
    r"""Split a typed or piped line the way redis-cli does (its ``sdssplitargs``); None if invalid.

    Inside double quotes ``\xHH``, ``\n``, ``\r``, ``\t``, ``\b`` and ``\a``
    become those bytes and a backslash takes any other character as it is;
    inside single quotes only ``\'`` is special. A quote may start mid-word,
    and a closing quote must end the word; an unbalanced quote is an error.
    Bytes that are not UTF-8 come back as surrogates, so they are sent as
    they were.

    >>> split_line(r'SET k "\x41\n" ' + "'it\\'s'")
    ['SET', 'k', 'A\n', "it's"]
    >>> split_line('GET "k') is None
    True
    """
    data = line.encode("utf-8", "surrogateescape")
    args: list[str] = []
    at, end = 0, len(data)
    while True:
        while at < end and data[at] in _SPACE:
            at += 1
        if at >= end:
            return args
        word = bytearray()
        quote = 0
        while True:
            byte = data[at] if at < end else 0
            if quote == 0x22:  # "
                if byte == 0x5C and at + 3 < end and data[at + 1] == 0x78 and \
                        data[at + 2] in _HEX and data[at + 3] in _HEX:
                    word.append(int(data[at + 2 : at + 4], 16))
                    at += 3
                elif byte == 0x5C and at + 1 < end:
                    at += 1
                    word += _UNESCAPES.get(data[at], data[at : at + 1])
                elif byte == 0x22:
                    if at + 1 < end and data[at + 1] not in _SPACE:
                        return None  # a closing quote must end the word
                    at += 1
                    break
                elif at >= end:
                    return None  # unbalanced
                else:
                    word.append(byte)
            elif quote == 0x27:  # '
                if byte == 0x5C and at + 1 < end and data[at + 1] == 0x27:
                    at += 1
                    word.append(0x27)
                elif byte == 0x27:
                    if at + 1 < end and data[at + 1] not in _SPACE:
                        return None
                    at += 1
                    break
                elif at >= end:
                    return None
                else:
                    word.append(byte)
            elif at >= end or byte in _SPACE:
                break
            elif byte in (0x22, 0x27):
                quote = byte
            else:
                word.append(byte)
            at += 1
        args.append(bytes(word).decode("utf-8", "surrogateescape"))


def interactive(loop: asyncio.AbstractEventLoop, client: Client,
                options: argparse.Namespace, raw: bool) -> None:
    """A prompt with history on a terminal; one command per line otherwise."""
    on_terminal = sys.stdin.isatty()
    if on_terminal:
        try:
            import readline

            if HISTORY.exists():
                readline.read_history_file(HISTORY)
        except (ImportError, OSError):
            readline = None  # type: ignore[assignment]
    prompt = prompt_for(options, client) if on_terminal else ""
    while True:
        try:
            line = input(prompt) if on_terminal else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            break
        if not on_terminal and not line:
            break
        args = split_line(line)
        if args is None:
            print("Invalid argument(s)")
            continue
        if not args:
            continue
        if args[0].lower() in ("quit", "exit"):
            break
        value, err = loop.run_until_complete(run_command(client, args))
        show(value, err, raw, sys.stdout, prints_verbatim(args))
    if on_terminal and readline is not None:
        with contextlib.suppress(OSError):
            readline.write_history_file(HISTORY)


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    raw = options.raw if options.raw is not None else not sys.stdout.isatty()
    config = build_config(options)
    loop = asyncio.new_event_loop()
    try:
        client, err = loop.run_until_complete(connect(config))
        if client is None:
            where = f"{options.host}:{options.port}" if not options.url else "the server"
            print(f"Could not connect to Redis at {where}: {err}", file=sys.stderr)
            return 1
        if options.command:
            value, err = loop.run_until_complete(run_command(client, options.command))
            show(value, err, raw, sys.stdout, prints_verbatim(options.command))
        else:
            interactive(loop, client, options, raw)
        loop.run_until_complete(client.close())
        return 0
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
