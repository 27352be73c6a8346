"""The report at scale: a month of 2,000 devices (bench/scale.py's lake, 86.4 M rows).

    .venv/bin/python bench/report_scale.py [--devices 2000] [--days 30] [--keep]

Lands the month, runs `jobs run --full` once (untimed: it makes the tables the report
reads), then builds the report in its own process, several ways, and prints seconds
and peak RSS of each: English with browser-rendered charts (the default), Chinese, and
`--static` (SVG rendered here). Target: under 10 s and 1 GB. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the project: `report` is the package


def child(work: Path, language: str, static: bool) -> None:
    import report

    started = time.perf_counter()
    html = report.build(work / "wattline.duckdb", language=language, static=static)
    seconds = time.perf_counter() - started
    (work / f"report-{language}{'-static' if static else ''}.html").write_text(html)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "mb": len(html) / 1e6}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--language", default="en")
    parser.add_argument("--static", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.work, args.language, args.static)
        return
    import energy
    import scale

    work = Path(tempfile.mkdtemp(prefix="wattline-report-"))
    try:
        started = time.perf_counter()
        scale.land_month(work, args.devices, args.days)
        (work / "tariffs.toml").write_text(energy.TARIFF)
        print(
            f"landed {args.devices * args.days * 1440:,} readings in "
            f"{time.perf_counter() - started:.1f} s ({work})",
            flush=True,
        )
        started = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "energy.py"),
                "--child",
                "--energy",
                "--work",
                str(work),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if out.returncode:
            sys.exit(out.stderr)
        print(f"jobs run --full (untimed set-up) {time.perf_counter() - started:.1f} s", flush=True)
        for language, static in (("en", False), ("zh", False), ("en", True)):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "--work",
                str(work),
                "--language",
                language,
            ] + (["--static"] if static else [])
            res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if res.returncode:
                sys.exit(res.stderr)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            label = f"report {language}{' --static' if static else ''}"
            print(
                f"  {label:<20} {r['seconds']:6.2f} s  peak RSS {r['peak_mb']:6.0f} MB  "
                f"page {r['mb']:.1f} MB",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
