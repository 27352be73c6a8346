"""The Sparkplug B host against an edge node written for the test (payloads encoded by
hand from the specification's field numbers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.sparkplug import INT8, INT16, INT32, INT64, Payload, metric_value, parse, signed
from ingest.sparkplug_host import (
    Host,
    MappingError,
    Outcome,
    load_mapping,
    rebirth_command,
    state_payload,
)
from tests.ingest.sparkplug_edge import EdgeNode, metric, payload

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
MS = int(T0.timestamp() * 1000)

BIRTH = [  # the meter's metrics with aliases, units as engUnit properties
    metric("Energy/Import", alias=1, datatype=10, value=1_250_000.0, unit="Wh"),
    metric("Power", alias=2, datatype=9, value=41.5, unit="kW"),
    metric("Voltage", alias=3, datatype=10, value=398.0, unit="V"),
    metric("Cabinet Door", alias=4, datatype=11, value=False),
]


def _readings(out: Outcome) -> list[dict[str, Any]]:
    rows = []
    for topic, body in out.messages:
        message = json.loads(body)
        rows += [{"topic": topic, **r} for r in message["readings"]]
    return rows


def _born(host: Host, edge: EdgeNode) -> None:
    host.handle(*edge.nbirth(MS), T0)
    out = host.handle(*edge.dbirth("meter-1", MS, BIRTH), T0)
    assert out.quarantine == [] and out.rebirth == []


def test_every_integer_datatype_and_both_negative_encodings() -> None:
    for datatype, width in ((INT8, 8), (INT16, 16), (INT32, 32)):
        for value in (-1, -(2 ** (width - 1)), 2 ** (width - 1) - 1, 0, 5):
            narrow = value % (1 << width)  # two's complement of the width
            wide = value % (1 << 32)  # sign-extended to 32 bits
            for carrier in (narrow, wide):
                m = parse(payload([metric("x", datatype=datatype, value=carrier)], 0, MS))
                assert metric_value(m.metrics[0], datatype).number == value
    m = parse(payload([metric("x", datatype=INT64, value=(-7) % (1 << 64))], 0, MS))
    assert metric_value(m.metrics[0], INT64).number == -7
    m = parse(payload([metric("x", datatype=8, value=2**64 - 1)], 0, MS))  # UInt64
    assert metric_value(m.metrics[0], 8).number == float(2**64 - 1)
    m = parse(
        payload(
            [
                metric("x", datatype=9, value=1.5),
                metric("b", datatype=11, value=True),
                metric("s", datatype=12, value="run"),
                metric("t", datatype=13, value=MS),
            ],
            0,
            MS,
        )
    )
    assert metric_value(m.metrics[0], m.metrics[0].datatype).number == 1.5
    assert metric_value(m.metrics[1], 11).number == 1.0
    assert metric_value(m.metrics[2], 12).text == "run"
    assert metric_value(m.metrics[3], 13).timestamp == T0
    assert signed(0xFF, 8) == -1 and signed(0xFFFFFFFF, 8) == -1 and signed(0x7F, 8) == 127


def test_births_aliases_units_and_data_by_exception() -> None:
    host, edge = Host(), EdgeNode("plant-sh", "gw-01")
    host.handle(*edge.nbirth(MS), T0)
    birth = host.handle(*edge.dbirth("meter-1", MS, BIRTH), T0)
    assert [(r["energy_kwh"], r["power_kw"], r["voltage_v"]) for r in _readings(birth)] == [
        (1250.0, 41.5, 398.0)  # Wh to kWh by the engUnit
    ]
    assert host.counters.unmapped == {"Cabinet Door": 1}  # counted, not quarantined
    # Data by exception, aliases only: one metric changed, at its own timestamp.
    data = host.handle(
        *edge.ddata(
            "meter-1", MS + 1000, [metric(alias=2, datatype=9, value=43.0, timestamp=MS + 900)]
        ),
        T0,
    )
    assert _readings(data) == [
        {"topic": "telemetry/plant-sh/meter-1", "ts": MS + 900, "power_kw": 43.0}
    ]
    assert data.quarantine == [] and data.rebirth == []


def test_seq_wraps_at_255_without_a_gap() -> None:
    host, edge = Host(), EdgeNode("plant-sh", "gw-01")
    _born(host, edge)
    for k in range(300):
        out = host.handle(
            *edge.ddata("meter-1", MS + k, [metric(alias=2, datatype=9, value=float(k))]), T0
        )
        assert out.rebirth == [], k
    assert host.counters.seq_gaps == 0


def test_a_gap_lands_the_message_and_asks_for_a_rebirth_once() -> None:
    host, edge = Host(rebirth_interval_s=5.0), EdgeNode("plant-sh", "gw-01")
    _born(host, edge)
    edge.ddata("meter-1", MS, [])  # sent but lost on the way
    out = host.handle(*edge.ddata("meter-1", MS + 2, [metric(alias=2, datatype=9, value=40.0)]), T0)
    assert [r["power_kw"] for r in _readings(out)] == [40.0]
    assert out.rebirth == [("plant-sh", "gw-01")] and host.counters.seq_gaps == 1
    edge.ddata("meter-1", MS, [])
    again = host.handle(
        *edge.ddata("meter-1", MS + 4, [metric(alias=2, datatype=9, value=41.0)]), T0
    )
    assert again.rebirth == [] and host.counters.rebirths_suppressed == 1  # rate-limited
    later = T0 + timedelta(seconds=6)
    edge.ddata("meter-1", MS, [])
    assert host.handle(*edge.ddata("meter-1", MS + 6, []), later).rebirth == [("plant-sh", "gw-01")]
    topic, body = rebirth_command("plant-sh", "gw-01")
    command = Payload()
    command.ParseFromString(body)
    assert topic == "spBv1.0/plant-sh/NCMD/gw-01"
    assert [(m.name, m.boolean_value) for m in command.metrics] == [("Node Control/Rebirth", True)]


def test_unknown_alias_data_before_birth_and_garbage_are_quarantined() -> None:
    host, edge = Host(), EdgeNode("plant-sh", "gw-01")
    early = host.handle(*edge.ddata("meter-1", MS, [metric(alias=2, datatype=9, value=1.0)]), T0)
    assert [q[0] for q in early.quarantine] == ["sparkplug_no_birth"]
    assert early.rebirth == [("plant-sh", "gw-01")] and early.messages == []
    _born(host, edge)
    out = host.handle(
        *edge.ddata(
            "meter-1",
            MS + 5,
            [metric(alias=2, datatype=9, value=42.0), metric(alias=99, datatype=9, value=1.0)],
        ),
        T0 + timedelta(seconds=10),
    )
    assert [r["power_kw"] for r in _readings(out)] == [42.0]  # the known metric lands
    ((reason, detail, raw),) = out.quarantine
    assert reason == "sparkplug_unknown_alias" and "alias 99" in detail and raw
    bad = host.handle("spBv1.0/plant-sh/DDATA/gw-01/meter-1", b"\xff\xff\xff", T0)
    assert bad.quarantine[0][0] == "sparkplug_decode_error"


def test_death_by_bdseq_will_and_stale_will() -> None:
    host, edge = Host(), EdgeNode("plant-sh", "gw-01", bd_seq=3)
    _born(host, edge)
    old = EdgeNode("plant-sh", "gw-01", bd_seq=2).will()  # a Will from the last session
    assert host.handle(*old, T0).status == [] and host.counters.stale_deaths == 1
    assert host.nodes[("plant-sh", "gw-01")].online
    dead = host.handle(*edge.will(), T0 + timedelta(minutes=1))
    levels = {(s["level"], s["device"], s["online"]) for s in dead.status}
    assert levels == {("node", None, False), ("device", "meter-1", False)}
    after = host.handle(*edge.ddata("meter-1", MS, [metric(alias=2, datatype=9, value=1.0)]), T0)
    assert after.quarantine[0][0] == "sparkplug_no_birth"  # dead until born again
    edge.bd_seq = 4
    _born(host, edge)
    assert host.nodes[("plant-sh", "gw-01")].online


def test_graceful_device_death_and_state_message() -> None:
    host, edge = Host(), EdgeNode("plant-sh", "gw-01")
    _born(host, edge)
    out = host.handle(*edge.ddeath("meter-1", MS), T0)
    assert out.status[0]["online"] is False and out.rebirth == []
    assert json.loads(state_payload(True, T0)) == {"online": True, "timestamp": MS}


@pytest.mark.parametrize("node_level", [True, False])
def test_node_metrics_land_too(node_level: bool) -> None:
    host, edge = Host(), EdgeNode("plant-sh", "gw-01")
    out = host.handle(
        *edge.nbirth(MS, [metric("Temperature", alias=7, datatype=9, value=31.5, unit="C")]), T0
    )
    if node_level:
        assert _readings(out) == [
            {"topic": "telemetry/plant-sh/gw-01", "ts": MS, "temperature_c": 31.5}
        ]
    data = host.handle(*edge.ndata(MS + 10, [metric(alias=7, datatype=9, value=32.0)]), T0)
    assert [r["temperature_c"] for r in _readings(data)] == [32.0]


def test_a_mapping_file_names_site_device_quantity_and_scale(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text(
        '[[metric]]\ngroup = "plant-sh"\nedge_node = "gw-01"\ndevice = "meter-1"\n'
        'metric = "Energy/Import"\nsite = "plant-sh"\ndevice_id = "transformer-main-01"\n'
        'quantity = "energy_kwh"\nscale = 0.001\n'
        '[[metric]]\ngroup = "plant-sh"\nedge_node = "gw-01"\ndevice = "meter-1"\n'
        'metric = "Cabinet Door"\nsite = "plant-sh"\ndevice_id = "transformer-main-01"\n'
        'quantity = "state"\n'
    )
    with pytest.raises(MappingError, match="#2: quantity 'state' is not a wire contract v1"):
        load_mapping(str(path))
    path.write_text(path.read_text().rsplit("[[metric]]", 1)[0])
    host, edge = Host(load_mapping(str(path))), EdgeNode("plant-sh", "gw-01")
    host.handle(*edge.nbirth(MS), T0)
    out = host.handle(*edge.dbirth("meter-1", MS, BIRTH), T0)
    by_topic = {r["topic"]: r for r in _readings(out)}
    assert by_topic["telemetry/plant-sh/transformer-main-01"]["energy_kwh"] == 1250.0
    assert by_topic["telemetry/plant-sh/meter-1"]["power_kw"] == 41.5  # defaults still apply
