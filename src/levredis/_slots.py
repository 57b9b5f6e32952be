"""Cluster topology, sans-I/O: key slots, key positions, the slot map.

``key_slot`` hashes a key as Redis Cluster does; ``CommandTable`` reads each
command's key positions from the server's own ``COMMAND`` reply; ``SlotMap``
reads ``CLUSTER SHARDS`` or ``CLUSTER SLOTS`` into "which node serves which
slot". No sockets here: ``_cluster.py`` does the talking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ._resp import Reply, argument_bytes, command_name

SLOTS: Final = 16384


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC16: Final = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ byte) & 0xFF]
    return crc


def key_slot(key: bytes) -> int:
    """The slot of ``key``; only a non-empty ``{hash tag}`` is hashed when present.

    >>> key_slot(b"user:{42}:name") == key_slot(b"{42}")
    True
    """
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc16(key) % SLOTS


def name_of(arg: object) -> str:
    """A command or subcommand name, lowercased, as ``COMMAND`` lists it."""
    return command_name(arg).lower()


class CommandTable:
    """Key positions of every command, from the server's own ``COMMAND`` reply."""

    def __init__(self, reply: Reply) -> None:
        # name -> (first key, last key, step, movable keys, read-only)
        self._specs: dict[str, tuple[int, int, int, bool, bool]] = {}
        # name -> (request_policy, response_policy) from the command's tips (Redis 7+)
        self._policies: dict[str, tuple[str, str]] = {}
        for entry in reply if isinstance(reply, list) else []:
            self._add(entry)

    def _add(self, entry: Reply) -> None:
        if not isinstance(entry, list) or len(entry) < 6:
            return
        name, _, flags, first, last, step = entry[:6]
        flag_set = {name_of(f) for f in flags} if isinstance(flags, (list, set)) else set()
        if isinstance(first, int) and isinstance(last, int) and isinstance(step, int):
            self._specs[name_of(name)] = (first, last, step, "movablekeys" in flag_set,
                                        "readonly" in flag_set)
        tips = entry[7] if len(entry) >= 8 and isinstance(entry[7], (list, set)) else []
        policy = {"request_policy": "", "response_policy": ""}
        for tip in tips:
            kind, _, value = _text(tip).partition(":")
            if kind in policy:
                policy[kind] = value
        if any(policy.values()):
            self._policies[name_of(name)] = (policy["request_policy"],
                                             policy["response_policy"])
        if len(entry) >= 10 and isinstance(entry[9], list):
            for sub in entry[9]:
                self._add(sub)

    def _spec(self, args: Sequence[object]) -> tuple[int, int, int, bool, bool] | None:
        name = name_of(args[0])
        if len(args) > 1:
            sub = self._specs.get(f"{name}|{name_of(args[1])}")
            if sub is not None:
                return sub
        return self._specs.get(name)

    def keys(self, args: Sequence[object]) -> list[bytes] | None:
        """The keys of a command, [] for none, or None when the server must say."""
        spec = self._spec(args)
        if spec is None:
            return []  # unknown to this cluster: the node answers ERR unknown command
        first, last, step, movable, _ = spec
        if movable:
            return None
        if first <= 0:
            return []
        end = len(args) + last if last < 0 else last
        return [argument_bytes(args[i]) for i in range(first, min(end, len(args) - 1) + 1, step)]

    def policy(self, args: Sequence[object]) -> tuple[str, str]:
        """(request policy, response policy) of a command, as its tips say ("" if none).

        ``all_shards``: every primary must run it (DBSIZE, KEYS, FLUSHALL,
        WAIT ...); ``all_nodes``: every node (SCRIPT LOAD, CONFIG SET);
        ``special``: no general rule (SCAN).
        """
        name = name_of(args[0])
        if len(args) > 1:
            sub = self._policies.get(f"{name}|{name_of(args[1])}")
            if sub is not None:
                return sub
        return self._policies.get(name, ("", ""))

    def __bool__(self) -> bool:
        return bool(self._specs)

    def readonly(self, args: Sequence[object]) -> bool:
        spec = self._spec(args)
        return bool(spec and spec[4])


class SlotMap:
    """Which node serves each slot: the primary, and its replicas."""

    def __init__(self) -> None:
        self.primaries: list[str | None] = [None] * SLOTS
        self.replicas: dict[str, list[str]] = {}

    @classmethod
    def from_shards(cls, reply: Reply) -> SlotMap:
        slot_map = cls()
        for shard in reply if isinstance(reply, list) else []:
            fields = _pairs(shard)
            ranges = fields.get("slots") or []
            primary, replicas = None, []
            for node in fields.get("nodes") or []:
                info = _pairs(node)
                if info.get("health") != "online":
                    continue
                port = info.get("port") or info.get("tls-port")
                address = f"{info.get('endpoint') or info.get('ip')}:{port}"
                if info.get("role") == "master":
                    primary = address
                else:
                    replicas.append(address)
            if primary is None:
                continue
            slot_map.replicas[primary] = replicas
            assert isinstance(ranges, list)
            for start, end in zip(ranges[::2], ranges[1::2], strict=True):
                for slot in range(int(str(start)), int(str(end)) + 1):
                    slot_map.primaries[slot] = primary
        return slot_map

    @classmethod
    def from_slots(cls, reply: Reply) -> SlotMap:
        slot_map = cls()
        for entry in reply if isinstance(reply, list) else []:
            if not isinstance(entry, list) or len(entry) < 3:
                continue
            nodes = [f"{_text(n[0])}:{_text(n[1])}" for n in entry[2:] if isinstance(n, list)]
            primary = nodes[0]
            slot_map.replicas[primary] = nodes[1:]
            for slot in range(int(entry[0]), int(entry[1]) + 1):  # type: ignore[arg-type]
                slot_map.primaries[slot] = primary
        return slot_map

    def nodes(self) -> list[str]:
        return sorted({p for p in self.primaries if p is not None})

    def covered(self) -> bool:
        return all(self.primaries)


def _text(value: Reply) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(value: Reply) -> dict[str, Any]:
    if isinstance(value, dict):  # RESP3 sends maps as maps
        return {_text(k): (_text(v) if isinstance(v, bytes) else v) for k, v in value.items()}
    if not isinstance(value, list):
        return {}
    return {_text(k): (_text(v) if isinstance(v, bytes) else v)
            for k, v in zip(value[::2], value[1::2], strict=False)}
