"""The Python blocks of the docs pages listed here run, and print what their comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import RedisServer
from tests.test_readme import localize, matches

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["docs/resp3.md"]
BLOCKS = [(page, code) for page in PAGES
          for lang, code in re.findall(r"```(\w+)\n(.*?)```", (ROOT / page).read_text(), re.S)
          if lang == "python"]


@pytest.mark.parametrize(("page", "code"), BLOCKS,
                         ids=[f"{page}-{n}" for n, (page, _) in enumerate(BLOCKS)])
def test_doc_blocks_run_and_print_what_they_say(page: str, code: str,
                                                own_server: RedisServer) -> None:
    completed = subprocess.run([sys.executable, "-c", localize(code, own_server)],
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    printed = completed.stdout.splitlines()
    expected = [line.split("# ", 1)[1].strip() for line in code.splitlines()
                if line.strip().startswith("print(") and "# " in line]
    assert expected and len(printed) >= len(expected)
    for want, got in zip(expected, printed, strict=False):
        assert matches(want, got), (want, got)
