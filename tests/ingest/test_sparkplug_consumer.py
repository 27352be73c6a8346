"""Sparkplug B through the real consumer and a real Mosquitto: births, aliases, seq
wrap, faults, the rebirth command, STATE, the device_status table, and SIGKILLs."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import paho.mqtt.client as paho
import polars as pl
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import ConsumerProcess, ConsumerThread, Publisher, settings_for, write_toml
from tests.ingest.sparkplug_edge import EdgeNode, metric
from wattline.broker import Broker
from wattline.config import Settings

MS0 = 1_796_000_000_000  # 2026-11-30 UTC, milliseconds
BIRTH = [
    metric("Energy/Import", alias=1, datatype=10, value=1_000_000.0, unit="Wh"),
    metric("Power", alias=2, datatype=9, value=40.0, unit="kW"),
]


def _settings(broker: Broker, tmp: Path, site: str) -> Settings:
    s = settings_for(broker, tmp, site)
    return replace(
        s, mqtt=replace(s.mqtt, sparkplug_topic=f"spBv1.0/{site}/#", host_id=f"host-{site}")
    ).validate()


class Watcher:
    """Listens for what the host publishes: NCMD rebirths and the retained STATE."""

    def __init__(self, broker: Broker, site: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5
        )
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, bytes(m.payload), bool(m.retain))
        )
        self.client.connect(broker.host, broker.port)
        self.client.subscribe([(f"spBv1.0/{site}/NCMD/#", 1), (f"spBv1.0/STATE/host-{site}", 1)])
        self.client.loop_start()

    def wait(self, prefix: str, timeout: float = 10.0) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if m[0].startswith(prefix)]
            if found:
                return found
            time.sleep(0.05)
        return []

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _rows(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    lake = settings.lake.root
    con = duckdb.connect()
    try:
        return con.execute(
            sql.replace("READINGS", f"read_parquet('{lake}/readings/date=*/*.parquet')").replace(
                "QUARANTINE", f"read_parquet('{lake}/quarantine/date=*/*.parquet')"
            )
        ).fetchall()
    finally:
        con.close()


def _wait(settings: Settings, sql: str, expected: object, timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    got: object = None
    while time.monotonic() < deadline:
        got = _rows(settings, sql)[0][0]
        if got == expected:
            return got
        time.sleep(0.2)
    return got


def test_births_data_wrap_faults_rebirth_state_and_status(
    broker: Broker, site: str, tmp_path: Path
) -> None:
    settings = _settings(broker, tmp_path, site)
    watcher = Watcher(broker, site)
    edge = EdgeNode(site, "gw-01", bd_seq=1)
    pub = Publisher(broker)
    try:
        with ConsumerThread(settings):
            assert watcher.wait(f"spBv1.0/STATE/host-{site}")
            late = Watcher(broker, site)  # subscribes now: gets the retained STATE
            state = late.wait(f"spBv1.0/STATE/host-{site}")
            late.close()
            assert state and b'"online": true' in state[0][1] and state[0][2] is True
            # Data before any birth: quarantined, and a rebirth asked.
            pub.publish(*edge.ddata("meter-1", MS0, [metric(alias=2, datatype=9, value=1.0)]))
            assert watcher.wait(f"spBv1.0/{site}/NCMD/gw-01")
            pub.publish(*edge.nbirth(MS0))
            pub.publish(*edge.dbirth("meter-1", MS0, BIRTH))
            # 300 data messages by exception (seq wraps past 255), aliases only.
            pub.publish_many(
                [
                    edge.ddata(
                        "meter-1",
                        MS0 + 1000 * (k + 1),
                        [metric(alias=2, datatype=9, value=40.0 + k % 7)],
                    )
                    for k in range(300)
                ]
            )
            pub.publish(
                *edge.ddata("meter-1", MS0 + 400_000, [metric(alias=77, datatype=9, value=1.0)])
            )  # unknown alias
            pub.publish(f"spBv1.0/{site}/DDATA/gw-01/meter-1", b"\x0a\xff")  # garbage
            landed = _wait(settings, f"SELECT count(*) FROM READINGS WHERE site = '{site}'", 301)
            assert landed == 301  # the birth's reading and 300 data values, once each
            reasons = {
                str(r): n
                for r, n in _rows(settings, "SELECT reason, count(*) FROM QUARANTINE GROUP BY 1")
            }
            assert reasons == {
                "sparkplug_no_birth": 1,
                "sparkplug_unknown_alias": 1,
                "sparkplug_decode_error": 1,
            }
            energy = _rows(
                settings,
                f"SELECT energy_kwh FROM READINGS WHERE site = '{site}' AND energy_kwh IS NOT NULL",
            )
            assert energy == [(1000.0,)]  # Wh to kWh by engUnit
            pub.publish(*edge.will())  # the broker would send this Will on a crash
            time.sleep(1.0)
        status = pl.read_parquet(settings.lake.root / "sparkplug" / "device_status.parquet")
        by = {(r["level"], r["device"]): r for r in status.iter_rows(named=True)}
        assert by[("node", None)]["online"] is False and by[("node", None)]["bd_seq"] == 1
        assert by[("device", "meter-1")]["online"] is False
        assert by[("node", None)]["last_birth"] is not None
    finally:
        pub.close()
        watcher.close()


def test_sigkill_keeps_births_so_redelivered_data_lands_once(
    broker: Broker, site: str, tmp_path: Path
) -> None:
    settings = _settings(broker, tmp_path, site)
    config = write_toml(settings, tmp_path / "wattline.toml")
    log = tmp_path / "consumer.log"
    consumer = ConsumerProcess(config, log)
    consumer.wait_connected()
    edge = EdgeNode(site, "gw-01")
    pub = Publisher(broker)
    pub.publish(*edge.nbirth(MS0))
    pub.publish(*edge.dbirth("meter-1", MS0, BIRTH))
    items = [
        edge.ddata("meter-1", MS0 + 1000 * (k + 1), [metric(alias=2, datatype=9, value=float(k))])
        for k in range(2000)
    ]

    def send() -> None:
        for k in range(0, len(items), 50):
            pub.publish_many(items[k : k + 50])
            time.sleep(0.05)

    sender = threading.Thread(target=send)
    sender.start()
    for _ in range(2):
        time.sleep(1.0)
        consumer.kill()  # SIGKILL: no goodbye, unacked messages come again
        consumer = ConsumerProcess(config, log)
        consumer.wait_connected()
    sender.join()
    total = _wait(settings, f"SELECT count(*) FROM READINGS WHERE site = '{site}'", 2001, 40)
    distinct = _rows(
        settings, f"SELECT count(DISTINCT (device_id, ts)) FROM READINGS WHERE site = '{site}'"
    )[0][0]
    assert consumer.terminate() == 0
    pub.close()
    assert (total, distinct) == (2001, 2001)
    quarantined = _rows(settings, "SELECT count(*) FROM QUARANTINE")[0][0]
    assert quarantined == 0  # births survived the kills: no data went unexplained


EDGE_VENV = Path(__file__).resolve().parents[2] / ".venv-sparkplug-edge"


def _third_party_python() -> str:
    """pysparkplug in its own venv (it pins paho-mqtt < 2); made once, kept (gitignored)."""
    import shutil
    import subprocess

    python = EDGE_VENV / "bin" / "python"
    if python.exists():
        return str(python)
    uv = shutil.which("uv") or str(Path(__file__).resolve().parents[2] / ".uvboot" / "bin" / "uv")
    try:
        subprocess.run(
            [uv, "venv", "-q", "--python", sys.executable, str(EDGE_VENV)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(python), "pysparkplug==0.6.1"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(EDGE_VENV, ignore_errors=True)
        pytest.skip(f"SKIPPED LOUDLY: cannot install pysparkplug from the registry: {exc}")
    return str(python)


@pytest.mark.parametrize("mode", ["crash", "graceful"])
def test_an_edge_node_nobody_here_wrote_lands_every_value_once(
    broker: Broker, site: str, tmp_path: Path, mode: str
) -> None:
    import subprocess

    python = _third_party_python()
    settings = _settings(broker, tmp_path, site)
    with ConsumerThread(settings) as running:
        edge = subprocess.run(
            [
                python,
                str(Path(__file__).with_name("pysparkplug_edge.py")),
                broker.host,
                str(broker.port),
                site,
                "500",
                mode,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert edge.returncode == 0, edge.stderr
        # 2 birth readings (node temperature, device power + energy) + 500 + 1 node update
        landed = _wait(settings, f"SELECT count(*) FROM READINGS WHERE site = '{site}'", 503)
        assert landed == 503
        time.sleep(1.0)
        counters = running.consumer.sparkplug.host.counters  # type: ignore[union-attr]
    temps = _rows(
        settings,
        f"SELECT temperature_c FROM READINGS WHERE site = '{site}' "
        "AND temperature_c IS NOT NULL ORDER BY ts",
    )
    assert temps == [(-12.0,), (-20.0,)]  # Int8, negative, as that library encodes it
    energy = _rows(
        settings,
        f"SELECT energy_kwh FROM READINGS WHERE site = '{site}' AND energy_kwh IS NOT NULL",
    )
    assert energy == [(1000.0,)]  # "Energy" without engUnit: kWh
    distinct = _rows(
        settings, f"SELECT count(DISTINCT (device_id, ts)) FROM READINGS WHERE site = '{site}'"
    )[0][0]
    assert distinct == 503
    assert _rows(settings, "SELECT count(*) FROM QUARANTINE")[0][0] == 0
    assert counters.seq_gaps == 0
    status = pl.read_parquet(settings.lake.root / "sparkplug" / "device_status.parquet")
    node = status.filter(pl.col("level") == "node").row(0, named=True)
    assert node["bd_seq"] is not None
    if mode == "crash":  # the broker's Will carries the session's bdSeq: offline
        assert node["online"] is False
    else:
        # pysparkplug 0.6.1's graceful NDEATH carries the NEXT session's bdSeq (it re-arms
        # its Will after the birth), which spec 3.0 says must not kill this session: the
        # host counts it as stale and the node stays online until it is born again.
        assert node["online"] is True and counters.stale_deaths == 1
