"""The simulated plant: registry + scenarios -> wire-contract messages, as a backfill or live.

`generate_messages` is pure and deterministic for a seed (tests, backfills); `publish_live`
paces the same simulation on the wall clock and publishes over MQTT at QoS 1. Messages use
the wire contract's batch shape (DESIGN.md); half of the devices (alternating in device-id
order) stamp readings as RFC 3339 text in the site's offset, the rest as epoch milliseconds,
so both forms stay exercised. `seq` counts messages per device from 1 in each run.

Energy counters start at a baseline that grows faster than any device can consume
(1.5 x rated input since 2020-01-01), so a later run never shows a counter decrease.

Errors: ValueError for registry, scenario or argument problems (raised before anything is
generated or published); aiomqtt.MqttError when the broker cannot be reached or drops us.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiomqtt

from edge import physics as ph
from edge.devices import Device, Site, motor_nameplate, require, transformer_nameplate
from edge.scenarios import get_scenario
from schemas.calendar import parse_shift_calendar
from schemas.wire import MAX_PAYLOAD_BYTES, topic_for

log = logging.getLogger(__name__)

Reading = dict[str, Any]
ENERGY_EPOCH_MS: Final = 1_577_836_800_000  # 2020-01-01T00:00:00Z
MAX_READINGS_PER_MESSAGE: Final = 500  # ~400 B per reading keeps a batch far below 256 KiB
SITE_LOAD_PF: Final = 0.92  # compensated LV bus, above the 0.90 tariff line (§6.3 T4)
COMPRESSOR_BAND_KPA: Final = (650.0, 750.0)
BACKGROUND_LEAK: Final = 0.03  # of FAD: what bleeds a stopped compressor's header
# BEP shaft power / motor P_N, eta_BEP, shut-off head ratio [INFERRED]
CURVES: Final = {"pump": (0.85, 0.80, 1.25), "fan": (0.85, 0.75, 1.20)}
THERMAL_TAU_S: Final = {"compressor": 300.0, "transformer": 10800.0}  # others 1800 s
PHASE_FIELDS: Final = ("voltage_ab_v", "voltage_bc_v", "voltage_ca_v")
PHASE_FIELDS_I: Final = ("current_l1_a", "current_l2_a", "current_l3_a")


class _DeviceSim:
    """One device's running state: load wander, thermal lag, energy counter, receiver, seq."""

    def __init__(self, device: Device, site: Site, scenario_name: str, seed: int, as_text: bool):
        scenario = get_scenario(scenario_name)
        self.device, self.kind, self.ts_as_text = device, device.kind, as_text
        self.profile = scenario.profile_for(device.kind)
        self.unbalance_pct = scenario.voltage_unbalance_pct
        try:
            self.tz = ZoneInfo(site.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"site {site.site}: unknown timezone {site.timezone!r}") from exc
        self.calendar = parse_shift_calendar(site.shift_calendar) if site.shift_calendar else None
        self.topic, self.gateway = topic_for(site.site, device.device_id), f"sim-{site.site}"
        self.rng = random.Random(f"{seed}:{device.device_id}")
        self.seq, self.last_ms, self.energy_kwh, self.temp_c = 0, -1, 0.0, math.nan
        self.load_wander, self.supply_wander = self._step_wander(0.0), self._step_wander(0.0)
        self.tau_s = THERMAL_TAU_S.get(self.kind, 1800.0)
        if self.kind == "transformer":
            self.transformer = transformer_nameplate(device)
            self.rated_v = self.transformer.secondary_voltage_v
            self.headroom_kw = 1.5 * self.transformer.rated_kva
            return
        self.motor = motor_nameplate(device)
        self.rated_v = self.motor.rated_voltage_v
        self.headroom_kw = 1.5 * ph.motor_input_kw(1.0, self.motor)
        if self.kind in CURVES:
            (self.bep_flow,) = require(device, "bep_flow_m3h")
        elif self.kind == "compressor":
            self.fad, unloaded_kw = require(device, "rated_flow_m3h", "unloaded_power_kw")
            self.unloaded_beta = ph.motor_beta_for_input(unloaded_kw, self.motor)
            self.receiver = ph.Receiver(COMPRESSOR_BAND_KPA[1], loaded=False)
        elif self.kind != "motor":
            raise ValueError(f"device {device.device_id}: unknown kind {self.kind!r}")

    def _step_wander(self, x: float) -> float:
        """Bounded AR(1) in [-1, 1]: loads drift smoothly and never leave their band."""
        return min(1.0, max(-1.0, 0.9 * x + 0.3 * self.rng.uniform(-1.0, 1.0)))

    def reading(self, t_ms: int) -> Reading:
        dt = 0.0 if self.last_ms < 0 else (t_ms - self.last_ms) / 1000.0
        if self.last_ms < 0:
            self.energy_kwh = self.headroom_kw * max(t_ms - ENERGY_EPOCH_MS, 0) / 3.6e6
        self.last_ms = t_ms
        when = datetime.fromtimestamp(t_ms / 1000.0, UTC)
        on_shift = self.calendar is None or self.calendar.is_on_shift(when, self.tz)
        target = self.profile.on_shift if on_shift else self.profile.off_shift
        self.load_wander = self._step_wander(self.load_wander)
        self.supply_wander = self._step_wander(self.supply_wander)
        load = None if target is None else target * (1.0 + self.profile.spread * self.load_wander)
        volts = self.rated_v * (1.0 + 0.01 * self.supply_wander)
        hz = 50.0 + self.rng.uniform(-0.02, 0.02)
        if self.kind == "transformer":
            values, avg_kw, temp_ss = self._transformer(load, volts)
        elif self.kind == "compressor":
            values, avg_kw, temp_ss = self._compressor(load, volts, hz, dt)
        else:
            values, avg_kw, temp_ss = self._rotating(load, volts, hz)
        self.energy_kwh += avg_kw * dt / 3600.0
        lag = 0.0 if math.isnan(self.temp_c) else math.exp(-dt / self.tau_s)
        self.temp_c = temp_ss + (self.temp_c - temp_ss) * lag if lag else temp_ss
        local = when.astimezone(self.tz)
        ts: str | int = local.isoformat(timespec="milliseconds") if self.ts_as_text else t_ms
        return {
            "ts": ts,
            **values,
            "frequency_hz": round(hz, 3),
            "energy_kwh": round(self.energy_kwh, 3),
            "temperature_c": round(self.temp_c, 2),
        }

    def _meter(
        self, volts: float, amps: float, pf: float | None, kw: float, gain: float
    ) -> Reading:
        """What a 3-phase meter reports; mean V and I are the means of the phases (§1)."""
        volts3, amps3 = ph.three_phase(volts, amps, self.unbalance_pct, gain)
        kw *= 1.0 + self.rng.uniform(-0.002, 0.002)
        meter: Reading = {"voltage_v": round(volts, 2), "current_a": round(amps, 2)}
        meter |= {k: round(v, 2) for k, v in zip(PHASE_FIELDS, volts3, strict=True)}
        meter |= {k: round(i, 2) for k, i in zip(PHASE_FIELDS_I, amps3, strict=True)}
        meter["power_kw"] = round(kw, 3)
        if pf is not None:
            meter["power_factor"] = round(min(pf, 1.0), 4)
        return meter

    def _motor_electrical(
        self, beta: float, volts: float, hz: float
    ) -> tuple[Reading, ph.MotorPoint]:
        pt = ph.motor_point(beta, self.motor, volts, hz)
        gain = ph.current_unbalance_gain(pt.current_a, self.motor)
        values = self._meter(volts, pt.current_a, pt.power_factor, pt.input_kw, gain)
        values["speed_rpm"] = round(pt.speed_rpm, 1)
        return values, pt

    def _stopped(self, volts: float) -> Reading:
        return {"state": "stopped", **self._meter(volts, 0.0, None, 0.0, 0.0), "speed_rpm": 0.0}

    def _rotating(
        self, load: float | None, volts: float, hz: float
    ) -> tuple[Reading, float, float]:
        """Motor, or pump/fan on its curve driven by its motor (edge.physics). pressure_kpa is
        the pressure rise: a pump's discharge gauge pressure from a sump at pump level."""
        process: Reading = {}
        if load is None:
            if self.kind != "motor":
                process = {"flow_m3h": 0.0, "pressure_kpa": 0.0}
            return {**self._stopped(volts), **process}, 0.0, ph.AMBIENT_C
        beta = load
        if self.kind in CURVES:
            power_ratio, eta_bep, shutoff = CURVES[self.kind]
            bep_kw = power_ratio * self.motor.rated_kw
            pt = ph.rotodynamic_point(load, self.bep_flow, bep_kw, eta_bep, shutoff)
            beta = pt.shaft_kw / self.motor.rated_kw
            process = {
                "flow_m3h": round(pt.flow_m3h, 2),
                "pressure_kpa": round(pt.pressure_rise_kpa, 2),
            }
        values, mp = self._motor_electrical(beta, volts, hz)
        temp = ph.motor_winding_temp_c(mp.losses_kw, self.motor, self.unbalance_pct)
        return {"state": "running", **values, **process}, mp.input_kw, temp

    def _compressor(
        self, load: float | None, volts: float, hz: float, dt: float
    ) -> tuple[Reading, float, float]:
        """Load/unload screw compressor cycling on its receiver pressure band (§5.3, §5.4)."""
        running = load is not None
        demand = (load if load is not None else BACKGROUND_LEAK) * self.fad
        storage_m3 = 0.4 * self.fad / 60.0  # ~3 US gal of receiver per cfm of FAD [INFERRED]
        self.receiver, loaded_s = ph.advance_receiver(
            self.receiver, dt, demand, self.fad, storage_m3, COMPRESSOR_BAND_KPA, running
        )
        process = {"pressure_kpa": round(self.receiver.pressure_kpa, 2)}
        if not running:
            return {**self._stopped(volts), **process, "flow_m3h": 0.0}, 0.0, ph.AMBIENT_C
        loaded_kw = ph.motor_input_kw(1.0, self.motor)
        unloaded_kw = ph.motor_input_kw(self.unloaded_beta, self.motor)
        avg_kw = (loaded_s * loaded_kw + (dt - loaded_s) * unloaded_kw) / dt if dt else unloaded_kw
        loaded = self.receiver.loaded
        electrical, _ = self._motor_electrical(1.0 if loaded else self.unloaded_beta, volts, hz)
        state = "loaded" if loaded else "unloaded"
        values = {"state": state, **electrical, **process, "flow_m3h": self.fad if loaded else 0.0}
        return values, avg_kw, ph.AMBIENT_C + (55.0 if loaded else 35.0)

    def _transformer(self, load: float | None, volts: float) -> tuple[Reading, float, float]:
        """LV-side meter of a distribution transformer; losses are upstream of it (§6.2)."""
        if load is None:
            return {"state": "stopped", **self._meter(0.0, 0.0, None, 0.0, 0.0)}, 0.0, ph.AMBIENT_C
        pf = SITE_LOAD_PF + self.rng.uniform(-0.01, 0.01)
        tp = ph.transformer_point(load, pf, self.transformer)
        scale = volts / self.rated_v
        values = self._meter(tp.voltage_v * scale, tp.current_a / scale, pf, tp.output_kw, 10.0)
        temp = ph.transformer_oil_temp_c(load, self.transformer)
        return {"state": "running", **values}, tp.output_kw, temp

    def message(self, readings: list[Reading]) -> tuple[str, bytes]:
        self.seq += 1
        body = {"device_id": self.device.device_id, "gateway": self.gateway, "seq": self.seq}
        body["readings"] = readings
        payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"{self.topic}: payload of {len(payload)} B exceeds the contract")
        return self.topic, payload


def _build_sims(
    devices: Sequence[Device],
    sites: Mapping[str, Site],
    assignments: Mapping[str, str],
    seed: int,
    readings_per_message: int,
) -> list[_DeviceSim]:
    if not 1 <= readings_per_message <= MAX_READINGS_PER_MESSAGE:
        limit = MAX_READINGS_PER_MESSAGE
        raise ValueError(f"readings_per_message must be 1..{limit}, got {readings_per_message}")
    sims = []
    for index, device in enumerate(sorted(devices, key=lambda d: d.device_id)):
        if device.site not in sites:
            raise ValueError(f"device {device.device_id}: site {device.site!r} is not in sites")
        scenario = assignments.get(device.device_id, "healthy")
        sims.append(_DeviceSim(device, sites[device.site], scenario, seed, index % 2 == 0))
    return sims


def _interval_ms(interval_s: float) -> int:
    step = round(interval_s * 1000)
    if step < 1:
        raise ValueError(f"interval_s must be at least 0.001 s, got {interval_s}")
    return step


def _epoch_ms(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError(f"expected an aware UTC datetime, got naive {when.isoformat()}")
    return round(when.timestamp() * 1000)


def generate_messages(
    devices: Sequence[Device],
    sites: Mapping[str, Site],
    assignments: Mapping[str, str],
    start_utc: datetime,
    end_utc: datetime,
    interval_s: float,
    readings_per_message: int = 1,
    seed: int = 0,
) -> Iterator[tuple[str, bytes]]:
    """(topic, payload) for every device, readings every interval_s in [start_utc, end_utc).

    Messages come in time order, one per device per batch of readings_per_message readings
    (the last batch may be shorter). Arguments are checked before the first message."""
    sims = _build_sims(devices, sites, assignments, seed, readings_per_message)
    ticks = range(_epoch_ms(start_utc), _epoch_ms(end_utc), _interval_ms(interval_s))

    def messages() -> Iterator[tuple[str, bytes]]:
        for first in range(0, len(ticks), readings_per_message):
            batch = ticks[first : first + readings_per_message]
            for sim in sims:
                yield sim.message([sim.reading(t) for t in batch])

    return messages()


async def _stopped_within(stop: asyncio.Event, timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


async def _flush(client: aiomqtt.Client, buffers: dict[_DeviceSim, list[Reading]], qos: int) -> int:
    ready = [(sim, batch) for sim, batch in buffers.items() if batch]
    await asyncio.gather(*(client.publish(*sim.message(batch), qos=qos) for sim, batch in ready))
    for sim, _ in ready:
        buffers[sim] = []
    return sum(len(batch) for _, batch in ready)


async def publish_live(
    host: str,
    port: int,
    devices: Sequence[Device],
    sites: Mapping[str, Site],
    assignments: Mapping[str, str],
    interval_s: float,
    duration_s: float | None,
    client_id: str,
    qos: int = 1,
    readings_per_message: int = 1,
    stop_event: asyncio.Event | None = None,
    seed: int | None = None,
) -> int:
    """Publish the simulation at wall-clock pace until duration_s passes (None: until stop_event).

    One reading per device every interval_s, sent every readings_per_message intervals (and
    once more for what is pending when stopping); each publish is awaited to its PUBACK at
    QoS 1. Returns the number of readings published."""
    seed = time.time_ns() if seed is None else seed
    sims = _build_sims(devices, sites, assignments, seed, readings_per_message)
    step_s = _interval_ms(interval_s) / 1000.0
    stop = stop_event or asyncio.Event()
    buffers: dict[_DeviceSim, list[Reading]] = {sim: [] for sim in sims}
    loop = asyncio.get_running_loop()
    published, tick, last_ms = 0, 0, 0
    async with aiomqtt.Client(hostname=host, port=port, identifier=client_id) as client:
        # One publish per device per interval runs concurrently by design; aiomqtt warns
        # past 10 pending calls, which a plant of more than 10 devices always has.
        client.pending_calls_threshold = max(10, 2 * len(sims))
        start = loop.time()
        while duration_s is None or tick * step_s < duration_s:
            delay = start + tick * step_s - loop.time()
            if stop.is_set() or (delay > 0 and await _stopped_within(stop, delay)):
                break
            last_ms = max(time.time_ns() // 1_000_000, last_ms + 1)
            for sim in sims:
                buffers[sim].append(sim.reading(last_ms))
            tick += 1
            if tick % readings_per_message == 0:
                published += await _flush(client, buffers, qos)
        published += await _flush(client, buffers, qos)
    log.info("published %d readings of %d devices in %d intervals", published, len(sims), tick)
    return published
