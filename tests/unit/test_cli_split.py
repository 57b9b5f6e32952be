"""The command line's line splitter, against redis-cli's own quoting rules (sdssplitargs)."""

from __future__ import annotations

import pytest

from levredis._cli import split_line


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("GET k", ["GET", "k"]),
        ("  GET \t k \r\n", ["GET", "k"]),
        ('SET k "two words"', ["SET", "k", "two words"]),
        ('SET k "\\x41\\n"', ["SET", "k", "A\n"]),  # \xHH and \n become bytes
        ('SET k "\\r\\t\\b\\a"', ["SET", "k", "\r\t\b\a"]),
        ('SET k "a\\\\b"', ["SET", "k", "a\\b"]),  # a backslash takes the next character
        ('SET k "\\q\\""', ["SET", "k", 'q"']),
        ('SET k "\\xZZ"', ["SET", "k", "xZZ"]),  # not hex: the x is taken as it is
        ('SET k "\\xff"', ["SET", "k", "\udcff"]),  # a byte that is no UTF-8, kept exact
        ("SET k 'it\\'s'", ["SET", "k", "it's"]),  # single quotes: only \' is special
        ("SET k '\\x41\\n'", ["SET", "k", "\\x41\\n"]),
        ('ECHO ""', ["ECHO", ""]),
        ('a"b c"', ["ab c"]),  # a quote may start mid-word
        ("caf\u00e9", ["caf\u00e9"]),
        ("", []),
        ("   ", []),
    ],
)
def test_lines_split_as_redis_cli_splits_them(line: str, args: list[str]) -> None:
    assert split_line(line) == args


@pytest.mark.parametrize("line", ['GET "k', "GET 'k", 'SET k "a"b', "SET k 'a'b", 'a"b c"d'])
def test_unbalanced_quotes_and_words_after_a_closing_quote_are_errors(line: str) -> None:
    assert split_line(line) is None
