"""Session tracking: replies owed per command, refusals, and poolability."""

from __future__ import annotations

import pytest

from levredis import UsageError
from levredis._session import ONE_PER_SUBSCRIPTION, Session


def test_plain_commands_owe_one_reply_and_leave_the_session_clean() -> None:
    session = Session(db=0)
    for args in (["GET", "k"], ["set", "k", "v"], [b"PING"], ["SELECT", "0"], ["CLIENT", "ID"]):
        assert session.plan_command(args) == 1
    assert session.unpoolable_reason() is None


def test_subscribe_family_owes_one_reply_per_channel() -> None:
    session = Session(db=0)
    assert session.plan_command(["SUBSCRIBE", "a", "b", "c"]) == 3
    assert session.plan_command(["PUNSUBSCRIBE", "p*", "q*"]) == 2
    assert session.plan_command(["UNSUBSCRIBE"]) == ONE_PER_SUBSCRIPTION
    assert session.plan_command(["SSUBSCRIBE"]) == 1  # arity error: one reply
    assert session.pubsub
    assert session.unpoolable_reason() is not None


@pytest.mark.parametrize(
    "args",
    [
        ["SELECT", "3"], ["select", 1], ["AUTH", "u", "p"], ["HELLO", "2"], ["RESET"],
        ["MONITOR"], ["QUIT"], ["READONLY"], ["CLIENT", "SETNAME", "x"],
        ["CLIENT", "TRACKING", "on"], ["CLIENT", "NO-EVICT", "on"], ["PSUBSCRIBE", "x*"],
    ],
)
def test_state_changing_commands_make_the_connection_unpoolable(args: list[object]) -> None:
    session = Session(db=0)
    assert session.plan_command(args) == 1
    assert session.unpoolable_reason() is not None


def test_select_of_the_promised_db_is_harmless() -> None:
    session = Session(db=4)
    session.plan_command(["SELECT", "4"])
    assert session.unpoolable_reason() is None
    session.plan_command(["SELECT", "5"])
    assert session.unpoolable_reason() == "SELECT changed the db"


def test_multi_and_watch_are_open_until_exec_discard_or_unwatch() -> None:
    session = Session(db=0)
    session.plan_command(["WATCH", "k"])
    assert session.unpoolable_reason() == "WATCH not ended"
    session.plan_command(["MULTI"])
    assert session.unpoolable_reason() == "inside MULTI"
    session.plan_command(["SET", "k", "v"])
    session.plan_command(["EXEC"])
    assert session.unpoolable_reason() is None
    session.plan_command(["WATCH", "k"])
    session.plan_command(["UNWATCH"])
    session.plan_command(["MULTI"])
    session.plan_command(["DISCARD"])
    assert session.unpoolable_reason() is None


def test_a_stateful_command_queued_in_multi_still_counts() -> None:
    session = Session(db=0)
    session.plan_command(["MULTI"])
    assert session.plan_command(["SELECT", "2"]) == 1
    assert session.plan_command(["SUBSCRIBE", "a", "b"]) == 1  # answered QUEUED
    session.plan_command(["EXEC"])
    assert session.pubsub
    assert session.unpoolable_reason() is not None


@pytest.mark.parametrize(
    "args",
    [["CLIENT", "REPLY", "OFF"], ["client", "reply", "skip"], ["HELLO", "3"], ["HELLO", 3]],
)
def test_commands_that_would_unmatch_replies_are_refused(args: list[object]) -> None:
    session = Session(db=0)
    refusal = session.plan_command(args)
    assert isinstance(refusal, UsageError)
    assert session.unpoolable_reason() is None


def test_client_reply_on_is_allowed() -> None:
    session = Session(db=0)
    assert session.plan_command(["CLIENT", "REPLY", "ON"]) == 1
    assert session.unpoolable_reason() is None


def test_monitor_mode_refuses_further_commands() -> None:
    session = Session(db=0)
    session.plan_command(["MONITOR"])
    assert isinstance(session.plan_command(["GET", "k"]), UsageError)
    assert isinstance(session.plan_batch([["GET", "k"]]), UsageError)


def test_a_refused_batch_changes_nothing() -> None:
    session = Session(db=0)
    refusal = session.plan_batch([["MULTI"], ["SELECT", "2"], ["CLIENT", "REPLY", "OFF"]])
    assert isinstance(refusal, UsageError)
    assert session.unpoolable_reason() is None
    assert isinstance(session.plan_batch([["MONITOR"], ["GET", "k"]]), UsageError)


def test_a_batch_counts_replies_per_command() -> None:
    session = Session(db=0)
    assert session.plan_batch([["GET", "a"], ["SUBSCRIBE", "x", "y"], ["PING"]]) == [1, 2, 1]
