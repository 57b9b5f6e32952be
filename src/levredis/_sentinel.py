"""Redis behind Sentinel: a client whose node follows the sentinels' answer.

``connect_sentinel()`` asks the sentinels (each in turn) where the service's
primary (or a healthy replica) is, checks with ``ROLE`` that the node it
reaches plays that role, and hands every call to an ordinary ``Client`` on
it. It follows a failover without a restart: on a lost connection, on a
``-READONLY`` reply (a write refused by a demoted primary: it did not run, so
it is sent once more to the new primary) and on the sentinels' own
``+switch-master`` event, which it listens for on every sentinel.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from ._client import Client, ReadResult, connect_with
from ._config import Config, ConfigView, invalid_config, parse_config
from ._errors import (
    CLOSED,
    TIMEOUT,
    ConfigError,
    Error,
    NetworkError,
    ProtocolError,
    ServerError,
    TLSError,
    UsageError,
)
from ._resp import Reply

log: Final = logging.getLogger("levredis")

#: Keys of the sentinel config that are not a data node's connect() keys.
_OWN_KEYS: Final = ("sentinels", "service", "role", "sentinel_auth", "sentinel_ssl")
#: How long a call may wait for a primary to be found when the config has no timeout.
FIND_LIMIT: Final = 30.0
#: How long one sentinel may take to answer before the next one is asked.
_SENTINEL_ANSWER_LIMIT: Final = 2.0
#: How long a replaced connection may take to finish the calls it carries.
_DRAIN_LIMIT: Final = 5.0


@dataclasses.dataclass(frozen=True)
class SentinelSettings:
    sentinels: tuple[Config, ...]
    service: str
    role: str  # "primary" or "replica"


def parse_sentinel_config(config: object) -> tuple[SentinelSettings, Config] | ConfigError:
    """The sentinels, the service and role, and the data nodes' config template."""
    if not isinstance(config, Mapping):
        return invalid_config("a sentinel config is a mapping with 'sentinels' and 'service'",
                        type(config).__name__)
    sentinels = config.get("sentinels")
    if not isinstance(sentinels, (list, tuple)) or not sentinels:
        return invalid_config("sentinels must be a non-empty list of 'host:port' or redis:// URLs",
                        sentinels)
    service = config.get("service")
    if not isinstance(service, str) or not service:
        return invalid_config("service must be the name the sentinels monitor (a non-empty str)",
                        service)
    role = config.get("role", "primary")
    if role not in ("primary", "replica"):
        return invalid_config("role must be 'primary' or 'replica'", role)
    for key in ("host", "port", "path"):
        if key in config:
            return invalid_config(f"the sentinels say where the nodes are: no {key!r}", config[key])
    node_keys = {k: v for k, v in config.items() if k not in _OWN_KEYS}
    template = parse_config({"host": "127.0.0.1", **node_keys})
    if isinstance(template, ConfigError):
        return template
    own = {"timeout": template.timeout, "ssl": config.get("sentinel_ssl", config.get("ssl")),
           "auth": config.get("sentinel_auth"), "decode": True}
    parsed = []
    for entry in sentinels:
        seed = parse_config(entry)
        if isinstance(seed, ConfigError):
            return seed
        # What a sentinel's own URL says (rediss://, user:pass@) holds for it;
        # sentinel_ssl and sentinel_auth fill in what it does not say.
        mine = {k: v for k, v in own.items() if v is not None}
        if seed.ssl is not False:
            if mine.get("ssl") is False:
                return invalid_config("a rediss:// sentinel with sentinel_ssl=False", entry)
            if mine.get("ssl") in (None, True):
                mine["ssl"] = True  # else the context or files given for the sentinels
        if seed.auth is not None:
            mine["auth"] = dict(seed.auth)
        sentinel = parse_config({"host": seed.host, "port": seed.port, **mine})
        if isinstance(sentinel, ConfigError):
            return ConfigError(sentinel.replace("invalid redis config: ",
                                                "invalid redis config: sentinel_"))
        parsed.append(sentinel)
    return SentinelSettings(tuple(parsed), service, role), template


class SentinelClient:
    """A client for the primary (or a replica) of a Sentinel-managed service.

    ``cmd``, ``pipeline``, ``read`` and ``close`` return ``(value, err)`` as
    ``Client``'s do; the node behind them changes when the service fails over::

        client, err = await levredis.connect_sentinel({
            "sentinels": ["10.0.0.1:26379", "10.0.0.2:26379"], "service": "cache"})
        value, err = await client.cmd("INCR", "visits")
    """

    def __init__(self, settings: SentinelSettings, template: Config) -> None:
        self._settings = settings
        self._template = template
        #: Asked in this order; the last one that answered goes first.
        self._sentinels = list(settings.sentinels)
        self._client: Client | None = None
        self._address: str | None = None
        #: Where a +switch-master said the primary went (checked before use).
        self._announced: str | None = None
        #: (replica being promoted, until when): set by +failover-state-send-slaveof-noone.
        self._promoting: tuple[str, float] | None = None
        #: When the client last moved to another node (loop time).
        self.switched_at: float | None = None
        self._stale = False
        self._lost: Error | None = None
        self._finding: asyncio.Task[Client | Error] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchers: list[asyncio.Task[None]] = []
        self._closed = False
        #: Times the client moved to another node.
        self.switches = 0

    @property
    def cfg(self) -> Mapping[str, Any]:
        view = dict(self._template.view())
        view.pop("host", None)
        view.pop("port", None)
        view.pop("path", None)
        view.update(sentinels=[s.address for s in self._settings.sentinels],
                    service=self._settings.service, role=self._settings.role)
        return ConfigView(view)  # read-only, secrets masked in its repr

    @property
    def address(self) -> str | None:
        """The node the calls go to now (None before the first is found)."""
        return self._address

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (f"<levredis.SentinelClient {self._settings.service} {self._settings.role} "
                f"at {self._address or '?'} {state}>")

    async def __aenter__(self) -> SentinelClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    # -- calls ------------------------------------------------------------------

    async def cmd(self, *args: object) -> tuple[Reply, Error | None]:
        """Run one command on the service's node; ``Client.cmd``'s shapes."""
        value: Reply = None
        err: Error | None = CLOSED
        for _ in range(3):
            client = await self._current()
            if isinstance(client, Error):
                return None, client
            value, err = await client.cmd(*args)
            if err is None or not self._must_move(client, err):
                return value, err
            if err is CLOSED or _readonly(err):
                continue  # not run: once more, on the node found now
            return value, err
        return value, err

    async def pipeline(
        self, commands: Sequence[Sequence[object]] | None
    ) -> tuple[list[list[Reply]] | None, Error | None]:
        """Many commands in one write to the service's node; ``Client.pipeline``'s shapes.

        If a demoted primary refused any of them with ``READONLY``, none of
        the writes ran: the pipeline is sent once more, to the new primary.
        """
        results: list[list[Reply]] | None = None
        err: Error | None = CLOSED
        for _ in range(3):
            client = await self._current()
            if isinstance(client, Error):
                return None, client
            results, err = await client.pipeline(commands)
            refused = next((entry[1] for entry in results or () if len(entry) == 2
                            and _readonly(entry[1])), None)
            if refused is not None and self._settings.role == "primary":
                self._move_on(client, "a write was refused with READONLY")
                continue
            if err is None or not self._must_move(client, err):
                return results, err
            if err is CLOSED:
                continue
            return results, err
        return results, err

    async def read(self) -> tuple[ReadResult | None, Error | None]:
        """``Client.read()`` on the current node's connection (it does not reconnect)."""
        if self._closed:
            return None, CLOSED
        if self._lost is not None:
            return None, self._lost
        client = self._client
        if client is None:
            client_or_error = await self._current()
            if isinstance(client_or_error, Error):
                return None, client_or_error
            client = client_or_error
        item, err = await client.read()
        if err is not None and not isinstance(err, UsageError) and err != TIMEOUT:
            self._must_move(client, err)
        return item, err

    def _must_move(self, client: Client, err: Error) -> bool:
        """Whether ``err`` means the node is gone or no longer plays its role."""
        if err is CLOSED:
            return not self._closed
        if _readonly(err) and self._settings.role == "primary":
            self._move_on(client, "a write was refused with READONLY")
            return True
        if isinstance(err, NetworkError):
            self._move_on(client, str(err))
            return True
        return False

    def _move_on(self, client: Client, why: str) -> None:
        if client is self._client and not self._stale:
            log.debug("sentinel %s: leaving %s (%s)", self._settings.service, self._address, why)
            self._stale = True

    # -- finding the node -----------------------------------------------------------

    async def _current(self) -> Client | Error:
        if self._closed:
            return CLOSED
        if self._lost is not None:
            return self._lost
        client = self._client
        if client is not None and not self._stale and not client._broken():
            return client
        task = self._finding
        if task is None:
            task = self._finding = asyncio.ensure_future(self._replace())
            task.add_done_callback(self._found)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                return CLOSED  # close() stopped the search, not our caller
            raise

    def _found(self, task: asyncio.Task[Client | Error]) -> None:
        self._finding = None

    async def _replace(self) -> Client | Error:
        old = self._client
        if old is not None:
            held = old._connection.state.unpoolable_reason()
            if held is not None:
                # A new node would not have it: say so rather than drop it.
                self._lost = NetworkError(
                    f"the service's node changed while this client held session state "
                    f"({held}); close this client and connect_sentinel() again")
                return self._lost
            self._client = None
            self._retire(old)
        found = await self._find()
        if isinstance(found, Error):
            return found
        client, address = found
        if self._closed:
            await client.close()
            return CLOSED
        if self._address is not None and address != self._address:
            self.switches += 1
            self.switched_at = asyncio.get_running_loop().time()
            if self._promoting is not None and self._promoting[0] == address:
                self._promoting = None
            log.info("sentinel %s: %s is now at %s", self._settings.service,
                     self._settings.role, address)
        self._client, self._address, self._stale = client, address, False
        return client

    async def _find(self) -> tuple[Client, str] | Error:
        """Ask the sentinels until a node answers ROLE as the wanted role, within the limit.

        Each sentinel in turn: one that is silent, wrong or stale does not stop
        the others from being asked; every step is bounded by the deadline.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._template.timeout or FIND_LIMIT)
        delay = 0.05
        last: Error = NetworkError(f"no sentinel knows service {self._settings.service!r}")
        while True:
            # Trying again helps only if something may change (a node coming
            # back, a failover ending); a refused password will not.
            transient = False
            announced, self._announced = self._announced, None
            promoting = self._promoting
            sources: list[tuple[Config | None, list[str] | None]]
            if promoting is not None and promoting[1] > loop.time():
                # A failover is promoting this replica: the old primary may still
                # answer "master" (and lose what it accepts), so wait for this one.
                sources = [(None, [promoting[0]])]
            else:
                sources = [(None, [announced])] if announced is not None else []
                sources += [(sentinel, None) for sentinel in self._sentinels]
            for source, addresses in sources:
                if loop.time() >= deadline:
                    break  # (keeping the error that used the time up)
                if addresses is None:
                    assert source is not None
                    # A silent sentinel is passed over for the next one.
                    found = await _within(deadline, self._ask(source), _SENTINEL_ANSWER_LIMIT)
                    if isinstance(found, Error):
                        last = _where(found, f"sentinel {source.address}")
                        transient = transient or not _final(found)
                        continue
                    addresses = found
                for address in addresses:
                    # Named by a sentinel: during a failover that is still the old
                    # primary; announced or being promoted: the new one.
                    checked = await _within(deadline, self._check(address, source is not None))
                    if isinstance(checked, Error):
                        last = _where(checked, f"node {address}")
                        transient = transient or not _final(checked)
                        continue
                    if source is not None:  # it answered: ask it first next time
                        self._sentinels.remove(source)
                        self._sentinels.insert(0, source)
                    return checked, address
            if not transient or loop.time() + delay >= deadline:
                return last
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _ask(self, sentinel: Config) -> list[str] | Error:
        """The addresses one sentinel gives for the service: the primary, or healthy replicas."""
        client, err = await connect_with(sentinel)
        if client is None:
            return err or NetworkError(f"cannot reach sentinel {sentinel.address}")
        service = self._settings.service
        try:
            if self._settings.role == "primary":
                reply, err = await client.cmd("SENTINEL", "GET-MASTER-ADDR-BY-NAME", service)
                if err is not None:
                    return _unknown(service) if err == "not found" else err
                if isinstance(reply, list) and len(reply) == 2:
                    return _addresses([f"{_text(reply[0])}:{_text(reply[1])}"])
                return NetworkError("the sentinel gave no address")
            reply, err = await client.cmd("SENTINEL", "REPLICAS", service)
            if err is not None:
                return err
            healthy = [_pairs(entry) for entry in reply if isinstance(entry, (list, dict))] \
                if isinstance(reply, list) else []
            healthy = [info for info in healthy if _healthy(info)]
            if not healthy:
                return NetworkError(f"the sentinel knows no healthy replica of {service!r}")
            random.shuffle(healthy)
            return _addresses([f"{info['ip']}:{info['port']}" for info in healthy])
        finally:
            await client.close()

    async def _check(self, address: str, named: bool = False) -> Client | Error:
        """A client on ``address`` if its ROLE is the wanted one (and no failover is under way)."""
        invalid = _addresses([address])
        if isinstance(invalid, Error):
            return invalid
        host, _, port = address.rpartition(":")
        config = dataclasses.replace(self._template, host=host.strip("[]"), port=int(port))
        client, err = await connect_with(config)
        if client is None:
            return err or NetworkError(f"cannot connect to {address}")
        keep = False
        try:
            role, err = await client.cmd("ROLE")
            wanted = "master" if self._settings.role == "primary" else "slave"
            if err is None and isinstance(role, list) and role and _text(role[0]) == wanted:
                if named and self._settings.role == "primary" and await self._failing_over():
                    return NetworkError("a failover is under way: waiting for the new primary")
                keep = True
                return client
            if err is not None:
                return err
            seen = _text(role[0]) if isinstance(role, list) and role else "?"
            return NetworkError(f"it is a {seen}, not the {self._settings.role} "
                                "(a failover may be under way)")
        finally:
            if not keep:  # also when cancelled: nothing is left open
                await asyncio.shield(client.close(no_keepalive=True))

    async def _failing_over(self) -> bool:
        """Whether a sentinel says a failover of the service is in progress.

        Only the sentinel leading it says so; until its +switch-master the old
        primary still answers "master", and what it accepts would be lost.
        """
        async def ask(sentinel: Config) -> bool:
            client, _ = await connect_with(sentinel)
            if client is None:
                return False
            try:
                reply, err = await client.cmd("SENTINEL", "MASTER", self._settings.service)
            finally:
                await asyncio.shield(client.close())
            if err is not None or not isinstance(reply, (list, dict)):
                return False
            return "failover_in_progress" in _pairs(reply).get("flags", "")

        limit = min(self._template.timeout or FIND_LIMIT, _SENTINEL_ANSWER_LIMIT)
        try:
            async with asyncio.timeout(limit):
                answers = await asyncio.gather(*(ask(s) for s in self._settings.sentinels))
        except TimeoutError:
            return False  # silent sentinels: the ROLE check stands
        return any(answers)

    def _retire(self, client: Client) -> None:
        """Close a replaced node's client once the calls it carries are answered."""

        async def drain() -> None:
            # Replies come in order: once a PING is answered, so is every
            # call sent before it.
            if not client._broken():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_DRAIN_LIMIT):
                        await client.cmd("PING")
            # Never pooled: it may lead to a demoted primary.
            await client.close(no_keepalive=True)

        self._spawn(drain())

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the sentinels' events --------------------------------------------------------

    def _start_watching(self) -> None:
        self._watchers = [asyncio.ensure_future(self._watch(sentinel))
                          for sentinel in self._settings.sentinels]

    async def _watch(self, sentinel: Config) -> None:
        """Listen for +switch-master on one sentinel, reconnecting with backoff."""
        delay = 0.1
        while not self._closed:
            client, _ = await connect_with(sentinel)
            if client is not None:
                try:
                    results, err = await client.pipeline(
                        [["SUBSCRIBE", channel] for channel in _EVENTS])
                    if err is None and results is not None and all(
                            len(result) == 1 for result in results):
                        delay = 0.1
                        await self._listen(client)
                finally:
                    await client.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _listen(self, client: Client) -> None:
        while not self._closed:
            item, err = await client.read()
            if err is not None:
                if err == TIMEOUT and not client._broken():
                    continue
                return
            value = item["value"] if item is not None else None
            if not (isinstance(value, list) and len(value) == 3 and value[0] == "message"):
                continue
            self._event(_text(value[1]), _text(value[2]).split())

    def _event(self, channel: str, fields: list[str]) -> None:
        service = self._settings.service
        loop = asyncio.get_running_loop()
        if channel == "+switch-master":
            # <service> <old ip> <old port> <new ip> <new port>
            if len(fields) == 5 and fields[0] == service:
                self._promoting = None
                self._switched(f"{fields[3]}:{fields[4]}")
        elif channel == "+failover-state-send-slaveof-noone":
            # slave <ip:port> <ip> <port> @ <service> <primary ip> <primary port>
            if len(fields) == 8 and fields[5] == service and self._settings.role == "primary":
                limit = self._template.timeout or FIND_LIMIT
                self._promoting = (f"{fields[2]}:{fields[3]}", loop.time() + limit)
                if self._client is not None:
                    self._move_on(self._client, f"failover: promoting {fields[2]}:{fields[3]}")
        elif len(fields) >= 2 and fields[1] == service:  # the failover ended without a switch
            self._promoting = None

    def _switched(self, address: str) -> None:
        """A sentinel announced a new primary."""
        if self._settings.role == "primary":
            if address != self._address:
                self._announced = address
                if self._client is not None:
                    self._move_on(self._client, f"+switch-master to {address}")
        elif self._client is not None:
            # Replicas are reconfigured too: check this one still replicates.
            self._move_on(self._client, "+switch-master")

    async def close(self, no_keepalive: bool = False) -> bool:
        """Stop listening to the sentinels and release the node's connection; always ``True``."""
        if self._closed:
            return True
        self._closed = True
        for watcher in self._watchers:
            watcher.cancel()
        finding = self._finding
        if finding is not None:
            finding.cancel()
        waiting: list[asyncio.Future[Any]] = [*self._watchers]
        if finding is not None:
            waiting.append(finding)
        if waiting:
            await asyncio.wait(waiting)
        if self._client is not None:
            await self._client.close(no_keepalive)
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        return True


#: The sentinels' events a client follows.
_EVENTS: Final = ("+switch-master", "+failover-state-send-slaveof-noone",
                  "-failover-abort-not-elected", "-failover-abort-no-good-slave",
                  "-failover-abort-slave-timeout", "+failover-end-for-timeout")


async def _within(deadline: float, step: Any, cap: float | None = None) -> Any:
    """Await one step of a search, never past the search's deadline (nor ``cap``)."""
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout(max(min(remaining, cap or remaining), 0)):
            return await step
    except TimeoutError:
        return TIMEOUT


def _addresses(found: list[str]) -> list[str] | Error:
    """``host:port`` addresses as a sentinel gave them, or the protocol error they are."""
    for address in found:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            return ProtocolError(f"protocol error: not a node address: {address[:60]!r}")
    return found


def _unknown(service: str) -> NetworkError:
    return NetworkError(f"the sentinel does not know service {service!r}")


def _final(err: Error) -> bool:
    """An error that asking again will not change: a refusal, not an outage."""
    return (isinstance(err, (ServerError, TLSError, UsageError))
            or (isinstance(err, NetworkError) and err.startswith("the sentinel does not know")))


def _where(err: Error, place: str) -> Error:
    """``err`` saying where it happened (its first word, a server error's code, kept)."""
    if place in err:
        return err
    return type(err)(f"{err} ({place})")


def _readonly(err: object) -> bool:
    return isinstance(err, ServerError) and err.code == "READONLY"


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _pairs(entry: list[Reply] | dict[Any, Reply]) -> dict[str, str]:
    if isinstance(entry, dict):  # RESP3 sends maps as maps
        return {_text(k): _text(v) for k, v in entry.items()}
    return {_text(k): _text(v) for k, v in zip(entry[::2], entry[1::2], strict=False)}


def _healthy(info: dict[str, str]) -> bool:
    flags = set(info.get("flags", "").split(","))
    return (not flags & {"s_down", "o_down", "disconnected"}
            and info.get("master-link-status") == "ok" and "ip" in info and "port" in info)


async def connect_sentinel(config: object) -> tuple[SentinelClient, None] | tuple[None, Error]:
    """Connect to a Sentinel-managed service: ``(client, None)`` or ``(None, err)``.

    ``config`` is a mapping: ``sentinels`` (``"host:port"`` or ``redis://``
    URLs), ``service`` (the name the sentinels monitor), ``role``
    (``"primary"``, the default, or ``"replica"``), ``sentinel_auth`` and
    ``sentinel_ssl`` for the sentinels themselves, and any key ``connect()``
    takes for the data node (``timeout``, ``ssl``, ``auth``, ``db`` ...).
    """
    parsed = parse_sentinel_config(config)
    if isinstance(parsed, ConfigError):
        return None, parsed
    client = SentinelClient(*parsed)
    try:
        found = await client._current()
    except BaseException:
        await asyncio.shield(client.close())
        raise
    if isinstance(found, Error):
        await client.close()
        return None, found
    client._start_watching()
    return client, None
