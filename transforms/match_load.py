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

from transforms.amo_motor_frame import LOAD_METHODS
from transforms.thresholds import Thresholds

REQUIRED: Final = {
    "motor": ("rated_power_kw", "rated_current_a", "rated_voltage_v"),
    "pump": ("rated_power_kw", "rated_current_a", "rated_voltage_v", "bep_flow_m3h"),
    "fan": ("rated_power_kw", "rated_current_a", "rated_voltage_v"),
    "compressor": ("rated_power_kw", "unloaded_power_kw"),
    "transformer": ("rated_kva", "no_load_loss_kw", "load_loss_kw"),
}
H: Final = 3600.0
USED: Final = (
    "device_id",
    "site",
    "kind",
    "day",
    "minute",
    "observed_s",
    "running_s",
    "energy_kwh",
    "on_shift",
    "idle",
    "beta",
    "load_method",
    "power_factor",
    "efficiency",
    "voltage_unbalance_pct",
    "current_unbalance_pct",
    "flow_bep_ratio",
    "compressor_loaded_s",
    "flow_m3h",
    "transformer_loss_kw",
    "light_load",
    "light_load_waste_kwh",
)


def match_load(estimated: pl.LazyFrame, t: Thresholds) -> pl.LazyFrame:
    """Aggregate estimated buckets to one row per device and site-local day.

    Conditions become masked columns first (a value where the condition holds, else 0 or
    null) so that the group-by runs plain sums, means and quantiles. Within a group, rows
    are summed in input order, and the input order is fixed (upstream joins keep the left
    order), so the float sums give the same bits every run.

    Grouped by (device_id, day) alone: a device has one registry row, so its site and kind
    are taken from its first row (Polars groups on two keys about 10x faster than on four).
    `method` is the method used for most running minutes, ties going to the more direct
    one (LOAD_METHODS order), counted with one boolean sum per method.
    """
    c = pl.col
    running = c("running_s") > 0
    off = c("on_shift").not_()
    on = ~off.fill_null(False)
    loaded_run = running & ~c("idle") & c("beta").is_not_null()
    loaded = c("compressor_loaded_s").fill_null(0.0)
    unloaded = (c("running_s") - loaded).clip(lower_bound=0.0)
    ratio = c("flow_bep_ratio")
    outside = ((ratio < t.por_low) | (ratio > t.por_high)).fill_null(False)

    def secs(col: str, cond: pl.Expr) -> pl.Expr:
        return pl.when(cond).then(c(col)).otherwise(0.0)

    masked = estimated.select(*USED).with_columns(
        _beta=pl.when(loaded_run).then(c("beta")),
        _w=secs("running_s", loaded_run),
        _wb=pl.when(loaded_run).then(c("beta") * c("running_s")).otherwise(0.0),
        _off_run=secs("running_s", off.fill_null(False)),
        _off_kwh=secs("energy_kwh", off.fill_null(False) & running),
        _idle_s=secs("running_s", c("idle")),
        _idle_kwh=secs("energy_kwh", c("idle")),
        _idle_on_s=secs("running_s", c("idle") & on),
        _idle_on_kwh=secs("energy_kwh", c("idle") & on),
        _run_kwh=secs("energy_kwh", running),
        _pf=pl.when(running).then(c("power_factor")),
        _eff=pl.when(running).then(c("efficiency")),
        _vu=pl.when(running).then(c("voltage_unbalance_pct")),
        _cu=pl.when(running).then(c("current_unbalance_pct")),
        _ratio=pl.when(running).then(ratio),
        _method=pl.when(running).then(c("load_method")),
        _outside_s=secs("running_s", outside & running),
        _loaded=loaded,
        _unloaded=unloaded,
        _on_run=secs("running_s", on),
        _on_unloaded=pl.when(on).then(unloaded).otherwise(0.0),
        _off_loaded=pl.when(off.fill_null(False)).then(loaded).otherwise(0.0),
        _off_unloaded=pl.when(off.fill_null(False)).then(unloaded).otherwise(0.0),
        _loaded_kwh=secs("energy_kwh", loaded > 0),
        _loaded_m3=(c("flow_m3h") * loaded / H).fill_null(0.0),
        _tx_loss=(c("transformer_loss_kw") * c("observed_s") / H).fill_null(0.0),
        _light_s=secs("observed_s", c("light_load").fill_null(False)),
        _has_calendar=c("on_shift").is_not_null(),
    )
    daily = masked.group_by("device_id", "day").agg(
        site=c("site").first(),
        kind=c("kind").first(),
        observed_hours=c("observed_s").sum() / H,
        running_hours=c("running_s").sum() / H,
        energy_kwh=c("energy_kwh").sum(),
        _calendar=c("_has_calendar").max(),
        off_shift_running_hours=c("_off_run").sum() / H,
        off_shift_energy_kwh=c("_off_kwh").sum(),
        idle_hours=c("_idle_s").sum() / H,
        idle_energy_kwh=c("_idle_kwh").sum(),
        idle_on_shift_hours=c("_idle_on_s").sum() / H,
        idle_on_shift_energy_kwh=c("_idle_on_kwh").sum(),
        _w=c("_w").sum(),
        _wb=c("_wb").sum(),
        p50_load_factor=c("_beta").quantile(0.5, "linear"),
        p75_load_factor=c("_beta").quantile(0.75, "linear"),
        max_load_factor=c("_beta").max(),
        **{f"_n_{m}": (c("_method") == m).sum() for m in LOAD_METHODS},
        _run_kwh=c("_run_kwh").sum(),
        mean_power_factor=c("_pf").mean(),
        mean_efficiency=c("_eff").mean(),
        voltage_unbalance_pct=c("_vu").mean(),
        current_unbalance_pct=c("_cu").mean(),
        flow_bep_ratio_p50=c("_ratio").quantile(0.5, "linear"),
        outside_por_hours=c("_outside_s").sum() / H,
        loaded_hours=c("_loaded").sum() / H,
        unloaded_hours=c("_unloaded").sum() / H,
        on_shift_running_hours=c("_on_run").sum() / H,
        on_shift_unloaded_hours=c("_on_unloaded").sum() / H,
        off_shift_loaded_hours=c("_off_loaded").sum() / H,
        off_shift_unloaded_hours=c("_off_unloaded").sum() / H,
        loaded_energy_kwh=c("_loaded_kwh").sum(),
        loaded_flow_m3=c("_loaded_m3").sum(),
        transformer_loss_kwh=c("_tx_loss").sum(),
        light_load_hours=c("_light_s").sum() / H,
        light_load_waste_kwh=c("light_load_waste_kwh").sum(),
    )
    no_calendar = (
        "off_shift_running_hours",
        "off_shift_energy_kwh",
        "off_shift_loaded_hours",
        "off_shift_unloaded_hours",
    )
    return (
        daily.with_columns(
            *[pl.when(c("_calendar")).then(c(n)).alias(n) for n in no_calendar],
            mean_load_factor=pl.when(c("_w") > 0).then(c("_wb") / c("_w")),
            mean_power_kw=pl.when(c("running_hours") > 0).then(c("_run_kwh") / c("running_hours")),
            method=_most_used_method(),
        )
        .with_columns(
            zone=_zone(t),
            leak_fraction=_leak_fraction(t),
            specific_power_kw_per_m3min=pl.when(c("loaded_flow_m3") > 0).then(
                c("loaded_energy_kwh") * 60.0 / c("loaded_flow_m3")  # as compressor.py writes it
            ),
        )
        .drop("_calendar", "_w", "_wb", "_run_kwh", *[f"_n_{m}" for m in LOAD_METHODS])
    )


def _most_used_method() -> pl.Expr:
    counts = [pl.col(f"_n_{m}") for m in LOAD_METHODS]
    most = pl.max_horizontal(*counts)
    chosen: pl.Expr = pl.lit(None, pl.String)
    for method, count in reversed(list(zip(LOAD_METHODS, counts, strict=True))):
        chosen = pl.when((most > 0) & (count == most)).then(pl.lit(method)).otherwise(chosen)
    return chosen


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


def _transformer_zone() -> pl.Expr:
    """Transformers are judged on losses, not on motor zones (domain.md §6.2-6.3): median
    load above rated is `overloaded`, below P0/Pk (the loss-rate boundary) `light load`,
    between them `economic`."""
    p50 = pl.col("p50_load_factor")
    boundary = pl.col("no_load_loss_kw") / pl.col("load_loss_kw")
    zone = (
        pl.when(p50.is_null())
        .then(None)
        .when(p50 >= 1.0)
        .then(pl.lit("overloaded"))
        .when(p50 < boundary)
        .then(pl.lit("light load"))
        .otherwise(pl.lit("economic"))
    )
    return pl.when(pl.col("kind") == "transformer").then(zone).otherwise(pl.col("zone"))


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
        status=status,
        beta_opt=(pl.col("no_load_loss_kw") / pl.col("load_loss_kw")).sqrt(),
        zone=_transformer_zone(),
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
