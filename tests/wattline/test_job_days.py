"""Which site-local days a changed UTC partition touches, and which partitions they read."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from wattline.jobs import _local_days, _utc_days

CHANGED = [Path("lake/readings/date=2026-10-31/part-c-000000000001.parquet")]


def days(start: int, end: int, month: int = 10) -> list[date]:
    return [date(2026, month, d) for d in range(start, end + 1)]


def test_east_of_utc_a_utc_day_touches_its_own_and_the_next_local_day() -> None:
    zones = [ZoneInfo("Asia/Shanghai")]
    local = _local_days(CHANGED, zones, 300)
    assert local == [date(2026, 10, 31), date(2026, 11, 1)]
    # Local 10-31 starts at UTC 10-30 16:00; local 11-01 ends at UTC 11-01 16:00.
    assert _utc_days(local, zones, 300) == [*days(30, 31), date(2026, 11, 1)]


def test_on_utc_the_day_before_is_touched_through_its_last_readings_interval() -> None:
    zones = [ZoneInfo("UTC")]
    local = _local_days(CHANGED, zones, 300)
    assert local == days(30, 31)  # a 23:58 reading on 10-30 runs until one on 10-31
    assert _utc_days(local, zones, 300) == [*days(29, 31), date(2026, 11, 1)]
    assert _local_days(CHANGED, zones, 0) == [date(2026, 10, 31)]


def test_sites_in_several_zones_take_the_union() -> None:
    zones = [ZoneInfo("America/New_York"), ZoneInfo("Asia/Shanghai")]
    assert _local_days(CHANGED, zones, 300) == [*days(30, 31), date(2026, 11, 1)]
