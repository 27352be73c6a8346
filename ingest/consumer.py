"""The consumer: take a batch, land it durably, then ack it. Repeat until told to stop.

    inbox.take() -> pipeline.validate() | pipeline.deduplicate() -> lake.land() (fsync + rename)
                 -> subscriber.ack_through() -> dedup index updated

SIGTERM/SIGINT set a flag; the loop lands and acks what it holds, disconnects
without ending the MQTT session, and returns 0. Anything received after the last
batch stays unacked, so the broker redelivers it to the next run.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Final

import polars as pl

from ingest.dedup import RecentKeys
from ingest.metrics import ConsumerMetrics, MetricsServer
from ingest.mqtt import Inbox, Received, Subscriber
from ingest.pipeline import Batch, BatchReport, Validated, deduplicate, validate
from ingest.receiver import ProcessReception
from ingest.sparkplug_ingest import SparkplugIngest, Translated
from warehouse.catalog import ensure_catalog
from warehouse.lake import QUARANTINE, READINGS
from wattline.config import Settings

log = logging.getLogger(__name__)


@dataclass
class Totals:
    """Running counts since start; they reconcile like each batch does."""

    messages: int = 0
    messages_quarantined: int = 0
    readings: int = 0
    landed: int = 0
    readings_quarantined: int = 0
    duplicates: int = 0
    batches: int = 0
    acked: int = 0
    # receive of a batch's oldest message -> its file durable and acked, per batch
    landing_latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def add(self, report: BatchReport, acked: int, latency: float) -> None:
        self.messages += report.messages
        self.messages_quarantined += report.messages_quarantined
        self.readings += report.readings
        self.landed += report.landed
        self.readings_quarantined += report.readings_quarantined
        self.duplicates += report.duplicates
        self.batches += 1
        self.acked += acked
        self.landing_latency_s.append(latency)


class Consumer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lake = settings.lake.open()
        self.writer = _file_safe(settings.mqtt.client_id)
        s = settings.ingest
        self.inbox: Inbox | ProcessReception
        self.subscriber: Subscriber | ProcessReception
        if s.receiver == "process":
            self.inbox = self.subscriber = ProcessReception(settings)
        else:
            self.inbox = Inbox(s.batch_max_messages, s.batch_max_bytes, s.max_inflight_bytes)
            self.subscriber = Subscriber(settings.mqtt, self.inbox)
        self.totals = Totals()
        self.metrics = ConsumerMetrics()
        self.metrics_server: MetricsServer | None = None
        self._stop = threading.Event()
        self._batch_no = 0
        self._recent = RecentKeys(settings.ingest.dedup_keys)
        self.sparkplug: SparkplugIngest | None = None

    def prepare(self) -> None:
        ensure_catalog(self.settings.catalog.path, self.lake, strict=False)
        if self.settings.mqtt.sparkplug_topic:
            self.sparkplug = SparkplugIngest(self.lake, self.settings.mqtt.sparkplug_mapping)
        self._batch_no = self.lake.next_batch(self.writer)
        newest: list[str] | list[Path]
        if self.lake.delta is not None:
            # every writer's newest files: after a crash this writer's unacked batch is
            # there, whoever compacted it since
            newest = self.lake.delta.newest_first(READINGS)
            options = self.lake.delta.storage_options
        else:
            newest = self.lake.recent_files_first(READINGS, self.writer)
            options = {}
        self._recent = RecentKeys.rebuild(self.settings.ingest.dedup_keys, newest, options)

    def stop(self) -> None:
        self._stop.set()
        self.inbox.close()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: landing what is buffered, then exiting", signum)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> int:
        self.prepare()
        if self.settings.metrics.enabled:
            self.metrics_server = MetricsServer(self, self.settings.metrics)
            self.metrics_server.start()
        self.subscriber.start()
        # Two stages: while one batch is written, fsynced and acked in the writer thread,
        # the next is decoded and validated here. One batch at most waits for the writer,
        # so acks stay in order. Serial with Sparkplug (its birth state is shared by both
        # stages).
        pipelined = self.sparkplug is None
        writer = ThreadPoolExecutor(1, "wattline-land") if pipelined else None
        landing: Future[BatchReport] | None = None
        try:
            while not self._stop.is_set():
                if self.subscriber.refused is not None:
                    raise self.subscriber.refused
                prepared = self._prepare(self.inbox.take(self.settings.ingest.flush_interval_s))
                if writer is None:
                    if prepared is not None:
                        self._land(prepared)
                    continue
                if landing is not None and (prepared is not None or landing.done()):
                    landing.result()  # the previous batch is durable and acked (or raises)
                    landing = None
                if prepared is not None:
                    landing = writer.submit(self._land, prepared)
            if landing is not None:
                landing.result()
            held = max(1, self.inbox.pending())  # what is held at the stop, batch by batch
            while held > 0 and (report := self.flush(self.inbox.take(0))) is not None:
                held -= report.messages
        finally:
            if writer is not None:
                writer.shutdown(wait=True)
            self.subscriber.stop()
            if self.metrics_server is not None:
                self.metrics_server.stop()
        log.info(
            "consumer stopped messages=%d landed=%d quarantined=%d duplicates=%d",
            self.totals.messages,
            self.totals.landed,
            self.totals.messages_quarantined + self.totals.readings_quarantined,
            self.totals.duplicates,
        )
        return 0

    def flush(self, received: Received) -> BatchReport | None:
        """Land one batch durably and ack it (both stages, in this thread)."""
        prepared = self._prepare(received)
        return None if prepared is None else self._land(prepared)

    def _prepare(self, received: Received) -> _Prepared | None:
        """Stage 1, no state: decode and validate; the batch gets its number."""
        if not len(received):
            return None
        started = time.perf_counter()
        s = self.settings.ingest
        topics, payloads, stamps = received.topics, received.payloads, received.received_us
        translated = None
        if self.sparkplug is not None:  # Sparkplug B messages become wire contract v1 ones
            translated = self.sparkplug.translate(topics, payloads, stamps)
            topics, payloads, stamps = (
                translated.topics,
                translated.payloads,
                translated.received_us,
            )
        validated = validate(Batch(topics, payloads, stamps), s.max_payload_bytes, s.max_future_s)
        quarantine = validated.quarantine
        if translated is not None and translated.quarantine.height:
            quarantine = pl.concat([quarantine, translated.quarantine])
        number = self._batch_no
        self._batch_no += 1
        prepared_s = time.perf_counter() - started
        return _Prepared(received, validated, quarantine, translated, number, started, prepared_s)

    def _land(self, prepared: _Prepared) -> BatchReport:
        """Stage 2, in batch order: deduplicate against the batches landed before, write
        durably, ack in arrival order, free the inbox's room, index the landed keys."""
        received, number = prepared.received, prepared.number
        written = time.perf_counter()
        landing = deduplicate(prepared.validated, self._recent)
        self.metrics.in_flight = len(received)
        _failpoint("before_write", number)
        self.lake.land(
            (READINGS, landing.readings, "ts"),
            (QUARANTINE, prepared.quarantine, "received_at"),
            writer=self.writer,
            batch=number,
        )
        _failpoint("after_write", number)
        translated = prepared.translated
        if self.sparkplug is not None and translated is not None:
            self.sparkplug.persist()  # births durable before their messages are acked
            for topic, command in translated.commands:
                assert isinstance(self.subscriber, Subscriber)
                self.subscriber.publish(topic, command, qos=0)
                log.info("sparkplug rebirth requested topic=%s", topic)
        acked = self.subscriber.ack_through(received.acks)
        self.inbox.release(received.nbytes)
        self._recent.add(landing.readings)
        done = time.perf_counter()
        latency = time.time() - received.received_us[0] / 1e6
        self.totals.add(landing.report, acked, latency)
        self.metrics.flushed(done - prepared.started, landing.quarantine)
        self.metrics.in_flight = 0
        r = landing.report
        log.info(
            "batch=%d messages=%d readings=%d landed=%d quarantined=%d duplicates=%d "
            "acked=%d bytes=%d reception_pauses=%d fast_path=%s seconds=%.3f "
            "(validate %.3f, dedup+write+ack %.3f) oldest_waited_s=%.3f",
            number,
            r.messages,
            r.readings,
            r.landed,
            r.quarantined,
            r.duplicates,
            acked,
            received.nbytes,
            self.inbox.pauses,
            r.fast_path,
            done - prepared.started,
            prepared.prepared_s,
            done - written,
            latency,
        )
        return r


@dataclass(frozen=True)
class _Prepared:
    """A batch between the stages: what to write, what to ack."""

    received: Received
    validated: Validated
    quarantine: pl.DataFrame
    translated: Translated | None
    number: int
    started: float
    prepared_s: float


MALLOC_ARENAS: Final = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process and the processes it starts.

    glibc gives each thread that allocates its own arena (up to 8 per core) and keeps
    freed memory in it; paho's thread, polars' and pyarrow's pools each fill one with a
    batch's buffers. Measured with bench/ingest.py (100-reading messages, 3 M
    readings): peak RSS 612 MB with the default, 465 MB with 2 arenas, and no slower.
    Returns False where there is no glibc (the call is then skipped). An explicit
    MALLOC_ARENA_MAX in the environment wins.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)  # the reception child, if any
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))


_M_ARENA_MAX: Final = -8  # glibc malloc.h


def _failpoint(name: str, batch: int) -> None:
    """Tests prove crash safety at exact points: WATTLINE_FAILPOINT=after_write:<batch>."""
    wanted = os.environ.get("WATTLINE_FAILPOINT", "")
    if wanted == f"{name}:{batch}":
        log.warning("failpoint %s reached at batch %d: exiting without acks", name, batch)
        logging.shutdown()
        os._exit(137)


def _file_safe(client_id: str) -> str:
    return "".join(c if c.isalnum() or c in "_." else "_" for c in client_id)
