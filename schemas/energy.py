"""Energy-management result tables: the bill by tariff period, demand windows, each
day's peak with its contributors, and the month's maximum demand (transforms/tariff.py,
transforms/demand.py compute them; warehouse/lake.py stores them)."""

from __future__ import annotations

from typing import Final

import polars as pl

ENERGY_COST_SCHEMA: Final = pl.Schema(
    {
        "day": pl.Date(),
        "site": pl.String(),
        "device_id": pl.String(),
        "kind": pl.String(),
        "billing_meter": pl.Boolean(),
        "period": pl.String(),
        "on_shift": pl.Boolean(),  # null where the site has no shift calendar
        "energy_kwh": pl.Float64(),
        "price_per_kwh": pl.Float64(),
        "cost": pl.Float64(),
        "currency": pl.String(),
    }
)

DEMAND_SCHEMA: Final = pl.Schema(
    {
        "day": pl.Date(),
        "site": pl.String(),
        "meter": pl.String(),  # "site" or a transformer's device_id
        "window_start": pl.Datetime("us", "UTC"),
        "window_min": pl.Int16(),
        "demand_kw": pl.Float64(),
    }
)

PEAK_SCHEMA: Final = pl.Schema(
    {
        "day": pl.Date(),
        "site": pl.String(),
        "window_start": pl.Datetime("us", "UTC"),
        "demand_kw": pl.Float64(),
        "rank": pl.Int8(),
        "device_id": pl.String(),
        "device_kw": pl.Float64(),
        "share": pl.Float64(),
    }
)

MONTHLY_SCHEMA: Final = pl.Schema(
    {
        "month": pl.Date(),  # the first day of the site-local month
        "site": pl.String(),
        "max_demand_kw": pl.Float64(),
        "window_start": pl.Datetime("us", "UTC"),
        "top_device_id": pl.String(),
        "top_device_kw": pl.Float64(),
        "contracted_kw": pl.Float64(),
        "demand_ratio": pl.Float64(),
        "approaching_contract": pl.Boolean(),
        "demand_charge": pl.Float64(),
    }
)
