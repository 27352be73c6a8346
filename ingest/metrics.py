"""Prometheus text metrics and a health check for the consumer, over stdlib HTTP.

    GET /metrics  counters that reconcile like each batch does (received = landed +
                  quarantined + duplicates), flush latency histogram, in-flight gauge,
                  broker connection state
    GET /healthz  200 "ok", or 503 with the reason: the broker has been away, or
                  messages have waited without a flush, longer than unhealthy_after_s

A daemon thread serves it; each request reads the consumer's counters as they are
(plain ints written by one thread), so scraping never blocks ingestion. Loopback by
default: the numbers describe a plant, so exposing them is a decision ([metrics] host).
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from wattline.config import MetricsSettings
from wattline.metrics_http import MetricsHTTP

if TYPE_CHECKING:
    from ingest.consumer import Consumer

log = logging.getLogger(__name__)
FLUSH_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    """Cumulative-bucket histogram in the Prometheus exposition format."""

    bounds: tuple[float, ...] = FLUSH_BUCKETS_S
    counts: list[int] = field(default_factory=lambda: [0] * (len(FLUSH_BUCKETS_S) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'{name}_bucket{{le="{le}"}} {running}')
        return [*out, f"{name}_sum {self.total:.6f}", f"{name}_count {self.count}"]


@dataclass
class ConsumerMetrics:
    """What the consumer's `Totals` do not already hold: reasons, latency, liveness."""

    quarantined_by_reason: Counter[str] = field(default_factory=Counter)
    flush_seconds: Histogram = field(default_factory=Histogram)
    last_flush_at: float = field(default_factory=time.monotonic)
    in_flight: int = 0  # messages of the batch being landed, not yet acked

    def flushed(self, seconds: float, quarantine: pl.DataFrame) -> None:
        """One call per batch: the quarantine frame's reasons counted in one vectorised step."""
        if quarantine.height:
            for reason, n in quarantine.group_by("reason").len().iter_rows():
                self.quarantined_by_reason[reason] += n
        self.flush_seconds.observe(seconds)
        self.last_flush_at = time.monotonic()


def render(consumer: Consumer) -> str:
    """The consumer's state as Prometheus text format 0.0.4."""
    t, m, sub = consumer.totals, consumer.metrics, consumer.subscriber
    counters = {
        "wattline_messages_received_total": ("messages from the broker", consumer.inbox.received),
        "wattline_messages_processed_total": ("messages in flushed batches", t.messages),
        "wattline_readings_received_total": ("readings in flushed batches", t.readings),
        "wattline_readings_landed_total": ("readings durable in the lake", t.landed),
        "wattline_duplicates_dropped_total": ("readings dropped as duplicates", t.duplicates),
        "wattline_batches_total": ("batches flushed", t.batches),
        "wattline_messages_acked_total": ("messages acknowledged to the broker", t.acked),
    }
    lines: list[str] = []
    for name, (help_text, value) in counters.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"]
    name = "wattline_quarantined_total"
    lines += [f"# HELP {name} quarantine rows (messages or readings) by reason",
              f"# TYPE {name} counter"]  # fmt: skip
    lines += [f'{name}{{reason="{r}"}} {n}' for r, n in sorted(m.quarantined_by_reason.items())]
    name = "wattline_batch_flush_seconds"
    lines += [f"# HELP {name} decode, validate, write and ack one batch",
              f"# TYPE {name} histogram", *m.flush_seconds.lines(name)]  # fmt: skip
    gauges: dict[str, tuple[str, float]] = {
        "wattline_unacked_messages": ("received, not yet acked", unacked(consumer)),
        "wattline_broker_connected": ("1 while subscribed", int(sub.connected.is_set())),
        "wattline_seconds_since_flush": ("since the last batch was flushed",
                                         round(time.monotonic() - m.last_flush_at, 3)),
    }  # fmt: skip
    for name, (help_text, level) in gauges.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {level}"]
    lines += _webhook_lines(consumer)
    return "\n".join(lines) + "\n"


def _webhook_lines(consumer: Consumer) -> list[str]:
    """Alert notifications by outcome, from the outbox `wattline alerts deliver` keeps."""
    from alerts.cli import delivery_counts

    name = "wattline_webhook_deliveries"
    counts = delivery_counts(consumer.settings.lake.root)
    return [f"# HELP {name} alert notifications in the outbox by status",
            f"# TYPE {name} gauge",
            *[f'{name}{{status="{s}"}} {n}' for s, n in sorted(counts.items())]]  # fmt: skip


def unacked(consumer: Consumer) -> int:
    return consumer.inbox.pending() + consumer.metrics.in_flight


def health(consumer: Consumer, unhealthy_after_s: float) -> str:
    """ "" when healthy, else why not (the body of the 503)."""
    now, down_since = time.monotonic(), consumer.subscriber.down_since
    if down_since is not None and now - down_since > unhealthy_after_s:
        return f"broker unreachable for {now - down_since:.0f} s"
    waited = now - consumer.metrics.last_flush_at
    if unacked(consumer) and waited > unhealthy_after_s:
        return f"{unacked(consumer)} messages waiting; no batch flushed for {waited:.0f} s"
    return ""


class MetricsServer(MetricsHTTP):
    """The consumer's /metrics and /healthz; `port` is the bound one (0 picks a free one)."""

    def __init__(self, consumer: Consumer, settings: MetricsSettings) -> None:
        limit = settings.unhealthy_after_s
        super().__init__(
            settings.host, settings.port, lambda: render(consumer), lambda: health(consumer, limit)
        )
