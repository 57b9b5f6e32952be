"""Sizes for the long runs: small in `make test`, large in `make stress`.

`make stress` sets LEVREDIS_STRESS=1; figures the runs measure are printed at
the end of the session and, with LEVREDIS_FIGURES=path, written as JSON.
"""

from __future__ import annotations

import os
from typing import Any

STRESS = os.environ.get("LEVREDIS_STRESS") == "1"

#: Collected by the tests, printed by conftest's terminal summary.
FIGURES: dict[str, Any] = {}


def size(quick: int, stress: int) -> int:
    return stress if STRESS else quick


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
