"""The Parquet lake: where every file lives and how it appears (atomically).

Layout under the lake root (hive-style date partitions, UTC dates of `ts`)::

    readings/date=2026-11-21/part-<writer>-<batch:012d>.parquet
    quarantine/date=2026-11-21/part-<writer>-<batch:012d>.parquet
    registry/devices.parquet, registry/sites.parquet

Names are deterministic: a writer (the consumer's stable MQTT client id) numbers its
batches, and a restarted writer continues after the highest number on disk. A file
is written under a hidden temporary name in its final directory, fsynced, renamed,
and the directory fsynced: a reader sees the whole file or nothing (the Kafka
Connect S3 sink's rule; Telegraf's parquet output leaves torn files after a crash).
"""

from __future__ import annotations

import fcntl
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import polars as pl
import pyarrow.parquet as pq

from schemas.drivers import DRIVERS
from schemas.energy import (
    BASELINE_DAILY_SCHEMA,
    BASELINE_SCHEMA,
    DEMAND_SCHEMA,
    ENERGY_COST_SCHEMA,
    FORECAST_SCHEMA,
    INTENSITY_SCHEMA,
    LOAD_SHIFT_SCHEMA,
    MONTHLY_SCHEMA,
    PEAK_SCHEMA,
)
from schemas.readings import QUARANTINE_SCHEMA, READING_SCHEMA
from schemas.registry import DEVICE_SCHEMA, SITE_SCHEMA
from schemas.results import EVALUATION_SCHEMA, LOAD_FACTOR_SCHEMA, PRICED_ALERT_SCHEMA
from schemas.sparkplug import STATUS_SCHEMA

if TYPE_CHECKING:
    from warehouse.delta import DeltaTables

READINGS: Final = "readings"
QUARANTINE: Final = "quarantine"
REGISTRY: Final = "registry"
LOAD_FACTOR: Final = "load_factor"
EVALUATIONS: Final = "evaluations"
ENERGY_COST: Final = "energy_cost"
DEMAND: Final = "demand"
DEMAND_PEAKS: Final = "demand_peaks"
ALERTS: Final = "alerts"
DEMAND_MONTHLY: Final = "demand_monthly"
BASELINES: Final = "baselines"
BASELINE_DAILY: Final = "baseline_daily"
PRODUCTION_INTENSITY: Final = "production_intensity"
FORECAST: Final = "forecast"
LOAD_SHIFT: Final = "load_shift"
WHOLE: Final = {  # small result tables, recomputed and replaced whole by each jobs run
    DEMAND_MONTHLY: MONTHLY_SCHEMA,
    BASELINES: BASELINE_SCHEMA,
    BASELINE_DAILY: BASELINE_DAILY_SCHEMA,
    PRODUCTION_INTENSITY: INTENSITY_SCHEMA,
    FORECAST: FORECAST_SCHEMA,
    LOAD_SHIFT: LOAD_SHIFT_SCHEMA,
}
PARTITIONED: Final = {
    READINGS: READING_SCHEMA,
    QUARANTINE: QUARANTINE_SCHEMA,
    LOAD_FACTOR: LOAD_FACTOR_SCHEMA,
    EVALUATIONS: EVALUATION_SCHEMA,
    ENERGY_COST: ENERGY_COST_SCHEMA,
    DEMAND: DEMAND_SCHEMA,
    DEMAND_PEAKS: PEAK_SCHEMA,
}
# The zero-row file that keeps a table's glob non-empty sorts LAST: DuckDB estimates a
# glob's rows as (rows of its first file) x (number of files), and a zero-row first file
# made it build join hash tables on 86 M readings instead of 2,000 devices (8x slower,
# 6 GB; bench/scale.py). Lakes made before this used date=1970-01-01; prepare() moves it.
SCHEMA_PARTITION: Final = "date=9999-12-31"
_OLD_SCHEMA_PARTITION: Final = "date=1970-01-01"
SCHEMA_FILE: Final = "_schema.parquet"
_PART_RE = re.compile(r"^part-(?P<writer>.+)-(?P<batch>\d{12})\.parquet$")
# Files compaction writes (warehouse/compact.py): one per partition and generation.
COMPACT_PREFIX: Final = "compact-"
_COMPACT_RE = re.compile(rf"^{COMPACT_PREFIX}[0-9a-z-]+\.parquet$")
PARTITION_PREFIX: Final = "date="
# One row group per ~128k rows keeps min/max statistics useful for (device_id, ts) pruning.
ROW_GROUP_ROWS: Final = 128 * 1024


class LakeError(Exception):
    """A lake file could not be written or read; the message names the path."""


@dataclass(frozen=True)
class Lake:
    """The lake on local disk. With `delta` set (``lake.format = "delta"``), readings and
    quarantine are Delta tables (warehouse/delta.py); registry and results stay here."""

    root: Path
    delta: DeltaTables | None = field(default=None, compare=False)

    @classmethod
    def from_settings(
        cls, root: Path, fmt: str = "parquet", uri: str = "", catalog_url: str = "", **options: str
    ) -> Lake:
        if fmt != "delta":
            return cls(root)
        from warehouse.delta import DeltaTables

        storage = {k: v for k, v in options.items() if v}
        return cls(root, DeltaTables(uri or str(root), storage, catalog_url=catalog_url))

    def is_delta(self, table: str) -> bool:
        return self.delta is not None and table in (READINGS, QUARANTINE)

    def sources(self, table: str) -> list[str]:
        """What a reader of `table` reads now: one glob, or one Delta version's files.

        The zero-row schema file comes last, so an empty table still has its columns.
        """
        if self.delta is None or not self.is_delta(table):
            return [self.glob(table)]
        schema = self.root.resolve() / table / SCHEMA_PARTITION / SCHEMA_FILE
        return [f.uri for f in self.delta.files(table)] + [str(schema)]

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def glob(self, table: str) -> str:
        """The DuckDB glob over every file of a partitioned table (absolute).

        Only ``date=*`` directories: compaction's staging and trash directories
        (``_staging``, ``_trash``) sit beside them and must never be read.
        """
        return str(self.root.resolve() / table / f"{PARTITION_PREFIX}*" / "*.parquet")

    def partitions(self, table: str) -> Iterator[Path]:
        """Every ``date=...`` directory of a table (not the schema partition)."""
        base = self.table_dir(table)
        if not base.exists():
            return
        for path in base.iterdir():
            if (
                path.name.startswith(PARTITION_PREFIX)
                and path.name != SCHEMA_PARTITION
                and path.is_dir()
            ):
                yield path

    def data_files(self, table: str) -> Iterator[Path]:
        """Every data file a reader sees: writers' parts and compacted files."""
        for partition in self.partitions(table):
            yield from data_files_in(partition)

    @contextmanager
    def table_lock(self, table: str, exclusive: bool) -> Iterator[None]:
        """An advisory lock on a table's partitions (flock on ``<table>/.lock``).

        Writers hold it shared while a file goes from temporary name to final name, so
        compaction (exclusive, for the milliseconds of its swap) never swaps a partition
        directory out from under a file being renamed into it.
        """
        base = self.table_dir(table)
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(base / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def registry_path(self, name: str) -> Path:
        return self.root / REGISTRY / f"{name}.parquet"

    def prepare(self) -> None:
        """Create directories and the zero-row schema files that keep globs non-empty."""
        for table, schema in PARTITIONED.items():
            target = self.table_dir(table) / SCHEMA_PARTITION / SCHEMA_FILE
            if not target.exists():
                write_atomic(schema.to_frame(), target)
            old = self.table_dir(table) / _OLD_SCHEMA_PARTITION
            if (old / SCHEMA_FILE).exists():
                (old / SCHEMA_FILE).unlink()
                if not any(old.iterdir()):
                    old.rmdir()
        (self.root / REGISTRY).mkdir(parents=True, exist_ok=True)
        for name, schema in (("devices", DEVICE_SCHEMA), ("sites", SITE_SCHEMA)):
            if not self.registry_path(name).exists():
                write_atomic(schema.to_frame(), self.registry_path(name))
        if not self.alerts_path.exists():
            write_atomic(PRICED_ALERT_SCHEMA.to_frame(), self.alerts_path)
        for name, schema in WHOLE.items():
            if not self.whole_path(name).exists():
                write_atomic(schema.to_frame(), self.whole_path(name))
        for name, schema in DRIVERS.items():
            if not self.drivers_path(name).exists():
                write_atomic(schema.to_frame(), self.drivers_path(name))
        if not self.sparkplug_status_path.exists():
            write_atomic(STATUS_SCHEMA.to_frame(), self.sparkplug_status_path)

    @property
    def alerts_path(self) -> Path:
        return self.root / ALERTS / "alerts.parquet"

    @property
    def sparkplug_status_path(self) -> Path:
        """Sparkplug B nodes' and devices' state (ingest/sparkplug_ingest.py)."""
        return self.root / "sparkplug" / "device_status.parquet"

    def drivers_path(self, name: str) -> Path:
        """production, lines or weather (warehouse/drivers.py)."""
        return self.root / "drivers" / f"{name}.parquet"

    def whole_path(self, name: str) -> Path:
        """The one file of a table in WHOLE."""
        return self.root / name / f"{name}.parquet"

    def part_files(self, table: str, writer: str | None = None) -> Iterator[tuple[int, Path]]:
        """(batch number, path) of every data file, optionally of one writer."""
        for partition in self.partitions(table):
            for path in partition.iterdir():
                match = _PART_RE.match(path.name)
                if match and (writer is None or match["writer"] == writer):
                    yield int(match["batch"]), path

    def recent_files_first(self, table: str, writer: str) -> list[Path]:
        """A writer's own files, newest batch first, then compacted files, newest first:
        where the keys of a writer's recent landings are (compaction may have merged them)."""
        own = [p for _, p in sorted(self.part_files(table, writer), reverse=True)]
        merged = [p for p in self.data_files(table) if is_compacted(p)]
        return own + sorted(merged, key=lambda p: p.stat().st_mtime_ns, reverse=True)

    def next_batch(self, writer: str) -> int:
        numbers = [n for table in (READINGS, QUARANTINE) for n, _ in self.part_files(table, writer)]
        return max(numbers, default=0) + 1

    def land(self, *tables: tuple[str, pl.DataFrame, str], writer: str, batch: int) -> None:
        """Land one batch's frames durably: (table, frame, date column) each.

        Delta tables commit one version per table; a crash between two commits leaves
        the first landed and the batch unacked, and its redelivery is deduplicated.
        """
        for table, frame, date_col in tables:
            if self.delta is not None and self.is_delta(table):
                self.delta.append(table, frame, date_col, writer, batch)
            else:
                self.write_partitioned(table, frame, date_col, writer, batch)

    def write_partitioned(
        self, table: str, frame: pl.DataFrame, date_col: str, writer: str, batch: int
    ) -> list[Path]:
        """Write one file per UTC date of `date_col`; return the paths written."""
        if frame.is_empty():
            return []
        written = []
        dates = frame.get_column(date_col).dt.date()
        parts = frame.with_columns(_date=dates).partition_by(
            "_date", as_dict=True, maintain_order=True
        )
        with self.table_lock(table, exclusive=False):
            for (day,), part in parts.items():
                name = f"part-{writer}-{batch:012d}.parquet"
                target = self.table_dir(table) / f"{PARTITION_PREFIX}{day.isoformat()}" / name
                write_atomic(part.drop("_date"), target)
                written.append(target)
        return written


def is_data_file(name: str) -> bool:
    return bool(_PART_RE.match(name) or _COMPACT_RE.match(name))


def is_compacted(path: Path) -> bool:
    return bool(_COMPACT_RE.match(path.name))


def data_files_in(partition: Path) -> list[Path]:
    """The data files of one partition directory (none when it does not exist)."""
    if not partition.is_dir():
        return []
    return [p for p in partition.iterdir() if is_data_file(p.name)]


def write_atomic(frame: pl.DataFrame, target: Path) -> None:
    """Write Parquet under a temporary name, fsync it, rename it into place, fsync the dir."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unique per writer: two processes preparing the same lake must not share a temp file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as handle:
            pq.write_table(
                frame.to_arrow(),
                handle,
                compression="zstd",
                row_group_size=ROW_GROUP_ROWS,
                write_statistics=True,
                # dictionaries pay for ids and states, not for measurements (-15 % CPU)
                use_dictionary=[c for c, t in frame.schema.items() if t == pl.String],
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LakeError(f"could not write {target}: {exc}") from exc


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
