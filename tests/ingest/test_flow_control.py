"""Flow control by bytes: reception pauses at `ingest.max_inflight_bytes`, nothing is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.mqtt import Inbox
from tests.conftest import ConsumerThread, Publisher, settings_for
from warehouse.catalog import connect_readonly
from wattline.broker import Broker

KIB = 1024
MIB = 1024 * KIB


def test_put_waits_at_the_bound_until_a_landed_batch_is_released() -> None:
    inbox = Inbox(batch_max=1000, batch_max_bytes=1000, max_held_bytes=200)
    for mid in range(2):
        inbox.put("t", b"x" * 100, mid, 1, 1)
    first = inbox.take(0)
    assert len(first) == 2 and first.nbytes == 200
    blocked = threading.Event()
    done = threading.Event()

    def network_thread() -> None:
        blocked.set()
        inbox.put("t", b"y" * 10, 2, 1, 1)
        done.set()

    thread = threading.Thread(target=network_thread)
    thread.start()
    assert blocked.wait(5)
    assert not done.wait(0.3), "put must wait while 200 unacked bytes are held"
    assert inbox.pauses == 1
    inbox.release(first.nbytes)
    assert done.wait(5)
    thread.join(5)
    assert inbox.held_bytes == 10 and inbox.pending() == 1


def test_a_closed_inbox_never_blocks_reception() -> None:
    inbox = Inbox(batch_max=1000, batch_max_bytes=100, max_held_bytes=200)
    inbox.put("t", b"x" * 300, 0, 1, 1)
    inbox.close()
    inbox.put("t", b"x" * 300, 1, 1, 1)  # returns: the last flushes land it
    assert [len(inbox.take(0)) for _ in range(3)] == [1, 1, 0]  # one batch's bytes each


def _big_message(device: str, first_ts_ms: int, target_bytes: int) -> bytes:
    reading = {"ts": first_ts_ms, "power_kw": 12.5, "current_a": 20.1, "voltage_v": 400.2}
    per = target_bytes // (len(json.dumps(reading)) + 2) - 10
    readings = [{**reading, "ts": first_ts_ms + i} for i in range(per)]
    return json.dumps({"device_id": device, "readings": readings}).encode()


@pytest.mark.broker
@pytest.mark.parametrize("receiver", ["thread", "process"])
def test_a_burst_of_256_kib_messages_stays_under_the_byte_bound(
    broker: Broker, publisher: Publisher, site: str, tmp_path: Path, receiver: str
) -> None:
    """120 messages of ~250 KiB (30 MB) through a 4 MiB window: held bytes stay bounded."""
    bound = 4 * MIB
    settings = settings_for(
        broker, tmp_path, site, batch_max_bytes=1 * MIB, max_inflight_bytes=bound, receiver=receiver
    )
    t0 = 1_795_219_200_000
    items = []
    for m in range(120):
        payload = _big_message("m1", t0 + m * 10_000_000, 250 * KIB)
        assert 240 * KIB < len(payload) <= settings.ingest.max_payload_bytes
        items.append((f"telemetry/{site}/m1", payload))
    readings = sum(len(json.loads(p)["readings"]) for _, p in items)
    with ConsumerThread(settings) as ct:
        publisher.publish_many(items)
        deadline = time.monotonic() + 120
        while ct.consumer.totals.landed < readings and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ct.consumer.totals.landed == readings
        time.sleep(0.5)  # the reception process reports its counters every 0.2 s
        inbox = ct.consumer.inbox
    assert inbox.peak_held_bytes <= bound + settings.ingest.max_payload_bytes
    assert inbox.pauses > 0, "the burst should have hit the bound at least once"
    assert ct.consumer.totals.batches >= 30 * MIB // bound  # no batch beyond the bound
    con = connect_readonly(settings.catalog.path)
    count, distinct = con.execute(
        "SELECT count(*), count(DISTINCT (device_id, ts)) FROM readings WHERE site = ?", [site]
    ).fetchall()[0]
    con.close()
    assert count == distinct == readings


def test_consume_caps_malloc_arenas_unless_told_otherwise() -> None:
    """`wattline consume` caps glibc's arenas (RSS); an explicit MALLOC_ARENA_MAX wins."""
    code = (
        "import os; from ingest.consumer import limit_malloc_arenas as f; "
        "print(f(), os.environ.get('MALLOC_ARENA_MAX'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["True", "2"], out.stderr
    env["MALLOC_ARENA_MAX"] = "4"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "4"], out.stderr


def test_take_hands_out_at_most_one_batch_and_keeps_the_rest_in_order() -> None:
    """What piles up while a batch lands is taken in batch-sized slices, in order."""
    inbox = Inbox(batch_max=5, batch_max_bytes=100, max_held_bytes=10_000)
    for n in range(12):
        inbox.put("t", bytes([n]) * 30, mid=n + 1, qos=1, generation=1)
    slices = [inbox.take(0) for _ in range(3)]
    assert [len(s) for s in slices] == [4, 4, 4]  # 4 x 30 bytes reach 100
    assert inbox.pending() == 0
    assert [mid for s in slices for mid, _, _ in s.acks] == list(range(1, 13))
    assert [s.nbytes for s in slices[:3]] == [120, 120, 120]
    assert [p[0] for s in slices for p in s.payloads] == list(range(12))
    small = Inbox(batch_max=5, batch_max_bytes=10_000, max_held_bytes=10_000)
    for n in range(7):
        small.put("t", b"x", mid=n + 1, qos=1, generation=1)
    assert [len(small.take(0)) for _ in range(2)] == [5, 2]


def test_the_end_of_a_burst_lands_at_once_a_slow_stream_once_per_interval() -> None:
    inbox = Inbox(batch_max=4, batch_max_bytes=10_000, max_held_bytes=10_000)
    for n in range(6):  # a burst: one full batch and a remainder
        inbox.put("t", b"x", mid=n + 1, qos=1, generation=1)
    assert len(inbox.take(5.0)) == 4
    started = time.monotonic()
    assert len(inbox.take(5.0)) == 2  # quiet after a full batch: no 5 s wait
    assert time.monotonic() - started < 1.0
    inbox.put("t", b"x", mid=7, qos=1, generation=1)  # slow now: the interval applies
    started = time.monotonic()
    assert len(inbox.take(0.5)) == 1
    assert time.monotonic() - started >= 0.45
