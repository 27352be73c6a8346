"""Metrics scraped from a real consumer reconcile with the tables; /healthz tells the truth."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import ConsumerThread, Publisher, settings_for
from warehouse.catalog import connect_readonly
from wattline.broker import Broker
from wattline.config import MetricsSettings, Settings

pytestmark = [pytest.mark.broker]
T0_MS = 1_795_219_200_000


def with_metrics(settings: Settings, unhealthy_after_s: float = 60.0) -> Settings:
    metrics = MetricsSettings(enabled=True, port=0, unhealthy_after_s=unhealthy_after_s)
    return replace(settings, metrics=metrics).validate()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(running: ConsumerThread) -> dict[str, float]:
    server = running.consumer.metrics_server
    assert server is not None and server.host == "127.0.0.1"
    status, text = get(f"http://127.0.0.1:{server.port}/metrics")
    assert status == 200
    samples = [line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#")]
    return {name: float(value) for name, value in samples}


def wait_for(check: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def test_scraped_counters_reconcile_with_the_tables(
    broker: Broker, publisher: Publisher, site: str, tmp_path: Path
) -> None:
    settings = with_metrics(settings_for(broker, tmp_path, site))
    good = [
        (f"telemetry/{site}/d{i % 3}", json.dumps({"ts": T0_MS + i * 1000, "power_kw": 1.0}))
        for i in range(30)
    ]
    bad = [
        (f"telemetry/{site}/d1", "{not json"),
        (f"telemetry/{site}/d1", json.dumps({"ts": "2026-11-21T08:00:00", "power_kw": 1})),
        (f"telemetry/{site}/d2", json.dumps({"ts": T0_MS, "power_factor": 7})),
    ]
    items = [(t, p.encode()) for t, p in good + bad + good[:5]]  # the last 5: duplicates
    with ConsumerThread(settings) as running:
        publisher.publish_many(items)
        wait_for(lambda: running.consumer.totals.messages >= len(items))
        m = scrape(running)
    con = connect_readonly(settings.catalog.path)
    try:
        landed = con.execute("SELECT count(*) FROM readings").fetchall()[0][0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
    finally:
        con.close()
    by_reason = {k: v for k, v in m.items() if k.startswith("wattline_quarantined_total{")}
    assert m["wattline_messages_received_total"] == len(items)
    assert m["wattline_readings_landed_total"] == landed == 30
    assert sum(by_reason.values()) == quarantined == 3
    assert m["wattline_duplicates_dropped_total"] == 5
    assert m["wattline_messages_processed_total"] == len(items)
    # readings: 30 landed + 5 duplicates + 2 quarantined alone (the bad JSON has none)
    assert m["wattline_readings_received_total"] == landed + 5 + 2
    assert m["wattline_unacked_messages"] == 0 and m["wattline_broker_connected"] == 1
    assert m["wattline_batch_flush_seconds_count"] == m["wattline_batches_total"] >= 1
    assert m['wattline_batch_flush_seconds_bucket{le="+Inf"}'] == m["wattline_batches_total"]


def test_healthz_turns_503_when_the_broker_is_gone(
    own_broker: Broker, site: str, tmp_path: Path
) -> None:
    settings = with_metrics(settings_for(own_broker, tmp_path, site), unhealthy_after_s=0.5)
    with ConsumerThread(settings) as running:
        server = running.consumer.metrics_server
        assert server is not None
        url = f"http://127.0.0.1:{server.port}/healthz"
        assert get(url) == (200, "ok\n")
        own_broker.stop()
        wait_for(lambda: get(url)[0] == 503)
        assert get(url)[0] == 503
        body = get(url)[1]
        assert body.startswith("broker unreachable for")
        assert scrape(running)["wattline_broker_connected"] == 0
