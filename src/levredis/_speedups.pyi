from collections.abc import Sequence
from typing import Any

NEED_MORE: int
HAND_OVER: int

def parse(
    data: bytes, start: int, decode: bool, error_type: type, big: int
) -> tuple[list[tuple[int, Any]], int, int]: ...

def plain_args(args: tuple[object, ...]) -> bool: ...

def encode(args: Sequence[Any]) -> bytes | None: ...
def encode_many(commands: Sequence[Any]) -> bytes | None: ...
