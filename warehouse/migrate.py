"""`wattline lake migrate`: a hive-partitioned Parquet lake into Delta tables, day by day.

Each UTC day of readings and quarantine is read from its ``date=D`` directory,
deduplicated as compaction would (first landed copy wins), sorted, committed to the
Delta table as one version, read back, and compared by row count and an order-free
checksum of every row. A day already in the Delta table is checked the same way and
not written again, so an interrupted migration is simply run again. The Parquet files
are left where they are: with ``lake.format = "delta"`` nothing reads them, and they
can be deleted once the figures have been looked at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from warehouse.compact import _landing_order, settle_rows
from warehouse.delta import DeltaTables
from warehouse.lake import PARTITION_PREFIX, QUARANTINE, READINGS, Lake, data_files_in

log = logging.getLogger(__name__)


class MigrationError(Exception):
    """A migrated day does not read back as it was written; nothing after it was done."""


@dataclass
class MigrationReport:
    days: list[tuple[str, date, int]] = field(default_factory=list)  # table, day, rows
    skipped: list[tuple[str, date]] = field(default_factory=list)
    duplicates: int = 0

    def summary(self) -> str:
        rows = sum(n for _, _, n in self.days)
        return (
            f"migrate: {len(self.days)} days written ({rows} rows, {self.duplicates} duplicates "
            f"dropped), {len(self.skipped)} days already in Delta and verified"
        )


def checksum(frame: pl.DataFrame) -> tuple[int, int]:
    """(rows, order-free sum of row hashes) over the columns in a fixed order."""
    if frame.is_empty():
        return 0, 0
    cols = sorted(frame.columns)
    rows = frame.select(cols)
    # two independent 64-bit row hashes, each summed modulo 2**64 (order-free): a changed
    # value escapes both only by a 2**-128 chance
    total = 0
    for seed in (0x5741, 0x7474):
        hashes = rows.hash_rows(seed=seed).cast(pl.Decimal(38, 0)).sum()
        total = (total << 64) | (int(hashes) % (1 << 64))
    return frame.height, total


def migrate(source: Lake, target: DeltaTables) -> MigrationReport:
    report = MigrationReport()
    for table in (READINGS, QUARANTINE):
        in_delta = target.days(table)
        for partition in sorted(source.partitions(table)):
            day = date.fromisoformat(partition.name.removeprefix(PARTITION_PREFIX))
            files = _landing_order(data_files_in(partition))
            if not files:
                continue
            frame = pl.read_parquet([str(p) for p in files], hive_partitioning=False)
            kept, duplicates, _ = settle_rows(table, frame)
            expected = checksum(kept)
            if day in in_delta:
                if _read_back(target, table, day) != expected:
                    raise MigrationError(
                        f"{table} {day}: already in the Delta table with other rows; "
                        "move the Delta day aside or delete it before migrating again"
                    )
                report.skipped.append((table, day))
                continue
            date_col = "ts" if table == READINGS else "received_at"
            target.append(table, kept, date_col, "migrate", day.toordinal())
            got = _read_back(target, table, day)
            if got != expected:
                raise MigrationError(f"{table} {day}: wrote {expected}, read back {got}")
            report.days.append((table, day, kept.height))
            report.duplicates += duplicates
            log.info("migrated %s %s rows=%d duplicates=%d", table, day, kept.height, duplicates)
    log.info(report.summary())
    return report


def _read_back(target: DeltaTables, table: str, day: date) -> tuple[int, int]:
    files = [f.uri for f in target.files(table) if f.day == day]
    if not files:
        return 0, 0
    frame = pl.read_parquet(
        files, hive_partitioning=False, storage_options=target.storage_options or None
    )
    return checksum(frame.drop("date", strict=False))
