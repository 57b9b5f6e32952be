"""The session state machine and the dispatcher, with bytes alone (no socket)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from levredis._dispatch import NOTHING_TO_READ, Batch, Dispatcher, UnsolicitedReply
from levredis._errors import UsageError
from levredis._resp import INCOMPLETE, Parser, Reply
from levredis._state import Plan, SessionState


class Connection:
    """State machine + dispatcher + parser, fed by hand."""

    def __init__(self, loop: asyncio.AbstractEventLoop, db: int = 0, authenticated: bool = False
                 ) -> None:
        self.loop = loop
        self.state = SessionState(db, authenticated)
        self.dispatch = Dispatcher(self.state)
        self.parser = Parser()

    def send(self, *args: object) -> asyncio.Future[Reply]:
        plan = self.state.plan_command(args)
        assert not isinstance(plan, UsageError), plan
        future: asyncio.Future[Reply] = self.loop.create_future()
        if plan is None:
            self.dispatch.waiters.append(future)
        else:
            self.dispatch.waiters.append(Batch(future, 1, [plan]))  # type: ignore[arg-type]
        return future

    def receive(self, data: bytes) -> None:
        self.parser.feed(data)
        while (value := self.parser.next_reply()) is not INCOMPLETE:
            self.dispatch.route(value, self.parser.kind)  # type: ignore[arg-type]

    def pushes(self) -> list[Reply]:
        return [value for _, value in self.dispatch.pushes]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def confirm(word: str, channel: str, count: int) -> bytes:
    return b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n:%d\r\n" % (
        len(word), word.encode(), len(channel), channel.encode(), count)


def test_plain_commands_have_no_plan_and_leave_the_session_clean() -> None:
    state = SessionState(0)
    for args in (["GET", "k"], [b"set", b"k", b"v"], ["CLIENT", "ID"], ["client", b"info"]):
        assert state.plan_command(args) is None
    assert state.unpoolable_reason() is None


def test_subscription_state_moves_only_on_the_servers_confirmation(
    loop: asyncio.AbstractEventLoop,
) -> None:
    c = Connection(loop)
    sent = c.send("SUBSCRIBE", "a")
    assert not c.state.listening and c.state.pushes_possible  # sent, not yet confirmed
    c.receive(confirm("subscribe", "a", 1))
    assert sent.result() == [["subscribe", "a", 1]]
    assert c.state.listening and c.state.unpoolable_reason() == "subscribed"
    c.send("UNSUBSCRIBE")
    c.receive(confirm("unsubscribe", "a", 0))
    assert not c.state.listening and c.state.unpoolable_reason() is None


def test_reset_clears_subscriptions_multi_and_db(loop: asyncio.AbstractEventLoop) -> None:
    c = Connection(loop, db=0)
    c.send("SUBSCRIBE", "a")
    c.receive(confirm("subscribe", "a", 1))
    c.send("RESET")
    c.receive(b"+RESET\r\n")
    assert not c.state.listening and not c.state.pushes_possible
    c.send("SELECT", 3)
    c.receive(b"+OK\r\n")
    assert c.state.unpoolable_reason() == "SELECT changed the db"
    c.send("RESET")
    c.receive(b"+RESET\r\n")
    assert c.state.unpoolable_reason() is None


def test_reset_on_an_authenticated_connection_makes_it_unpoolable(
    loop: asyncio.AbstractEventLoop,
) -> None:
    c = Connection(loop, authenticated=True)
    c.send("RESET")
    c.receive(b"+RESET\r\n")
    assert c.state.unpoolable_reason() == "RESET logged the connection out"


def test_a_message_shaped_reply_is_a_reply_when_not_subscribed(
    loop: asyncio.AbstractEventLoop,
) -> None:
    c = Connection(loop)
    got = c.send("LRANGE", "l", 0, -1)
    c.receive(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n")
    assert got.result() == ["message", "ch", "x"] and not c.dispatch.pushes


def test_subscribe_and_monitor_inside_multi_are_refused() -> None:
    state = SessionState(0)
    assert state.plan_command(["MULTI"]) is not None
    for args in (["SUBSCRIBE", "a"], ["PSUBSCRIBE", "a*"], ["SUNSUBSCRIBE"], ["MONITOR"]):
        refusal = state.plan_command(args)
        assert isinstance(refusal, UsageError) and "MULTI" in refusal
    assert isinstance(state.plan_command(["EXEC"]), Plan)
    # Until EXEC is answered, the transaction may still be open (EXEC and
    # DISCARD can be refused), so SUBSCRIBE is still refused.
    assert isinstance(state.plan_command(["SUBSCRIBE", "a"]), UsageError)


def test_only_an_answered_exec_ends_the_predicted_transaction(
    loop: asyncio.AbstractEventLoop,
) -> None:
    c = Connection(loop)
    c.send("MULTI")
    c.send("EXEC")
    c.receive(b"+OK\r\n*0\r\n")
    assert isinstance(c.state.plan_command(["SUBSCRIBE", "a"]), Plan)


def test_a_refused_discard_inside_multi_leaves_the_connection_unpoolable(
    loop: asyncio.AbstractEventLoop,
) -> None:
    c = Connection(loop)
    c.send("MULTI")
    c.send("DISCARD", "x")
    c.receive(b"+OK\r\n-ERR wrong number of arguments for 'discard' command\r\n")
    assert c.state.unpoolable_reason() == "DISCARD refused inside MULTI"
    assert isinstance(c.state.plan_command(["SUBSCRIBE", "a"]), UsageError)


def test_exec_without_multi_keeps_the_watch(loop: asyncio.AbstractEventLoop) -> None:
    c = Connection(loop)
    c.send("WATCH", "k")
    c.send("EXEC")
    c.receive(b"+OK\r\n-ERR EXEC without MULTI\r\n")
    assert c.state.unpoolable_reason() == "WATCH not ended"


def test_a_refused_multi_opens_no_transaction(loop: asyncio.AbstractEventLoop) -> None:
    c = Connection(loop)
    c.send("MULTI", "x")
    c.receive(b"-ERR wrong number of arguments for 'multi' command\r\n")
    assert isinstance(c.state.plan_command(["SUBSCRIBE", "a"]), Plan)


def test_a_refused_pipeline_changes_no_prediction() -> None:
    state = SessionState(0)
    refused = state.plan_batch([["MULTI"], ["SUBSCRIBE", "a"], ["EXEC"]])
    assert isinstance(refused, UsageError)
    assert isinstance(state.plan_command(["SUBSCRIBE", "a"]), Plan)  # not "inside MULTI"


def test_monitor_must_end_a_pipeline_and_nothing_follows_it() -> None:
    state = SessionState(0)
    refused = state.plan_batch([["MONITOR"], ["PING"]])
    assert isinstance(refused, UsageError) and "last command" in refused
    assert isinstance(state.plan_command(["MONITOR"]), Plan)
    assert isinstance(state.plan_command(["PING"]), UsageError)


def test_an_unsolicited_reply_outside_pub_sub_is_refused(loop: asyncio.AbstractEventLoop) -> None:
    c = Connection(loop)
    with pytest.raises(UnsolicitedReply):
        c.receive(b"+OK\r\n")


def test_a_late_duplicate_shard_unsubscribe_never_reaches_a_plain_caller(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # The server drops shard channel b (its slot moved) as the client sends
    # SUNSUBSCRIBE b and then GET: two identical confirmations, then GET's value.
    c = Connection(loop)
    c.send("SSUBSCRIBE", "b")
    c.receive(confirm("ssubscribe", "b", 1))
    unsubscribed = c.send("SUNSUBSCRIBE", "b")
    value = c.send("GET", "k")
    c.receive(confirm("sunsubscribe", "b", 0) + confirm("sunsubscribe", "b", 0) + b"$1\r\nv\r\n")
    assert unsubscribed.result() == [["sunsubscribe", "b", 0]]
    assert value.result() == "v"
    assert c.pushes() == [["sunsubscribe", "b", 0]]


def test_a_confirmation_for_another_channel_is_not_the_pending_commands(
    loop: asyncio.AbstractEventLoop,
) -> None:
    c = Connection(loop)
    c.send("SSUBSCRIBE", "a", "b")
    c.receive(confirm("ssubscribe", "a", 1) + confirm("ssubscribe", "b", 2))
    mine = c.send("SUNSUBSCRIBE", "a")
    c.receive(confirm("sunsubscribe", "b", 1))  # the server dropped b on its own
    assert not mine.done() and c.pushes()[-1] == ["sunsubscribe", "b", 1]
    c.receive(confirm("sunsubscribe", "a", 0))
    assert mine.result() == [["sunsubscribe", "a", 0]]


def test_a_waiting_reader_is_told_when_nothing_more_can_arrive(
    loop: asyncio.AbstractEventLoop,
) -> None:
    c = Connection(loop)
    c.send("SUBSCRIBE", "a")
    c.receive(confirm("subscribe", "a", 1))
    reader: asyncio.Future[object] = loop.create_future()
    c.dispatch.wait_push(reader)  # type: ignore[arg-type]
    c.send("UNSUBSCRIBE", "a")
    c.receive(confirm("unsubscribe", "a", 0))
    assert reader.result() is NOTHING_TO_READ


def test_select_reads_its_argument_as_the_server_does(loop: asyncio.AbstractEventLoop) -> None:
    for argument in (0, "0", b"0", "00"):
        c = Connection(loop, db=0)
        c.send("SELECT", argument)
        c.receive(b"+OK\r\n")
        assert c.state.unpoolable_reason() is None, argument


def test_stateful_commands_inside_multi_mark_the_session_at_queued(
    loop: asyncio.AbstractEventLoop,
) -> None:
    c = Connection(loop)
    c.send("MULTI")
    c.send("SELECT", 0)  # takes effect at EXEC: the db is not known any more
    c.send("EXEC")
    c.receive(b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n")
    assert c.state.unpoolable_reason() == "SELECT inside MULTI"
