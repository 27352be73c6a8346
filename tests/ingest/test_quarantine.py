"""Every class of bad input lands in quarantine with its reason; good siblings still land."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import ConsumerThread, Publisher, settings_for
from warehouse.catalog import connect_readonly
from wattline.broker import Broker

pytestmark = pytest.mark.broker

GOOD = b'{"ts": 1795219200000, "power_kw": 1.5}'


def cases(site: str) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected reason) for every reason in the fixed set."""
    t = f"telemetry/{site}/m1"
    return [
        (t, b"x" * (256 * 1024 + 1), "oversize"),
        (t, b'{"ts": 1795219200000, "power_kw": "\xff"}', "not_utf8"),
        (t, b'{"ts": 1795219200000, "power_kw": ', "malformed_json"),
        (t, b"[1, 2, 3]", "wrong_shape"),
        (t, b'{"readings": []}', "wrong_shape"),
        (f"telemetry/{site}/bad topic", GOOD, "bad_topic"),
        (f"telemetry/{site}/m1/extra", GOOD, "bad_topic"),
        (t, b'{"device_id": "m2", "ts": 1795219200000, "power_kw": 1}', "topic_mismatch"),
        (t, b'{"power_kw": 1.0}', "missing_ts"),
        (t, b'{"ts": "2026-11-21T08:00:00", "power_kw": 1.0}', "ts_without_zone"),
        (t, b'{"ts": "yesterday", "power_kw": 1.0}', "bad_ts"),
        (t, b'{"ts": 1795219201000}', "no_quantity"),
        (t, b'{"ts": 1795219202000, "power_kw": "12"}', "wrong_type"),
        (t, b'{"ts": 1795219203000, "power_kw": NaN}', "not_finite"),
        (t, b'{"ts": 1795219204000, "power_factor": 1.2}', "out_of_range"),
        (t, b'{"ts": 1795219205000, "state": "sleeping"}', "bad_state"),
        (t, b'{"ts": 1795219206000, "power_kw": 1, "vibration_mm_s": 2.5}', "unknown_field"),
    ]


def test_each_bad_input_class_is_quarantined_with_its_reason(
    broker: Broker, publisher: Publisher, site: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, tmp_path, site)
    bad = cases(site)
    mixed = (
        b'{"readings": [{"ts": 1795219300000, "power_kw": 2.0},'
        b' {"ts": 1795219301000, "power_kw": -2e7}, {"ts": 1795219302000, "power_kw": 3.0}]}'
    )
    with ConsumerThread(settings) as ct:
        publisher.publish_many([(t, p) for t, p, _ in bad])
        publisher.publish(f"telemetry/{site}/m1", mixed)
        deadline = time.monotonic() + 15
        while ct.consumer.totals.messages < len(bad) + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    totals = ct.consumer.totals
    con = connect_readonly(settings.catalog.path)
    rows = con.execute(
        "SELECT topic, reason, detail, payload, reading_index FROM quarantine "
        "WHERE topic LIKE ? ORDER BY received_at, reading_index",
        [f"telemetry/{site}/%"],
    ).fetchall()
    landed = con.execute(
        "SELECT power_kw FROM readings WHERE site = ? ORDER BY ts", [site]
    ).fetchall()
    con.close()
    by_payload = {(r[0], bytes(r[3])): r for r in rows}
    for topic, payload, reason in bad:
        row = by_payload[(topic, payload)]
        assert row[1] == reason, (payload[:60], row[1], row[2])
        assert row[2], "every quarantine row has a human-readable detail"
    assert by_payload[(f"telemetry/{site}/m1", mixed)][1:3] == (
        "out_of_range",
        "power_kw=-20000000.0 fails [-1e+06, 1e+06]",
    )
    assert landed == [(2.0,), (3.0,)]
    assert totals.readings == totals.landed + totals.readings_quarantined + totals.duplicates
    assert totals.messages == len(bad) + 1
    assert totals.messages_quarantined + totals.readings_quarantined == len(bad) + 1


def test_every_quarantined_receipt_is_a_row_even_for_identical_payloads(
    broker: Broker, publisher: Publisher, site: str, tmp_path: Path
) -> None:
    """2,000 bad messages, many byte-identical: the view's rows equal the counters.

    A fuzz run once counted quarantined=2000 while the view held 1,381 rows, because
    identical payloads received at different moments shared one row.
    """
    settings = settings_for(broker, tmp_path, site)
    t = f"telemetry/{site}/m1"
    reasons = {"not_utf8", "malformed_json", "wrong_shape", "missing_ts", "bad_ts", "no_quantity"}
    distinct = [p for topic, p, reason in cases(site) if topic == t and reason in reasons]
    bad = [(t, distinct[i % 7]) for i in range(2000)]
    good = [(t, b'{"ts": %d, "power_kw": 1.0}' % (1795219200000 + i * 1000)) for i in range(300)]
    mixed = bad[:1000] + good + bad[1000:] + good[:100]  # the last 100 are duplicates
    with ConsumerThread(settings) as ct:
        publisher.publish_many(mixed)
        deadline = time.monotonic() + 30
        while ct.consumer.totals.messages < len(mixed) and time.monotonic() < deadline:
            time.sleep(0.05)
    totals = ct.consumer.totals
    con = connect_readonly(settings.catalog.path)
    quarantined = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
    per_payload = con.execute(
        "SELECT count(DISTINCT payload), max(n) FROM (SELECT payload, count(*) AS n "
        "FROM quarantine GROUP BY payload)"
    ).fetchall()[0]
    landed = con.execute("SELECT count(*) FROM readings WHERE site = ?", [site]).fetchall()[0][0]
    con.close()
    assert totals.messages == len(mixed)
    assert quarantined == totals.messages_quarantined + totals.readings_quarantined == 2000
    assert per_payload[0] == 7 and per_payload[1] >= 285  # 2000 receipts of 7 payloads
    assert landed == totals.landed == 300 and totals.duplicates == 100
    assert totals.readings == landed + totals.readings_quarantined + totals.duplicates
