"""The store-and-forward spool: every batch on disk before it is published (DESIGN.md, guarantee 5).

Layout: one file per publish tick holding that tick's messages (one per device),
named ``<first seq>-<last seq>-<created ms>-<readings>.batch`` so the index (order,
age, readings to count when dropping) is rebuilt from a directory listing alone.

    append:  write .tmp -> fsync -> rename into place -> fsync the directory
    publish: take() the oldest file not yet handed out; its messages go out at QoS 1
    remove:  after every message of the file is PUBACKed, unlink it

Crash safety, at any instant:
- before the rename the batch is only a ``.tmp`` (deleted at the next open) and its
  readings were still in memory, so a SIGKILL loses at most one publish interval;
  after it the file is complete. No torn records, no log to repair.
- a file is unlinked only after all its PUBACKs. Killed in between (mid-replay), it
  is replayed in full; the consumer drops the duplicates on (device_id, ts).
- ``seq`` never goes backwards: before the newest file is unlinked its last seq is
  written to ``last_seq`` (tmp + fsync + rename), and the next seq at open is one past
  the larger of that and the newest file's.
- a file that fails its CRC (a disk that lied about fsync) moves to ``corrupt/`` and
  is counted; it never stops the spool (Telegraf #18528 panicked on "log corrupt").
- ``spool.lock`` (flock) keeps a second gateway off the same directory; the kernel
  drops the lock when the process dies, so a restart after SIGKILL just works.

Cost: one fsync pair per publish tick for every device together, never per reading
(Telegraf #18085). Memory: only the file being published is read (Neuron and
ThingsBoard keep their memory buffers small for the same reason).

Bounds: ``max_bytes`` (the sum of file sizes) and ``max_age_s`` (0 = no limit). Files
older than max_age_s are expired and counted whatever the policy. When a new batch
would pass max_bytes: ``drop_oldest`` (default) deletes the oldest files not being
published and counts their batches and readings; ``stop_polling`` raises `SpoolFull`
and the gateway pauses polling until replay makes room (the meters' energy counters
keep counting, so only resolution is lost, never energy).

Errors: `SpoolError` (base; directory locked, I/O), `SpoolFull` (stop_polling policy).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)
WHEN_FULL: Final = ("drop_oldest", "stop_polling")
MAGIC: Final = b"wattline-spool 1"
SUFFIX: Final = ".batch"


class SpoolError(Exception):
    """The spool cannot be used (locked by another gateway, unreadable directory, I/O)."""


class SpoolFull(SpoolError):
    """stop_polling policy: the batch does not fit; keep it in memory and pause polling."""


@dataclass(frozen=True)
class SpoolConfig:
    directory: Path
    max_bytes: int = 512 * 1024 * 1024
    max_age_s: float = 7 * 24 * 3600.0
    when_full: str = "drop_oldest"


@dataclass(frozen=True)
class Record:
    """One MQTT message: its gateway seq, topic, payload and how many readings it carries."""

    seq: int
    topic: str
    payload: bytes
    readings: int


@dataclass(eq=False)
class Entry:
    """One batch file in the index; `leased` while the publisher holds it."""

    path: Path
    first_seq: int
    last_seq: int
    created_ms: int
    readings: int
    size: int
    leased: bool = False


@dataclass
class SpoolCounters:
    appended_batches: int = 0
    appended_readings: int = 0
    removed_batches: int = 0
    removed_readings: int = 0
    dropped_batches: int = 0
    dropped_readings: int = 0
    expired_batches: int = 0
    expired_readings: int = 0
    corrupt_batches: int = 0


class Spool:
    """The spool directory of one gateway; single-threaded (the gateway's event loop)."""

    def __init__(self, config: SpoolConfig, clock_ms: Callable[[], int] | None = None) -> None:
        self.config = config
        self.clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.dir = config.directory
        self.counters = SpoolCounters()
        self.entries: deque[Entry] = deque()
        self.bytes = 0
        self._full_since_drop = False
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.dir / "spool.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SpoolError(f"spool directory {self.dir} is not usable: {exc}") from exc
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock)
            raise SpoolError(f"spool {self.dir} is in use by another gateway") from None
        self._scan()

    def _scan(self) -> None:
        found = []
        for path in self.dir.iterdir():
            if path.name.endswith(".tmp"):
                path.unlink()  # a batch that never got renamed into place
            elif path.suffix == SUFFIX:
                try:
                    first, last, created, readings = map(int, path.stem.split("-"))
                except ValueError:
                    self._quarantine(Entry(path, 0, 0, 0, 0, 0), "unparsable name")
                    continue
                found.append(Entry(path, first, last, created, readings, path.stat().st_size))
        self.entries = deque(sorted(found, key=lambda e: e.first_seq))
        self.bytes = sum(e.size for e in self.entries)
        newest = self.entries[-1].last_seq if self.entries else 0
        self.next_seq = max(newest, self._read_last_seq()) + 1
        if self.entries:
            log.info(
                "spool %s: resuming with %d batches (%d readings, %.1f MB), next seq %d",
                self.dir,
                len(self.entries),
                self.readings,
                self.bytes / 1e6,
                self.next_seq,
            )

    @property
    def readings(self) -> int:
        return sum(e.readings for e in self.entries)

    def close(self) -> None:
        os.close(self._lock)

    def append(self, records: Sequence[Record]) -> Entry | None:
        """Make a batch durable. Seqs must continue from `next_seq`."""
        if not records:
            return None
        seqs = [r.seq for r in records]
        if seqs != list(range(self.next_seq, self.next_seq + len(records))):
            raise ValueError(f"records must carry seq {self.next_seq}.., got {seqs[:3]}..")
        created = self.clock_ms()
        data = _encode(created, records)
        self.expire()
        if self.bytes + len(data) > self.config.max_bytes:
            if self.config.when_full == "stop_polling":
                raise SpoolFull(f"spool {self.dir} is full ({self.bytes} B)")
            self._drop_oldest(len(data))
        elif self._full_since_drop:
            self._full_since_drop = False
            log.info(
                "spool has room again; dropped %d batches (%d readings) so far",
                self.counters.dropped_batches,
                self.counters.dropped_readings,
            )
        readings = sum(r.readings for r in records)
        name = f"{seqs[0]:016d}-{seqs[-1]:016d}-{created:013d}-{readings}{SUFFIX}"
        entry = Entry(self.dir / name, seqs[0], seqs[-1], created, readings, len(data))
        _write_atomically(entry.path, data)
        self.entries.append(entry)
        self.bytes += entry.size
        self.next_seq = seqs[-1] + 1
        self.counters.appended_batches += 1
        self.counters.appended_readings += readings
        return entry

    def take(self) -> tuple[Entry, list[Record]] | None:
        """The oldest batch not handed out yet, leased to the caller; None when there is none."""
        while (entry := next((e for e in self.entries if not e.leased), None)) is not None:
            try:  # the leased ones are the few oldest: this scan stops early
                records = _decode(entry.path.read_bytes())
            except (OSError, ValueError) as exc:
                self._quarantine(entry, str(exc))
                continue
            entry.leased = True
            return entry, records
        return None

    def release(self, entry: Entry) -> None:
        entry.leased = False

    def remove(self, entry: Entry) -> None:
        """Every message of the batch is acknowledged: forget it, keeping seq monotonic."""
        if entry not in self.entries:
            return
        self._forget(entry)
        self.counters.removed_batches += 1
        self.counters.removed_readings += entry.readings

    def expire(self) -> int:
        """Delete batches older than max_age_s (not ones being published); return how many."""
        if self.config.max_age_s <= 0:
            return 0
        cutoff = self.clock_ms() - int(self.config.max_age_s * 1000)
        old = []
        for entry in self.entries:  # oldest first: stop at the first young one
            if entry.created_ms >= cutoff:
                break
            if not entry.leased:
                old.append(entry)
        for entry in old:
            self._forget(entry)
            self.counters.expired_batches += 1
            self.counters.expired_readings += entry.readings
        if old:
            log.warning(
                "spool expired %d batches (%d readings) older than %.0f s",
                len(old),
                sum(e.readings for e in old),
                self.config.max_age_s,
            )
        return len(old)

    def _drop_oldest(self, incoming: int) -> None:
        dropped = []
        for entry in list(self.entries):
            if self.bytes + incoming <= self.config.max_bytes:
                break
            if not entry.leased:
                self._forget(entry)
                dropped.append(entry)
        self.counters.dropped_batches += len(dropped)
        self.counters.dropped_readings += sum(e.readings for e in dropped)
        if dropped and not self._full_since_drop:
            self._full_since_drop = True
            log.warning(
                "spool full (max_bytes=%d): dropping oldest batches, first %d (%d readings)",
                self.config.max_bytes,
                len(dropped),
                sum(e.readings for e in dropped),
            )

    def _forget(self, entry: Entry) -> None:
        if entry is self.entries[-1]:
            _write_atomically(self.dir / "last_seq", str(entry.last_seq).encode())
        self.entries.remove(entry)
        self.bytes -= entry.size
        entry.path.unlink(missing_ok=True)

    def _quarantine(self, entry: Entry, why: str) -> None:
        corrupt = self.dir / "corrupt"
        corrupt.mkdir(exist_ok=True)
        if entry.path.exists():
            entry.path.replace(corrupt / entry.path.name)
        if entry in self.entries:
            self._forget(entry)
        self.counters.corrupt_batches += 1
        log.error("spool batch %s is corrupt (%s): moved to %s", entry.path.name, why, corrupt)

    def _read_last_seq(self) -> int:
        try:
            return int((self.dir / "last_seq").read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError as exc:
            raise SpoolError(f"{self.dir / 'last_seq'} is not a number: {exc}") from None


def _encode(created_ms: int, records: Sequence[Record]) -> bytes:
    lines = []
    for r in records:
        if b"\n" in r.payload or " " in r.topic:
            raise ValueError(f"seq {r.seq}: payload has a newline or topic a space")
        lines.append(b"%d %d %s %s\n" % (r.seq, r.readings, r.topic.encode(), r.payload))
    body = b"".join(lines)
    return b"%s %d %d %d\n" % (MAGIC, created_ms, len(records), zlib.crc32(body)) + body


def _decode(data: bytes) -> list[Record]:
    head, sep, body = data.partition(b"\n")
    if not head.startswith(MAGIC + b" ") or not sep:
        raise ValueError("not a spool batch (bad header)")
    _created, count_text, crc_text = head[len(MAGIC) + 1 :].split(b" ")
    if zlib.crc32(body) != int(crc_text):
        raise ValueError("checksum mismatch")
    records = []
    for line in body.splitlines():
        seq, readings, topic, payload = line.split(b" ", 3)
        records.append(Record(int(seq), topic.decode(), payload, int(readings)))
    if len(records) != int(count_text):
        raise ValueError(f"{len(records)} records, header says {int(count_text)}")
    return records


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SpoolError(f"cannot write {path}: {exc}") from exc
