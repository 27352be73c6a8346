"""Collectors: the polling schedule every device runs under, and the Modbus TCP collector.

A collector is a `Source` (one device's readings: Modbus here, the simulated plant in
edge.gateway_cli); `poll_forever` runs one at a fixed rate in its own task, so a device
that times out costs only its own timeout, never another device's poll. Each Modbus
device has its own pymodbus client and is polled through its register map.

A poll reads the map's coalesced blocks (edge.registers.plan_reads) and stamps the
reading with the wall clock just before the first request. What can go wrong at the
device end, and what happens:

    timeout            no answer within timeout_s: the rest of the poll is skipped
    exception response the block's points are missing from this reading; the others
                       stay. ILLEGAL DATA ADDRESS on a merged block splits it into
                       one request per point for good (gaps the device will not read)
    unreachable        connect refused/lost: reconnect at the next poll, no backoff
                       beyond the poll interval (a refused connect is cheap)
    undecodable value  NaN/Inf, a "not available" sentinel or outside the contract's
                       range: left out of the reading (never published as a number)

Every fault is counted (`DeviceCounters`) and logged once when the device's state
changes (ok -> timeout -> unreachable -> ok ...), with the counts on recovery; never
once per poll. pymodbus itself logs every failed request: the gateway turns its
logger down for that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from edge.registers import Block, RegisterMap, decode_raw, to_quantity

log = logging.getLogger(__name__)
ILLEGAL_DATA_ADDRESS = 2
RECONNECT_AFTER_TIMEOUTS = 3
Reading = dict[str, Any]


class Source(Protocol):
    """Anything that yields one device's readings: a Modbus collector, the simulator."""

    device_id: str

    async def poll(self, ts_ms: int) -> Reading | None: ...

    async def close(self) -> None: ...


async def poll_forever(
    source: Source,
    interval_s: float,
    emit: Callable[[str, Reading], None],
    stop: asyncio.Event,
    paused: Callable[[], bool] = lambda: False,
    skipped: Callable[[], None] = lambda: None,
) -> None:
    """Poll at a fixed rate until `stop`; an overrun skips the ticks it missed, never bunches."""
    loop = asyncio.get_running_loop()
    start, tick, last_ms = loop.time(), 0, 0
    while not stop.is_set():
        if paused():
            skipped()
        else:
            last_ms = max(time.time_ns() // 1_000_000, last_ms + 1)
            reading = await source.poll(last_ms)
            if reading is not None:
                emit(source.device_id, reading)
        now = loop.time()
        tick = max(tick + 1, int((now - start) / interval_s) + 1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), start + tick * interval_s - now)


class DeviceState(StrEnum):
    STARTING = "starting"
    OK = "ok"
    TIMEOUT = "timeout"
    EXCEPTION = "exception"
    UNREACHABLE = "unreachable"


@dataclass
class DeviceCounters:
    polls: int = 0
    readings: int = 0
    timeouts: int = 0
    exceptions: int = 0
    unreachable: int = 0
    invalid_values: int = 0
    blocks_split: int = 0


@dataclass(frozen=True)
class ModbusTarget:
    """Where a device is and how to read it."""

    device_id: str
    host: str
    port: int
    unit_id: int
    register_map: RegisterMap
    timeout_s: float = 1.0


class _DeviceError(Exception):
    def __init__(self, state: DeviceState, detail: str, code: int = 0) -> None:
        super().__init__(detail)
        self.state, self.detail, self.code = state, detail, code


@dataclass
class ModbusCollector:
    """Polls one Modbus TCP device; `poll` never raises for device faults."""

    target: ModbusTarget
    counters: DeviceCounters = field(default_factory=DeviceCounters)

    def __post_init__(self) -> None:
        t = self.target
        self.device_id = t.device_id
        self.blocks: list[Block] = t.register_map.plan()
        self.state = DeviceState.STARTING
        self._bad_values: dict[str, str] = {}
        self._client = AsyncModbusTcpClient(
            t.host, port=t.port, timeout=t.timeout_s, retries=0, reconnect_delay=0, name=t.device_id
        )
        # pymodbus drops the connection after 3 unanswered requests, which would make a
        # silent device flap between timeout and unreachable; we reconnect ourselves
        self._client.set_max_no_responses(1_000_000)
        self._silent_polls = 0

    async def poll(self, ts_ms: int) -> Reading | None:
        """One reading stamped ts_ms with whatever could be read and decoded, or None."""
        self.counters.polls += 1
        values: Reading = {}
        fault: _DeviceError | None = None
        try:
            await self._ensure_connected()
            queue = deque(self.blocks)
            while queue:
                block = queue.popleft()
                try:
                    registers = await self._read(block)
                except _DeviceError as exc:
                    if exc.state is not DeviceState.EXCEPTION:
                        raise
                    parts = self._split(block, exc)
                    queue.extendleft(reversed(parts))
                    fault = fault if parts else exc
                    continue
                values.update(self._decode(block, registers))
        except _DeviceError as exc:
            fault = exc
        timed_out = fault is not None and fault.state is DeviceState.TIMEOUT
        self._silent_polls = self._silent_polls + 1 if timed_out else 0
        if self._silent_polls >= RECONNECT_AFTER_TIMEOUTS:  # a half-open connection, maybe
            self._client.close()
            self._silent_polls = 0
        self._record(fault)
        if not values:
            return None
        self.counters.readings += 1
        return {"ts": ts_ms, **values}

    async def close(self) -> None:
        self._client.close()

    async def _ensure_connected(self) -> None:
        if self._client.connected:
            return
        t = self.target
        try:
            ok = await asyncio.wait_for(self._client.connect(), t.timeout_s + 1.0)
        except (TimeoutError, OSError, ModbusException) as exc:
            ok, why = False, str(exc) or type(exc).__name__
        else:
            why = "connection refused or timed out"
        if not ok:
            raise _DeviceError(
                DeviceState.UNREACHABLE, f"cannot connect to {t.host}:{t.port}: {why}"
            )

    async def _read(self, block: Block) -> list[int]:
        read = (
            self._client.read_holding_registers
            if block.function == "holding"
            else self._client.read_input_registers
        )
        t = self.target
        where = f"{block.function} {block.start}+{block.count}"
        try:
            response = await asyncio.wait_for(
                read(block.start, count=block.count, device_id=t.unit_id), 2 * t.timeout_s + 1.0
            )
        except ConnectionException as exc:
            raise _DeviceError(DeviceState.UNREACHABLE, f"{where}: {exc}") from None
        except (TimeoutError, ModbusIOException) as exc:
            state = DeviceState.TIMEOUT if self._client.connected else DeviceState.UNREACHABLE
            raise _DeviceError(state, f"{where}: no answer in {t.timeout_s} s ({exc})") from None
        if response.isError():
            code = getattr(response, "exception_code", 0)
            raise _DeviceError(DeviceState.EXCEPTION, f"{where}: exception code {code}", code)
        registers = list(response.registers)
        if len(registers) < block.count:
            detail = f"{where}: short answer ({len(registers)} registers)"
            raise _DeviceError(DeviceState.EXCEPTION, detail)
        return registers

    def _split(self, block: Block, exc: _DeviceError) -> list[Block]:
        """A merged block the device refuses by address becomes one block per point."""
        if exc.code != ILLEGAL_DATA_ADDRESS or len(block.points) < 2:
            return []
        parts = [Block(block.function, p.address, p.count, (p,)) for p in block.points]
        index = self.blocks.index(block)
        self.blocks[index : index + 1] = parts
        self.counters.blocks_split += 1
        log.warning(
            "device %s: %s (illegal data address): reading its %d points one by one from now on",
            self.device_id,
            exc.detail,
            len(parts),
        )
        return parts

    def _decode(self, block: Block, registers: list[int]) -> Reading:
        values: Reading = {}
        for point in block.points:
            value, problem = to_quantity(point, decode_raw(point, block.slice(registers, point)))
            q = point.quantity
            if value is None:
                self.counters.invalid_values += 1
                if self._bad_values.get(q) != problem:
                    log.warning("device %s: %s not published: %s", self.device_id, q, problem)
                    self._bad_values[q] = problem
                continue
            if q in self._bad_values:
                log.info("device %s: %s is valid again", self.device_id, q)
                del self._bad_values[q]
            values[q] = value
        return values

    def _record(self, fault: _DeviceError | None) -> None:
        state = DeviceState.OK if fault is None else fault.state
        c = self.counters
        if state is DeviceState.TIMEOUT:
            c.timeouts += 1
        elif state is DeviceState.EXCEPTION:
            c.exceptions += 1
        elif state is DeviceState.UNREACHABLE:
            c.unreachable += 1
        if state is self.state:
            return
        previous, self.state = self.state, state
        if fault is None:
            log.info(
                "device %s: %s -> ok (polls=%d timeouts=%d exceptions=%d unreachable=%d)",
                self.device_id,
                previous,
                c.polls,
                c.timeouts,
                c.exceptions,
                c.unreachable,
            )
        else:
            log.warning("device %s: %s -> %s: %s", self.device_id, previous, state, fault.detail)
