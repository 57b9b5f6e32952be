"""pipeline(): shapes, offline cases, transactions and failures, on a real server."""

from __future__ import annotations

import asyncio

import levredis
from tests.servers import RedisServer


async def test_pipeline_result_shapes(client: levredis.Client) -> None:
    results, err = await client.pipeline([
        ["SET", "k1", "v1"],
        ["SET", "k2", "v2"],
        ["GET", "k1"],
        ["GET", "missing"],
        ["INCR", "k1"],
        ["MGET", "k1", "missing"],
    ])
    assert err is None
    assert results == [["OK"], ["OK"], ["v1"], [None],
                       [None, "ERR value is not an integer or out of range"], [["v1", None]]]
    assert results is not None
    assert isinstance(results[4][1], levredis.ServerError)


async def test_empty_or_none_pipeline_touches_nothing(own_server: RedisServer) -> None:
    client, _ = await levredis.connect(own_server.address)
    assert client is not None
    own_server.stop()  # any network use would now fail
    assert await client.pipeline([]) == ([], None)
    assert await client.pipeline(None) == ([], None)
    await client.close()


async def test_malformed_entries_send_nothing(client: levredis.Client) -> None:
    for commands in ([["SET", "a", "1"], "GET a"], [["SET", "a", "1"], []],
                     [["SET", "a", "1"], ["SET", "b", None]], [["SET", "a", "1"], ["X", False]]):
        results, err = await client.pipeline(commands)  # type: ignore[arg-type]
        assert results is None and isinstance(err, levredis.UsageError), err
        assert "entry 2" in err
    results, err = await client.pipeline("GET a")
    assert results is None and isinstance(err, levredis.UsageError)
    assert await client.cmd("EXISTS", "a") == (0, None)


class _FakesItsClass:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise ValueError("no")


class _Unsized(list):  # type: ignore[type-arg]
    def __len__(self) -> int:
        raise RuntimeError("no")

    def __bool__(self) -> bool:
        raise RuntimeError("no")


class _Tuple(tuple):  # type: ignore[type-arg]
    pass


async def test_hostile_pipelines_are_refused_or_sent_as_read_never_raised(
        client: levredis.Client) -> None:
    for hostile in (_FakesItsClass(), _Unsized([["PING"]]), _Unsized(), [_Unsized(["PING"])]):
        results, err = await client.pipeline(hostile)  # type: ignore[arg-type]
        assert results is None and isinstance(err, levredis.UsageError), hostile
    assert await client.pipeline(_Tuple([_Tuple(["ECHO", "a"])])) == ([["a"]], None)
    assert await client.cmd("PING") == ("PONG", None)


async def test_pipeline_accepts_tuples(client: levredis.Client) -> None:
    assert await client.pipeline((("SET", "t", 1), ("GET", "t"))) == ([["OK"], ["1"]], None)


async def test_multi_exec_pipeline_is_a_real_transaction_on_a_shared_client(
    client: levredis.Client,
) -> None:
    await client.cmd("SET", "n", 0)

    async def hammer() -> None:
        for _ in range(200):
            await client.cmd("INCR", "n")

    async def transaction() -> list[levredis.Reply]:
        results, err = await client.pipeline([["MULTI"], ["INCR", "n"], ["INCR", "n"],
                                              ["INCR", "n"], ["EXEC"]])
        assert err is None and results is not None
        exec_result = results[4][0]
        assert isinstance(exec_result, list)
        return exec_result

    outcome = await asyncio.gather(hammer(), hammer(), *(transaction() for _ in range(20)))
    for exec_result in outcome[2:]:
        assert isinstance(exec_result, list)
        first = exec_result[0]
        assert isinstance(first, int)
        assert exec_result == [first, first + 1, first + 2]  # nothing slipped in between
    assert await client.cmd("GET", "n") == (str(400 + 60), None)


async def test_watch_retry_loop(client: levredis.Client, redis_server: RedisServer) -> None:
    other, _ = await levredis.connect(f"{redis_server.address}/9")
    assert other is not None
    await client.cmd("SET", "balance", 10)
    await client.cmd("WATCH", "balance")
    await other.cmd("SET", "balance", 99)  # a concurrent write
    results, err = await client.pipeline([["MULTI"], ["SET", "balance", 11], ["EXEC"]])
    assert err is None and results is not None
    assert results[2] == [None]  # EXEC aborted: NULL
    assert await client.cmd("GET", "balance") == ("99", None)
    await other.close()


async def test_network_error_part_way_fails_the_whole_pipeline(own_server: RedisServer) -> None:
    client, _ = await levredis.connect(own_server.address)
    assert client is not None
    results, err = await client.pipeline([["SET", "a", "1"], ["DEBUG", "SLEEP", "0"],
                                          ["SHUTDOWN", "NOSAVE"], ["GET", "a"]])
    assert results is None
    assert isinstance(err, levredis.NetworkError)
    await client.close()
