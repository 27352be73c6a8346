"""Time handling: energy integrated over time, gaps not bridged, site-local days and shifts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from schemas.readings import READING_SCHEMA
from transforms.bucket_readings import bucket_readings
from transforms.tag_local_time import tag_local_time

T0 = datetime(2026, 11, 20, 15, 58, tzinfo=UTC)  # 23:58 in Shanghai, 16:58 in Berlin


def readings(rows: list[dict[str, object]]) -> pl.LazyFrame:
    base = {c: None for c in READING_SCHEMA.names()}
    full = [{**base, "site": "plant", "received_at": T0, **r} for r in rows]
    return pl.DataFrame(full, schema=READING_SCHEMA).lazy()


def test_one_hertz_and_one_per_minute_give_the_same_energy() -> None:
    fast = [
        {"device_id": "a", "ts": T0 + timedelta(seconds=s), "power_kw": 60.0} for s in range(600)
    ]
    slow = [
        {"device_id": "b", "ts": T0 + timedelta(minutes=m), "power_kw": 60.0} for m in range(10)
    ]
    out = bucket_readings(readings(fast + slow), max_gap_s=300).collect()
    kwh = out.group_by("device_id").agg(pl.col("energy_kwh").sum()).sort("device_id")
    assert kwh["energy_kwh"].to_list() == pytest.approx([10.0, 10.0])  # 60 kW for 10 min
    assert out.filter(pl.col("device_id") == "a")["power_kw"].to_list() == pytest.approx(
        [60.0] * 10
    )


def test_rows_in_any_order_give_the_same_buckets_as_rows_in_lake_order() -> None:
    """Lake order (device, ts) takes the stable one-key sort; shuffled rows, or files whose
    times interleave, must take the full sort and give the same buckets."""
    rows = [
        {"device_id": d, "ts": T0 + timedelta(minutes=m, seconds=7 * k), "power_kw": 10.0 + m}
        for k, d in enumerate(("a", "b", "c"))
        for m in (0, 1, 2, 4, 9, 10, 11)
    ]
    lake_order = bucket_readings(readings(rows), max_gap_s=300).collect()
    shuffled = bucket_readings(
        readings(rows).collect().sample(fraction=1.0, shuffle=True, seed=3).lazy(), max_gap_s=300
    ).collect()
    later_file_first = bucket_readings(readings(rows[10:] + rows[:10]), max_gap_s=300).collect()
    key = ["device_id", "minute"]
    assert lake_order.height == 21
    assert shuffled.sort(key).equals(lake_order.sort(key))
    assert later_file_first.sort(key).equals(lake_order.sort(key))
    assert lake_order.filter(pl.col("device_id") == "a")["observed_s"].to_list() == [
        60.0,
        60.0,
        120.0,
        300.0,
        60.0,
        60.0,
        60.0,
    ]


def test_a_gap_is_not_bridged() -> None:
    minutes = [0, 1, 2, 3, 4, 180]
    rows = [{"device_id": "a", "ts": T0 + timedelta(minutes=m), "power_kw": 30.0} for m in minutes]
    out = bucket_readings(readings(rows), max_gap_s=300).collect()
    # 4 × 60 s, then 300 s (capped: the device went silent), then 60 s (median interval)
    assert out["energy_kwh"].sum() == pytest.approx(30 * (240 + 300 + 60) / 3600)
    assert out["observed_s"].sum() == pytest.approx(600)


def test_power_from_current_voltage_and_pf_when_not_metered() -> None:
    rows = [
        {
            "device_id": "a",
            "ts": T0 + timedelta(minutes=m),
            "current_a": 100.0,
            "voltage_v": 400.0,
            "power_factor": 0.85,
        }
        for m in range(2)
    ]
    out = bucket_readings(readings(rows), max_gap_s=300).collect()
    assert out["power_kw"].to_list() == pytest.approx([3**0.5 * 400 * 100 * 0.85 / 1000] * 2)


def sites(tz: str, calendar: str | None) -> pl.DataFrame:
    return pl.DataFrame({"site": ["plant"], "timezone": [tz], "shift_calendar": [calendar]})


def test_local_day_crosses_midnight_in_the_sites_zone() -> None:
    rows = [{"device_id": "a", "ts": T0 + timedelta(minutes=m), "power_kw": 1.0} for m in range(4)]
    buckets = bucket_readings(readings(rows), max_gap_s=300)
    shanghai = tag_local_time(buckets, sites("Asia/Shanghai", "Mon-Fri 08:00-20:00")).collect()
    assert shanghai["day"].to_list() == [date(2026, 11, 20)] * 2 + [date(2026, 11, 21)] * 2
    assert shanghai["on_shift"].to_list() == [False] * 4  # Fri 23:58 and Sat 00:00
    berlin = tag_local_time(buckets, sites("Europe/Berlin", "Fri 16:00-17:00")).collect()
    assert berlin["day"].to_list() == [date(2026, 11, 20)] * 4
    assert berlin["on_shift"].to_list() == [True, True, False, False]  # 16:58, 16:59, 17:00


def test_no_calendar_means_unknown_not_off_shift() -> None:
    rows = [{"device_id": "a", "ts": T0, "power_kw": 1.0}]
    tagged = tag_local_time(bucket_readings(readings(rows), 300), sites("Asia/Shanghai", None))
    assert tagged.collect()["on_shift"].to_list() == [None]


def test_site_missing_from_the_registry_uses_utc_days() -> None:
    rows = [{"device_id": "a", "ts": T0 + timedelta(hours=9), "power_kw": 1.0}]
    empty = pl.DataFrame(
        schema={"site": pl.String, "timezone": pl.String, "shift_calendar": pl.String}
    )
    tagged = tag_local_time(bucket_readings(readings(rows), 300), empty).collect()
    assert tagged["day"].to_list() == [date(2026, 11, 21)]


def test_device_ranges_cover_every_device_once_registered_or_not() -> None:
    from transforms.daily import device_ranges

    registry = pl.DataFrame({"device_id": [f"m{i:02d}" for i in range(10)]})
    seen = pl.DataFrame({"device_id": ["", "a", "m00", "m03", "m031", "m05", "m09", "zz"]})
    for per_pass in (1, 3, 4, 10, 50):
        ranges = device_ranges(registry, per_pass)
        hits = [d for r in ranges for d in seen.filter(r)["device_id"].to_list()]
        assert sorted(hits) == sorted(seen["device_id"].to_list()), per_pass
        assert len(ranges) == max(1, -(-10 // per_pass)), per_pass
