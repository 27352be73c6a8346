"""The daily analytics as one pure function: readings in; load_factor, rule verdicts,
the bill by tariff period and demand out.

    bucket_readings -> tag_local_time -> estimate_load -> match_load -> add_status
        -> enrich (derating, GB 12497 state, right-sizing, VFD saving) -> flag_waste

No I/O and no clock: the job runner (wattline/jobs.py) reads the lake, passes frames
in, and writes what comes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

import polars as pl

from schemas.energy import DEMAND_SCHEMA, ENERGY_COST_SCHEMA, PEAK_SCHEMA
from schemas.registry import MOTOR_DRIVEN
from schemas.results import EVALUATION_SCHEMA, LOAD_FACTOR_SCHEMA
from transforms import (
    amo_motor,
    amo_motor_frame,
    amo_motor_sizing,
    compressor,
    electrical,
    gb12497,
    pump,
)
from transforms.bucket_readings import bucket_readings
from transforms.demand import device_demand_from, energy_windows, site_demand
from transforms.estimate_load import estimate_load, rated_input_kw
from transforms.flag_waste import flag_waste
from transforms.match_load import add_status, match_load
from transforms.tag_local_time import tag_local_time
from transforms.tariff import Tariff, priced
from transforms.thresholds import Thresholds


@dataclass(frozen=True)
class DayResults:
    """Everything the daily job computes for a run of site-local days."""

    load_factor: pl.DataFrame
    evaluations: pl.DataFrame
    energy_cost: pl.DataFrame  # energy and cost per device, day and tariff period
    demand: pl.DataFrame  # demand per site/transformer and window
    demand_peaks: pl.DataFrame  # each site-day's peak window with its top contributors


def analyse_days(
    readings: pl.LazyFrame,
    devices: pl.DataFrame,
    sites: pl.DataFrame,
    t: Thresholds,
    days: list[date],
    tariffs: Mapping[str, Tariff] | None = None,
) -> DayResults:
    """The load_factor rows, rule evaluations, bill by tariff period and demand for the
    site-local `days`.

    Devices are taken `t.devices_per_pass` at a time, by ranges of device_id (the lake
    sorts files by device_id, so a pass reads only its row groups): every figure is per
    device, so the passes give the same device-days as one pass, with a fraction of the
    memory (and of the page faults that make a large pass slow). Site demand is the one
    sum across devices: each pass keeps its devices' windows, added up at the end.
    """
    tariffs = dict(tariffs or {})
    curves = amo_motor.motor_curves_for(devices)
    parts, costs, windows = [], [], []
    for in_range in device_ranges(devices, t.devices_per_pass):
        buckets = bucket_readings(readings.filter(in_range), t.max_gap_s)
        tagged = tag_local_time(buckets, sites).filter(pl.col("day").is_in(days)).collect()
        parts.append(match_load(estimate_load(tagged.lazy(), devices, curves, t), t).collect())
        if t.energy_management and not tagged.is_empty():
            coded = energy_windows(tagged, tariffs, t.demand_window_min)
            costs.append(priced(coded, devices, sites, tariffs))
            windows.append(device_demand_from(coded, t.demand_window_min))
    daily = pl.concat(parts)
    energy_cost = pl.concat(costs) if costs else ENERGY_COST_SCHEMA.to_frame()
    demand, peaks = (
        site_demand(pl.concat(windows), devices, t.demand_window_min)
        if windows
        else (DEMAND_SCHEMA.to_frame(), PEAK_SCHEMA.to_frame())
    )
    if daily.is_empty():
        empty = LOAD_FACTOR_SCHEMA.to_frame(), EVALUATION_SCHEMA.to_frame()
        return DayResults(*empty, energy_cost, demand, peaks)
    wide = enrich(add_status(daily, devices), curves, t)
    evaluations = flag_waste(wide, t)
    load_factor = wide.select(LOAD_FACTOR_SCHEMA.names()).cast(LOAD_FACTOR_SCHEMA)
    return DayResults(
        load_factor.sort("day", "site", "device_id"),
        evaluations,
        energy_cost.sort("day", "site", "device_id", "period"),
        demand,
        peaks,
    )


def device_ranges(devices: pl.DataFrame, per_pass: int) -> list[pl.Expr]:
    """Filters that split every possible device_id (registered or not) into ranges of
    about `per_pass` registered devices each."""
    ids = sorted(set(devices.get_column("device_id").drop_nulls().to_list()))
    bounds = ids[max(1, per_pass) :: max(1, per_pass)]
    if not bounds:
        return [pl.lit(True)]
    device = pl.col("device_id")
    ranges = [device < bounds[0]]
    ranges += [(device >= lo) & (device < hi) for lo, hi in pairwise(bounds)]
    return [*ranges, device >= bounds[-1]]


def enrich(wide: pl.DataFrame, curves: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """Device-day figures that need the nameplate and the day's aggregates."""
    motor_like = pl.col("kind").is_in(MOTOR_DRIVEN)
    out = wide.with_columns(
        derating_factor=pl.when(motor_like).then(
            electrical.nema_derating_factor_expr(pl.col("voltage_unbalance_pct"))
        ),
        loaded_power_kw=pl.when(pl.col("loaded_hours") > 0).then(
            pl.col("loaded_energy_kwh") / pl.col("loaded_hours")
        ),
        unloaded_energy_kwh=pl.when(pl.col("kind") == "compressor").then(
            compressor.unloaded_energy_kwh_expr("unloaded_hours", "unloaded_power_kw")
        ),
        throttle_saving_kw=pl.when(pl.col("kind") == "pump").then(
            pump.throttling_saving_kw_expr(
                pl.col("mean_power_kw"),
                pl.col("flow_bep_ratio_p50") * pl.col("bep_flow_m3h"),
                pl.col("bep_flow_m3h"),
                rated_input_kw(),
                t.static_head_fraction,
                t.vfd_efficiency,
            ).clip(lower_bound=0.0)
        ),
    ).with_columns(
        # No flow meter: specific power at the nameplate's free air delivery (domain §5.2).
        specific_power_kw_per_m3min=pl.coalesce(
            "specific_power_kw_per_m3min",
            compressor.specific_power_kw_per_m3min_expr("loaded_power_kw", "rated_flow_m3h"),
        ),
    )
    sized = amo_motor_sizing.add_right_sizing(_gb12497_state(out, curves, t), t.resize_margin)
    underloaded = pl.col("zone").is_in(["under-loaded", "severely under-loaded"])
    return sized.with_columns(  # a smaller motor is advice only for an under-loaded one
        pl.when(underloaded).then(pl.col(c)).alias(c)
        for c in ("recommended_size_kw", "resize_saving_kw")
    )


def _gb12497_state(wide: pl.DataFrame, curves: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """GB 12497 operating state of motor-driven device-days (cn_standards.md §1).

    The registry carries no motor no-load current or loss, so the AMO model's β = 0 point
    stands in for I0 and P0 (amo_motor_frame.no_load_frame).
    """
    motor_like = pl.col("kind").is_in(MOTOR_DRIVEN)
    no_load = (
        amo_motor_frame.no_load_frame(curves)
        .collect()
        .rename({"no_load_loss_kw": "model_no_load_loss_kw"})
    )
    frame = wide.join(no_load, on="device_id", how="left", maintain_order="left").with_columns(
        no_load_loss_kw=pl.when(motor_like)
        .then(pl.coalesce("no_load_loss_kw", "model_no_load_loss_kw"))
        .otherwise(pl.col("no_load_loss_kw"))
    )
    classified = gb12497.classify_operating_state(
        frame.lazy(), k_q=t.gb12497_kq, beta="mean_load_factor"
    ).collect()
    return classified.with_columns(
        gb12497_state=pl.when(motor_like & (pl.col("status") == "ok")).then(
            pl.col("operating_state")
        ),
        no_load_loss_kw=wide["no_load_loss_kw"],
    )
