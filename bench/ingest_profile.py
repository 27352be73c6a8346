"""Where a batch's landing time goes, without a broker: decode, validate, dedup, write.

    .venv/bin/python bench/ingest_profile.py [--per-message 100] [--batch-readings 200000]

Builds bench/ingest.py's stream, then lands six batches through the consumer's steps
(the first one warms up and is not counted) into a fresh Parquet lake, and prints the
median wall time of each step, the CPU time of all of them (every thread), and
µs per reading. `--profile` prints cProfile's top entries instead. Not a test: it
asserts nothing, it prints figures.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.decode import decode_batch  # noqa: E402
from ingest.dedup import RecentKeys  # noqa: E402
from ingest.pipeline import Batch, deduplicate, validate  # noqa: E402
from warehouse.lake import QUARANTINE, READINGS  # noqa: E402
from wattline.config import LakeSettings  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "ingest.py")
assert _spec is not None and _spec.loader is not None
bench_ingest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_ingest)

STEPS = ("decode_batch (within validate)", "validate", "deduplicate", "lake.land", "index add")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--batch-readings", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    per_batch = max(1, args.batch_readings // args.per_message)
    batches = 6
    items = bench_ingest.stream("prof", per_batch * batches, args.per_message)
    lake = LakeSettings(root=Path(tempfile.mkdtemp(prefix="wattline-prof-"))).open()
    recent = RecentKeys(2_000_000)

    def land(number: int) -> tuple[float, ...]:
        chunk = items[number * per_batch : (number + 1) * per_batch]
        topics = [t for t, _ in chunk]
        payloads = [p for _, p in chunk]
        stamps = [time.time_ns() // 1000] * len(chunk)
        t0 = time.perf_counter()
        decode_batch(topics, payloads, 256 * 1024)
        t1 = time.perf_counter()
        cpu = time.process_time()  # the landing only, not the separate decode above
        validated = validate(Batch(topics, payloads, stamps), 256 * 1024, 86_400)
        t2 = time.perf_counter()
        landing = deduplicate(validated, recent)
        t3 = time.perf_counter()
        lake.land(
            (READINGS, landing.readings, "ts"),
            (QUARANTINE, landing.quarantine, "received_at"),
            writer="prof",
            batch=number,
        )
        t4 = time.perf_counter()
        recent.add(landing.readings)
        t5 = time.perf_counter()
        cpu_s = time.process_time() - cpu
        return (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, cpu_s, t5 - t1)

    land(0)
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for number in range(1, batches):
            land(number)
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
        return
    rows = [land(number) for number in range(1, batches)]
    readings = per_batch * args.per_message
    print(f"{readings:,} readings a batch, {args.per_message} per message, median of 5 batches")
    for k, name in enumerate((*STEPS, "CPU, all threads", "wall, landing")):
        value = statistics.median(row[k] for row in rows)
        print(f"  {name:32s} {value * 1000:8.1f} ms  {value / readings * 1e6:5.2f} µs/reading")


if __name__ == "__main__":
    main()
