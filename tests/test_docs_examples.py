"""The Python blocks of the docs pages listed here run, and print what their comments say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.servers import RedisServer
from tests.test_readme import run_block

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["docs/resp3.md", "docs/caching.md"]
BLOCKS = [(page, code) for page in PAGES
          for lang, code in re.findall(r"```(\w+)\n(.*?)```", (ROOT / page).read_text(), re.S)
          if lang == "python"]


@pytest.mark.parametrize(("page", "code"), BLOCKS,
                         ids=[f"{page}-{n}" for n, (page, _) in enumerate(BLOCKS)])
def test_doc_blocks_run_and_print_what_they_say(page: str, code: str,
                                                own_server: RedisServer) -> None:
    assert "print(" in code, page
    run_block(code, own_server)
