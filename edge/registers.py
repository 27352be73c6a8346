"""Register maps: which Modbus registers hold which contract quantity, and how to decode them.

One TOML file per device model (edge/maps/). A map says, per canonical quantity, the
function (holding/input), address, data type, word and byte order, scale/offset and the
unit the device reports in; decoding turns registers into a number in the contract's
unit (DESIGN.md, wire contract v1) or refuses it. Decoding is pure: the I/O is in
edge.modbus.

    raw = registers -> (byte swap) -> convert_from_registers(type, word order)
    value = unit(abs?(transform?(raw * scale + offset)))

Binary noise is removed so analysts see 230.5, not 230.50000000000003: a float32 is
taken at its shortest decimal that round-trips, and every result is rounded to 15
significant digits (what a double carries). NaN/Inf, a configured "not available"
sentinel and values outside the contract's range are not numbers we publish: they come
back as a problem string for the collector to count.

Reads are coalesced (`plan_reads`): points of one function closer than `max_gap`
registers share a request of at most `max_block` registers (Modbus allows 125).

Errors: `RegisterMapError` (a ValueError) names the file and the key to fix.
"""

from __future__ import annotations

import math
import re
import struct
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

from pymodbus.client.mixin import ModbusClientMixin

from schemas.wire import QUANTITY_RANGES, STATES

Order = Literal["big", "little"]
_DT = ModbusClientMixin.DATATYPE
DATA_TYPES: Final[dict[str, Any]] = {
    "int16": _DT.INT16,
    "uint16": _DT.UINT16,
    "int32": _DT.INT32,
    "uint32": _DT.UINT32,
    "int64": _DT.INT64,
    "uint64": _DT.UINT64,
    "float32": _DT.FLOAT32,
    "float64": _DT.FLOAT64,
}
MODBUS_MAX_READ: Final = 125
# unit -> (contract unit, factor, offset): contract value = factor * value + offset
UNITS: Final[dict[str, tuple[str, float, float]]] = {
    **{u: ("A", f, 0.0) for u, f in (("A", 1.0), ("mA", 1e-3), ("kA", 1e3))},
    **{u: ("V", f, 0.0) for u, f in (("V", 1.0), ("kV", 1e3))},
    **{u: ("kW", f, 0.0) for u, f in (("W", 1e-3), ("kW", 1.0), ("MW", 1e3))},
    **{u: ("kWh", f, 0.0) for u, f in (("Wh", 1e-3), ("kWh", 1.0), ("MWh", 1e3))},
    **{u: ("1", f, 0.0) for u, f in (("1", 1.0), ("%", 0.01))},
    **{u: ("rpm", f, 0.0) for u, f in (("rpm", 1.0), ("1/s", 60.0))},
    "Hz": ("Hz", 1.0, 0.0),
    "degC": ("degC", 1.0, 0.0),
    "degF": ("degC", 5.0 / 9.0, -160.0 / 9.0),
    "K": ("degC", 1.0, -273.15),
    **{
        u: ("kPa", f, 0.0)
        for u, f in (("kPa", 1.0), ("Pa", 1e-3), ("MPa", 1e3), ("mbar", 0.1), ("bar", 100.0))
    },
    "psi": ("kPa", 6.894757293168361, 0.0),
    **{
        u: ("m3/h", f, 0.0)
        for u, f in (
            ("m3/h", 1.0),
            ("m3/min", 60.0),
            ("m3/s", 3600.0),
            ("l/s", 3.6),
            ("l/min", 0.06),
        )
    },
}
# longest suffix first: a quantity's name says its unit (power_kw is kW, energy_kwh kWh)
_SUFFIX_UNIT: Final = (
    ("_kwh", "kWh"),
    ("_kw", "kW"),
    ("_kpa", "kPa"),
    ("_m3h", "m3/h"),
    ("_rpm", "rpm"),
    ("_hz", "Hz"),
    ("_a", "A"),
    ("_v", "V"),
    ("_c", "degC"),
)
# Schneider PM5000 "4Q FP PF": |PF| lives in -2..2 with leading loads folded past +-1.
TRANSFORMS: Final = ("pf_4q",)
_INT: Final = re.compile(r"0[xX][0-9a-fA-F]+|0|[1-9][0-9]*")
_READ_DEFAULTS: Final = (("address_base", 0), ("max_gap", 10), ("max_block", 100))
_READ_KEYS: Final = frozenset({"address_base", "word_order", "byte_order", "max_gap", "max_block"})
_POINT_KEYS: Final = frozenset(
    {"function", "address", "type", "word_order", "byte_order", "scale", "offset", "unit"}
    | {"abs", "transform", "invalid", "states", "mask", "note"}
)


class RegisterMapError(ValueError):
    """A register map is wrong; the message names the file and what to fix."""


def contract_unit(quantity: str) -> str:
    """The unit a quantity carries on the wire."""
    if quantity == "power_factor":
        return "1"
    return next(unit for suffix, unit in _SUFFIX_UNIT if quantity.endswith(suffix))


@dataclass(frozen=True)
class Point:
    """One quantity's register(s) on the wire (address is the 0-based PDU address)."""

    quantity: str
    function: Literal["holding", "input"]
    address: int
    dtype: str
    word_order: Order = "big"
    byte_order: Order = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    absolute: bool = False
    transform: str = ""
    invalid: frozenset[int] = frozenset()
    states: Mapping[int, str] | None = None
    mask: int | None = None

    @property
    def count(self) -> int:
        return int(DATA_TYPES[self.dtype].value[1])


@dataclass(frozen=True)
class Block:
    """One read request: `count` registers from `start`, holding the given points."""

    function: Literal["holding", "input"]
    start: int
    count: int
    points: tuple[Point, ...]

    def slice(self, registers: Sequence[int], point: Point) -> list[int]:
        first = point.address - self.start
        return list(registers[first : first + point.count])


@dataclass(frozen=True)
class RegisterMap:
    model: str
    path: Path
    points: tuple[Point, ...]
    max_gap: int = 10
    max_block: int = 100

    def plan(self) -> list[Block]:
        return plan_reads(self.points, self.max_gap, self.max_block)


def plan_reads(points: Sequence[Point], max_gap: int, max_block: int) -> list[Block]:
    """Fewest requests: merge points of a function across gaps <= max_gap, blocks <= max_block."""
    blocks: list[Block] = []
    for function in ("holding", "input"):
        group: list[Point] = []
        start = end = 0
        for p in sorted((p for p in points if p.function == function), key=lambda p: p.address):
            p_end = p.address + p.count
            if group and p.address - end <= max_gap and max(end, p_end) - start <= max_block:
                group.append(p)
                end = max(end, p_end)
                continue
            if group:
                blocks.append(Block(function, start, end - start, tuple(group)))
            group, start, end = [p], p.address, p_end
        if group:
            blocks.append(Block(function, start, end - start, tuple(group)))
    return blocks


def decode_raw(point: Point, registers: Sequence[int]) -> int | float:
    """Registers -> the device's number, honouring byte order within and word order across."""
    regs = list(registers)
    if point.byte_order == "little":
        regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    value = ModbusClientMixin.convert_from_registers(
        regs, DATA_TYPES[point.dtype], word_order=point.word_order
    )
    if not isinstance(value, int | float):
        raise TypeError(f"{point.quantity}: {point.dtype} decoded to {type(value).__name__}")
    return value


def to_quantity(point: Point, raw: int | float) -> tuple[float | str | None, str]:
    """(value in the contract's unit, "") or (None, why it is not a publishable number)."""
    if isinstance(raw, int) and raw in point.invalid:
        return None, f"not available (raw {raw})"
    if point.states is not None:
        key = int(raw) & point.mask if point.mask is not None else int(raw)
        state = point.states.get(key)
        return (state, "") if state is not None else (None, f"unmapped state value {key}")
    if not math.isfinite(raw):
        return None, f"not finite ({raw})"
    d = Decimal(repr(_shortest_float32(raw) if point.dtype == "float32" else raw))
    d = d * Decimal(repr(point.scale)) + Decimal(repr(point.offset))
    if point.transform == "pf_4q" and abs(d) > 1:
        d = (2 if d > 0 else -2) - d
    _, factor, shift = UNITS[point.unit]
    d = abs(d) if point.absolute else d
    x = float(f"{float(d * Decimal(repr(factor)) + Decimal(repr(shift))):.15g}")
    lo, hi = QUANTITY_RANGES[point.quantity]
    if not lo <= x <= hi:
        return None, f"out of range ({x} not in {lo}..{hi})"
    return x, ""


def _shortest_float32(x: float) -> float:
    for digits in range(6, 10):
        candidate = float(f"{x:.{digits}g}")
        if struct.unpack(">f", struct.pack(">f", candidate))[0] == x:
            return candidate
    return x


def load_map(path: Path) -> RegisterMap:
    """Read and check a register map; RegisterMapError says which key is wrong."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegisterMapError(f"register map {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegisterMapError(f"register map {path} is not valid TOML: {exc}") from None
    return _parse_map(path, doc)


Need = Callable[[bool, str], None]


def _parse_map(path: Path, doc: dict[str, Any]) -> RegisterMap:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise RegisterMapError(f"register map {path}: {message}")

    need(set(doc) <= {"model", "read", "points"}, "sections are [model], [read], [points.*]")
    model, read, points = (doc.get(k, {}) for k in ("model", "read", "points"))
    need(all(isinstance(t, dict) for t in (model, read, points)), "sections must be tables")
    need(set(model) <= {"name", "kind", "source", "notes"}, "[model] keys: name kind source notes")
    need(set(read) <= _READ_KEYS, f"[read] keys are {', '.join(sorted(_READ_KEYS))}")
    need(bool(points), "no [points.<quantity>] tables")
    base, max_gap, max_block = (read.get(k, d) for k, d in _READ_DEFAULTS)
    need(base in (0, 1), "read.address_base must be 0 (PDU addresses) or 1 (register numbers)")
    need(isinstance(max_gap, int) and max_gap >= 0, "read.max_gap must be an integer >= 0")
    need(
        isinstance(max_block, int) and 1 <= max_block <= MODBUS_MAX_READ,
        f"read.max_block must be 1..{MODBUS_MAX_READ}",
    )
    orders = {k: read.get(k, "big") for k in ("word_order", "byte_order")}
    parsed = tuple(
        _parse_point(q, spec, base, orders, max_block, need) for q, spec in points.items()
    )
    return RegisterMap(str(model.get("name", path.stem)), path, parsed, max_gap, max_block)


def _parse_point(
    quantity: str, spec: Any, base: int, orders: dict[str, str], max_block: int, need: Need
) -> Point:
    where = f"[points.{quantity}]"
    need(quantity in QUANTITY_RANGES or quantity == "state", f"{where}: not a contract quantity")
    need(isinstance(spec, dict), f"{where} must be a table")
    need(set(spec) <= _POINT_KEYS, f"{where}: unknown key(s) {sorted(set(spec) - _POINT_KEYS)}")
    function, dtype, address = spec.get("function"), spec.get("type"), spec.get("address")
    need(function in ("holding", "input"), f"{where}: function must be 'holding' or 'input'")
    need(dtype in DATA_TYPES, f"{where}: type must be one of {', '.join(DATA_TYPES)}")
    need(type(address) is int, f"{where}: address must be an integer")
    count = int(DATA_TYPES[dtype].value[1])
    need(0 <= address - base <= 65536 - count, f"{where}: address {address} is outside")
    need(count <= max_block, f"{where}: a {dtype} needs {count} registers > read.max_block")
    orders = {k: spec.get(k, v) for k, v in orders.items()}
    need(set(orders.values()) <= {"big", "little"}, f"{where}: orders are 'big' or 'little'")
    scale, offset = spec.get("scale", 1.0), spec.get("offset", 0.0)
    finite = all(type(v) in (int, float) and math.isfinite(v) for v in (scale, offset))
    need(finite, f"{where}: scale and offset must be finite numbers")
    invalid = spec.get("invalid", [])
    need(type(invalid) is list and all(type(v) is int for v in invalid), f"{where}: invalid=[ints]")
    common: dict[str, Any] = dict(
        quantity=quantity, function=function, address=address - base, dtype=dtype,
        invalid=frozenset(invalid), **orders,
    )  # fmt: skip
    if quantity == "state":
        return Point(**common, **_parse_states(spec, where, need))
    unit, wanted = spec.get("unit", contract_unit(quantity)), contract_unit(quantity)
    units = sorted(u for u, (c, _, _) in UNITS.items() if c == wanted)
    need(unit in units, f"{where}: unit {unit!r} cannot become {quantity}; use one of {units}")
    transform = spec.get("transform", "")
    need(transform in ("", *TRANSFORMS), f"{where}: transform is one of {', '.join(TRANSFORMS)}")
    scale, offset, absolute = float(scale), float(offset), bool(spec.get("abs", False))
    return Point(
        **common, scale=scale, offset=offset, unit=unit, absolute=absolute, transform=transform
    )


def _parse_states(spec: dict[str, Any], where: str, need: Need) -> dict[str, Any]:
    states, mask = spec.get("states") or {}, spec.get("mask")
    need(isinstance(states, dict) and bool(states), f"{where}: state needs a states table")
    parsed: dict[int, str] = {}
    for key, value in states.items():
        need(_INT.fullmatch(key) is not None, f"{where}: states key {key!r} is not an integer")
        need(value in STATES, f"{where}: state {value!r} is not one of {', '.join(STATES)}")
        parsed[int(key, 0)] = value
    need(mask is None or (type(mask) is int and mask > 0), f"{where}: mask must be an int > 0")
    return {"states": parsed, "mask": mask}
