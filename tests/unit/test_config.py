"""Config parsing and validation, with values alone (nothing is opened)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import pytest

from levredis import ConfigError
from levredis._config import Config, parse_config

SECRET = "s3cr3t-Pa55"


def ok(config: object) -> Config:
    parsed = parse_config(config)
    assert isinstance(parsed, Config), parsed
    return parsed


def fails(config: object) -> ConfigError:
    parsed = parse_config(config)
    assert isinstance(parsed, ConfigError), parsed
    assert parsed.startswith("invalid redis config: ")
    assert SECRET not in parsed
    return parsed


def test_none_means_localhost_6379() -> None:
    config = ok(None)
    assert (config.host, config.port, config.db, config.timeout, config.ssl, config.auth) == (
        "127.0.0.1", 6379, 0, None, False, None)


@pytest.mark.parametrize(
    ("text", "host", "port", "db"),
    [
        ("10.0.0.1:6380", "10.0.0.1", 6380, 0),
        ("redis.local:7000/3", "redis.local", 7000, 3),
        ("[::1]:6379/2", "::1", 6379, 2),
        ("[::1]:6390", "::1", 6390, 0),
    ],
)
def test_string_forms(text: str, host: str, port: int, db: int) -> None:
    config = ok(text)
    assert (config.host, config.port, config.db) == (host, port, db)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("localhost", "a port is required"),
        ("localhost:", "a port is required"),
        (":6379", "host must be a non-empty string"),
        ("localhost:http", "port must be a whole number"),
        ("localhost:70000", "port must be an integer in 1..65535"),
        ("localhost:0", "port must be an integer in 1..65535"),
        ("localhost:6379/x", "db must be a whole number"),
        ("localhost:6379/-1", "db must be a whole number"),
        ("::1:6379", "IPv6 host in brackets"),
        ("[::1:6379", "unclosed"),
        ("", "a port is required"),
    ],
)
def test_bad_strings_say_what_is_wrong(text: str, what: str) -> None:
    error = fails(text)
    assert what in error
    assert error.endswith(f"(got {text!r})")


def test_url_with_user_password_db_and_tls() -> None:
    config = ok(f"rediss://alice:{SECRET}@cache.example:6390/4")
    assert (config.host, config.port, config.db, config.ssl) == ("cache.example", 6390, 4, True)
    assert config.auth is not None
    assert dict(config.auth) == {"user": "alice", "pass": SECRET}


def test_url_defaults_and_percent_decoding() -> None:
    config = ok("redis://:p%40ss@localhost")
    assert (config.port, config.db, config.ssl) == (6379, 0, False)
    assert config.auth is not None and dict(config.auth) == {"user": "default", "pass": "p@ss"}
    assert ok("redis://[::1]:7000/1?timeout=2.5").timeout == 2.5
    assert ok("redis://localhost?db=5").db == 5


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("http://localhost:6379", "scheme must be redis:// or rediss://"),
        ("redis://localhost:99999", "malformed URL or port"),
        ("redis://localhost/abc", "db in the URL path"),
        ("redis://alice@localhost", "needs a password"),
        ("redis://localhost?ssl_cert_reqs=none", "unsupported URL option"),
        ("redis://localhost?timeout=-1", "timeout must be"),
        ("redis://", "host must be a non-empty string"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, what: str) -> None:
    assert what in fails(url)


def test_a_bad_url_never_shows_its_password() -> None:
    error = fails(f"redis://alice:{SECRET}@localhost/notadb")
    assert "alice:***@localhost" in error


def test_mapping_form_normalizes_and_keeps_extra_keys() -> None:
    context = ssl.create_default_context()
    config = ok({"host": "h", "port": 7001, "db": 2, "timeout": 3, "ssl": context,
                 "auth": {"user": "u", "pass": SECRET}, "decode": False,
                 "service": "billing", "retries": [1, 2]})
    view = config.view()
    assert view["host"] == "h" and view["port"] == 7001 and view["db"] == 2
    assert view["timeout"] == 3.0 and isinstance(view["timeout"], float)
    assert view["ssl"] is context and view["decode"] is False
    assert view["service"] == "billing" and view["retries"] == [1, 2]
    assert view["auth"]["pass"] == SECRET


def test_mapping_defaults() -> None:
    view = ok({"host": "h"}).view()
    assert (view["port"], view["db"], view["timeout"], view["ssl"], view["auth"], view["decode"]) \
        == (6379, 0, None, False, None, True)


def test_cfg_is_read_only_and_its_repr_hides_the_password() -> None:
    view = ok({"host": "h", "auth": {"user": "u", "pass": SECRET}}).view()
    assert isinstance(view, Mapping)
    with pytest.raises(TypeError):
        view["host"] = "other"  # type: ignore[index]
    for text in (repr(view), str(view), repr(view["auth"]), repr(dict(view)), str(list(view.items()))):
        assert SECRET not in text
        assert "***" in text


BAD_MAPPINGS: list[tuple[dict[str, Any], str]] = [
    ({}, "host is required"),
    ({"host": ""}, "host must be a non-empty string"),
    ({"host": 5}, "host must be a non-empty string"),
    ({"host": "h", "port": "6379"}, "port must be an integer"),
    ({"host": "h", "port": True}, "port must be an integer"),
    ({"host": "h", "port": 65536}, "port must be an integer"),
    ({"host": "h", "port": 6379.0}, "port must be an integer"),
    ({"host": "h", "db": -1}, "db must be an integer in 0..2147483647"),
    ({"host": "h", "db": False}, "db must be an integer in 0..2147483647"),
    ({"host": "h", "db": "1"}, "db must be an integer in 0..2147483647"),
    ({"host": "h", "timeout": 0}, "timeout must be"),
    ({"host": "h", "timeout": -1}, "timeout must be"),
    ({"host": "h", "timeout": float("nan")}, "timeout must be"),
    ({"host": "h", "timeout": float("inf")}, "timeout must be"),
    ({"host": "h", "timeout": True}, "timeout must be"),
    ({"host": "h", "timeout": "1"}, "timeout must be"),
    ({"host": "h", "ssl": "yes"}, "ssl must be a bool"),
    ({"host": "h", "decode": 1}, "decode must be a bool"),
    ({"host": "h", "auth": SECRET}, "auth must be a mapping"),
    ({"host": "h", "auth": {"user": "u"}}, "auth pass must be a non-empty string"),
    ({"host": "h", "auth": {"user": "u", "pass": ""}}, "auth pass must be a non-empty string"),
    ({"host": "h", "auth": {"user": "u", "pass": 12345}}, "auth pass must be a non-empty string"),
    ({"host": "h", "auth": {"user": "", "pass": SECRET}}, "auth user must be a non-empty string"),
    ({"host": "h", "auth": {"pass": SECRET}}, "auth user must be a non-empty string"),
]


@pytest.mark.parametrize(("config", "what"), BAD_MAPPINGS)
def test_bad_mappings_say_what_is_wrong_without_the_password(config: dict[str, Any], what: str) -> None:
    error = fails(config)
    assert what in error
    assert "(got " in error


@pytest.mark.parametrize("config", [[("host", "h")], 6379, b"127.0.0.1:6379", 1.5, object()])
def test_other_config_types_are_errors(config: object) -> None:
    assert "expected None, 'host:port[/db]', a redis:// URL or a mapping" in fails(config)


def test_repr_of_a_config_never_shows_the_password() -> None:
    config = ok({"host": "h", "auth": {"user": "u", "pass": SECRET}})
    assert SECRET not in repr(config)
    assert "user=u" in repr(config)


def test_a_remembered_config_never_lets_an_invalid_lookalike_through() -> None:
    assert isinstance(parse_config({"host": "h", "db": 1}), Config)
    assert isinstance(parse_config({"host": "h", "db": True}), ConfigError)
    assert isinstance(parse_config({"host": "h", "port": 6379}), Config)
    assert isinstance(parse_config({"host": "h", "port": 6379.0}), ConfigError)
    assert isinstance(parse_config({"host": "h", "timeout": 1}), Config)
    assert isinstance(parse_config({"host": "h", "timeout": True}), ConfigError)


def test_a_mutated_mapping_is_parsed_again() -> None:
    config: dict[str, Any] = {"host": "h", "port": 7000}
    assert ok(config).port == 7000
    config["port"] = 0
    fails(config)


@pytest.mark.parametrize(
    ("key", "ours"),
    [("password", "auth="), ("username", "auth="), ("socket_timeout", "timeout"),
     ("socket_connect_timeout", "timeout"), ("decode_responses", "decode"),
     ("ssl_ca_certs", "ssl"), ("ssl_certfile", "ssl")],
)
def test_other_clients_keys_are_refused_naming_ours(key: str, ours: str) -> None:
    err = parse_config({"host": "h", key: "s3cret-value"})
    assert isinstance(err, ConfigError) and f"{key!r}" in err and f"use {ours}" in err
    assert "s3cret" not in err


@pytest.mark.parametrize(
    ("config", "what"),
    [({"host": "h", "port": 10**5000}, "port"), ({"host": "h", "db": 10**5000}, "db"),
     ({"host": "h", "timeout": 10**400}, "timeout"), ({"host": "\ud800"}, "host"),
     ("redis://h/" + "9" * 5000, "db"), ("h:6379/" + "9" * 30, "db"),
     ({"host": "h", "db": 2**31}, "db")],
)
def test_inputs_that_used_to_raise_are_config_errors(config: object, what: str) -> None:
    err = parse_config(config)
    assert isinstance(err, ConfigError) and what in err and len(err) < 400


def test_a_password_that_cannot_be_encoded_is_refused_without_showing_it() -> None:
    err = parse_config({"host": "h", "auth": {"user": "u", "pass": "s3cret\ud800"}})
    assert isinstance(err, ConfigError) and "lone surrogate" in err and "s3cret" not in err


def test_extra_keys_that_look_secret_are_masked_in_the_repr() -> None:
    config = parse_config({"host": "h", "api_token": "t0ken", "my_secret": "s3", "name": "x"})
    assert not isinstance(config, ConfigError)
    shown = repr(config.view())
    assert "t0ken" not in shown and "s3" not in shown and "'name': 'x'" in shown
    assert config.view()["api_token"] == "t0ken"  # kept, only not shown


def test_protocol_in_mappings_and_urls() -> None:
    assert parse_config({"host": "h", "protocol": 3}).protocol == 3  # type: ignore[union-attr]
    assert parse_config({"host": "h"}).protocol == 2  # type: ignore[union-attr]
    assert parse_config("redis://h:1/2?protocol=3").protocol == 3  # type: ignore[union-attr]
    assert parse_config("unix:///run/r.sock?protocol=3&db=1").protocol == 3  # type: ignore[union-attr]
    for bad in ({"host": "h", "protocol": 1}, {"host": "h", "protocol": 3.0},
                "redis://h:1?protocol=three", "redis://h:1?protocol=3&protocol=2"):
        err = parse_config(bad)
        assert isinstance(err, ConfigError), bad
