"""Maximum demand: the mean power over fixed clock windows (15 minutes by default), per
site and per transformer, each day's peak window with the loads that made it, and the
month's maximum against the contracted demand.

Demand is what a utility's demand meter records: energy in a clock-aligned window
divided by the window's length, P_demand [kW] = E_window [kWh] x 60 / window_min. The
window is aligned to the site's local clock (00:00, 00:15, ...), so a bucket at 10:14
local belongs to the 10:00 window and one at 10:15 to the next. Energy is attributed to
the minute its bucket starts in (transforms/bucket_readings.py), so a window's demand is
exact to the energy of readings straddling its edges.

The site's demand is the sum of its transformers (incomers) where it has any registered,
otherwise the sum of every device (the same rule as the bill's `billing_meter`);
"contributors" of a peak are the loads (every device but transformers) ranked by their
power in that window.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from schemas.energy import DEMAND_SCHEMA, MONTHLY_SCHEMA, PEAK_SCHEMA
from transforms.tariff import MINUTES_PER_DAY, MWH_PER_KWH, Tariff, coded_minutes

TOP_CONTRIBUTORS: Final = 5


def check_window(window_min: int) -> None:
    if window_min <= 0 or MINUTES_PER_DAY % window_min:
        raise ValueError(f"demand window {window_min} min must divide a day (1, 5, 15, 30, 60 ...)")


def demand_windows(
    tagged: pl.DataFrame, devices: pl.DataFrame, window_min: int = 15
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(demand per site/transformer and window, each site-day's peak window with its top
    contributors) from 1-minute buckets tagged with `day` and `local_minute_of_week`."""
    return site_demand(device_demand(tagged, window_min), devices, window_min)


def energy_windows(
    tagged: pl.DataFrame, tariffs: dict[str, Tariff], window_min: int = 15
) -> pl.DataFrame:
    """Integer-mWh energy per (day, site, device, demand window, tariff period, shift
    state): one pass over the 1-minute buckets that both the bill
    (`tariff.priced`) and demand (`device_demand_from`) add up from."""
    check_window(window_min)
    offset = pl.col("local_minute_of_week") % window_min
    return (
        coded_minutes(tagged, tariffs)
        .with_columns(window_start=pl.col("minute") - pl.duration(minutes=offset))
        .group_by("day", "site", "device_id", "window_start", "code", "on_shift")
        .agg(pl.col("mwh").sum())
        .collect()
    )


def device_demand(tagged: pl.DataFrame, window_min: int = 15) -> pl.DataFrame:
    """Each device's energy (integer mWh, `to_mwh`) and demand [kW] per window: the step
    that can run on a subset of the devices (the daily job's passes); `site_demand`
    then adds them up per site."""
    return device_demand_from(energy_windows(tagged, {}, window_min), window_min)


def device_demand_from(windows: pl.DataFrame, window_min: int = 15) -> pl.DataFrame:
    return (
        windows.group_by("day", "site", "device_id", "window_start")
        .agg(pl.col("mwh").sum())
        .with_columns(device_kw=pl.col("mwh") * (60.0 / window_min / MWH_PER_KWH))
    )


def site_demand(
    per_device: pl.DataFrame, devices: pl.DataFrame, window_min: int = 15
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(demand per site/transformer and window, each site-day's peak with its top
    contributors) from every device's windows (`device_demand`)."""
    if per_device.is_empty():
        return DEMAND_SCHEMA.to_frame(), PEAK_SCHEMA.to_frame()
    per_device = per_device.join(devices.select("device_id", "kind"), on="device_id", how="left")
    incomers = devices.filter(pl.col("kind") == "transformer").get_column("site").unique().to_list()
    is_transformer = (pl.col("kind") == "transformer").fill_null(False)
    billing = pl.when(pl.col("site").is_in(incomers)).then(is_transformer).otherwise(True)
    site = (  # integer mWh: the same sum however the passes split the devices
        per_device.filter(billing)
        .group_by("day", "site", "window_start")
        .agg(demand_kw=pl.col("mwh").sum() * (60.0 / window_min / MWH_PER_KWH))
        .with_columns(meter=pl.lit("site"))
    )
    transformers = per_device.filter(is_transformer).select(
        "day", "site", "window_start", meter="device_id", demand_kw="device_kw"
    )
    demand = (
        pl.concat([site.select(transformers.columns), transformers])
        .with_columns(window_min=pl.lit(window_min, pl.Int16))
        .select(DEMAND_SCHEMA.names())
        .cast(DEMAND_SCHEMA)
        .sort("day", "site", "meter", "window_start")
    )
    peaks = (
        site.sort("demand_kw", "window_start", descending=[True, False])
        .group_by("day", "site", maintain_order=True)
        .first()
        .select("day", "site", "window_start", "demand_kw")
    )
    loads = per_device.filter(~is_transformer).select(
        "day", "site", "window_start", "device_id", "device_kw"
    )
    top = (
        peaks.join(loads, on=["day", "site", "window_start"], how="left")
        .sort("device_kw", "device_id", descending=[True, False], nulls_last=True)
        .with_columns(
            rank=pl.int_range(1, pl.len() + 1).over("day", "site"),
            share=(pl.col("device_kw") / pl.col("demand_kw")).round(6),  # 1 ulp varies by pass
        )
        .filter(pl.col("rank") <= TOP_CONTRIBUTORS)
        .select(PEAK_SCHEMA.names())
        .cast(PEAK_SCHEMA)
        .sort("day", "site", "rank")
    )
    return demand, top


def monthly_demand(
    peaks: pl.LazyFrame | pl.DataFrame,
    tariffs: dict[str, Tariff],
    alert_fraction: float = 0.9,
    devices: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The month's maximum demand per site, the load that made most of it, and how close it
    is to the contracted demand: `approaching_contract` when max >= alert_fraction x
    contracted (null where no contract is known).

    The basic charge of a Chinese two-part tariff is billed one of two ways, the tariff's
    `basis`: per kW of the month's maximum demand (按需量, `demand_charge_per_kw_month`),
    or per kVA of installed transformer capacity (按容量, `capacity_charge_per_kva_month`
    x the site's transformers' `rated_kva`). `demand_charge` is the one billed; both
    figures are kept so an energy manager can compare the two bases.
    """
    frame = peaks.lazy().collect() if isinstance(peaks, pl.LazyFrame) else peaks
    if frame.is_empty():
        return MONTHLY_SCHEMA.to_frame()
    kva = (
        devices.filter(pl.col("kind") == "transformer")
        .group_by("site")
        .agg(installed_kva=pl.col("rated_kva").sum())
        if devices is not None and "rated_kva" in devices.columns
        else pl.DataFrame(schema={"site": pl.String, "installed_kva": pl.Float64})
    )
    terms = pl.DataFrame(
        {
            "site": list(tariffs),
            "contracted_kw": [t.contracted_kw for t in tariffs.values()],
            "charge": [t.demand_charge_per_kw_month for t in tariffs.values()],
            "kva_charge": [t.capacity_charge_per_kva_month for t in tariffs.values()],
            "basis": [t.basis for t in tariffs.values()],
        },
        schema={
            "site": pl.String,
            "contracted_kw": pl.Float64,
            "charge": pl.Float64,
            "kva_charge": pl.Float64,
            "basis": pl.String,
        },
    )
    best = (
        frame.with_columns(month=pl.col("day").dt.truncate("1mo"))
        .sort("demand_kw", "window_start", "rank", descending=[True, False, False])
        .group_by("month", "site", maintain_order=True)
        .first()
    )
    ratio = pl.col("max_demand_kw") / pl.col("contracted_kw")
    by_demand = pl.col("max_demand_kw") * pl.col("charge")
    by_capacity = pl.col("installed_kva") * pl.col("kva_charge")
    return (
        best.select(
            "month",
            "site",
            "window_start",
            max_demand_kw="demand_kw",
            top_device_id="device_id",
            top_device_kw="device_kw",
        )
        .join(terms, on="site", how="left")
        .join(kva, on="site", how="left")
        .with_columns(demand_ratio=ratio)
        .with_columns(
            approaching_contract=pl.col("demand_ratio") >= alert_fraction,
            charge_by_demand=by_demand,
            charge_by_capacity=by_capacity,
            demand_charge=pl.when(pl.col("basis") == "capacity")
            .then(by_capacity)
            .otherwise(by_demand),
        )
        .select(MONTHLY_SCHEMA.names())
        .cast(MONTHLY_SCHEMA)
        .sort("month", "site")
    )
