"""Analytics benchmark: the daily load-factor and waste tables for 10 million readings.

    .venv/bin/python bench/analytics.py [--devices 2000] [--minutes 5000]

Lands synthetic 1-minute readings of `devices` motors (default 2,000 x 5,000 = 10 M rows,
about 3.5 days) through the warehouse code path, then times, each in its own process:

(a) Wattline: transforms.daily.analyse_days over the lake (buckets, local days, running
    state, AMO power-curve load estimation, device-day aggregates, every waste rule,
    GB 12497 state, right-sizing);
(b) the same computation for these motors written directly in DuckDB SQL over the same
    files: minute buckets with time-integrated energy (gap cap, median interval for a
    device's last reading), running state, the AMO curve by ASOF JOIN with interpolation of
    load and efficiency and the no-load guard, and the device-day table (hours, energies
    on/off shift and idle, mean/P50/P75/max load, power, PF, efficiency, zone). It leaves
    out what only (a) does: the rule verdicts, GB 12497 state and right-sizing (which run
    on the small device-day table) and the columns of other equipment kinds.

Prints seconds and peak RSS for each. Asserts nothing. `--check` instead lands a small
run (use --devices 100 --minutes 3000) and compares the two engines' device-day tables
column by column (exit 1 unless equal within 1e-11 relative), so the race stays fair.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

T0 = datetime(2026, 11, 1, 16, tzinfo=UTC)  # 2026-11-02 00:00 in Asia/Shanghai
SIZES = (7.5, 11, 15, 18.5, 22, 30, 37, 45, 55, 75, 90, 110, 132, 160)


def devices_frame(n: int) -> pl.DataFrame:
    from schemas.registry import DEVICE_SCHEMA

    kw = [SIZES[i % len(SIZES)] for i in range(n)]
    return (
        pl.DataFrame(
            {
                "device_id": [f"m{i:05d}" for i in range(n)],
                "site": ["plant"] * n,
                "kind": ["motor"] * n,
                "rated_power_kw": kw,
                "rated_voltage_v": [380.0] * n,
                "rated_current_a": [p * 1.9 for p in kw],
                "rated_speed_rpm": [1480.0] * n,
                "rated_efficiency": [0.93] * n,
                "rated_power_factor": [0.86] * n,
                "service_factor": [1.0] * n,
            }
        )
        .pipe(
            lambda known: known.with_columns(  # the registry's other columns: unknown
                pl.lit(None, dtype=pl.Float64).alias(c)
                for c in DEVICE_SCHEMA.names()
                if c not in known.columns
            )
        )
        .select(DEVICE_SCHEMA.names())
    )


def readings_frame(devices: pl.DataFrame, minutes: int) -> pl.DataFrame:
    """β per device between 0.15 and 0.95, noise per minute, stopped 8 h a day."""

    n = devices.height
    grid = pl.DataFrame({"d": pl.int_range(n, eager=True)}).join(
        pl.DataFrame({"m": pl.int_range(minutes, eager=True)}), how="cross"
    )
    kw = devices["rated_power_kw"]
    frame = (
        grid.with_columns(
            device_id=pl.col("d").map_elements(lambda i: f"m{i:05d}", return_dtype=pl.String),
            rated=pl.col("d").map_elements(lambda i: kw[i], return_dtype=pl.Float64),
            beta=0.15 + (pl.col("d") % 17) / 20 + ((pl.col("m") * 7919 + pl.col("d")) % 100) / 1000,
            on=((pl.col("m") // 60) % 24) < 16,
        )
        .with_columns(
            ts=pl.lit(T0) + pl.duration(minutes=pl.col("m")),
            power_kw=pl.when(pl.col("on"))
            .then(pl.col("beta") * pl.col("rated") / 0.92)
            .otherwise(0.0),
        )
        .with_columns(
            current_a=pl.col("power_kw") / (math.sqrt(3) * 0.380 * 0.84),
            voltage_v=pl.lit(380.0),
            power_factor=pl.lit(0.84),
        )
    )
    full = frame.select(
        pl.lit("plant").alias("site"),
        "device_id",
        "ts",
        "power_kw",
        "current_a",
        "voltage_v",
        "power_factor",
    )
    return as_readings(full)


def as_readings(frame: pl.DataFrame) -> pl.DataFrame:
    """Measured columns to the lake's readings schema: the rest null, received at ts."""
    from schemas.readings import READING_SCHEMA

    missing = [
        pl.lit(None, dtype=t).alias(c)
        for c, t in READING_SCHEMA.items()
        if c not in frame.columns and c != "received_at"
    ]
    return (
        frame.with_columns(missing, received_at=pl.col("ts"))
        .select(READING_SCHEMA.names())
        .cast(READING_SCHEMA)  # type: ignore[arg-type]
    )


def write_registry(lake: Any, n: int) -> pl.DataFrame:
    """`n` motors and their one site (Asia/Shanghai) in the lake's registry; the devices."""
    from warehouse.lake import write_atomic

    lake.prepare()
    devices = devices_frame(n)
    write_atomic(devices, lake.registry_path("devices"))
    sites = pl.DataFrame(
        {
            "site": ["plant"],
            "timezone": ["Asia/Shanghai"],
            "tariff_per_kwh": [0.75],
            "currency": ["CNY"],
            "emission_kg_per_kwh": [0.5306],
            "shift_calendar": ["Mon-Fri 08:00-20:00"],
        }
    )
    write_atomic(sites, lake.registry_path("sites"))
    return devices


def prepare(work: Path, n: int, minutes: int) -> list[date]:
    from warehouse.lake import READINGS, Lake

    lake = Lake(work / "lake")
    devices = write_registry(lake, n)
    readings = readings_frame(devices, minutes).sort("device_id", "ts")
    lake.write_partitioned(READINGS, readings, "ts", "bench", 1)
    first = (T0 + timedelta(hours=8)).date()
    return [first + timedelta(days=i) for i in range(math.ceil(minutes / 1440) + 1)]


def polars_tables(work: Path, days: list[date]) -> tuple[pl.DataFrame, pl.DataFrame]:
    from transforms.daily import analyse_days
    from transforms.thresholds import Thresholds

    lake = work / "lake"
    devices = pl.read_parquet(lake / "registry" / "devices.parquet")
    sites = pl.read_parquet(lake / "registry" / "sites.parquet")
    readings = pl.scan_parquet(str(lake / "readings" / "date=2*" / "*.parquet"))
    out = analyse_days(readings, devices, sites, Thresholds(), days)
    return out.load_factor, out.evaluations


def run_polars(work: Path, days: list[date]) -> int:
    load_factor, evaluations = polars_tables(work, days)
    return load_factor.height + evaluations.height


SQL = """
WITH g AS (
    SELECT device_id, site, ts, power_kw, current_a, voltage_v, power_factor,
           epoch(lead(ts) OVER (PARTITION BY device_id ORDER BY ts)) - epoch(ts) AS gap
    FROM read_parquet('{glob}')),
r AS (
    SELECT *, least(greatest(coalesce(gap, median(gap) OVER (PARTITION BY device_id), 60),
                             0), 300) AS dt_s
    FROM g),
b AS (
    SELECT device_id, site, time_bucket(INTERVAL 1 minute, ts) AS minute,
           sum(dt_s) AS observed_s, sum(power_kw * dt_s) / 3600 AS energy_kwh,
           sum(power_kw * dt_s) / nullif(sum(dt_s), 0) AS power_kw, avg(current_a) AS current_a,
           avg(voltage_v) AS voltage_v, avg(power_factor) AS power_factor
    FROM r GROUP BY ALL),
t AS (
    SELECT b.*, (minute AT TIME ZONE 'Asia/Shanghai')::DATE AS day,
           isodow(minute AT TIME ZONE 'Asia/Shanghai') <= 5
             AND hour(minute AT TIME ZONE 'Asia/Shanghai') BETWEEN 8 AND 19 AS on_shift,
           CASE WHEN b.current_a > 0.05 * d.rated_current_a
                  OR b.power_kw > 0.05 * d.rated_power_kw / d.rated_efficiency
                THEN b.observed_s ELSE 0 END AS running_s
    FROM b JOIN devices d USING (device_id)),
lo AS (
    SELECT t.*, c.beta AS b1, c.input_kw AS p1, c.efficiency AS e1
    FROM t ASOF LEFT JOIN curves c ON t.device_id = c.device_id AND t.power_kw >= c.input_kw),
hi AS (
    SELECT lo.*, c.beta AS b2, c.input_kw AS p2, c.efficiency AS e2
    FROM lo ASOF LEFT JOIN curves c ON lo.device_id = c.device_id AND lo.power_kw < c.input_kw),
z AS (SELECT device_id, input_kw AS p0 FROM curves WHERE beta = 0),
e AS (
    SELECT hi.*, z.p0, hi.power_kw <= z.p0 AS idle_no_load,
           CASE WHEN p2 IS NULL OR p2 = p1 THEN b1
                ELSE b1 + (power_kw - p1) / (p2 - p1) * (b2 - b1) END AS beta_raw,
           CASE WHEN p2 IS NULL OR p2 = p1 THEN e1
                ELSE e1 + (power_kw - p1) / (p2 - p1) * (e2 - e1) END AS eff_raw
    FROM hi LEFT JOIN z USING (device_id)),
f AS (
    SELECT *, running_s > 0 AS running,
           CASE WHEN idle_no_load THEN 0 ELSE least(beta_raw, 1.5) END AS beta,
           CASE WHEN idle_no_load THEN 0 ELSE eff_raw END AS efficiency,
           running_s > 0 AND (idle_no_load OR beta_raw < 0.1) AS idle
    FROM e)
SELECT device_id, site, day,
       sum(observed_s) / 3600 AS observed_hours,
       sum(running_s) / 3600 AS running_hours,
       sum(energy_kwh) AS energy_kwh,
       sum(running_s) FILTER (NOT on_shift) / 3600 AS off_shift_running_hours,
       sum(energy_kwh) FILTER (NOT on_shift AND running) AS off_shift_energy_kwh,
       coalesce(sum(running_s) FILTER (idle), 0) / 3600 AS idle_hours,
       coalesce(sum(energy_kwh) FILTER (idle), 0) AS idle_energy_kwh,
       sum(running_s) FILTER (idle AND on_shift) / 3600 AS idle_on_shift_hours,
       sum(energy_kwh) FILTER (idle AND on_shift) AS idle_on_shift_energy_kwh,
       sum(beta * running_s) FILTER (running AND NOT idle)
         / sum(running_s) FILTER (running AND NOT idle) AS mean_load_factor,
       quantile_cont(beta, 0.5) FILTER (running AND NOT idle) AS p50_load_factor,
       quantile_cont(beta, 0.75) FILTER (running AND NOT idle) AS p75_load_factor,
       max(beta) FILTER (running AND NOT idle) AS max_load_factor,
       sum(energy_kwh) FILTER (running) / nullif(sum(running_s) / 3600, 0) AS mean_power_kw,
       avg(power_factor) FILTER (running) AS mean_power_factor,
       avg(efficiency) FILTER (running) AS mean_efficiency,
       CASE WHEN quantile_cont(beta, 0.5) FILTER (running AND NOT idle) >= 1 THEN 'overloaded'
            WHEN quantile_cont(beta, 0.75) FILTER (running AND NOT idle) >= 0.6 THEN 'efficient'
            WHEN quantile_cont(beta, 0.75) FILTER (running AND NOT idle) >= 0.4 THEN 'acceptable'
            WHEN quantile_cont(beta, 0.75) FILTER (running AND NOT idle) >= 0.2
              THEN 'under-loaded'
            ELSE 'severely under-loaded' END AS zone
FROM f WHERE day IN ({days}) GROUP BY ALL
"""


def run_duckdb(work: Path, days: list[date]) -> int:
    return duckdb_table(work, days).height


def duckdb_table(work: Path, days: list[date]) -> pl.DataFrame:
    import duckdb

    from transforms.amo_motor import motor_curves_for

    lake = work / "lake"
    devices = pl.read_parquet(lake / "registry" / "devices.parquet")
    curves = motor_curves_for(devices)
    con = duckdb.connect()
    con.register("devices", devices.to_arrow())
    con.register("curves", curves.to_arrow())
    sql = SQL.format(
        glob=lake / "readings" / "date=2*" / "*.parquet",
        days=", ".join(f"DATE '{d}'" for d in days),
    )
    table: pl.DataFrame = con.sql(sql).pl()
    return table


def check(work: Path, days: list[date], tolerance: float = 1e-11) -> bool:
    """Both engines' device-day tables, column by column: the comparison is only fair if
    they compute the same thing. Prints the largest relative difference per column."""
    polars_side = polars_tables(work, days)[0]
    sql_side = duckdb_table(work, days)
    key = ["device_id", "day"]
    shared = [c for c in sql_side.columns if c in polars_side.columns and c not in key]
    both = polars_side.join(sql_side, on=key, how="full", suffix="_sql", coalesce=True)
    ok = both.height == polars_side.height == sql_side.height
    print(f"rows: polars {polars_side.height}, duckdb {sql_side.height}, matched {both.height}")
    for column in shared:
        a, b = pl.col(column), pl.col(f"{column}_sql")
        if both.schema[column].is_numeric():
            worst = both.select(
                ((a - b).abs() / pl.max_horizontal(a.abs(), b.abs(), pl.lit(1e-300))).max()
            ).item()
            nulls_differ = both.select((a.is_null() != b.is_null()).sum()).item()
            good = (worst is None or worst <= tolerance) and nulls_differ == 0
            shown = f"max relative difference {worst or 0:.1e}, nulls differ {nulls_differ}"
            print(f"  {column:<28} {shown}")
        else:
            differ = both.select(a.ne_missing(b).sum()).item()
            good = differ == 0
            print(f"  {column:<28} values differ {differ}")
        ok = ok and good
    print(f"equal within {tolerance:g}: {'yes' if ok else 'NO'}")
    return ok


def child(engine: str, work: Path, days: list[date]) -> None:
    started = time.perf_counter()
    rows = (run_polars if engine == "polars" else run_duckdb)(work, days)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"engine": engine, "seconds": seconds, "peak_mb": peak_mb, "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--minutes", type=int, default=5000)
    parser.add_argument("--child", choices=["polars", "duckdb"])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--days", default="")
    parser.add_argument(
        "--check",
        action="store_true",
        help="instead of timing: land a small run and compare both engines' tables",
    )
    args = parser.parse_args()
    if args.check:
        work = Path(tempfile.mkdtemp(prefix="wattline-analytics-check-"))
        sys.exit(0 if check(work, prepare(work, args.devices, args.minutes)) else 1)
    if args.child:
        child(args.child, args.work, [date.fromisoformat(d) for d in args.days.split(",")])
        return
    work = Path(tempfile.mkdtemp(prefix="wattline-analytics-"))
    started = time.perf_counter()
    days = prepare(work, args.devices, args.minutes)
    print(
        f"landed {args.devices * args.minutes:,} readings of {args.devices} motors in "
        f"{time.perf_counter() - started:.1f} s ({work})",
        flush=True,
    )
    for engine in ("polars", "duckdb", "polars", "duckdb"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                engine,
                "--work",
                str(work),
                "--days",
                ",".join(d.isoformat() for d in days),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        label = "wattline (polars)" if engine == "polars" else "duckdb sql       "
        print(
            f"{label}: {result['seconds']:.2f} s, peak RSS {result['peak_mb']:.0f} MB, "
            f"{result['rows']} result rows",
            flush=True,
        )


if __name__ == "__main__":
    main()
