"""Day-ahead forecasts: a backtest that beats seasonal-naive on seasonal data, and says
so when it does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from transforms.forecast import day_ahead, hourly_series

SITES = pl.DataFrame({"site": ["plant"], "timezone": ["Asia/Shanghai"]})


def _hourly(values: np.ndarray, start: datetime = datetime(2026, 9, 7)) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "site": "plant",
            "meter": "site",
            "hour": [start + timedelta(hours=h) for h in range(len(values))],
            "energy_kwh": values,
            "demand_kw": values * 1.1,
        },
        schema_overrides={"hour": pl.Datetime("us")},
    )


def _weekly_profile(weeks: int, noise: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = np.arange(weeks * 168)
    workday = (hours % 168) < 120
    on_shift = ((hours % 24) >= 8) & ((hours % 24) < 20) & workday
    return 200 + 600 * on_shift + rng.normal(0, noise, len(hours))


def test_seasonal_mean_beats_seasonal_naive_on_noisy_weekly_data() -> None:
    out = day_ahead(_hourly(_weekly_profile(6, 60)), weeks=4, backtest_days=14)
    assert out.height == 24
    row = out.row(0, named=True)
    assert row["backtest_days"] == 14 and row["model"] == "seasonal_mean_4w"
    assert row["smape"] < row["naive_smape"] and row["beats_naive"] is True
    # Error sd: naive √2 σ, four-week mean √1.25 σ: a ratio of about 0.79.
    assert row["mape"] < 0.9 * row["naive_mape"]
    assert str(out["day"][0]) == "2026-10-19"  # the day after the last one (a Monday)
    monday_10 = out.filter(pl.col("local_hour").dt.hour() == 10).row(0, named=True)
    assert monday_10["energy_kwh"] == pytest.approx(800, abs=60)


def test_a_forecast_that_does_not_beat_naive_says_so() -> None:
    # A level shift two weeks before the end: last week's value is right, the four-week
    # mean is not.
    values = _weekly_profile(6, 1.0)
    values[-14 * 24 :] += 400
    row = day_ahead(_hourly(values), weeks=4, backtest_days=7).row(0, named=True)
    assert row["beats_naive"] is False and row["smape"] > row["naive_smape"]


def test_backtest_errors_match_a_hand_computation() -> None:
    # Two weeks: week 2 = week 1 + 10 %. Backtest day = each day of week 2 (7 days):
    # naive and the 1-week mean are both week 1, so MAPE = 0.1 / 1.1 exactly.
    week = 100 + 50 * np.sin(np.arange(168) / 24 * 2 * np.pi) + 100
    row = day_ahead(_hourly(np.concatenate([week, week * 1.1])), weeks=4).row(0, named=True)
    assert row["backtest_days"] == 7
    assert row["mape"] == pytest.approx(0.1 / 1.1) == row["naive_mape"]
    assert row["smape"] == pytest.approx(2 * 0.1 / 2.1)
    assert row["beats_naive"] is False  # equal is not better


def test_hourly_series_from_demand_windows() -> None:
    start = datetime(2026, 9, 7, 0, tzinfo=UTC)  # 08:00 in Shanghai
    windows = pl.DataFrame(
        {
            "day": [start.date()] * 7,
            "site": "plant",
            "meter": "site",
            "window_start": [start + timedelta(minutes=15 * k) for k in range(7)],
            "window_min": pl.Series([15] * 7, dtype=pl.Int16),
            "demand_kw": [100.0, 200.0, 300.0, 400.0, 80.0, 80.0, 80.0],
        },
        schema_overrides={"window_start": pl.Datetime("us", "UTC")},
    )
    hourly = hourly_series(windows, SITES)
    # 08:00 local: 25 + 50 + 75 + 100 kWh, peak 400 kW; 09:00 has 3 of 4 windows: dropped.
    assert hourly.rows() == [("plant", "site", datetime(2026, 9, 7, 8), 250.0, 400.0)]
