"""Analytics result tables: `load_factor` (device-day) and `alerts` (episodes).

Columns are documented in the README; a value that cannot be judged (missing nameplate
field, stopped all day) is null, and `status` says why, never a guess.
"""

from __future__ import annotations

from typing import Final

import polars as pl

LOAD_FACTOR_SCHEMA: Final = pl.Schema(
    {
        "device_id": pl.String,
        "site": pl.String,
        "kind": pl.String,
        "day": pl.Date,
        "status": pl.String,
        "method": pl.String,
        "observed_hours": pl.Float64,
        "running_hours": pl.Float64,
        "energy_kwh": pl.Float64,
        "off_shift_running_hours": pl.Float64,
        "off_shift_energy_kwh": pl.Float64,
        "idle_hours": pl.Float64,
        "idle_energy_kwh": pl.Float64,
        "mean_load_factor": pl.Float64,
        "p50_load_factor": pl.Float64,
        "p75_load_factor": pl.Float64,
        "max_load_factor": pl.Float64,
        "zone": pl.String,
        "mean_power_kw": pl.Float64,
        "mean_power_factor": pl.Float64,
        "mean_efficiency": pl.Float64,
        "voltage_unbalance_pct": pl.Float64,
        "current_unbalance_pct": pl.Float64,
        "derating_factor": pl.Float64,
        "gb12497_state": pl.String,
        "flow_bep_ratio_p50": pl.Float64,
        "outside_por_hours": pl.Float64,
        "loaded_hours": pl.Float64,
        "unloaded_hours": pl.Float64,
        "unloaded_energy_kwh": pl.Float64,
        "off_shift_loaded_hours": pl.Float64,
        "off_shift_unloaded_hours": pl.Float64,
        "leak_fraction": pl.Float64,
        "specific_power_kw_per_m3min": pl.Float64,
        "transformer_loss_kwh": pl.Float64,
        "light_load_hours": pl.Float64,
        "beta_opt": pl.Float64,
        "recommended_size_kw": pl.Float64,
        "resize_saving_kw": pl.Float64,
    }
)

EVALUATION_SCHEMA: Final = pl.Schema(
    {
        "device_id": pl.String,
        "site": pl.String,
        "kind": pl.String,
        "rule": pl.String,
        "day": pl.Date,
        "breach": pl.Boolean,  # null: the rule could not be evaluated that day
        "clear": pl.Boolean,
        "severity": pl.String,
        "metric": pl.Float64,
        "threshold": pl.Float64,
        "evidence": pl.String,
        "waste_kwh": pl.Float64,
        "recommendation": pl.String,
        "recommendation_zh": pl.String,
    }
)

ALERT_SCHEMA: Final = pl.Schema(
    {
        "alert_id": pl.String,
        "device_id": pl.String,
        "site": pl.String,
        "kind": pl.String,
        "rule": pl.String,
        "severity": pl.String,
        "max_severity": pl.String,
        "status": pl.String,
        "opened_day": pl.Date,
        "last_seen_day": pl.Date,
        "resolved_day": pl.Date,
        "days_breached": pl.Int32,
        "metric": pl.Float64,
        "threshold": pl.Float64,
        "evidence": pl.String,
        "waste_kwh_per_year": pl.Float64,
        "recommendation": pl.String,
        "recommendation_zh": pl.String,
    }
)
PRICED_ALERT_SCHEMA: Final = pl.Schema(
    {  # type: ignore[arg-type]
        **ALERT_SCHEMA,
        "opened_at": pl.Datetime("us", "UTC"),
        "last_seen_at": pl.Datetime("us", "UTC"),
        "resolved_at": pl.Datetime("us", "UTC"),
        "currency": pl.String,
        "price_per_kwh": pl.Float64,  # what the waste is priced at (README "Tariffs")
        "cost_per_year": pl.Float64,
        "co2_kg_per_year": pl.Float64,
    }
)
