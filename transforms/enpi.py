"""Energy performance per unit produced and the daily rows baselines are fitted on.

Product-level carbon (the 2026-2028 plan's accounting; the purchased-electricity term
only): kg CO2 = kWh × the site's grid emission factor
(`emission_kg_per_kwh` in the sites registry), per unit = that / units produced.
A line's energy is the sum of its devices' energy (lines.csv); the site's is its
billing meters' (transformers where registered, energy_cost.billing_meter), so site
figures include what no line meter sees (lighting, auxiliaries, transformer losses).
A site row (line null) is given only when all its lines count in one unit.

A day is `complete` when every meter it adds up observed at least COMPLETE_HOURS of it
(95 % of 24 h [INFERRED]; a daylight-saving day of 23 h passes): a day the data starts
or stops in, or one a gateway was down for, would otherwise show as a saving (too few
kWh for its production) or a loss. Baselines fit and sum CUSUM over complete days only.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from schemas.energy import INTENSITY_SCHEMA
from transforms.baseline import degree_days

COMPLETE_HOURS: Final = 0.95 * 24


def _site_units(production: pl.DataFrame) -> pl.DataFrame:
    """Units per site-day, for sites whose lines all count in one unit."""
    single = (
        production.group_by("site")
        .agg(pl.col("unit").n_unique().alias("n"))
        .filter(pl.col("n") == 1)
        .get_column("site")
    )
    return (
        production.filter(pl.col("site").is_in(single.implode()))
        .group_by("site", "day")
        .agg(pl.col("units").sum(), pl.col("unit").first())
    )


def _device_days(energy_cost: pl.DataFrame, observed: pl.DataFrame) -> pl.DataFrame:
    """Energy, cost and observed hours per device-day (`observed`: load_factor's
    site, device_id, day, observed_hours)."""
    return (
        energy_cost.group_by("site", "device_id", "day", "billing_meter")
        .agg(pl.col("energy_kwh").sum(), pl.col("cost").sum(), pl.col("currency").first())
        .join(
            observed.select("device_id", "day", "observed_hours"),
            on=["device_id", "day"],
            how="left",
        )
    )


def _sums(frame: pl.DataFrame, *key: str) -> pl.DataFrame:
    return frame.group_by(*key).agg(
        pl.col("energy_kwh").sum(),
        pl.col("cost").sum(),
        pl.col("currency").first(),
        complete=(pl.col("observed_hours").fill_null(0.0) >= COMPLETE_HOURS).all(),
    )


def _site_days(devices: pl.DataFrame) -> pl.DataFrame:
    return _sums(devices.filter("billing_meter"), "site", "day")


def production_intensity(
    energy_cost: pl.DataFrame,
    observed: pl.DataFrame,
    production: pl.DataFrame,
    lines: pl.DataFrame,
    sites: pl.DataFrame,
) -> pl.DataFrame:
    """kWh, cost and kg CO2 per unit per (site, line, day) and per (site, day)."""
    if production.is_empty():
        return INTENSITY_SCHEMA.to_frame()
    devices = _device_days(energy_cost, observed)
    line_energy = _sums(devices.join(lines, on=["site", "device_id"]), "site", "line", "day")
    per_line = production.join(line_energy, on=["site", "line", "day"], how="left")
    per_site = (
        _site_units(production)
        .join(_site_days(devices), on=["site", "day"], how="left")
        .with_columns(line=pl.lit(None, pl.String))
    )
    both = pl.concat([per_line, per_site.select(per_line.columns)])
    factor = sites.select("site", "emission_kg_per_kwh")
    units = pl.when(pl.col("units") > 0).then(pl.col("units"))
    return (
        both.join(factor, on="site", how="left")
        .with_columns(
            co2_kg=pl.col("energy_kwh") * pl.col("emission_kg_per_kwh"),
            complete=pl.col("complete").fill_null(False),
        )
        .with_columns(
            kwh_per_unit=pl.col("energy_kwh") / units,
            cost_per_unit=pl.col("cost") / units,
            co2_kg_per_unit=pl.col("co2_kg") / units,
        )
        .select(INTENSITY_SCHEMA.names())
        .cast(INTENSITY_SCHEMA)
        .sort("site", "line", "day", nulls_last=True)
    )


def baseline_inputs(
    load_factor: pl.DataFrame,
    energy_cost: pl.DataFrame,
    production: pl.DataFrame,
    lines: pl.DataFrame,
    weather: pl.DataFrame,
    sites: pl.DataFrame,
    degree_day_base_c: float = 18.0,
) -> pl.DataFrame:
    """One row per device-day and site-day with the energy, its realised price, the grid
    factor and every relevant variable that was supplied (null where not)."""
    hdd, cdd = degree_days(pl.col("mean_temp_c"), degree_day_base_c)
    climate = weather.select("site", "day", hdd=hdd, cdd=cdd)
    line_units = lines.join(production.select("site", "line", "day", "units"), on=["site", "line"])
    devices = _device_days(energy_cost, load_factor)
    prices = devices.select("device_id", "day", price_per_kwh=pl.col("cost") / pl.col("energy_kwh"))
    device = (
        load_factor.filter(pl.col("energy_kwh").is_not_null())
        .select(
            "site",
            "device_id",
            "day",
            "energy_kwh",
            "running_hours",
            complete=pl.col("observed_hours").fill_null(0.0) >= COMPLETE_HOURS,
        )
        .join(prices, on=["device_id", "day"], how="left")
        .join(
            line_units.select("site", "device_id", "day", production_units="units"),
            on=["site", "device_id", "day"],
            how="left",
        )
        .with_columns(entity=pl.lit("device"))
    )
    site = (
        _site_days(devices)
        .select(
            "site",
            "day",
            "energy_kwh",
            "complete",
            price_per_kwh=pl.col("cost") / pl.col("energy_kwh"),
            device_id=pl.lit(None, pl.String),
            running_hours=pl.lit(None, pl.Float64),
        )
        .join(
            _site_units(production).select("site", "day", production_units="units"),
            on=["site", "day"],
            how="left",
        )
        .with_columns(entity=pl.lit("site"))
    )
    rows = pl.concat([device, site.select(device.columns)])
    return (
        rows.join(climate, on=["site", "day"], how="left")
        .join(sites.select("site", "emission_kg_per_kwh"), on="site", how="left")
        .with_columns(
            price_per_kwh=pl.when(pl.col("price_per_kwh").is_finite()).then(pl.col("price_per_kwh"))
        )
        .sort("entity", "site", "device_id", "day", nulls_last=True)
    )
