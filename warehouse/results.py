"""Where the jobs' results live: day partitions replaced whole, small tables replaced whole.

    load_factor/date=<local day>/part-0.parquet   one file per site-local day
    evaluations/date=<local day>/part-0.parquet   every rule's verdict per device-day
    alerts/alerts.parquet                          every alert episode (small)
    _jobs/state.json                               which readings files were processed

Every write is an atomic replace of a deterministically named file, and the state
file is written last: a job that crashes is simply run again and produces the same files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import polars as pl

from warehouse.lake import READINGS, Lake, data_files_in, write_atomic

DAY_FILE: Final = "part-0.parquet"


@dataclass(frozen=True)
class Results:
    lake: Lake

    @property
    def state_path(self) -> Path:
        return self.lake.root / "_jobs" / "state.json"

    def write_day(self, table: str, day: date, frame: pl.DataFrame) -> Path:
        target = self.lake.table_dir(table) / f"date={day.isoformat()}" / DAY_FILE
        write_atomic(frame, target)
        return target

    def write_alerts(self, frame: pl.DataFrame) -> None:
        write_atomic(frame, self.lake.alerts_path)

    def scan(self, table: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.lake.glob(table), hive_partitioning=False)

    def readings_files(self) -> dict[str, list[int]]:
        """Every readings data file with its (size, mtime_ns): what a run has to look at."""
        out = {}
        if self.lake.delta is not None:
            return {f.uri: [f.size, f.mtime_ms] for f in self.lake.delta.files(READINGS)}
        for path in self.lake.data_files(READINGS):
            st = path.stat()
            out[str(path)] = [st.st_size, st.st_mtime_ns]
        return out

    def load_state(self) -> dict[str, list[int]]:
        try:
            return dict(json.loads(self.state_path.read_text())["readings_files"])
        except FileNotFoundError:
            return {}

    def save_state(self, files: dict[str, list[int]]) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            json.dump({"readings_files": files}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.state_path)

    def readings_for_utc_days(self, days: list[date]) -> pl.LazyFrame | None:
        if self.lake.delta is not None:
            wanted = set(days)
            files = sorted(f.uri for f in self.lake.delta.files(READINGS) if f.day in wanted)
            options = self.lake.delta.storage_options or None
            if not files:
                return None
            return pl.scan_parquet(files, hive_partitioning=False, storage_options=options)
        paths = [
            str(p)
            for d in days
            for p in sorted(data_files_in(self.lake.table_dir(READINGS) / f"date={d.isoformat()}"))
        ]
        return pl.scan_parquet(paths, hive_partitioning=False) if paths else None
