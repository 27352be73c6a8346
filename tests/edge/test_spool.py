"""The spool: order, durability across reopen and SIGKILL, seq continuity, bounds and policies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edge.spool import Record, Spool, SpoolConfig, SpoolError, SpoolFull


def records(spool: Spool, count: int, readings: int = 3, size: int = 100) -> list[Record]:
    first = spool.next_seq
    return [
        Record(seq, f"telemetry/s/d{seq % 3}", b'{"x":"' + b"a" * size + b'"}', readings)
        for seq in range(first, first + count)
    ]


def drain(spool: Spool) -> list[int]:
    seqs = []
    while (taken := spool.take()) is not None:
        entry, recs = taken
        seqs += [r.seq for r in recs]
        spool.remove(entry)
    return seqs


class Clock:
    def __init__(self) -> None:
        self.ms = 1_795_219_200_000

    def __call__(self) -> int:
        return self.ms


def test_batches_come_back_in_order_byte_for_byte(tmp_path: Path) -> None:
    spool = Spool(SpoolConfig(tmp_path))
    sent = []
    for _ in range(5):
        batch = records(spool, 3)
        sent += batch
        spool.append(batch)
    assert (len(spool.entries), spool.readings, spool.next_seq) == (5, 45, 16)
    got = []
    while (taken := spool.take()) is not None:
        got += taken[1]
        spool.remove(taken[0])
    assert got == sent
    assert spool.counters.removed_readings == spool.counters.appended_readings == 45


def test_reopen_resumes_unacked_batches_and_seq(tmp_path: Path) -> None:
    spool = Spool(SpoolConfig(tmp_path))
    for _ in range(4):
        spool.append(records(spool, 2))
    entry, _ = spool.take()  # type: ignore[misc]
    spool.remove(entry)
    spool.take()  # leased, never acked: a crash mid-replay
    spool.close()
    again = Spool(SpoolConfig(tmp_path))
    assert again.next_seq == 9
    assert drain(again) == [3, 4, 5, 6, 7, 8]


def test_seq_never_goes_back_even_when_the_spool_was_emptied(tmp_path: Path) -> None:
    spool = Spool(SpoolConfig(tmp_path))
    spool.append(records(spool, 3))
    drain(spool)
    spool.close()
    assert not list(tmp_path.glob("*.batch"))
    assert Spool(SpoolConfig(tmp_path)).next_seq == 4


def test_only_one_gateway_per_spool_directory(tmp_path: Path) -> None:
    spool = Spool(SpoolConfig(tmp_path))
    with pytest.raises(SpoolError, match="in use by another gateway"):
        Spool(SpoolConfig(tmp_path))
    spool.close()
    Spool(SpoolConfig(tmp_path)).close()


def test_leftover_tmp_is_discarded_and_a_corrupt_batch_is_set_aside(tmp_path: Path) -> None:
    spool = Spool(SpoolConfig(tmp_path))
    for _ in range(3):
        spool.append(records(spool, 2))
    spool.close()
    first, second, _third = sorted(tmp_path.glob("*.batch"))
    (tmp_path / "0000000000000099-x.batch.tmp").write_bytes(b"half a batch")
    data = bytearray(second.read_bytes())
    data[-5] ^= 0xFF  # bit rot in the last record
    second.write_bytes(bytes(data))
    again = Spool(SpoolConfig(tmp_path))
    assert not list(tmp_path.glob("*.tmp"))
    assert drain(again) == [1, 2, 5, 6]
    assert again.counters.corrupt_batches == 1
    assert [p.name for p in (tmp_path / "corrupt").iterdir()] == [second.name]
    assert first.name.startswith("0000000000000001-0000000000000002-")


def test_drop_oldest_when_full_counts_and_spares_the_batch_in_flight(tmp_path: Path) -> None:
    spool = Spool(SpoolConfig(tmp_path, max_bytes=3000))
    spool.append(records(spool, 2))  # ~300 B per batch
    in_flight, _ = spool.take()  # type: ignore[misc]
    for _ in range(20):
        spool.append(records(spool, 2))
    assert spool.bytes <= 3000
    assert in_flight in spool.entries
    assert spool.counters.dropped_batches > 0
    assert spool.counters.dropped_readings == 6 * spool.counters.dropped_batches
    kept = [in_flight.first_seq] + [e.first_seq for e in list(spool.entries)[1:]]
    assert kept == sorted(kept) and kept[-1] == spool.next_seq - 2  # the newest is kept
    total = 3 * 2 * 21
    c = spool.counters
    assert spool.readings + c.dropped_readings == total


def test_stop_polling_refuses_the_batch_instead(tmp_path: Path) -> None:
    spool = Spool(SpoolConfig(tmp_path, max_bytes=1000, when_full="stop_polling"))
    while True:
        batch = records(spool, 2)
        try:
            spool.append(batch)
        except SpoolFull:
            break
    before = len(spool.entries)
    assert spool.next_seq == batch[0].seq  # the refused batch keeps its seqs for the retry
    entry, _ = spool.take()  # type: ignore[misc]
    spool.remove(entry)
    spool.append(batch)
    assert len(spool.entries) == before
    assert spool.counters.dropped_batches == 0


def test_batches_older_than_max_age_expire_and_are_counted(tmp_path: Path) -> None:
    clock = Clock()
    spool = Spool(SpoolConfig(tmp_path, max_age_s=60), clock_ms=clock)
    spool.append(records(spool, 2))
    clock.ms += 30_000
    spool.append(records(spool, 2))
    clock.ms += 45_000
    assert spool.expire() == 1
    assert (spool.counters.expired_batches, spool.counters.expired_readings) == (1, 6)
    assert drain(spool) == [3, 4]


def test_sigkill_while_appending_leaves_only_whole_batches(tmp_path: Path) -> None:
    """A writer killed at a random instant: every file on disk decodes, seqs run unbroken."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from edge.spool import Record, Spool, SpoolConfig
        spool = Spool(SpoolConfig(Path({str(tmp_path)!r})))
        print("ready", flush=True)
        while True:
            first = spool.next_seq
            seqs = range(first, first + 5)
            spool.append([Record(s, "telemetry/s/d", b"x" * 2000, 1) for s in seqs])
        """
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
    deadline = time.monotonic() + 10
    while len(list(tmp_path.glob("*.batch"))) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    spool = Spool(SpoolConfig(tmp_path))
    seqs = drain(spool)
    assert spool.counters.corrupt_batches == 0
    assert len(seqs) >= 150 and seqs == list(range(1, len(seqs) + 1))
    assert spool.next_seq == len(seqs) + 1
