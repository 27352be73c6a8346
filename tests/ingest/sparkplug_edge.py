"""An independent Sparkplug B edge node for tests: payloads encoded by hand, field by
field, from the specification's field numbers (protobuf wire format: varints and
length-delimited fields), not with the host's own message classes."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _uint(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(value)


def _bytes(number: int, value: bytes) -> bytes:
    return _key(number, 2) + _varint(len(value)) + value


# Metric value fields (Payload.Metric): int_value 10 (uint32), long_value 11 (uint64),
# float_value 12, double_value 13, boolean_value 14, string_value 15.
def metric(
    name: str | None = None,
    alias: int | None = None,
    datatype: int = 10,
    value: Any = None,
    timestamp: int | None = None,
    unit: str | None = None,
    carrier: str | None = None,
) -> bytes:
    out = b""
    if name is not None:
        out += _bytes(1, name.encode())
    if alias is not None:
        out += _uint(2, alias)
    if timestamp is not None:
        out += _uint(3, timestamp)
    out += _uint(4, datatype)
    if unit is not None:  # properties (9): PropertySet{keys 1, values 2: PropertyValue}
        pv = _uint(1, 12) + _bytes(8, unit.encode())
        out += _bytes(9, _bytes(1, b"engUnit") + _bytes(2, pv))
    if value is None:
        return out + _uint(7, 1)  # is_null
    kind = (
        carrier
        or {
            1: "int",
            2: "int",
            3: "int",
            5: "int",
            6: "int",
            7: "int",
            4: "long",
            8: "long",
            13: "long",
            9: "float",
            10: "double",
            11: "bool",
            12: "string",
            14: "string",
        }[datatype]
    )
    if kind == "int":
        out += _uint(10, value)
    elif kind == "long":
        out += _uint(11, value)
    elif kind == "float":
        out += _key(12, 5) + struct.pack("<f", value)
    elif kind == "double":
        out += _key(13, 1) + struct.pack("<d", value)
    elif kind == "bool":
        out += _uint(14, 1 if value else 0)
    else:
        out += _bytes(15, str(value).encode())
    return out


def payload(metrics: list[bytes], seq: int | None, timestamp: int) -> bytes:
    out = _uint(1, timestamp)
    for m in metrics:
        out += _bytes(2, m)
    if seq is not None:
        out += _uint(3, seq)
    return out


@dataclass
class EdgeNode:
    """One edge node (`group`/`node`) with devices; keeps bdSeq and seq as the spec says."""

    group: str
    node: str
    bd_seq: int = 0
    seq: int = 0
    sent: list[tuple[str, bytes]] = field(default_factory=list)

    def _next(self) -> int:
        s = self.seq
        self.seq = (self.seq + 1) % 256
        return s

    def topic(self, kind: str, device: str | None = None) -> str:
        return f"spBv1.0/{self.group}/{kind}/{self.node}" + (f"/{device}" if device else "")

    def will(self) -> tuple[str, bytes]:
        return self.topic("NDEATH"), payload(
            [metric("bdSeq", datatype=8, value=self.bd_seq)], None, 0
        )

    def nbirth(self, ts: int, metrics: list[bytes] | None = None) -> tuple[str, bytes]:
        self.seq = 0
        body = [metric("bdSeq", datatype=8, value=self.bd_seq), *(metrics or [])]
        body.append(metric("Node Control/Rebirth", datatype=11, value=False))
        return self.topic("NBIRTH"), payload(body, self._next(), ts)

    def dbirth(self, device: str, ts: int, metrics: list[bytes]) -> tuple[str, bytes]:
        return self.topic("DBIRTH", device), payload(metrics, self._next(), ts)

    def ddata(self, device: str, ts: int, metrics: list[bytes]) -> tuple[str, bytes]:
        return self.topic("DDATA", device), payload(metrics, self._next(), ts)

    def ndata(self, ts: int, metrics: list[bytes]) -> tuple[str, bytes]:
        return self.topic("NDATA"), payload(metrics, self._next(), ts)

    def ddeath(self, device: str, ts: int) -> tuple[str, bytes]:
        return self.topic("DDEATH", device), payload([], self._next(), ts)
