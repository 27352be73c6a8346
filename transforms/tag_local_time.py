"""Site-local day and production-shift flags for 1-minute buckets.

Energy managers read days in their plant's time zone, and off-shift waste is judged
against the site's shift calendar (domain.md §2.6 M9, §5.5 C6), so every bucket gets
`day` (the local date) and `on_shift` (null when the site has no calendar: off-shift
rules then say nothing rather than guess).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from schemas.calendar import MINUTES_PER_DAY, parse_shift_calendar


def tag_local_time(buckets: pl.LazyFrame, sites: pl.DataFrame) -> pl.LazyFrame:
    """Add `day` (local Date), `local_minute_of_week` and `on_shift` (Boolean or null)."""
    day: Any = pl.col("minute").dt.date()  # a site not in the registry: UTC days
    week_minute: Any = pl.lit(None, dtype=pl.Int32)
    on_shift: Any = pl.lit(None, dtype=pl.Boolean)
    for site, tz, calendar in sites.select("site", "timezone", "shift_calendar").iter_rows():
        is_site = pl.col("site") == site
        local = pl.col("minute").dt.convert_time_zone(tz)
        minute_of_week = (
            (local.dt.weekday() - 1) * MINUTES_PER_DAY
            + local.dt.hour().cast(pl.Int32) * 60
            + local.dt.minute().cast(pl.Int32)
        )
        day = pl.when(is_site).then(local.dt.date()).otherwise(day)
        week_minute = pl.when(is_site).then(minute_of_week).otherwise(week_minute)
        if calendar:
            windows = parse_shift_calendar(calendar).windows
            inside = (
                pl.any_horizontal(
                    [
                        (pl.col("local_minute_of_week") >= a) & (pl.col("local_minute_of_week") < b)
                        for a, b in windows
                    ]
                )
                if windows
                else pl.lit(False)
            )
            on_shift = pl.when(is_site).then(inside).otherwise(on_shift)
    return buckets.with_columns(
        day=day, local_minute_of_week=week_minute.cast(pl.Int32)
    ).with_columns(on_shift=on_shift)
