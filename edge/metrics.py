"""The gateway's Prometheus metrics and health: polling, spool depth and age, the uplink.

GET /metrics  readings polled / acked / replayed, refused publishes, skipped polls,
              spool depth (batches, readings, bytes) and oldest batch age, spool
              drops and expiries, broker connection state
GET /healthz  503 when the broker is unreachable and the oldest spooled batch has
              waited longer than `unhealthy_after_s` (readings are safe on disk, but
              someone should look), else 200
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.gateway import Gateway


def oldest_age_s(gateway: Gateway) -> float:
    entries = gateway.spool.entries
    return max(0.0, time.time() - entries[0].created_ms / 1000) if entries else 0.0


def connected(gateway: Gateway) -> bool:
    link = getattr(gateway, "link", None)
    return bool(link is not None and link.connected.is_set())


def render(gateway: Gateway) -> str:
    c, s = gateway.counters, gateway.spool
    labels = f'{{gateway="{gateway.config.gateway.id}"}}'
    rows = [
        ("counter", "readings_polled_total", "Readings read from devices", c.readings_polled),
        (
            "counter",
            "polls_skipped_total",
            "Polls skipped while the spool was full",
            c.polls_skipped,
        ),
        (
            "counter",
            "readings_acked_total",
            "Readings acknowledged by the broker (PUBACK)",
            c.readings_acked,
        ),
        (
            "counter",
            "messages_acked_total",
            "Messages acknowledged by the broker",
            c.messages_acked,
        ),
        (
            "counter",
            "readings_replayed_total",
            "Readings sent from the spool after an outage",
            c.readings_replayed,
        ),
        (
            "counter",
            "publishes_refused_total",
            "Publishes the broker refused (e.g. ACL)",
            c.publishes_refused,
        ),
        ("gauge", "spool_batches", "Batches waiting in the spool", len(s.entries)),
        ("gauge", "spool_readings", "Readings waiting in the spool", s.readings),
        ("gauge", "spool_bytes", "Bytes used by the spool", s.bytes),
        (
            "gauge",
            "spool_oldest_age_seconds",
            "Age of the oldest spooled batch",
            round(oldest_age_s(gateway), 3),
        ),
        (
            "counter",
            "spool_dropped_readings_total",
            "Readings dropped because the spool was full",
            s.counters.dropped_readings,
        ),
        (
            "counter",
            "spool_expired_readings_total",
            "Readings expired by the spool's age limit",
            s.counters.expired_readings,
        ),
        (
            "counter",
            "spool_corrupt_batches_total",
            "Spool files set aside as corrupt",
            s.counters.corrupt_batches,
        ),
        ("gauge", "broker_connected", "1 while connected to the broker", int(connected(gateway))),
    ]
    out = []
    for kind, name, text, value in rows:
        full = f"wattline_gateway_{name}"
        out += [f"# HELP {full} {text}", f"# TYPE {full} {kind}", f"{full}{labels} {value}"]
    return "\n".join(out) + "\n"


def problem(gateway: Gateway, unhealthy_after_s: float) -> str:
    age = oldest_age_s(gateway)
    if not connected(gateway) and age > unhealthy_after_s:
        return f"broker unreachable; oldest spooled batch waiting {age:.0f} s"
    return ""
