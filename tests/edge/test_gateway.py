"""The gateway end to end: Modbus -> gateway -> broker outage or SIGKILL -> consumer -> DuckDB.

The Modbus devices are pymodbus servers whose energy counter (uint32 Wh) goes up by one
with every answer, so each served reading is unique and the test knows exactly which
readings the devices served; the warehouse must hold exactly those, once each.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.constants import ExcCodes

from edge.gateway import Gateway, _Flight
from edge.gateway_cli import (
    BrokerConfig,
    DeviceConfig,
    GatewayConfig,
    GatewaySection,
    build_sources,
    load_gateway_config,
)
from edge.spool import SpoolConfig
from schemas.wire import READING_FIELDS
from tests.conftest import ConsumerThread, settings_for
from tests.edge.test_modbus import HOLDING, FakeDevice, serving, wire
from warehouse.catalog import connect_readonly
from wattline.broker import Broker, free_port
from wattline.config import ConfigError, Settings

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "edge" / "gateway.example.toml"
MAP = """[model]
name = "test meter"
[read]
max_gap = 10
[points.voltage_v]
function = "holding"
address = 0
type = "uint16"
scale = 0.1
[points.power_kw]
function = "holding"
address = 1
type = "float32"
[points.energy_kwh]
function = "holding"
address = 3
type = "uint32"
unit = "Wh"
"""


class Meter(FakeDevice):
    """A meter whose Wh counter ticks once per answer; `served` lists the kWh it answered."""

    def __init__(self, unit_id: int) -> None:
        super().__init__(unit_id)
        self.wh = 1_000_000 * unit_id
        self.kwh_served: list[float] = []
        self.put(HOLDING, 0, [4000, *wire("f", 21.5), *wire("I", self.wh)])

    def on_served(self, fc: int, address: int, count: int) -> None:
        self.kwh_served.append(self.wh / 1000)
        self.wh += 1
        self.put(HOLDING, 3, wire("I", self.wh))


class ModbusThread:
    """pymodbus servers on their own event loop, so they outlive a gateway process."""

    def __init__(self, meters: list[Meter], port: int) -> None:
        self.meters, self.port = meters, port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._stop: asyncio.Event | None = None
        self._done: Future[None] | None = None

    def start(self) -> None:
        ready = threading.Event()

        async def serve() -> None:
            self._stop = asyncio.Event()
            async with serving(list(self.meters), self.port):
                ready.set()
                await self._stop.wait()

        self._done = asyncio.run_coroutine_threadsafe(serve(), self.loop)
        assert ready.wait(10)

    def quiesce(self, timeout_s: float = 10.0) -> None:
        """Stop serving values without cutting an answer in flight, then stop.

        A request the server answered at the moment it stops may never reach the
        gateway ("Cancel send, because not connected"), yet `on_served` counted it. So
        each meter first answers with an exception; the gateway polls a device again only
        once the previous answer came back, so a request seen after the switch means every
        counted value was received.
        """
        for m in self.meters:
            m.refuse[HOLDING] = ExcCodes.DEVICE_BUSY
        seen = [len(m.requests) for m in self.meters]
        wait_until(
            lambda: all(len(m.requests) > n for m, n in zip(self.meters, seen, strict=True)),
            timeout_s,
            what="a refused poll on every meter",
        )
        self.stop()
        for m in self.meters:  # served again when started again
            m.refuse.pop(HOLDING, None)

    def stop(self) -> None:
        assert self._stop is not None and self._done is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._done.result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def served(self) -> set[tuple[str, float]]:
        return {(f"meter-{m.sim.id}", kwh) for m in self.meters for kwh in m.kwh_served}


class GatewayThread:
    """The real Gateway in a thread of the test (its counters are readable)."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()))

    async def _main(self) -> None:
        self.loop, self.stop_event = asyncio.get_running_loop(), asyncio.Event()
        self.gateway = Gateway(self.config, build_sources(self.config))
        self.ready.set()
        await self.gateway.run(self.stop_event)

    def __enter__(self) -> GatewayThread:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def spool(self) -> tuple[int, int]:
        """(batches, readings) in the spool, read on the gateway's own loop."""

        async def read() -> tuple[int, int]:
            return len(self.gateway.spool.entries), self.gateway.spool.readings

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(10)

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)


def gateway_toml(tmp_path: Path, site: str, broker: Broker, modbus_port: int, **extra: Any) -> Path:
    (tmp_path / "meter.toml").write_text(MAP)
    replay = extra.get("rate", 25.0)
    devices = "".join(
        f"""
[[device]]
id = "meter-{unit}"
host = "127.0.0.1"
port = {modbus_port}
unit_id = {unit}
map = "meter.toml"
interval_s = 0.05
timeout_s = 1.0
"""
        for unit in (1, 2)
    )
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[gateway]
id = "gw-{site}"
site = "{site}"
publish_interval_s = 0.2
[broker]
port = {broker.port}
reconnect_min_s = 0.1
reconnect_max_s = 0.5
[spool]
dir = "spool"
[replay]
rate_msgs_per_s = {replay}
max_inflight = 10
{devices}"""
    )
    return path


@contextmanager
def showing_log(log: Path, processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Gateways run as processes: a failure shows their log, and none outlives the test."""
    try:
        yield
    except (AssertionError, TimeoutError) as exc:
        tail = log.read_text()[-4000:] if log.exists() else "(no log)"
        raise AssertionError(f"{exc}\n--- gateway log (tail) ---\n{tail}") from exc
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def wait_until(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s} s for {what or check}")
        time.sleep(0.02)


def landed(settings: Settings, site: str) -> list[tuple[str, float]]:
    if not settings.catalog.path.exists():
        return []
    con = connect_readonly(settings.catalog.path)
    try:
        rows = con.execute(
            "SELECT device_id, energy_kwh FROM readings WHERE site = ?", [site]
        ).fetchall()
    except Exception:  # no Parquet file yet: the view's glob matches nothing
        return []
    finally:
        con.close()
    return [(d, round(e, 3)) for d, e in rows]


def spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.batch")) if directory.exists() else []


def spooled_readings(directory: Path) -> int:
    return sum(int(p.stem.rsplit("-", 1)[1]) for p in spool_files(directory))


@pytest.mark.broker
@pytest.mark.slow
def test_broker_outage_every_served_reading_lands_exactly_once(
    own_broker: Broker, site: str, tmp_path: Path
) -> None:
    meters, port = [Meter(1), Meter(2)], free_port()
    modbus = ModbusThread(meters, port)
    modbus.start()
    settings = settings_for(own_broker, tmp_path, site)
    config = load_gateway_config(gateway_toml(tmp_path, site, own_broker, port))
    with ConsumerThread(settings) as consumer:
        with GatewayThread(config) as running:
            gateway = running.gateway
            wait_until(lambda: len(landed(settings, site)) >= 20, what="live readings landing")
            own_broker.stop()
            down = time.monotonic()
            wait_until(lambda: running.spool()[0] >= 15, what="a backlog in the spool")
            backlog = running.spool()[1]
            own_broker.start()
            outage_s = time.monotonic() - down
            wait_until(lambda: gateway.counters.readings_replayed >= backlog, what="replay")
            wait_until(lambda: running.spool()[0] <= 1, what="replay to finish")
        modbus.stop()  # the gateway stopped first: every answer it got was spooled and sent
        modbus.close()
        served = modbus.served()
        wait_until(lambda: len(landed(settings, site)) >= len(served), what="all landed")
    rows = landed(settings, site)
    figures = {
        "served": len(served),
        "spooled": gateway.spool.counters.appended_readings,
        "replayed": gateway.counters.readings_replayed,
        "landed": len(rows),
        "duplicates_dropped": consumer.consumer.totals.duplicates,
        "outage_s": round(outage_s, 2),
    }
    print(f"\nbroker outage figures: {figures}")
    assert sorted(rows) == sorted(served)
    assert gateway.spool.counters.appended_readings == len(served)
    assert gateway.counters.readings_acked == len(served)
    assert backlog >= 15 * 4 and gateway.counters.readings_replayed >= backlog


@pytest.mark.broker
@pytest.mark.slow
def test_gateway_sigkill_mid_replay_loses_nothing(
    own_broker: Broker, site: str, tmp_path: Path
) -> None:
    meters, port = [Meter(1), Meter(2)], free_port()
    modbus = ModbusThread(meters, port)
    settings = settings_for(own_broker, tmp_path, site)
    config = gateway_toml(tmp_path, site, own_broker, port, rate=20.0)
    spool, log = tmp_path / "spool", tmp_path / "gateway.log"
    processes: list[subprocess.Popen[bytes]] = []
    with showing_log(log, processes):
        with ConsumerThread(settings) as consumer:
            own_broker.stop()  # the consumer's session waits on the broker's disk
            modbus.start()
            gateway = _start_gateway(config, log, processes)
            wait_until(lambda: len(spool_files(spool)) >= 15, what="a backlog in the spool")
            modbus.quiesce()  # the meters vanish; what they served must all reach the spool
            wait_until(lambda: spooled_readings(spool) == len(modbus.served()), what="spooling")
            files = len(spool_files(spool))
            own_broker.start()
            watcher = SeqWatcher(own_broker, site)
            # kill while a batch is half sent: one of its messages reached the broker, the
            # file is still on disk, so the restart sends that message again
            wait_until(lambda: len(spool_files(spool)) <= files - 5, what="replay under way")
            wait_until(lambda: bool(watcher.half_sent(spool)), what="a half-sent batch")
            gateway.kill()
            gateway.wait(10)
            watcher.close()
            left, resent = len(spool_files(spool)), watcher.half_sent(spool)
            assert 0 < left < files, "the kill should land mid-replay"
            modbus.start()  # the meters come back
            gateway = _start_gateway(config, log, processes)
            before = len(modbus.served())
            wait_until(lambda: len(modbus.served()) >= before + 40, what="polling again")
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(30) == 0
            modbus.stop()
            modbus.close()
            served = modbus.served()
            wait_until(lambda: len(landed(settings, site)) >= len(served), what="all landed")
        rows = landed(settings, site)
        text = log.read_text()
        print(
            f"\nSIGKILL mid-replay: served={len(served)} spool_files_at_kill={left}/{files} "
            f"half_sent_at_kill={len(resent)} landed={len(rows)} "
            f"duplicates_dropped={consumer.consumer.totals.duplicates}"
        )
        assert "resuming with" in text
        changes = [line for line in text.splitlines() if "device meter-1:" in line]
        assert 2 <= len(changes) <= 8, changes  # one per state change, never one per poll
        assert sorted(rows) == sorted(served)
        assert spool_files(spool) == []
        if resent:  # almost always: the kill raced the batch's last PUBACK otherwise
            assert consumer.consumer.totals.duplicates > 0


class SeqWatcher:
    """Sees which message seqs reach the broker, to find a batch that is half sent."""

    def __init__(self, broker: Broker, site: str) -> None:
        self.seen: set[int] = set()
        self.lock = threading.Lock()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"telemetry/{site}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.seen.add(json.loads(message.payload)["seq"])

    def half_sent(self, spool: Path) -> list[Path]:
        """Batch files still on disk that the broker has already seen a message of."""
        with self.lock:
            seen = set(self.seen)
        return [p for p in spool_files(spool) if int(p.stem.split("-")[0]) in seen]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _start_gateway(
    config: Path, log: Path, processes: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTLINE_")}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "edge.gateway_cli", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
    processes.append(process)
    return process


def test_the_example_config_is_valid_and_env_overrides_it() -> None:
    config = load_gateway_config(EXAMPLE, {"WATTLINE_BROKER__PASSWORD": "s3cret"})
    assert config.broker.password == "s3cret"
    assert config.broker.client_id == "wattline-gw-gw-plant-sh-01"
    assert [d.source for d in config.devices] == ["modbus"] * 3 + ["simulator"]
    assert config.spool.when_full == "drop_oldest"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("\n[gateway]\n", "\n[gateway]\ncolour = 'red'\n"), "unknown key"),
        (('site = "plant-sh"', 'site = "plant sh"'), "gateway.site must match"),
        (('when_full = "drop_oldest"', 'when_full = "block"'), "spool.when_full"),
        (("port = 1883", 'port = "1883"'), "broker.port must be int"),
        (('map = "danfoss_fc302"', 'map = "nope.toml"'), "does not exist"),
        (('id = "vfd-pump-02"', 'id = "meter-incomer"'), "listed twice"),
        (('id = "motor-conveyor-01"', 'id = "motor-unknown"'), "not in the simulator registry"),
        (("rate_msgs_per_s = 20.0", "rate_msgs_per_s = 1.0"), "never drains"),
        (('host = "192.168.10.21"', ""), "host is required"),
    ],
)
def test_config_mistakes_fail_at_start_with_the_key_named(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    text = EXAMPLE.read_text()
    assert change[0] in text
    path = tmp_path / "gateway.toml"
    path.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError, match=message):
        load_gateway_config(path)


def test_wrong_environment_value_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"replay\.max_inflight"):
        load_gateway_config(EXAMPLE, {"WATTLINE_REPLAY__MAX_INFLIGHT": "lots"})


class Ticker:
    """A source that always answers: one reading per poll, so the spool fills predictably."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id

    async def poll(self, ts_ms: int) -> dict[str, Any]:
        return {"ts": ts_ms, "power_kw": 1.0, "current_a": 2.0}

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("when_full", ["drop_oldest", "stop_polling"])
def test_a_full_spool_follows_its_policy_while_the_broker_is_away(
    tmp_path: Path, when_full: str, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = free_port()  # no broker listens here
    config = GatewayConfig(
        GatewaySection(id="gw", site="s", publish_interval_s=0.02, drain_timeout_s=0),
        SpoolConfig(tmp_path / "spool", max_bytes=4000, when_full=when_full),
        tuple(DeviceConfig(id=f"d{i}", interval_s=0.005) for i in range(3)),
        BrokerConfig(port=nowhere, client_id="gw-full", reconnect_min_s=0.1, reconnect_max_s=0.1),
    )

    async def main() -> Gateway:
        gateway, stop = Gateway(config, [Ticker(d.id) for d in config.devices]), asyncio.Event()
        run = asyncio.create_task(gateway.run(stop))
        while not (gateway.spool.counters.dropped_batches >= 3 or gateway.paused):
            await asyncio.sleep(0.01)
        skipped = gateway.counters.polls_skipped
        while gateway.paused and gateway.counters.polls_skipped < skipped + 10:
            await asyncio.sleep(0.01)
        stop.set()
        await run
        return gateway

    with caplog.at_level(logging.INFO):
        gateway = asyncio.run(main())
    spool, counters = gateway.spool, gateway.spool.counters
    assert spool.bytes <= 4000 and counters.corrupt_batches == 0
    if when_full == "drop_oldest":
        assert counters.dropped_readings > 0 and gateway.counters.polls_skipped == 0
        assert sum("spool full" in r.getMessage() for r in caplog.records) == 1
        polled = gateway.counters.readings_polled
        assert spool.readings + counters.dropped_readings == polled  # every reading accounted
    else:
        assert counters.dropped_batches == 0 and gateway.counters.polls_skipped >= 10
        assert sum("polling paused" in r.getMessage() for r in caplog.records) == 1
        kept = spool.readings + sum(len(p) for p in gateway._pending.values())
        assert kept == gateway.counters.readings_polled  # nothing dropped: held in memory
    assert not any("device" in r.getMessage() for r in caplog.records if r.levelno >= 40)


def test_a_refused_puback_keeps_the_batch_and_retries(tmp_path: Path) -> None:
    config = GatewayConfig(
        GatewaySection(id="gw", site="s"),
        SpoolConfig(tmp_path / "spool"),
        (DeviceConfig(id="d0"),),
    )

    async def main() -> tuple[Gateway, int]:
        gateway = Gateway(config, [Ticker("d0")])
        gateway._pending["d0"] = [{"ts": 1, "power_kw": 1.0}]
        gateway._flush()
        entry, records = gateway.spool.take()  # type: ignore[misc]
        flight = _Flight(entry, len(records))
        quota_exceeded: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        quota_exceeded.set_result(0x97)
        await gateway._window.acquire()
        gateway._on_puback(records[0], flight, quota_exceeded)
        retries = len(gateway._retries)
        for task in gateway._retries:
            task.cancel()
        return gateway, retries

    gateway, retries = asyncio.run(main())
    assert gateway.counters.publishes_refused == 1 and retries == 1
    assert len(gateway.spool.entries) == 1 and gateway.counters.messages_acked == 0


def test_the_simulated_plant_polls_like_a_device() -> None:
    config = load_gateway_config(EXAMPLE)
    simulated = [d for d in config.devices if d.source == "simulator"]

    async def main() -> list[Any]:
        (source,) = [s for s in build_sources(config) if s.device_id == simulated[0].id]
        t0 = 1_795_219_200_000
        return [await source.poll(t0 + i * 1000) for i in (0, 1, 2, 10)]

    readings = asyncio.run(main())
    assert [r["ts"] for r in readings] == [1_795_219_200_000 + i * 1000 for i in (0, 1, 2, 10)]
    assert all(set(r) <= READING_FIELDS and "power_kw" in r for r in readings)
