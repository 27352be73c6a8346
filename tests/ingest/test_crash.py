"""Kill the consumer (SIGKILL, or at the worst moment) and the broker: no loss, no doubles."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from ingest.receiver import ProcessReception, ReceiverDied
from tests.conftest import ConsumerProcess, Publisher, settings_for, write_toml
from warehouse.delta import DeltaTables
from wattline.broker import Broker
from wattline.config import Settings

pytestmark = [pytest.mark.broker, pytest.mark.slow]
T0_MS = 1_795_219_200_000  # 2026-11-21T00:00:00Z


def stream(site: str, messages: int, per_message: int, devices: int = 5) -> list[tuple[str, bytes]]:
    """Distinct (device, ts) readings spread over a few devices, batch-shaped messages."""
    out = []
    for m in range(messages):
        device = f"d{m % devices}"
        base = T0_MS + (m // devices) * per_message * 1000
        readings = [
            {"ts": base + i * 1000, "power_kw": float(m), "current_a": float(i)}
            for i in range(per_message)
        ]
        payload = json.dumps({"device_id": device, "seq": m, "readings": readings})
        out.append((f"telemetry/{site}/{device}", payload.encode()))
    return out


def landed(lake: Path, site: str) -> tuple[int, int]:
    """(rows, distinct keys) of a site's readings: the newest Delta version's files when
    the lake is Delta, else every Parquet file."""
    delta = DeltaTables(str(lake))
    files = [f.uri for f in delta.files("readings")] if delta.table("readings") else []
    if not files and delta.table("readings") is not None:
        return 0, 0
    source = files or [str(lake / "readings" / "*" / "*.parquet")]
    con = duckdb.connect()
    try:
        return con.execute(
            "SELECT count(*), count(DISTINCT (device_id, ts)) FROM read_parquet(?, "
            "hive_partitioning = true) WHERE site = ?",
            [source, site],
        ).fetchone()  # type: ignore[return-value]
    finally:
        con.close()


def with_format(settings: Settings, fmt: str) -> Settings:
    """`fmt` is a lake format, optionally `+process` for ingest.receiver = "process"."""
    fmt, _, receiver = fmt.partition("+")
    return replace(
        settings,
        lake=replace(settings.lake, format=fmt),
        ingest=replace(settings.ingest, receiver=receiver or "thread"),
    ).validate()


def children(pid: int) -> list[int]:
    found: list[int] = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in listing.read_text().split()]
    return found


def gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status")
        if not status.exists() or "State:\tZ" in status.read_text():
            return True
        time.sleep(0.05)
    return False


def wait_landed(lake: Path, site: str, expected: int, timeout_s: float = 60.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout_s
    counts = (0, 0)
    while time.monotonic() < deadline:
        counts = landed(lake, site)
        if counts[0] >= expected:
            return counts
        time.sleep(0.2)
    return counts


@pytest.mark.parametrize("fmt", ["parquet", "delta", "parquet+process"])
def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    broker: Broker, site: str, tmp_path: Path, fmt: str
) -> None:
    settings = with_format(settings_for(broker, tmp_path, site), fmt)
    config = write_toml(settings, tmp_path / "wattline.toml")
    log = tmp_path / "consumer.log"
    items = stream(site, messages=3000, per_message=10)
    consumer = ConsumerProcess(config, log)
    consumer.wait_connected()
    publisher = Publisher(broker)
    sender = threading.Thread(target=_paced, args=(publisher, items, 6.0))
    sender.start()
    for _ in range(3):  # three hard kills while the stream flows
        time.sleep(1.2)
        receivers = children(consumer.process.pid)
        consumer.kill()
        # a reception process must not outlive its consumer (it would hold the session)
        assert all(gone(pid) for pid in receivers)
        time.sleep(0.3)
        consumer = ConsumerProcess(config, log)
        consumer.wait_connected()
    sender.join()
    publisher.close()
    total, distinct = wait_landed(settings.lake.root, site, 30_000)
    assert consumer.terminate() == 0
    assert (total, distinct) == (30_000, 30_000)


@pytest.mark.parametrize("fmt", ["parquet", "delta", "parquet+process"])
@pytest.mark.parametrize("failpoint", ["before_write:1", "after_write:1"])
def test_crash_at_the_worst_moment_loses_and_duplicates_nothing(
    broker: Broker, site: str, tmp_path: Path, failpoint: str, fmt: str
) -> None:
    """before_write: a batch in memory is gone with the process, so it must not be acked.
    after_write: the file is durable, the acks never left; the broker redelivers."""
    settings = with_format(settings_for(broker, tmp_path, site), fmt)
    config = write_toml(settings, tmp_path / "wattline.toml")
    log = tmp_path / "consumer.log"
    consumer = ConsumerProcess(config, log, failpoint=failpoint)
    consumer.wait_connected()
    publisher = Publisher(broker)
    publisher.publish_many(stream(site, messages=200, per_message=10))
    assert consumer.process.wait(30) == 137  # died at the failpoint
    consumer = ConsumerProcess(config, log)
    consumer.wait_connected()
    publisher.publish_many(stream(site, messages=400, per_message=10)[200:])
    publisher.close()
    total, distinct = wait_landed(settings.lake.root, site, 4000)
    assert consumer.terminate() == 0
    assert (total, distinct) == (4000, 4000)
    if failpoint.startswith("after_write"):
        stopped = re.findall(r"consumer stopped .* duplicates=(\d+)", log.read_text())
        assert stopped and int(stopped[-1]) > 0, "redelivered readings should be counted"


@pytest.mark.parametrize("fmt", ["parquet", "parquet+process"])
def test_broker_restart_with_persistence_loses_nothing(
    own_broker: Broker, site: str, tmp_path: Path, fmt: str
) -> None:
    """Readings queued for a stopped consumer survive a broker restart (persistence on)."""
    settings = with_format(settings_for(own_broker, tmp_path, site), fmt)
    config = write_toml(settings, tmp_path / "wattline.toml")
    log = tmp_path / "consumer.log"
    consumer = ConsumerProcess(config, log)
    consumer.wait_connected()
    assert consumer.terminate() == 0  # session now exists on the broker, consumer offline
    publisher = Publisher(own_broker)
    items = stream(site, messages=500, per_message=4)
    publisher.publish_many(items[:250])
    publisher.close()
    own_broker.restart()
    publisher = Publisher(own_broker)
    publisher.publish_many(items[250:])
    publisher.close()
    consumer = ConsumerProcess(config, log)
    consumer.wait_connected()
    total, distinct = wait_landed(settings.lake.root, site, 2000)
    own_broker.restart()  # and once more while the consumer is connected
    assert consumer.terminate() == 0
    assert (total, distinct) == (2000, 2000)


def _paced(publisher: Publisher, items: list[tuple[str, bytes]], seconds: float) -> None:
    chunk = max(1, len(items) // 60)
    for start in range(0, len(items), chunk):
        publisher.publish_many(items[start : start + chunk])
        time.sleep(seconds / 60)


def test_a_restart_after_compaction_merged_the_unacked_file_still_drops_redeliveries(
    broker: Broker, site: str, tmp_path: Path
) -> None:
    """The consumer dies after writing its 2nd file and before acking it; while it is down,
    compaction merges both files away. The restarted consumer must still know those keys
    (its index is rebuilt from compacted files too) and drop the broker's redeliveries."""
    from datetime import UTC, datetime

    from warehouse.compact import maintain
    from warehouse.lake import READINGS, Lake

    settings = settings_for(broker, tmp_path, site)
    config = write_toml(settings, tmp_path / "wattline.toml")
    log = tmp_path / "consumer.log"
    items = stream(site, messages=400, per_message=10)
    consumer = ConsumerProcess(config, log, failpoint="after_write:2")
    consumer.wait_connected()
    publisher = Publisher(broker)
    publisher.publish_many(items[:100])
    assert wait_landed(settings.lake.root, site, 1000)[0] >= 1000
    publisher.publish_many(items[100:200])
    assert consumer.process.wait(30) == 137  # the 2nd file is durable, its acks never left
    lake = Lake(settings.lake.root)
    report = maintain(
        lake,
        today=datetime.now(UTC).date(),
        now=time.time(),
        settle_s=0,
        retention_days=0,
        grace_s=0,
    )
    assert report.compacted and not list(lake.part_files(READINGS)), "the parts were merged"
    consumer = ConsumerProcess(config, log)
    consumer.wait_connected()
    publisher.publish_many(items[200:])
    publisher.close()
    wait_landed(settings.lake.root, site, 4000)
    assert consumer.terminate() == 0
    assert landed(settings.lake.root, site) == (4000, 4000)
    stopped = re.findall(r"consumer stopped .* duplicates=(\d+)", log.read_text())
    assert stopped and int(stopped[-1]) > 0, "the redelivered readings were recognised"


@pytest.mark.parametrize("fmt", ["parquet", "parquet+process"])
def test_acked_messages_are_not_redelivered_to_the_next_run(
    broker: Broker, site: str, tmp_path: Path, fmt: str
) -> None:
    """The acks of a batch (one PUBACK run per batch) reach the broker: after a graceful
    stop and a SIGKILL of the next run, nothing landed before comes back as a duplicate."""
    settings = with_format(settings_for(broker, tmp_path, site), fmt)
    config = write_toml(settings, tmp_path / "wattline.toml")
    log = tmp_path / "consumer.log"
    consumer = ConsumerProcess(config, log)
    consumer.wait_connected()
    publisher = Publisher(broker)
    publisher.publish_many(stream(site, messages=3000, per_message=1))
    assert wait_landed(settings.lake.root, site, 3000) == (3000, 3000)
    assert consumer.terminate() == 0
    consumer = ConsumerProcess(config, log)  # the same session: unacked ones would come
    consumer.wait_connected()
    publisher.publish_many(stream(site, messages=3100, per_message=1)[3000:])
    publisher.close()
    assert wait_landed(settings.lake.root, site, 3100) == (3100, 3100)
    time.sleep(1.5)  # a redelivery would arrive with the session, before the new ones
    assert consumer.terminate() == 0
    runs = re.findall(r"consumer stopped messages=(\d+) .* duplicates=(\d+)", log.read_text())
    assert [tuple(map(int, r)) for r in runs] == [(3000, 0), (100, 0)]


def test_a_dead_reception_process_is_reported_not_waited_for(
    broker: Broker, site: str, tmp_path: Path
) -> None:
    """SIGKILL of the receiver child: the parent's next take raises ReceiverDied."""
    settings = with_format(settings_for(broker, tmp_path, site), "parquet+process")
    reception = ProcessReception(settings)
    reception.start()
    try:
        assert reception.connected.wait(20)
        child = reception._process.pid
        assert child is not None
        os.kill(child, signal.SIGKILL)
        with pytest.raises(ReceiverDied, match="exited"):
            for _ in range(50):
                reception.take(0.2)
    finally:
        reception.stop()
