"""Modbus collector against pymodbus's own server: exact decoding, coalescing, device faults."""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.modbus import DeviceState, ModbusCollector, ModbusTarget, poll_forever
from edge.registers import Point, RegisterMapError, load_map, plan_reads
from wattline.broker import free_port

MAPS = Path(__file__).parents[2] / "edge" / "maps"
HOLDING, INPUT = 3, 4
SIZE = 400  # registers 0..399 exist in both spaces


def wire(fmt: str, value: float, word_order: str = "big", byte_order: str = "big") -> list[int]:
    """Registers as a device sends them: struct's big-endian bytes, words/bytes reordered."""
    raw = struct.pack(">" + fmt, value)
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if word_order == "little":
        words.reverse()
    if byte_order == "little":
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


class FakeDevice:
    """A SimDevice whose registers the test sets per function; it logs every request."""

    def __init__(self, unit_id: int = 1) -> None:
        self.images: dict[int, dict[int, int]] = {HOLDING: {}, INPUT: {}}
        self.requests: list[tuple[int, int, int]] = []
        self.refuse: dict[int, ExcCodes] = {}  # function -> exception for every read
        self.forbidden: set[tuple[int, int]] = set()  # (function, address) never readable
        self.served = 0

        async def action(
            fc: int, start: int, address: int, count: int, regs: list[int], values: Any
        ) -> ExcCodes | None:
            self.requests.append((fc, address, count))
            if fc in self.refuse:
                return self.refuse[fc]
            if any((fc, a) in self.forbidden for a in range(address, address + count)):
                return ExcCodes.ILLEGAL_ADDRESS
            for a in range(address, address + count):
                regs[a - start] = self.images[fc].get(a, 0)
            self.served += 1
            self.on_served(fc, address, count)
            return None

        blocks = [SimData(0, count=SIZE, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
        self.sim = SimDevice(id=unit_id, simdata=(bits, bits, blocks, list(blocks)), action=action)

    def on_served(self, fc: int, address: int, count: int) -> None:
        """Hook for tests that change registers after each answer."""

    def put(self, function: int, address: int, registers: list[int]) -> None:
        for offset, value in enumerate(registers):
            self.images[function][address + offset] = value


@asynccontextmanager
async def serving(devices: FakeDevice | list[FakeDevice], port: int) -> AsyncIterator[None]:
    sims = [d.sim for d in devices] if isinstance(devices, list) else devices.sim
    server = ModbusTcpServer(sims, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    try:
        yield
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]


def write_map(path: Path, body: str, max_gap: int = 10) -> Path:
    path.write_text(f"[model]\nname = 'test'\n[read]\nmax_gap = {max_gap}\n{body}")
    return path


def toml(spec: dict[str, Any]) -> str:
    """A point's keys as TOML lines (strings, numbers, booleans, one inline table)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, dict):
            return "{ " + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + " }"
        return f'"{v}"' if isinstance(v, str) else repr(v)

    return "\n".join(f"{k} = {value(v)}" for k, v in spec.items())


LE, BE = "little", "big"
EXACT: list[tuple[str, dict[str, Any], list[int], float | str]] = [
    # quantity, point keys, registers as the device sends them, expected contract value
    ("voltage_v", {"type": "uint16", "scale": 0.1, "unit": "V"}, wire("H", 2305), 230.5),
    ("voltage_bc_v", {"type": "int16", "scale": 0.1, "byte_order": LE}, wire("h", 4001, BE, LE),
     400.1),
    ("power_kw", {"type": "int32", "unit": "W"}, wire("i", -123456), -123.456),
    ("current_a", {"type": "uint32", "scale": 0.01, "word_order": LE}, wire("I", 123456, LE),
     1234.56),
    ("energy_kwh", {"type": "int64", "unit": "Wh"}, wire("q", 9_876_543_210), 9_876_543.21),
    ("current_l1_a", {"type": "uint64", "scale": 1e-8, "word_order": LE, "byte_order": LE},
     wire("Q", 2**40 + 5, LE, LE), 10_995.11627781),
    ("frequency_hz", {"type": "float32", "word_order": LE}, wire("f", 49.98, LE), 49.98),
    ("power_factor", {"type": "float32", "abs": True, "word_order": LE, "byte_order": LE},
     wire("f", -0.87, LE, LE), 0.87),
    ("speed_rpm", {"type": "float64"}, wire("d", 1478.25), 1478.25),
    ("pressure_kpa", {"type": "float32", "unit": "bar", "byte_order": LE},
     wire("f", 7.5, BE, LE), 750.0),
    ("temperature_c", {"type": "int16", "scale": 0.1, "unit": "degF"}, wire("h", 1004), 38.0),
    ("flow_m3h", {"type": "uint16", "scale": 0.1, "unit": "l/s"}, wire("H", 250), 90.0),
    ("state", {"type": "uint16", "mask": 0x0800, "states": {"0": "stopped", "0x800": "running"}},
     wire("H", 0x0807), "running"),
]  # fmt: skip


def test_every_type_word_and_byte_order_decodes_exactly_in_two_requests(tmp_path: Path) -> None:
    device, body, address = FakeDevice(unit_id=7), [], {HOLDING: 100, INPUT: 100}
    for index, (quantity, spec, registers, _) in enumerate(EXACT):
        function = HOLDING if index % 2 == 0 else INPUT
        device.put(function, address[function], registers)
        name = "holding" if function == HOLDING else "input"
        where = f"function = '{name}'\naddress = {address[function]}"
        body.append(f"[points.{quantity}]\n{where}\n{toml(spec)}")
        address[function] += len(registers) + 1  # a one-register gap between points
    device.put(HOLDING, 0, [0xDEAD] * 100)  # the same addresses in the other space differ
    regmap = load_map(write_map(tmp_path / "m.toml", "\n".join(body)))
    port = free_port()

    async def main() -> list[Any]:
        async with serving(device, port):
            collector = ModbusCollector(ModbusTarget("m1", "127.0.0.1", port, 7, regmap, 1.0))
            readings = [await collector.poll(1000 + i) for i in range(3)]
            await collector.close()
            return readings

    readings = asyncio.run(main())
    expected = {quantity: value for quantity, _, _, value in EXACT}
    assert readings[0] == {"ts": 1000, **expected}
    assert [r["ts"] for r in readings] == [1000, 1001, 1002]
    assert device.requests[:2] == [(HOLDING, 100, address[HOLDING] - 101),
                                   (INPUT, 100, address[INPUT] - 101)]  # fmt: skip
    assert len(device.requests) == 6


def test_reads_coalesce_within_max_gap_and_max_block() -> None:
    def p(address: int, dtype: str = "uint16", function: str = "holding") -> Point:
        return Point(f"q{address}", function, address, dtype)  # type: ignore[arg-type]

    points = [p(10), p(12, "float32"), p(20), p(40, "int64"), p(41), p(10, function="input")]
    plan = [(b.function, b.start, b.count) for b in plan_reads(points, 6, 100)]
    assert plan == [("holding", 10, 11), ("holding", 40, 4), ("input", 10, 1)]
    plan = [(b.function, b.start, b.count) for b in plan_reads(points, 100, 8)]
    assert plan == [("holding", 10, 4), ("holding", 20, 1), ("holding", 40, 4), ("input", 10, 1)]


def test_shipped_example_maps_load_and_need_few_requests() -> None:
    requests = {p.stem: len(load_map(p).plan()) for p in sorted(MAPS.glob("*.toml"))}
    assert requests == {"danfoss_fc302": 6, "eastron_sdm630": 2, "schneider_pm5560": 2}
    for path in MAPS.glob("*.toml"):
        assert "EXAMPLE" in path.read_text().splitlines()[0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[points.power_kw]\nfunction='holding'\naddress=1\ntype='float32'\nunit='A'",
         "cannot become"),
        ("[points.power_kw]\nfunction='coil'\naddress=1\ntype='float32'", "function must be"),
        ("[points.power_kw]\nfunction='holding'\naddress=1\ntype='float16'", "type must be"),
        ("[points.power_kw]\nfunction='holding'\naddress=1\ntype='int32'\nscael=2", "unknown key"),
        ("[points.watts]\nfunction='holding'\naddress=1\ntype='int32'", "not a contract quantity"),
        ("[points.state]\nfunction='holding'\naddress=1\ntype='uint16'", "needs a states table"),
        ("[points.power_kw]\nfunction='holding'\naddress=65535\ntype='int32'", "outside"),
    ],
)  # fmt: skip
def test_map_mistakes_are_named(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RegisterMapError, match=message):
        load_map(write_map(tmp_path / "bad.toml", body))


def test_undecodable_values_are_not_published_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = """
[points.frequency_hz]
function='holding'
address=0
type='float32'
[points.power_factor]
function='holding'
address=2
type='float32'
[points.temperature_c]
function='holding'
address=4
type='uint16'
invalid=[65535]
[points.power_kw]
function='holding'
address=5
type='float32'
"""
    device = FakeDevice()
    device.put(HOLDING, 0, wire("f", math.nan) + wire("f", 1.5) + [0xFFFF] + wire("f", math.inf))
    regmap = load_map(write_map(tmp_path / "m.toml", body))
    port = free_port()

    async def main() -> list[Any]:
        async with serving(device, port):
            collector = ModbusCollector(ModbusTarget("m1", "127.0.0.1", port, 1, regmap, 1.0))
            out: list[Any] = [await collector.poll(i + 1) for i in range(3)]
            device.put(HOLDING, 0, wire("f", 50.0))  # frequency valid again
            out.append(await collector.poll(9))
            out.append(collector.counters)
            await collector.close()
            return out

    with caplog.at_level(logging.INFO, logger="edge.modbus"):
        *readings, counters = asyncio.run(main())
    assert readings == [None, None, None, {"ts": 9, "frequency_hz": 50.0}]
    assert counters.invalid_values == 4 * 3 + 3
    problems = [r.getMessage() for r in caplog.records if "not published" in r.getMessage()]
    assert len(problems) == 4
    assert any("not finite" in m for m in problems) and any("out of range" in m for m in problems)
    assert any("not available" in m for m in problems)
    assert sum("valid again" in r.getMessage() for r in caplog.records) == 1


def test_exceptions_timeouts_and_a_vanishing_device_are_counted_and_logged_per_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = """
[points.voltage_v]
function='holding'
address=0
type='uint16'
[points.current_a]
function='holding'
address=5
type='uint16'
[points.power_kw]
function='input'
address=0
type='uint16'
"""
    device = FakeDevice()
    device.put(HOLDING, 0, [400, 0, 0, 0, 0, 20])
    device.put(INPUT, 0, [11])
    device.forbidden.add((HOLDING, 3))  # the merged read 0..5 is refused: split it
    regmap = load_map(write_map(tmp_path / "m.toml", body))
    port = free_port()

    async def main() -> tuple[list[Any], ModbusCollector]:
        collector = ModbusCollector(ModbusTarget("m1", "127.0.0.1", port, 1, regmap, 0.3))
        out: list[Any] = []
        async with serving(device, port):
            out += [await collector.poll(1), collector.state]
            device.refuse[INPUT] = ExcCodes.DEVICE_BUSY
            out += [await collector.poll(2), await collector.poll(3), collector.state]
            del device.refuse[INPUT]
        out += [await collector.poll(4), await collector.poll(5), collector.state]  # gone
        async with serving(device, port):  # back on the same port
            out += [await collector.poll(6), collector.state]
        await collector.close()
        return out, collector

    with caplog.at_level(logging.INFO, logger="edge.modbus"):
        out, collector = asyncio.run(main())
    full = {"voltage_v": 400.0, "current_a": 20.0, "power_kw": 11.0}
    assert out[0:2] == [{"ts": 1, **full}, DeviceState.OK]
    holding_only = {"voltage_v": 400.0, "current_a": 20.0}
    assert out[2:5] == [{"ts": 2, **holding_only}, {"ts": 3, **holding_only}, DeviceState.EXCEPTION]
    assert out[5:8] == [None, None, DeviceState.UNREACHABLE]
    assert out[8:10] == [{"ts": 6, **full}, DeviceState.OK]
    c = collector.counters
    assert (c.polls, c.readings, c.exceptions, c.unreachable, c.blocks_split) == (6, 4, 2, 2, 1)
    changes = [r.getMessage() for r in caplog.records if " -> " in r.getMessage()]
    assert [m.split(": ")[1] for m in changes] == [
        "starting -> ok (polls=1 timeouts=0 exceptions=0 unreachable=0)",
        "ok -> exception",
        "exception -> unreachable",
        "unreachable -> ok (polls=6 timeouts=0 exceptions=2 unreachable=2)",
    ]


@asynccontextmanager
async def silent_device(port: int) -> AsyncIterator[None]:
    """Accepts connections, reads requests, never answers: a device that times out."""
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(256):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


def test_a_device_that_times_out_does_not_delay_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = "[points.power_kw]\nfunction='holding'\naddress=0\ntype='uint16'"
    regmap = load_map(write_map(tmp_path / "m.toml", body))
    good, silent_port, good_port = FakeDevice(), free_port(), free_port()
    good.put(HOLDING, 0, [42])
    seen: dict[str, list[float]] = {"good": [], "silent": []}

    def emit(device_id: str, reading: dict[str, Any]) -> None:
        seen[device_id].append(time.monotonic())

    async def main() -> ModbusCollector:
        stop = asyncio.Event()
        async with serving(good, good_port), silent_device(silent_port):
            fast = ModbusCollector(ModbusTarget("good", "127.0.0.1", good_port, 1, regmap, 0.5))
            slow = ModbusCollector(ModbusTarget("silent", "127.0.0.1", silent_port, 1, regmap, 0.5))
            tasks = [asyncio.create_task(poll_forever(c, 0.05, emit, stop)) for c in (fast, slow)]
            while slow.counters.timeouts < 4:  # past the reconnect after 3 silent polls
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*tasks)
            await fast.close()
            await slow.close()
        return slow

    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="edge.modbus"):
        slow = asyncio.run(main())
    elapsed = time.monotonic() - started
    gaps = [b - a for a, b in zip(seen["good"], seen["good"][1:], strict=False)]
    assert slow.state is DeviceState.TIMEOUT and seen["silent"] == []
    changes = [r.getMessage() for r in caplog.records if "device silent:" in r.getMessage()]
    assert len(changes) == 1 and "starting -> timeout" in changes[0]  # not once per poll
    assert elapsed >= 1.5 and len(seen["good"]) >= 0.6 * elapsed / 0.05
    assert max(gaps) < 0.25, f"the good device waited {max(gaps):.3f} s (silent timeout 0.5 s)"
