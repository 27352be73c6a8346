"""Energy-management jobs at scale: what the bill, demand, baselines and forecasts add
to `wattline jobs run --full` over bench/scale's month (2,000 devices, 86.4 M rows).

    .venv/bin/python bench/energy.py [--devices 2000] [--days 30] [--repeat 1]

Lands the month once (bench/scale.py's code path), then runs the full jobs over it in
separate processes, alternately with `analytics.energy_management` off (the baseline:
load matching and waste rules only) and on (plus the time-of-use bill with the demo's
tariff file, 15-minute demand, monthly maximum, production intensity, baselines with
CUSUM and the day-ahead forecast), and prints seconds and peak RSS of each, the medians
and the difference. Asserts nothing; the figures go in the README.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TARIFF = """
[plant]
currency = "CNY"
prices = { critical = 1.36, peak = 1.13, flat = 0.70, valley = 0.29 }
demand_charge_per_kw_month = 40.0
contracted_kw = 80000.0

[[plant.season]]
name = "all year"
months = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
rest_day = { "00:00" = "valley", "08:00" = "flat", "22:00" = "valley" }
[plant.season.workday]
"00:00" = "valley"
"08:00" = "peak"
"12:00" = "critical"
"14:00" = "peak"
"18:00" = "flat"
"22:00" = "valley"
"""


def child(work: Path, energy: bool) -> None:
    from wattline.config import CatalogSettings, LakeSettings, Settings
    from wattline.jobs import run_jobs

    settings = Settings(
        lake=LakeSettings(work / "lake", compact_settle_s=0.0, trash_grace_s=0.0),
        catalog=CatalogSettings(work / "wattline.duckdb"),
    )
    analytics = replace(
        settings.analytics,
        energy_management=energy,
        tariff_file=str(work / "tariffs.toml") if energy else "",
    )
    settings = replace(settings, analytics=analytics).validate()
    started = time.perf_counter()
    summary = run_jobs(settings, full=True, compact=False).summary()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "detail": summary}))


def run(work: Path, energy: bool) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", "--work", str(work)]
    cmd += ["--energy"] if energy else []
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"jobs failed:\n{out.stderr}")
    r: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    label = "with energy management" if energy else "without (baseline)    "
    print(
        f"  jobs --full {label} {r['seconds']:7.2f} s  peak RSS {r['peak_mb']:6.0f} MB", flush=True
    )
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--energy", action="store_true")
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.work, args.energy)
        return
    import scale

    work = Path(tempfile.mkdtemp(prefix="wattline-energy-"))
    try:
        started = time.perf_counter()
        scale.land_month(work, args.devices, args.days)
        (work / "tariffs.toml").write_text(TARIFF)
        rows = args.devices * args.days * 1440
        print(f"landed {rows:,} readings in {time.perf_counter() - started:.1f} s ({work})")
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for _ in range(args.repeat):
            for energy in (False, True):
                runs[energy].append(run(work, energy))
        base = statistics.median(r["seconds"] for r in runs[False])
        full = statistics.median(r["seconds"] for r in runs[True])
        base_mb = max(r["peak_mb"] for r in runs[False])
        full_mb = max(r["peak_mb"] for r in runs[True])
        print(
            f"median: {base:.2f} s without, {full:.2f} s with: energy management adds "
            f"{full - base:.2f} s ({(full / base - 1) * 100:+.0f} %); peak RSS {base_mb:,.0f} "
            f"vs {full_mb:,.0f} MB"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
