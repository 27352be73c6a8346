"""Day-ahead hourly energy and demand per site and per transformer, with a rolling
backtest against the seasonal-naive forecast.

Model, "seasonal mean of K weeks" (a documented seasonal baseline, no fitted library):
the forecast for a local hour is the mean of the same hour of the week over the last K
weeks that have it (K = 4 by default, `analytics.forecast_weeks`). Plant load follows
the shift calendar, so the week is the season; averaging K weeks takes out much of one
week's noise, which seasonal-naive (the same hour one week earlier, y[t − 168 h]) keeps.
Hours are site-local wall-clock hours (a shift starts at 08:00 local in every season).

Series: from the `demand` table's windows. Hourly energy = Σ demand_kw × window_min / 60
over the hour's windows; hourly demand = the largest window's demand in the hour. Only
hours whose windows are all present count as actuals.

Backtest (rolling origin): each of the last `backtest_days` days with 24 complete hours
is forecast from the data before it; MAPE = mean(|y − ŷ| / |y|) over hours with y ≠ 0,
sMAPE = mean(2|y − ŷ| / (|y| + |ŷ|)); the same for seasonal-naive. `beats_naive` says
whether the model's sMAPE is lower, and is false (said, not hidden) when it is not.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import polars as pl

from schemas.energy import FORECAST_SCHEMA

METER: Final = ("site", "meter")


def hourly_series(demand: pl.DataFrame, sites: pl.DataFrame) -> pl.DataFrame:
    """(site, meter, hour: local naive datetime, energy_kwh, demand_kw) of complete hours."""
    if demand.is_empty():
        return pl.DataFrame(
            schema={
                "site": pl.String,
                "meter": pl.String,
                "hour": pl.Datetime("us"),
                "energy_kwh": pl.Float64,
                "demand_kw": pl.Float64,
            }
        )
    local = pl.lit(None, dtype=pl.Datetime("us"))
    for site, tz in sites.select("site", "timezone").iter_rows():
        local = (
            pl.when(pl.col("site") == site)
            .then(pl.col("window_start").dt.convert_time_zone(tz).dt.replace_time_zone(None))
            .otherwise(local)
        )
    return (
        demand.with_columns(hour=local.dt.truncate("1h"))
        .filter(pl.col("hour").is_not_null())
        .group_by(*METER, "hour")
        .agg(
            energy_kwh=(pl.col("demand_kw") * pl.col("window_min") / 60.0).sum(),
            demand_kw=pl.col("demand_kw").max(),
            windows=pl.len(),
            per_hour=(60 // pl.col("window_min")).first(),
        )
        .filter(pl.col("windows") == pl.col("per_hour"))
        .drop("windows", "per_hour")
        .sort(*METER, "hour")
    )


def _seasonal(hourly: pl.DataFrame, grid: pl.DataFrame, weeks: int) -> pl.DataFrame:
    """`grid` (site, meter, hour) with the model's and seasonal-naive's forecasts."""
    out = grid
    for k in range(1, weeks + 1):
        lagged = hourly.select(
            *METER,
            (pl.col("hour") + timedelta(weeks=k)).alias("hour"),
            pl.col("energy_kwh").alias(f"e{k}"),
            pl.col("demand_kw").alias(f"d{k}"),
        )
        out = out.join(lagged, on=[*METER, "hour"], how="left")
    e = [f"e{k}" for k in range(1, weeks + 1)]
    d = [f"d{k}" for k in range(1, weeks + 1)]
    return out.with_columns(
        forecast_kwh=pl.mean_horizontal(e),
        forecast_kw=pl.mean_horizontal(d),
        naive_kwh=pl.col("e1"),
        naive_kw=pl.col("d1"),
    ).drop(*e, *d)


def _errors(actual: pl.Expr, predicted: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    ape = pl.when(actual != 0).then((actual - predicted).abs() / actual.abs())
    denominator = actual.abs() + predicted.abs()
    sape = pl.when(denominator > 0).then(2 * (actual - predicted).abs() / denominator)
    return ape.mean(), sape.mean()


def day_ahead(hourly: pl.DataFrame, weeks: int = 4, backtest_days: int = 14) -> pl.DataFrame:
    """The next local day's 24 hourly forecasts per meter, each row carrying the meter's
    backtest errors (model and seasonal-naive) on energy."""
    if hourly.is_empty():
        return FORECAST_SCHEMA.to_frame()
    days = hourly.with_columns(day=pl.col("hour").dt.date())
    complete = days.group_by(*METER, "day").agg(n=pl.len()).filter(pl.col("n") == 24).drop("n")
    last_day = days.group_by(*METER).agg(last=pl.col("day").max())
    # Backtest days: the last `backtest_days` complete days that have a week before them.
    tested = (
        complete.join(days.group_by(*METER).agg(first=pl.col("day").min()), on=METER)
        .filter(pl.col("day") >= pl.col("first") + timedelta(weeks=1))
        .sort("day", descending=True)
        .group_by(*METER, maintain_order=True)
        .head(backtest_days)
        .drop("first")
    )
    backtest = _seasonal(
        hourly, days.join(tested, on=[*METER, "day"]).select(*METER, "hour"), weeks
    ).join(hourly, on=[*METER, "hour"])
    mape, smape = _errors(pl.col("energy_kwh"), pl.col("forecast_kwh"))
    naive_mape, naive_smape = _errors(pl.col("energy_kwh"), pl.col("naive_kwh"))
    scores = backtest.group_by(*METER).agg(
        backtest_days=pl.col("hour").dt.date().n_unique().cast(pl.Int32),
        mape=mape,
        smape=smape,
        naive_mape=naive_mape,
        naive_smape=naive_smape,
    )
    grid = last_day.select(
        *METER,
        hour=pl.datetime_ranges(
            (pl.col("last") + timedelta(days=1)).cast(pl.Datetime("us")),
            (pl.col("last") + timedelta(days=1)).cast(pl.Datetime("us")) + timedelta(hours=23),
            interval="1h",
        ),
    ).explode("hour")
    ahead = _seasonal(hourly, grid, weeks).join(scores, on=METER, how="left")
    return (
        ahead.with_columns(
            model=pl.lit(f"seasonal_mean_{weeks}w"),
            day=pl.col("hour").dt.date(),
            beats_naive=(pl.col("smape") < pl.col("naive_smape")).fill_null(False),
        )
        .rename({"hour": "local_hour", "forecast_kwh": "energy_kwh", "forecast_kw": "demand_kw"})
        .select(FORECAST_SCHEMA.names())
        .cast(FORECAST_SCHEMA)
        .sort(*METER, "local_hour")
    )
