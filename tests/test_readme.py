"""Every code block of the README runs, and prints what its comments say.

Python blocks run as scripts against a test server (127.0.0.1:6379 in the text
becomes the test server's port); each ``print(...)  # expected`` line must
print the expected text (``...`` stands for any text). ``levredis`` command
lines run the installed command line. ``make demo`` runs as the Makefile
runs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.S)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
COMMANDS = [line for lang, code in BLOCKS if lang == "sh" for line in code.splitlines()
            if line.startswith("levredis ")]


def localize(code: str, server: RedisServer) -> str:
    return code.replace("127.0.0.1:6379", server.address).replace(
        '"port": 6379', f'"port": {server.port}').replace("-p 6379", f"-p {server.port}")


def matches(expected: str, printed: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, printed) is not None


def test_the_readme_has_code_to_check() -> None:
    assert len(PYTHON) >= 5 and len(COMMANDS) >= 2


def run_block(code: str, server: RedisServer) -> None:
    """Run a Python block against ``server``; each ``print(...)  # expected`` must hold."""
    completed = subprocess.run([sys.executable, "-c", localize(code, server)],
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    printed = completed.stdout.splitlines()
    expected = [line.split("# ", 1)[1].strip() for line in code.splitlines()
                if line.strip().startswith("print(") and "# " in line]
    assert len(printed) >= len(expected)
    for want, got in zip(expected, printed, strict=False):
        assert matches(want, got), (want, got)


@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{n}" for n in range(len(PYTHON))])
def test_python_blocks_run_and_print_what_they_say(code: str, own_server: RedisServer) -> None:
    run_block(code, own_server)


@pytest.mark.parametrize("line", COMMANDS)
def test_command_lines_run(line: str, own_server: RedisServer) -> None:
    args = localize(line, own_server).split()[1:]
    completed = subprocess.run([sys.executable, "-m", "levredis", *args], capture_output=True,
                               text=True, timeout=30, check=False)
    assert completed.returncode == 0, completed.stderr


def test_make_demo_runs_the_quickstart() -> None:
    completed = subprocess.run(["bash", "scripts/demo.sh", sys.executable], cwd=ROOT,
                               capture_output=True, text=True, timeout=120, check=False,
                               env={**os.environ})
    assert completed.returncode == 0, completed.stderr
    assert "GET greeting       -> ('hello', None)" in completed.stdout


def test_links_work_on_the_package_index_page() -> None:
    """PyPI shows the README without the repository around it: no relative links,
    and every linked file exists in the repository."""
    import re

    text = README
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    base = "https://github.com/levredis/levredis/blob/main/"
    for target in targets:
        assert target.startswith(("https://", "http://", "#")), target
        if target.startswith(base):
            path = target[len(base):].split("#")[0]
            assert (ROOT / path).exists(), target
