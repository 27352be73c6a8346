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
        "basis": pl.String(),  # demand (per kW of maximum) or capacity (per kVA installed)
        "installed_kva": pl.Float64(),
        "charge_by_demand": pl.Float64(),
        "charge_by_capacity": pl.Float64(),
        "demand_charge": pl.Float64(),  # the one billed, by `basis`
    }
)

BASELINE_SCHEMA: Final = pl.Schema(
    {
        "entity": pl.String(),  # "device" or "site"
        "site": pl.String(),
        "device_id": pl.String(),  # null for a site's baseline
        "baseline_from": pl.Date(),
        "baseline_to": pl.Date(),
        "n_days": pl.Int32(),
        "variables": pl.String(),  # comma-separated, the fitted relevant variables
        "model": pl.String(),  # "kWh/day = b0 + b1 × running_hours ..."
        "coefficients": pl.String(),  # JSON {"intercept": b0, "<variable>": b1, ...}
        "r2": pl.Float64(),
        "cv_rmse": pl.Float64(),
        "nmbe": pl.Float64(),
        "limits": pl.String(),  # which ASHRAE Guideline 14 limits were applied
        "status": pl.String(),  # "fit" or "unfit: <every reason>"
    }
)

BASELINE_DAILY_SCHEMA: Final = pl.Schema(
    {
        "entity": pl.String(),
        "site": pl.String(),
        "device_id": pl.String(),
        "day": pl.Date(),
        "in_baseline": pl.Boolean(),
        "complete": pl.Boolean(),  # false: too little data that day; not fitted, not summed
        "energy_kwh": pl.Float64(),
        "expected_kwh": pl.Float64(),  # null when the baseline is unfit
        "difference_kwh": pl.Float64(),  # actual - expected
        "enpi": pl.Float64(),  # actual / expected
        "cusum_kwh": pl.Float64(),  # running sum of actual - expected
        "savings_kwh": pl.Float64(),  # -cusum_kwh
        "savings_cost": pl.Float64(),
        "savings_co2_kg": pl.Float64(),
    }
)

INTENSITY_SCHEMA: Final = pl.Schema(
    {
        "site": pl.String(),
        "line": pl.String(),  # null: the whole site (its billing meters), when one unit
        "day": pl.Date(),
        "units": pl.Float64(),
        "unit": pl.String(),
        "energy_kwh": pl.Float64(),
        "cost": pl.Float64(),
        "currency": pl.String(),
        "co2_kg": pl.Float64(),
        "kwh_per_unit": pl.Float64(),
        "cost_per_unit": pl.Float64(),
        "co2_kg_per_unit": pl.Float64(),
        "complete": pl.Boolean(),  # every meter observed >= 95 % of the day
    }
)

FORECAST_SCHEMA: Final = pl.Schema(
    {
        "site": pl.String(),
        "meter": pl.String(),  # "site" or a transformer's device_id
        "day": pl.Date(),  # the site-local day forecast
        "local_hour": pl.Datetime("us"),  # site-local wall-clock hour start
        "model": pl.String(),
        "energy_kwh": pl.Float64(),
        "demand_kw": pl.Float64(),  # the hour's largest demand window
        "naive_kwh": pl.Float64(),  # seasonal-naive: the same hour a week before
        "naive_kw": pl.Float64(),
        "backtest_days": pl.Int32(),
        "mape": pl.Float64(),  # the model's backtest errors on hourly energy
        "smape": pl.Float64(),
        "naive_mape": pl.Float64(),
        "naive_smape": pl.Float64(),
        "beats_naive": pl.Boolean(),
    }
)

LOAD_SHIFT_SCHEMA: Final = pl.Schema(
    {
        "month": pl.Date(),
        "site": pl.String(),
        "device_id": pl.String(),
        "kind": pl.String(),
        "energy_kwh": pl.Float64(),
        "peak_kwh": pl.Float64(),  # critical and peak periods
        "peak_share": pl.Float64(),
        "peak_cost": pl.Float64(),
        "valley_price_per_kwh": pl.Float64(),
        "saving_if_shifted": pl.Float64(),  # upper bound: all peak energy at the valley price
        "currency": pl.String(),
    }
)
