"""Publish over a real broker, land Parquet, query through the DuckDB catalog."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import ConsumerThread, Publisher, settings_for
from warehouse.catalog import connect_readonly
from wattline.broker import Broker

pytestmark = pytest.mark.broker


def wait_for(predicate, timeout_s: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_single_and_batch_messages_land_and_are_queryable(
    broker: Broker, publisher: Publisher, site: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, tmp_path, site)
    with ConsumerThread(settings) as ct:
        publisher.publish(
            f"telemetry/{site}/m1",
            {"ts": "2026-11-21T08:00:00.000+08:00", "current_a": 41.2, "power_kw": 21.7},
        )
        publisher.publish(
            f"telemetry/{site}/m1",
            {
                "device_id": "m1",
                "gateway": "gw1",
                "seq": 7,
                "readings": [
                    {"ts": 1763683201000, "power_kw": 21.5},
                    {"ts": "2026-11-21T00:00:02Z", "power_kw": 21.6, "state": "running"},
                ],
            },
        )
        wait_for(lambda: ct.consumer.totals.landed == 3)
    con = connect_readonly(settings.catalog.path)
    rows = con.execute(
        "SELECT device_id, site, ts, power_kw, gateway, seq FROM readings "
        "WHERE site = ? ORDER BY ts",
        [site],
    ).fetchall()
    con.close()
    assert [r[3] for r in rows] == [21.5, 21.7, 21.6]
    assert {r[0] for r in rows} == {"m1"}
    assert rows[0][4:] == ("gw1", 7)
    assert str(rows[1][2]).startswith("2026-11-21 00:00:00")
    assert ct.result == [0]
