"""Device-days: how each machine ran and how well it is matched to its load (`load_factor`).

Load is judged on its distribution over running time, not on single points (domain.md
§13), leaving out time idling at no load (that waste is the idle and off-shift rules'
finding, not a sizing question). `zone` is "overloaded" when the median running load is
at or above rated (P50 ≥ 1.0); otherwise it follows P75, the load the machine stays
below three quarters of the running time: ≥ 0.60 efficient, ≥ 0.40 acceptable, ≥ 0.20
under-loaded (大马拉小车), below that severely under-loaded / idle (domain §2.4
recommended zones). Stopped time never dilutes the figures. Devices with no nameplate,
or without the fields their kind needs, get a row with `status` saying so and null
figures: never a guess.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from transforms.thresholds import Thresholds

REQUIRED: Final = {
    "motor": ("rated_power_kw", "rated_current_a", "rated_voltage_v"),
    "pump": ("rated_power_kw", "rated_current_a", "rated_voltage_v", "bep_flow_m3h"),
    "fan": ("rated_power_kw", "rated_current_a", "rated_voltage_v"),
    "compressor": ("rated_power_kw", "unloaded_power_kw"),
    "transformer": ("rated_kva", "no_load_loss_kw", "load_loss_kw"),
}
H: Final = 3600.0


def _hours(seconds: pl.Expr, where: pl.Expr | None = None) -> pl.Expr:
    picked = seconds if where is None else seconds.filter(where)
    return picked.sum() / H


def match_load(estimated: pl.LazyFrame, t: Thresholds) -> pl.LazyFrame:
    """Aggregate estimated buckets to one row per device and site-local day."""
    running = pl.col("running_s") > 0
    off = pl.col("on_shift").not_()
    loaded_run = running & ~pl.col("idle") & pl.col("beta").is_not_null()
    beta = pl.col("beta").filter(loaded_run)
    weight = pl.col("running_s").filter(loaded_run)
    loaded = pl.col("compressor_loaded_s").fill_null(0.0)
    unloaded = (pl.col("running_s") - loaded).clip(lower_bound=0.0)
    flow_ratio = pl.col("flow_bep_ratio")
    outside = (flow_ratio < t.por_low) | (flow_ratio > t.por_high)
    has_calendar = pl.col("on_shift").is_not_null().any()
    daily = (
        estimated.sort("device_id", "day", "minute")
        .group_by("device_id", "site", "kind", "day", maintain_order=True)
        .agg(
            observed_hours=_hours(pl.col("observed_s")),
            running_hours=_hours(pl.col("running_s")),
            energy_kwh=pl.col("energy_kwh").sum(),
            off_shift_running_hours=pl.when(has_calendar).then(_hours(pl.col("running_s"), off)),
            off_shift_energy_kwh=pl.when(has_calendar).then(
                pl.col("energy_kwh").filter(off & running).sum()
            ),
            idle_hours=_hours(pl.col("running_s"), pl.col("idle")),
            idle_energy_kwh=pl.col("energy_kwh").filter(pl.col("idle")).sum(),
            idle_on_shift_hours=_hours(pl.col("running_s"), pl.col("idle") & ~off.fill_null(False)),
            idle_on_shift_energy_kwh=pl.col("energy_kwh")
            .filter(pl.col("idle") & ~off.fill_null(False))
            .sum(),
            mean_load_factor=pl.when(weight.sum() > 0).then((beta * weight).sum() / weight.sum()),
            p50_load_factor=beta.quantile(0.5, "linear"),
            p75_load_factor=beta.quantile(0.75, "linear"),
            max_load_factor=beta.max(),
            method=pl.col("load_method").filter(running).drop_nulls().mode().first(),
            mean_power_kw=pl.col("energy_kwh").filter(running).sum() / _hours(pl.col("running_s")),
            mean_power_factor=pl.col("power_factor").filter(running).mean(),
            mean_efficiency=pl.col("efficiency").filter(running).mean(),
            voltage_unbalance_pct=pl.col("voltage_unbalance_pct").filter(running).mean(),
            current_unbalance_pct=pl.col("current_unbalance_pct").filter(running).mean(),
            flow_bep_ratio_p50=flow_ratio.filter(running).quantile(0.5, "linear"),
            outside_por_hours=_hours(pl.col("running_s"), outside & running),
            loaded_hours=loaded.sum() / H,
            unloaded_hours=unloaded.sum() / H,
            on_shift_running_hours=_hours(pl.col("running_s"), ~off.fill_null(False)),
            on_shift_unloaded_hours=unloaded.filter(~off.fill_null(False)).sum() / H,
            off_shift_loaded_hours=pl.when(has_calendar).then(loaded.filter(off).sum() / H),
            off_shift_unloaded_hours=pl.when(has_calendar).then(unloaded.filter(off).sum() / H),
            loaded_energy_kwh=pl.col("energy_kwh").filter(loaded > 0).sum(),
            loaded_flow_m3=(pl.col("flow_m3h") * loaded / H).sum(),
            transformer_loss_kwh=(pl.col("transformer_loss_kw") * pl.col("observed_s") / H).sum(),
            light_load_hours=_hours(pl.col("observed_s"), pl.col("light_load").fill_null(False)),
            light_load_waste_kwh=pl.col("light_load_waste_kwh").sum(),
        )
    )
    return daily.with_columns(
        zone=_zone(t),
        leak_fraction=_leak_fraction(t),
        specific_power_kw_per_m3min=pl.when(pl.col("loaded_flow_m3") > 0).then(
            pl.col("loaded_energy_kwh") / (pl.col("loaded_flow_m3") / 60.0)
        ),
    )


def _zone(t: Thresholds) -> pl.Expr:
    p50, p75 = pl.col("p50_load_factor"), pl.col("p75_load_factor")
    return (
        pl.when(p75.is_null())
        .then(None)
        .when(p50 >= t.zone_overloaded)
        .then(pl.lit("overloaded"))
        .when(p75 >= t.zone_efficient)
        .then(pl.lit("efficient"))
        .when(p75 >= t.zone_acceptable)
        .then(pl.lit("acceptable"))
        .when(p75 >= t.zone_underloaded)
        .then(pl.lit("under-loaded"))
        .otherwise(pl.lit("severely under-loaded"))
    )


def _leak_fraction(t: Thresholds) -> pl.Expr:
    """T/(T+t) over off-shift cycling, loaded vs unloaded time (domain §5.4)."""
    on, off = pl.col("off_shift_loaded_hours"), pl.col("off_shift_unloaded_hours")
    enough = (on + off) >= t.leak_min_offshift_hours
    return pl.when((pl.col("kind") == "compressor") & enough & (on > 0)).then(on / (on + off))


def add_status(daily: pl.DataFrame, devices: pl.DataFrame) -> pl.DataFrame:
    """`status`: ok, stopped, or why the device cannot be matched (no nameplate, missing fields)."""
    missing_expr = pl.lit(None, dtype=pl.String)
    for kind, fields in REQUIRED.items():
        absent = pl.concat_str(
            [pl.when(pl.col(f).is_null()).then(pl.lit(f)) for f in fields],
            separator=", ",
            ignore_nulls=True,
        )
        missing_expr = pl.when(pl.col("kind") == kind).then(absent).otherwise(missing_expr)
    with_np = daily.join(devices, on="device_id", how="left", suffix="_registry").with_columns(
        _missing=missing_expr
    )
    status = (
        pl.when(pl.col("kind").is_null())
        .then(pl.lit("unmatched: no nameplate"))
        .when(pl.col("_missing") != "")
        .then(pl.format("unmatched: missing {}", "_missing"))
        .when(pl.col("running_hours") <= 0)
        .then(pl.lit("stopped"))
        .otherwise(pl.lit("ok"))
    )
    out = with_np.with_columns(
        status=status, beta_opt=(pl.col("no_load_loss_kw") / pl.col("load_loss_kw")).sqrt()
    )
    unmatched = pl.col("status").str.starts_with("unmatched")
    judged = [
        c
        for c in (
            "zone",
            "mean_load_factor",
            "p50_load_factor",
            "p75_load_factor",
            "max_load_factor",
            "method",
            "leak_fraction",
        )
        if c in out.columns
    ]
    out = out.with_columns(pl.when(~unmatched).then(pl.col(c)).alias(c) for c in judged)
    return out
