from __future__ import annotations

import pytest

from levredis._resp import AcceleratedParser, Parser, speedups_available


@pytest.fixture(scope="session", params=["pure", "compiled"])
def parser_class(request: pytest.FixtureRequest) -> type[Parser]:
    """Parser tests run on the pure parser and on the compiled fast path."""
    if request.param == "pure":
        return Parser
    assert speedups_available(), "the compiled parser is not built: pip install -e . with a C compiler"
    return AcceleratedParser
