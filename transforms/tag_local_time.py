"""Site-local day and production-shift flags for 1-minute buckets.

Energy managers read days in their plant's time zone, and off-shift waste is judged
against the site's shift calendar (domain.md §2.6 M9, §5.5 C6), so every bucket gets
`day` (the local date) and `on_shift` (null when the site has no calendar: off-shift
rules then say nothing rather than guess).

Speed: millions of buckets share a few thousand minutes, so the time-zone conversion runs
once per distinct minute and site, and the buckets look their minute up (a join on the
64-bit timestamp) instead of converting every row.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from schemas.calendar import MINUTES_PER_DAY, parse_shift_calendar


def tag_local_time(buckets: pl.LazyFrame, sites: pl.DataFrame) -> pl.LazyFrame:
    """Add `day` (local Date), `local_minute_of_week` and `on_shift` (Boolean or null)."""
    frame = buckets.collect()
    registry = sites.select("site", "timezone", "shift_calendar").rows()
    local = frame.select(pl.col("minute").unique()).with_columns(
        column
        for i, (_, tz, calendar) in enumerate(registry)
        for column in _local_columns(f"_{i}", tz, calendar)
    )
    looked_up = frame.select("minute").join(local, on="minute", how="left", maintain_order="left")
    day: Any = pl.col("minute").dt.date()  # a site not in the registry: UTC days
    week_minute: Any = pl.lit(None, dtype=pl.Int32)
    on_shift: Any = pl.lit(None, dtype=pl.Boolean)
    for i, (site, _, _) in enumerate(registry):
        is_site = pl.col("site") == site
        day = pl.when(is_site).then(pl.col(f"_{i}day")).otherwise(day)
        week_minute = pl.when(is_site).then(pl.col(f"_{i}week_minute")).otherwise(week_minute)
        on_shift = pl.when(is_site).then(pl.col(f"_{i}on_shift")).otherwise(on_shift)
    return (
        frame.hstack(looked_up.drop("minute"))
        .with_columns(day=day, local_minute_of_week=week_minute.cast(pl.Int32), on_shift=on_shift)
        .drop(looked_up.columns[1:])
        .lazy()
    )


def _local_columns(tag: str, tz: str, calendar: str | None) -> list[pl.Expr]:
    """{tag}day, {tag}week_minute and {tag}on_shift of `minute` in one site's zone."""
    local = pl.col("minute").dt.convert_time_zone(tz)
    minute_of_week = (
        (local.dt.weekday() - 1) * MINUTES_PER_DAY
        + local.dt.hour().cast(pl.Int32) * 60
        + local.dt.minute().cast(pl.Int32)
    )
    on_shift: pl.Expr = pl.lit(None, dtype=pl.Boolean)
    if calendar:
        windows = parse_shift_calendar(calendar).windows
        on_shift = (
            pl.any_horizontal([(minute_of_week >= a) & (minute_of_week < b) for a, b in windows])
            if windows
            else pl.lit(False)
        )
    return [
        local.dt.date().alias(f"{tag}day"),
        minute_of_week.alias(f"{tag}week_minute"),
        on_shift.alias(f"{tag}on_shift"),
    ]
