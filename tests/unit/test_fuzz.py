"""Hostile replies: random, truncated, split and mutated streams.

A fast fuzzer of its own (hypothesis drives the smaller property tests in
test_resp.py): `make test` runs 20,000 inputs, `make stress` 1,000,000. The
parser may only ever return values or raise RespError; the pure parser must
agree with the plain reference parser.
"""

from __future__ import annotations

import random
import time
import tracemalloc

from levredis._resp import INCOMPLETE, MAX_BULK_LENGTH, AcceleratedParser, Parser, RespError
from tests.reference_parser import ReferenceParser
from tests.stressing import FIGURES, size


def random_reply(rng: random.Random, depth: int = 0) -> bytes:
    kind = rng.random()
    if kind < 0.3 or depth > 3:
        data = rng.randbytes(rng.choice([0, 1, 3, 10, 40, 600]))
        return b"$%d\r\n%s\r\n" % (len(data), data)
    if kind < 0.4:
        return b":%d\r\n" % rng.randint(-(2**63), 2**63 - 1)
    if kind < 0.5:
        return b"+" + rng.choice([b"OK", b"PONG", b"QUEUED", b""]) + b"\r\n"
    if kind < 0.55:
        return b"-ERR " + rng.choice([b"x", b"wrong type", b""]) + b"\r\n"
    if kind < 0.6:
        return rng.choice([b"$-1\r\n", b"*-1\r\n", b"*0\r\n"])
    count = rng.randint(1, 5)
    return b"*%d\r\n" % count + b"".join(random_reply(rng, depth + 1) for _ in range(count))


HOSTILE = [
    b"$%d\r\n" % (MAX_BULK_LENGTH + 1), b"$-2\r\n", b"*-7\r\n", b"*99999999999\r\n",
    b"$3\r\nabcdef\r\n", b"!\r\n", b"%2\r\n", b"\r\n", b":12a\r\n", b"$\r\n",
    b"*1\r\n" * 12_000 + b":1\r\n", b"+" + b"x" * 2_000_000,
]


def mutate(rng: random.Random, stream: bytes) -> bytes:
    data = bytearray(stream)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        where = rng.randrange(len(data))
        choice = rng.random()
        if choice < 0.4:
            data[where] = rng.choice(b"\r\n$*:+-0123456789x\x00\xff")
        elif choice < 0.7:
            data.insert(where, rng.choice(b"\r\n$*:-9"))
        elif choice < 0.9:
            del data[where]
        else:
            del data[where:]  # truncated
    return bytes(data)


def drain(parser: object, chunks: list[bytes]) -> tuple[list[object], str]:
    out: list[object] = []
    try:
        for chunk in chunks:
            parser.feed(chunk)  # type: ignore[attr-defined]
            while (value := parser.next_reply()) is not INCOMPLETE:  # type: ignore[attr-defined]
                out.append(value)
    except RespError:
        return out, "error"
    return out, "partial" if parser.has_partial() else "done"  # type: ignore[attr-defined]


def same(a: object, b: object) -> bool:
    """Deep equality without recursion (replies may nest 10,000 levels)."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif type(x) is not type(y) or x != y:
            return False
    return True


def split(rng: random.Random, stream: bytes) -> list[bytes]:
    if rng.random() < 0.02 and len(stream) < 400:
        return [stream[i : i + 1] for i in range(len(stream))]  # at every byte
    cuts = sorted(rng.randrange(len(stream) + 1) for _ in range(rng.randint(0, 4)))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def test_fuzzed_streams_give_values_or_a_clean_protocol_error() -> None:
    rng = random.Random(20261125)
    inputs = size(20_000, 1_000_000)
    outcomes = {"done": 0, "partial": 0, "error": 0}
    disagreements = 0
    sampled_peaks = 0
    started = time.perf_counter()
    for n in range(inputs):
        roll = rng.random()
        if roll < 0.01:
            stream = rng.choice(HOSTILE)
        elif roll < 0.2:
            stream = rng.randbytes(rng.randint(0, 200))
        else:
            stream = b"".join(random_reply(rng) for _ in range(rng.randint(1, 3)))
            if roll < 0.6:
                stream = mutate(rng, stream)
        chunks = split(rng, stream)
        decode = rng.random() < 0.5
        measure = n % 200 == 0
        results = []
        for parser_class in (Parser, AcceleratedParser):
            if measure:
                tracemalloc.start()
            results.append(drain(parser_class(decode), chunks))
            if measure:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                # Allocation follows what was received, never an announced
                # length. A nesting level is 4 bytes on the wire and ~170 bytes
                # of Python objects (its list, the parse stack, its line).
                assert peak <= 64 * len(stream) + 1_048_576, (parser_class, peak, len(stream))
                sampled_peaks += 1
        (fast, fast_end), (compiled, compiled_end) = results
        if not same(compiled, fast) or (compiled_end != fast_end and not (
                {compiled_end, fast_end} <= {"error", "partial"})):
            disagreements += 1
        outcomes[fast_end] += 1
        if len(stream) < 100_000:
            reference, reference_end = drain(ReferenceParser(decode), chunks)
            if not same(fast, reference) or (fast_end != reference_end and not (
                    {fast_end, reference_end} <= {"error", "partial"})):
                disagreements += 1
    assert disagreements == 0
    FIGURES["fuzzed RESP inputs"] = {
        "inputs": inputs, **outcomes, "allocation checks": sampled_peaks,
        "seconds": round(time.perf_counter() - started, 1)}
