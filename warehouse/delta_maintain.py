"""Compaction, deduplication and retention of the Delta tables, with Delta's own operations.

Per table and UTC day:

- a day still being written (newest file younger than `settle_s`, or today) with two or
  more settled files is merged by Delta OPTIMIZE: it only removes the files it merged,
  so it never conflicts with writers appending to that day meanwhile;
- a settled day with two or more files is rewritten in one version, sorted by
  (device_id, ts) and with repeated keys dropped (the first landed copy wins; copies
  whose values differ are counted as conflicts): Delta's overwrite with a predicate
  (replaceWhere). On a local disk the commit removes exactly the files it read, so
  appends meanwhile (a late file for that very day included) stay and are merged by the
  next run; only another process's compaction of the same files makes it give way;
- days past `retention_days` are deleted (a metadata-only Delta DELETE);
- vacuum deletes the files no version of the last `grace_s` reads, so a query that
  started on an older version finishes on the files it listed.

Each step is one commit, so a reader sees the day before it or after it, never a mix.
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta

import polars as pl
from deltalake.exceptions import CommitFailedError, DeltaError

from warehouse.compact import MaintenanceReport, PartitionReport, settle_rows
from warehouse.delta import DataFile, DeltaTables, settled
from warehouse.delta_log import Conflict
from warehouse.lake import QUARANTINE, READINGS

log = logging.getLogger(__name__)


def maintain_delta(
    tables: DeltaTables,
    *,
    today: date,
    now: float,
    settle_s: float,
    retention_days: int,
    grace_s: float,
    names: tuple[str, ...] = (READINGS, QUARANTINE),
) -> MaintenanceReport:
    report = MaintenanceReport()
    for table in names:
        if tables.table(table) is None:
            continue
        if retention_days > 0:
            expired = tables.expire_before(table, today - timedelta(days=retention_days))
            report.expired += [(table, d) for d in expired]
        for day, files in sorted(tables.days(table).items()):
            ready = settled(files, now, settle_s)
            if len(ready) < 2:
                continue
            try:
                if day < today and len(ready) == len(files):
                    report.compacted.append(_rewrite_day(tables, table, day, files))
                else:
                    report.compacted.append(_optimize_day(tables, table, day, ready))
            except (CommitFailedError, DeltaError, Conflict) as exc:
                log.warning("compaction %s %s deferred to the next run: %s", table, day, exc)
        report.purged += tables.vacuum(table, grace_s)
    log.info(report.summary())
    return report


def _optimize_day(
    tables: DeltaTables, table: str, day: date, files: list[DataFile]
) -> PartitionReport:
    started = time.perf_counter()
    removed = tables.compact_day(table, day, files)
    rows = sum(f.rows for f in files)
    return PartitionReport(table, day, removed, rows, rows, 0, 0, 0, time.perf_counter() - started)


def _rewrite_day(
    tables: DeltaTables, table: str, day: date, files: list[DataFile]
) -> PartitionReport:
    started = time.perf_counter()
    ordered = sorted(files, key=lambda f: f.mtime_ms)
    frame = pl.read_parquet(
        [f.uri for f in ordered],
        hive_partitioning=False,
        storage_options=tables.storage_options or None,
    )
    frame = frame.drop("date", strict=False)
    kept, duplicates, conflicts = settle_rows(table, frame)
    tables.rewrite_day(table, day, kept, files)
    if conflicts:
        log.warning(
            "compaction %s %s: %d keys landed twice with different values; kept the first",
            table,
            day,
            conflicts,
        )
    result = PartitionReport(
        table,
        day,
        len(files),
        frame.height,
        kept.height,
        duplicates,
        conflicts,
        0,
        time.perf_counter() - started,
    )
    log.info(
        "compacted %s %s files=%d rows=%d->%d duplicates=%d %.2fs",
        table,
        day,
        len(files),
        frame.height,
        kept.height,
        duplicates,
        result.seconds,
    )
    return result
