"""The simulated plant end to end: wire contract, scenarios, calendar, registry and live MQTT."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import physics as ph
from edge.devices import DEMO_DATA_DIR, Device, Site, load_devices, load_sites, motor_nameplate
from edge.scenarios import SCENARIOS, load_scenario_assignments
from edge.simulate import generate_messages, publish_live
from schemas.calendar import parse_shift_calendar
from schemas.wire import MAX_PAYLOAD_BYTES, QUANTITY_RANGES, READING_FIELDS, STATES, TOPIC_RE
from wattline.broker import free_port

MONDAY_0800_SH = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 08:00 in Asia/Shanghai
DEVICES = load_devices(DEMO_DATA_DIR / "devices.csv")
SITES = load_sites(DEMO_DATA_DIR / "sites.csv")
ASSIGNMENTS = load_scenario_assignments(DEMO_DATA_DIR / "scenarios.csv")
BY_ID = {d.device_id: d for d in DEVICES}
Readings = dict[str, list[dict[str, Any]]]


def _no_constants(name: str) -> float:
    raise AssertionError(f"payload carries {name}")


def decode(messages: list[tuple[str, bytes]]) -> Readings:
    by_device: Readings = defaultdict(list)
    for _topic, payload in messages:
        body = json.loads(payload, parse_constant=_no_constants)
        by_device[body["device_id"]].extend(body["readings"])
    return by_device


def ts_utc(ts: str | int) -> datetime:
    return (
        datetime.fromtimestamp(ts / 1000, UTC)
        if isinstance(ts, int)
        else datetime.fromisoformat(ts)
    )


@pytest.fixture(scope="module")
def day() -> list[tuple[str, bytes]]:
    """Monday 08:00 to Tuesday 08:00 local, one reading a minute, batches of 10."""
    end = MONDAY_0800_SH + timedelta(days=1)
    return list(
        generate_messages(DEVICES, SITES, ASSIGNMENTS, MONDAY_0800_SH, end, 60.0, 10, seed=7)
    )


@pytest.fixture(scope="module")
def readings(day: list[tuple[str, bytes]]) -> Readings:
    return decode(day)


def on_shift(reading: dict[str, Any]) -> bool:
    return ts_utc(reading["ts"]) < MONDAY_0800_SH + timedelta(hours=12)


def test_demo_plant_covers_every_required_scenario() -> None:
    assert set(SITES) == {"plant-sh"}
    assert SITES["plant-sh"].shift_calendar == "Mon-Fri 08:00-20:00; Sat 08:00-12:00"
    assert {d.kind for d in DEVICES} == {"motor", "pump", "fan", "compressor", "transformer"}
    required = {"healthy", "oversized_motor", "idle_off_shift", "voltage_unbalance"}
    required |= {"pump_throttled", "compressor_leak", "light_transformer"}
    assert required <= set(ASSIGNMENTS.values()) <= set(SCENARIOS)
    assert set(ASSIGNMENTS) == set(BY_ID)


def test_every_message_and_reading_is_within_the_wire_contract(
    day: list[tuple[str, bytes]],
) -> None:
    assert len(day) == 11 * 144
    for topic, payload in day:
        assert len(payload) <= MAX_PAYLOAD_BYTES
        body = json.loads(payload, parse_constant=_no_constants)
        assert payload == json.dumps(body, separators=(",", ":")).encode()  # compact
        match = TOPIC_RE.match(topic)
        assert match and match["device_id"] == body["device_id"] and match["site"] == "plant-sh"
        assert set(body) == {"device_id", "gateway", "seq", "readings"}
        for reading in body["readings"]:
            assert set(reading) <= READING_FIELDS and len(reading) > 2
            assert ts_utc(reading["ts"]).utcoffset() is not None
            assert reading["state"] in STATES
            for name, value in reading.items():
                if name in QUANTITY_RANGES:
                    low, high = QUANTITY_RANGES[name]
                    assert isinstance(value, int | float) and math.isfinite(value)
                    assert low <= value <= high, (body["device_id"], name, value)


def test_both_timestamp_forms_appear_with_the_site_offset(readings: Readings) -> None:
    forms = {dev: {type(r["ts"]) for r in rs} for dev, rs in readings.items()}
    assert all(len(f) == 1 for f in forms.values())  # one form per device
    assert {str, int} == set().union(*forms.values())
    texts = [r["ts"] for rs in readings.values() for r in rs if isinstance(r["ts"], str)]
    assert texts[0] == "2026-11-23T08:00:00.000+08:00"
    assert all(t.endswith("+08:00") for t in texts)


def test_seq_counts_messages_per_device_and_time_advances(day: list[tuple[str, bytes]]) -> None:
    seqs: dict[str, list[int]] = defaultdict(list)
    for _topic, payload in day:
        body = json.loads(payload)
        seqs[body["device_id"]].append(body["seq"])
        assert len(body["readings"]) == 10
    assert all(s == list(range(1, 145)) for s in seqs.values())


def test_same_seed_same_messages_other_seed_other_values() -> None:
    end = MONDAY_0800_SH + timedelta(hours=2)
    run = [
        list(generate_messages(DEVICES, SITES, ASSIGNMENTS, MONDAY_0800_SH, end, 300.0, 3, s))
        for s in (1, 1, 2)
    ]
    assert run[0] == run[1]
    assert run[0] != run[2]
    assert [t for t, _ in run[0]] == [t for t, _ in run[2]]


def test_power_current_voltage_and_pf_are_consistent(readings: Readings) -> None:
    for rs in readings.values():
        for r in rs:
            if "power_factor" in r:
                apparent = math.sqrt(3) * r["voltage_v"] * r["current_a"] * r["power_factor"] / 1000
                assert r["power_kw"] == pytest.approx(apparent, rel=0.005)
                phases = (r["current_l1_a"], r["current_l2_a"], r["current_l3_a"])
                assert sum(phases) / 3 == pytest.approx(r["current_a"], abs=0.02)


def test_energy_counter_integrates_power(readings: Readings) -> None:
    for dev, rs in readings.items():
        energy = [r["energy_kwh"] for r in rs]
        assert energy == sorted(energy), dev
        if BY_ID[dev].kind in ("motor", "pump", "fan", "transformer"):
            integral = sum(r["power_kw"] for r in rs[1:]) / 60
            assert energy[-1] - energy[0] == pytest.approx(integral, rel=0.005), dev


def beta_of(reading: dict[str, Any], device: Device) -> float:
    return ph.motor_beta_for_input(reading["power_kw"], motor_nameplate(device))


def test_healthy_and_oversized_motor_load_factors(readings: Readings) -> None:
    healthy = [
        beta_of(r, BY_ID["motor-conveyor-01"]) for r in readings["motor-conveyor-01"] if on_shift(r)
    ]
    oversized = [
        beta_of(r, BY_ID["motor-mixer-02"]) for r in readings["motor-mixer-02"] if on_shift(r)
    ]
    assert min(healthy) >= 0.65 and max(healthy) <= 0.85
    assert min(oversized) >= 0.195 and max(oversized) <= 0.25
    off = [r for r in readings["motor-mixer-02"] if not on_shift(r)]
    assert {r["state"] for r in off} == {"stopped"} and all(r["power_kw"] == 0 for r in off)


def test_idle_motor_runs_at_no_load_off_shift(readings: Readings) -> None:
    motor = BY_ID["motor-grinder-03"]
    fla = motor_nameplate(motor).full_load_current_a
    on = [r for r in readings[motor.device_id] if on_shift(r)]
    off = [r for r in readings[motor.device_id] if not on_shift(r)]
    assert len(off) == 12 * 60 and {r["state"] for r in off} == {"running"}
    assert all(0.6 <= beta_of(r, motor) <= 0.8 for r in on)
    assert all(r["current_a"] <= 1.05 * 0.276 * fla * 1.02 for r in off)  # M1: I ≤ ~1.05·I0
    assert all(beta_of(r, motor) < 0.05 for r in off)


def test_voltage_unbalance_magnitude(readings: Readings) -> None:
    for dev, rs in readings.items():
        lines = [(r["voltage_ab_v"], r["voltage_bc_v"], r["voltage_ca_v"]) for r in rs]
        vu = [ph.nema_unbalance_pct(*v) for v in lines]
        if ASSIGNMENTS[dev] == "voltage_unbalance":
            assert all(2.95 <= v <= 3.05 for v in vu)
            currents = [
                (r["current_l1_a"], r["current_l2_a"], r["current_l3_a"])
                for r in rs
                if r["current_a"]
            ]
            assert all(ph.nema_unbalance_pct(*i) > 10.0 for i in currents)  # M5 follows
        else:
            assert all(v < 0.5 for v in vu), dev


def test_throttled_pump_runs_far_left_of_bep(readings: Readings) -> None:
    for dev, low, high in (("pump-process-02", 0.37, 0.43), ("pump-cooling-01", 0.93, 1.07)):
        bep = BY_ID[dev].bep_flow_m3h
        assert bep
        ratios = [r["flow_m3h"] / bep for r in readings[dev] if r["state"] == "running"]
        assert len(ratios) == 12 * 60 and low <= min(ratios) and max(ratios) <= high


def test_transformer_load_factors(readings: Readings) -> None:
    for dev, low, high in (
        ("transformer-aux-02", 0.035, 0.065),
        ("transformer-main-01", 0.18, 0.62),
    ):
        kva = BY_ID[dev].rated_kva
        assert kva
        betas = [math.sqrt(3) * r["voltage_v"] * r["current_a"] / 1000 / kva for r in readings[dev]]
        assert low <= min(betas) and max(betas) <= high
    aux = BY_ID["transformer-aux-02"]
    assert aux.no_load_loss_kw and aux.load_loss_kw
    assert aux.no_load_loss_kw / aux.load_loss_kw > 0.065  # the band is below P0/Pk: T1


def test_leaking_compressor_cycles_off_shift_and_healthy_one_stops() -> None:
    night_start, night_end = (
        MONDAY_0800_SH + timedelta(hours=12),
        MONDAY_0800_SH + timedelta(hours=23),
    )
    devices = [BY_ID["compressor-01"], BY_ID["compressor-02"]]
    night = decode(
        list(generate_messages(devices, SITES, ASSIGNMENTS, night_start, night_end, 10.0, 60, 3))
    )
    leaking = night["compressor-02"]
    loaded = sum(r["state"] == "loaded" for r in leaking) / len(leaking)
    assert {r["state"] for r in leaking} == {"loaded", "unloaded"}
    assert loaded == pytest.approx(0.35, abs=0.04)  # §5.4: leakage = T/(T + t)
    assert all(r["flow_m3h"] == (720.0 if r["state"] == "loaded" else 0.0) for r in leaking)
    assert all(645.0 <= r["pressure_kpa"] <= 755.0 for r in leaking)
    nameplate_kw = {"loaded": 75.0 / 0.947, "unloaded": 22.0}  # P_N/eta_N, unloaded_power_kw
    assert all(r["power_kw"] == pytest.approx(nameplate_kw[r["state"]], rel=0.005) for r in leaking)
    assert {r["state"] for r in night["compressor-01"]} == {"stopped"}


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 11, 23, 0, 0), True),  # Mon 08:00 local
        (datetime(2026, 11, 23, 11, 59, 59), True),  # Mon 19:59:59
        (datetime(2026, 11, 23, 12, 0), False),  # Mon 20:00
        (datetime(2026, 11, 22, 23, 59), False),  # Mon 07:59
        (datetime(2026, 11, 28, 3, 59), True),  # Sat 11:59
        (datetime(2026, 11, 28, 4, 0), False),  # Sat 12:00
        (datetime(2026, 11, 29, 2, 0), False),  # Sun 10:00
    ],
)
def test_shift_calendar_in_site_time(when: datetime, expected: bool) -> None:
    calendar = parse_shift_calendar("Mon-Fri 08:00-20:00; Sat 08:00-12:00")
    assert calendar.is_on_shift(when.replace(tzinfo=UTC), "Asia/Shanghai") is expected
    assert calendar.minutes_per_week == 5 * 12 * 60 + 4 * 60


def test_shift_calendar_overnight_wrapping_and_lists() -> None:
    calendar = parse_shift_calendar(
        "Sun 22:00-06:00; mon,WED 08:00-12:00, 13:00-24:00; Fri-Sat 00:00-24:00"
    )
    local = ("2026-11-23T01:00", "2026-11-25T13:30", "2026-11-25T23:59", "2026-11-28T23:00")
    assert all(
        calendar.is_on_shift(datetime.fromisoformat(t).replace(tzinfo=UTC), UTC) for t in local
    )
    assert not calendar.is_on_shift(datetime(2026, 11, 23, 6, 0, tzinfo=UTC), UTC)
    assert not calendar.is_on_shift(datetime(2026, 11, 24, 9, 0, tzinfo=UTC), UTC)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "empty"),
        ("Mnn-Fri 08:00-20:00", "'Mnn'"),
        ("Mon--Fri 08:00-20:00", "'Mon--Fri'"),
        ("Mon-Fri 8:00-20:00", "'8:00'"),
        ("Mon-Fri 08:00-25:00", "'08:00-25:00'"),
        ("Mon-Fri 08:61-20:00", "'08:61'"),
        ("Mon-Fri 08:00", "'08:00'"),
        ("Mon-Fri", "'Mon-Fri'"),
        ("Mon-Fri 08:00-20:00;", "empty entry"),
        ("Mon-Fri 08:00-08:00", "'08:00-08:00'"),
        ("Sat 24:00-06:00", "'24:00-06:00'"),
    ],
)
def test_shift_calendar_errors_name_the_bad_token(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="shift calendar") as info:
        parse_shift_calendar(text)
    assert named in str(info.value)


def test_shift_calendar_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        parse_shift_calendar("Mon 08:00-09:00").is_on_shift(datetime(2026, 1, 5, 8), "UTC")


def test_registry_loaders(tmp_path: Path) -> None:
    assert BY_ID["motor-conveyor-01"].bep_flow_m3h is None
    assert BY_ID["transformer-main-01"].no_load_loss_kw == 1.225
    assert SITES["plant-sh"] == Site(
        "plant-sh", "Asia/Shanghai", 0.75, "CNY", 0.5306, SITES["plant-sh"].shift_calendar
    )
    bad = tmp_path / "devices.csv"
    bad.write_text("device_id,site,kind\nm1,s,motor\n")
    with pytest.raises(ValueError, match="missing column"):
        load_devices(bad)
    scenarios = tmp_path / "scenarios.csv"
    scenarios.write_text("device_id,scenario\nm1,healthy\nm2,overloaded\n")
    with pytest.raises(ValueError, match=r"scenarios.csv:3: unknown scenario 'overloaded'"):
        load_scenario_assignments(scenarios)


def test_bad_arguments_fail_before_the_first_message() -> None:
    end = MONDAY_0800_SH + timedelta(hours=1)
    with pytest.raises(ValueError, match="applies to motor, not to a pump"):
        generate_messages(
            DEVICES, SITES, {"pump-cooling-01": "oversized_motor"}, MONDAY_0800_SH, end, 60
        )
    with pytest.raises(ValueError, match="naive"):
        generate_messages(DEVICES, SITES, ASSIGNMENTS, datetime(2026, 1, 1), end, 60)
    with pytest.raises(ValueError, match="readings_per_message"):
        generate_messages(DEVICES, SITES, ASSIGNMENTS, MONDAY_0800_SH, end, 60, 0)
    with pytest.raises(ValueError, match="not in sites"):
        generate_messages(DEVICES, {}, ASSIGNMENTS, MONDAY_0800_SH, end, 60)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    """A throw-away Mosquitto on a free loopback port; ready when it logs 'running'."""
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n"
        "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
    )
    proc = subprocess.Popen(
        ["/usr/sbin/mosquitto", "-c", str(conf)], stderr=subprocess.PIPE, text=True
    )
    ready, lines = threading.Event(), []

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if " running" in line:
                ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert ready.wait(10), f"mosquitto did not start: {''.join(lines)}"
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(5)
        assert proc.stderr is not None
        proc.stderr.close()


@pytest.mark.broker
def test_publish_live_delivers_what_it_reports(broker: int) -> None:
    received: list[tuple[str, dict[str, Any]]] = []
    subscribed, lock, enough = threading.Event(), threading.Lock(), threading.Condition()
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="edge-test-sub")
    sub.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock, enough:
            received.append((msg.topic, json.loads(msg.payload)))
            enough.notify_all()

    sub.on_message = on_message
    sub.connect("127.0.0.1", broker)
    sub.subscribe("telemetry/plant-sh/#", qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(5)
        count = asyncio.run(
            publish_live(
                "127.0.0.1",
                broker,
                DEVICES,
                SITES,
                ASSIGNMENTS,
                interval_s=0.1,
                duration_s=0.5,
                client_id="edge-test-pub",
                readings_per_message=2,
                seed=5,
            )
        )
        with enough:
            assert enough.wait_for(lambda: sum(len(b["readings"]) for _, b in received) >= count, 5)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert count == 11 * 5
    assert len(received) == 11 * 3  # 5 intervals in batches of 2: 2 + 2 + 1
    per_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for topic, body in received:
        assert topic == f"telemetry/plant-sh/{body['device_id']}"
        per_device[body["device_id"]].append(body)
    for bodies in per_device.values():
        assert [b["seq"] for b in bodies] == [1, 2, 3]
        stamps = [ts_utc(r["ts"]) for b in bodies for r in b["readings"]]
        assert stamps == sorted(stamps) and len(set(stamps)) == 5
    assert sum(len(b["readings"]) for _, b in received) == count
