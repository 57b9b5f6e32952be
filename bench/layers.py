"""What levredis' own layers cost per command, without a socket: W1's GET and W2's SET.

    python -m bench.layers [--quick]

Each layer is timed alone with timeit (best of 7): encoding the arguments,
planning the command in the session state, parsing its reply and routing it
to its caller, and (W2) shaping the results and the harness's own list of
commands. The rest of a command's wall time (bench.profile, bench.against_c)
is the event loop, the kernel and the server. Works on older versions of the
package too (for before/after figures).
"""

from __future__ import annotations

import asyncio
import sys
import timeit
from collections.abc import Callable
from typing import Any

from levredis import _client, _resp
from levredis._dispatch import Batch, Dispatcher
from levredis._errors import ServerError
from levredis._resp import INCOMPLETE, new_parser
from levredis._state import SessionState

VALUE = b"x" * 64


#: ``--quick``: a smoke run, a hundredth of the repetitions.
SCALE = 100 if "--quick" in sys.argv else 1


def best(run: Callable[[], Any], number: int) -> float:
    number = max(number // SCALE, 1)
    return min(timeit.repeat(run, number=number, repeat=7)) / number


def deliver(dispatch: Dispatcher, parser: Any) -> None:
    if hasattr(dispatch, "deliver"):
        dispatch.deliver(parser)
    else:  # (before read-ahead routing)
        while (value := parser.next_reply()) is not INCOMPLETE:
            dispatch.route(value, parser.kind)


def main() -> None:
    loop = asyncio.new_event_loop()
    state = SessionState(0, False, False)
    keys = [f"bench:set:{i}" for i in range(1000)]
    commands = [["SET", key, VALUE] for key in keys]
    replies_data = b"+OK\r\n" * 1000

    def parse_and_route_pipeline() -> Any:
        dispatch = Dispatcher(state)
        future = loop.create_future()
        dispatch.waiters.append(Batch(future, 1000, None))
        parser = new_parser(False)
        parser.feed(replies_data)
        deliver(dispatch, parser)
        return future.result()

    replies = parse_and_route_pipeline()
    w2 = {
        "build the commands (harness)": lambda: [["SET", key, VALUE] for key in keys],
        "encode": lambda: _client.encode_pipeline(commands),
        "session state (plan)": lambda: state.plan_batch(commands),
        "parse + dispatch": parse_and_route_pipeline,
        "result lists": lambda: [[None] if v is None else [None, v] if v.__class__ is ServerError
                                 else [v] for v in replies],
    }
    for name, run in w2.items():
        print(f"W2 {name:30} {best(run, 200) * 1e9 / 1000:7.0f} ns/command")
    args = ("GET", "bench:get")
    reply = b"$64\r\n" + VALUE + b"\r\n"

    def parse_and_route_one() -> Any:
        dispatch = Dispatcher(state)
        future = loop.create_future()
        dispatch.waiters.append(future)
        parser = new_parser(False)
        parser.feed(reply)
        deliver(dispatch, parser)
        return future.result()

    setup = best(lambda: (Dispatcher(state), loop.create_future(), new_parser(False)), 100_000)
    w1 = {
        "encode": lambda: _resp.encode_command(args),
        "session state (plan)": lambda: state.plan_command(args),
    }
    for name, run in w1.items():
        print(f"W1 {name:30} {best(run, 100_000) * 1e9:7.0f} ns/command")
    routed = best(parse_and_route_one, 100_000) - setup
    print(f"W1 {'parse + dispatch':30} {routed * 1e9:7.0f} ns/command")
    loop.close()


if __name__ == "__main__":
    main()
