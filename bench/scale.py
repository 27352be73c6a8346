"""Scale benchmark: a month of 1-minute readings of 2,000 devices (86.4 M rows).

    .venv/bin/python bench/scale.py [--devices 2000] [--days 30] [--small-files 1440]
                                    [--format both|parquet|delta]

Lands the month through the warehouse code path (Lake.write_partitioned, one file per
UTC day, as compaction leaves it), then times, each step in its own process so its
peak RSS is its own:

(a) the analyst's query through the DuckDB catalog: daily kWh and mean load factor per
    device for the last 30 days (kWh = sum of P * 60 s for these 1-minute readings;
    load factor by the DOE input-power ratio P * eta_rated / P_rated over running
    minutes, domain.md section 1);
(b) the same query over the 30 days ending one day later, right after that new day
    landed as `--small-files` small files (a consumer flushing once a minute);
    `wattline lake maintain` compacting that day; and the query again;
(c) the daily jobs for the new day (`wattline jobs run --no-deliver`, the runner as
    cron would call it, with the state of a month already processed).

Prints seconds and peak RSS for each, for today's hive-partitioned Parquet lake and the
Delta Lake table format (`lake.format`) side by side in one run (`--format both`, the
default). Asserts nothing; numbers go in the README.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import polars as pl  # noqa: E402
from analytics import as_readings, devices_frame, write_registry  # noqa: E402

FIRST = date(2026, 10, 1)
QUERY = """
SELECT r.device_id, r.date AS day,
       sum(r.power_kw) * 60 / 3600 AS energy_kwh,
       avg(r.power_kw * d.rated_efficiency / d.rated_power_kw)
         FILTER (WHERE r.power_kw > 0.05 * d.rated_power_kw) AS mean_load_factor
FROM readings r JOIN devices d USING (device_id)
WHERE r.date BETWEEN DATE '{first}' AND DATE '{last}'
GROUP BY ALL
"""


def day_readings(devices: pl.DataFrame, day: date) -> pl.DataFrame:
    """Every device, every minute of a UTC day, sorted (device_id, ts) as landing sorts.

    Load factor per device between 0.15 and 0.95 with noise; stopped 8 h a day.
    """
    n = devices.height
    i = pl.int_range(n * 1440, eager=True)
    d, m = i // 1440, i % 1440
    rated = devices["rated_power_kw"].gather(d)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    beta = 0.15 + (d % 17) / 20 + ((m * 7919 + d + day.day * 31) % 100) / 1000
    power = ((m // 60) < 16).cast(pl.Float64) * beta * rated / 0.92
    frame = pl.DataFrame(
        {
            "site": pl.repeat("plant", n * 1440, eager=True),
            "device_id": devices["device_id"].gather(d),
            "ts": pl.datetime_range(start, start + timedelta(minutes=1439), "1m", eager=True)
            .alias("ts")
            .gather(m),
            "power_kw": power,
            "current_a": power / (math.sqrt(3) * 0.380 * 0.84),
            "voltage_v": pl.repeat(380.0, n * 1440, eager=True),
            "power_factor": pl.repeat(0.84, n * 1440, eager=True),
        }
    )
    return as_readings(frame)


FORMAT = "parquet"  # set by --format in each child


def open_lake(work: Path):
    from warehouse.lake import Lake

    return Lake.from_settings(work / "lake", FORMAT)


def land_month(work: Path, n: int, days: int) -> None:
    from warehouse.catalog import ensure_catalog
    from warehouse.lake import READINGS
    from warehouse.results import Results

    lake = open_lake(work)
    devices = write_registry(lake, n)
    for k in range(days):
        frame = day_readings(devices, FIRST + timedelta(k))
        lake.land((READINGS, frame, "ts"), writer="b", batch=k)
    ensure_catalog(work / "wattline.duckdb", lake)
    # The month counts as processed: (c) measures one new day, as a nightly run sees it.
    results = Results(lake)
    results.save_state(results.readings_files())


def land_small_files(work: Path, n: int, day: date, files: int) -> int:
    from warehouse.lake import READINGS

    lake = open_lake(work)
    frame = day_readings(devices_frame(n), day).sort("ts", "device_id")
    for k in range(files):
        lo, hi = k * frame.height // files, (k + 1) * frame.height // files
        part = frame.slice(lo, hi - lo).sort("device_id", "ts")
        lake.land((READINGS, part, "ts"), writer="consumer", batch=10_000 + k)
    return files


def step_query(work: Path, first: date, last: date) -> str:
    from warehouse.catalog import connect_readonly

    con = connect_readonly(work / "wattline.duckdb")
    try:
        rows = con.execute(QUERY.format(first=first, last=last)).fetchall()
    finally:
        con.close()
    return f"{len(rows):,} device-days"


def step_compact(work: Path) -> str:
    from wattline.jobs import maintain_lake

    return maintain_lake(_settings(work)).summary()


def step_jobs(work: Path) -> str:
    from wattline.jobs import run_jobs

    return run_jobs(_settings(work), compact=False).summary()


def _settings(work: Path) -> object:
    from wattline.config import CatalogSettings, LakeSettings, Settings

    return Settings(
        lake=LakeSettings(work / "lake", compact_settle_s=0.0, trash_grace_s=0.0, format=FORMAT),
        catalog=CatalogSettings(work / "wattline.duckdb"),
    )


def child(args: argparse.Namespace) -> None:
    global FORMAT
    FORMAT = args.format
    import duckdb  # noqa: F401  (imports are not what is measured)

    import wattline.jobs  # noqa: F401

    started = time.perf_counter()
    work = args.work
    if args.child == "land":
        land_month(work, args.devices, args.days)
        detail = f"{args.devices * args.days * 1440:,} readings in {args.days} day files"
    elif args.child == "small":
        day = FIRST + timedelta(args.days)
        files = land_small_files(work, args.devices, day, args.small_files)
        detail = f"{args.devices * 1440:,} readings in {files} files"
    elif args.child == "query":
        first = date.fromisoformat(args.first)
        detail = step_query(work, first, first + timedelta(days=29))
    elif args.child == "compact":
        detail = step_compact(work)
    else:
        detail = step_jobs(work)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "detail": detail}))


def run_child(label: str, args: argparse.Namespace, work: Path, *extra: str) -> None:
    cmd = [sys.executable, __file__, "--work", str(work), "--devices", str(args.devices)]
    cmd += ["--days", str(args.days), "--small-files", str(args.small_files), *extra]
    cmd += ["--format", args.format]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"{label} failed:\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    figures = f"{r['seconds']:7.2f} s  peak RSS {r['peak_mb']:6.0f} MB"
    print(f"{args.format:<8} {label:<46} {figures}  {r['detail']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--small-files", type=int, default=1440)
    parser.add_argument("--child", choices=["land", "small", "query", "compact", "jobs"])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--first", default="")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--format", choices=["both", "parquet", "delta"], default="both")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.format == "both":
        for fmt in ("parquet", "delta"):
            run_format(argparse.Namespace(**{**vars(args), "format": fmt}))
        return
    run_format(args)


def run_format(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"wattline-scale-{args.format}-"))
    print(f"work dir {work}", flush=True)
    new_day = FIRST + timedelta(args.days)
    window_a, window_b = FIRST + timedelta(args.days - 30), new_day - timedelta(29)
    try:
        run_child("land the month (warehouse code path)", args, work, "--child", "land")
        run_child(
            "(a) query: daily kWh + load factor, 30 days",
            args,
            work,
            "--child",
            "query",
            "--first",
            str(window_a),
        )
        run_child(f"land {new_day} as small files", args, work, "--child", "small")
        for label in ("(b) same query incl. the small-file day", "    ...run again (warm)"):
            run_child(label, args, work, "--child", "query", "--first", str(window_b))
        run_child("    lake maintain (compaction)", args, work, "--child", "compact")
        run_child(
            "(b) same query after compaction",
            args,
            work,
            "--child",
            "query",
            "--first",
            str(window_b),
        )
        run_child("(c) daily jobs for the new day", args, work, "--child", "jobs")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
