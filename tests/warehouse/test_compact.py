"""Compaction and retention on real Parquet files, with real writers and DuckDB readers
running at the same time: nothing lost, nothing counted twice, first landing wins."""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from schemas.readings import QUARANTINE_SCHEMA, READING_SCHEMA
from warehouse.catalog import connect_readonly, ensure_catalog
from warehouse.compact import (
    STAGING,
    TRASH,
    CompactionBusy,
    MaintenanceReport,
    _compactor,
    maintain,
)
from warehouse.lake import QUARANTINE, READINGS, Lake
from wattline.config import CatalogSettings, LakeSettings, Settings
from wattline.jobs import run_jobs

DAY = date(2026, 10, 5)
TODAY = date(2026, 10, 10)


def readings(
    devices: list[str], start: datetime, minutes: int, power: float = 10.0
) -> pl.DataFrame:
    """`minutes` one-minute readings per device, every column of the contract present."""
    rows = [
        {"device_id": d, "ts": start + timedelta(minutes=m), "power_kw": power + m}
        for d in devices
        for m in range(minutes)
    ]
    return conform(pl.DataFrame(rows).with_columns(site=pl.lit("plant-sh")), READING_SCHEMA)


def conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """`frame` with the schema's other columns as nulls, in the schema's order and types."""
    missing = [pl.lit(None, t).alias(n) for n, t in schema.items() if n not in frame.columns]
    return frame.with_columns(missing).select(schema.names()).cast(schema)


def quarantined(ids: list[str], at: datetime) -> pl.DataFrame:
    frame = pl.DataFrame(
        {"received_at": [at] * len(ids), "reason": ["bad_json"] * len(ids), "quarantine_id": ids}
    )
    return conform(frame, QUARANTINE_SCHEMA)


def start_of(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def files(lake: Lake, table: str, day: date) -> list[str]:
    return sorted(p.name for p in (lake.table_dir(table) / f"date={day}").iterdir())


def run(lake: Lake, **kw: object) -> MaintenanceReport:
    args: dict[str, object] = dict(
        today=TODAY, now=time.time(), settle_s=0.0, retention_days=0, grace_s=600.0
    )
    args.update(kw)
    return maintain(lake, **args)  # type: ignore[arg-type]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    lake.prepare()
    return lake


def test_a_day_of_small_files_becomes_one_sorted_file_and_the_first_landing_wins(
    lake: Lake, tmp_path: Path
) -> None:
    devices = [f"m-{i:02d}" for i in range(5)]
    for batch in range(1, 11):  # ten flushes, each a slice of the day
        landed = readings(devices, start_of(DAY, batch), 30)
        lake.write_partitioned(READINGS, landed, "ts", "c1", batch)
        time.sleep(0.002)  # distinct mtimes: landing order is observable
    # A replay of batch 3 (same values) and a conflicting copy of one reading of batch 4.
    lake.write_partitioned(READINGS, readings(devices, start_of(DAY, 3), 30), "ts", "c1", 11)
    clash = readings(["m-00"], start_of(DAY, 4), 1, power=999.0)
    lake.write_partitioned(READINGS, clash, "ts", "c1", 12)
    catalog = tmp_path / "catalog.duckdb"
    ensure_catalog(catalog, lake)

    report = run(lake)

    (part,) = report.compacted
    assert (part.files_in, part.rows_in, part.rows_out) == (12, 1651, 1500)
    assert (part.duplicates, part.conflicts, part.late_files) == (151, 1, 0)
    (name,) = files(lake, READINGS, DAY)
    assert name.startswith("compact-")
    out = pl.read_parquet(lake.table_dir(READINGS) / f"date={DAY}" / name)
    assert out.equals(out.sort("device_id", "ts"))
    first = out.filter(pl.col("device_id") == "m-00", pl.col("ts") == start_of(DAY, 4))
    assert first["power_kw"].to_list() == [10.0]  # the first landed copy, not the later 999
    con = connect_readonly(catalog)
    try:
        n, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (device_id, ts)) FROM readings"
        ).fetchall()[0]
    finally:
        con.close()
    assert n == distinct == 1500
    assert not any((lake.table_dir(READINGS) / STAGING).iterdir())
    assert len(list((lake.table_dir(READINGS) / TRASH).iterdir())) == 1


def test_settled_files_are_merged_fresh_ones_carried_over_and_one_file_left_alone(
    lake: Lake,
) -> None:
    for day in (DAY, TODAY):
        for batch in (1, 2, 3):
            lake.write_partitioned(
                READINGS, readings(["m-1"], start_of(day, batch), 5), "ts", "c", batch
            )
    now = time.time()
    for path in lake.data_files(READINGS):  # batches 1 and 2 landed two hours ago
        if not path.name.endswith("3.parquet"):
            os.utime(path, (now - 7200, now - 7200))

    assert run(lake, now=now, settle_s=3 * 3600).compacted == []
    report = run(lake, now=now, settle_s=3600)  # today too: the current day must not pile up
    assert [(p.day, p.files_in, p.late_files) for p in report.compacted] == [
        (DAY, 2, 1),
        (TODAY, 2, 1),
    ]
    for day in (DAY, TODAY):
        names = files(lake, READINGS, day)
        assert (
            len(names) == 2 and names[0].startswith("compact-") and names[1].endswith("3.parquet")
        )
    assert run(lake, now=now, settle_s=3600).compacted == []  # the fresh file is not settled
    assert [p.files_in for p in run(lake, now=now + 3700, settle_s=3600).compacted] == [2, 2]
    assert run(lake, now=now + 3700, settle_s=0).compacted == []  # one file: left alone
    total = sum(pl.read_parquet(p).height for p in lake.data_files(READINGS))
    assert total == 2 * 3 * 5


def test_trash_is_purged_after_the_grace_period_only(lake: Lake) -> None:
    for batch in (1, 2):
        lake.write_partitioned(
            READINGS, readings(["m-1"], start_of(DAY, batch), 5), "ts", "c", batch
        )
    now = time.time()
    run(lake, now=now, grace_s=600)
    trash = lake.table_dir(READINGS) / TRASH
    assert len(list(trash.iterdir())) == 1
    assert run(lake, now=now + 599, grace_s=600).purged == 0
    assert run(lake, now=now + 601, grace_s=600).purged == 1
    assert list(trash.iterdir()) == []


def test_retention_expires_old_days_of_readings_and_quarantine(lake: Lake) -> None:
    for day in (date(2026, 9, 1), date(2026, 9, 9), date(2026, 9, 10)):
        lake.write_partitioned(READINGS, readings(["m-1"], start_of(day), 5), "ts", "c", 1)
        q = quarantined([f"q{day}"], start_of(day))
        lake.write_partitioned(QUARANTINE, q, "received_at", "c", 1)

    report = run(lake, today=date(2026, 10, 10), retention_days=30, grace_s=0)

    assert sorted(report.expired) == [
        (QUARANTINE, date(2026, 9, 1)),
        (QUARANTINE, date(2026, 9, 9)),
        (READINGS, date(2026, 9, 1)),
        (READINGS, date(2026, 9, 9)),
    ]
    for table in (READINGS, QUARANTINE):
        assert sorted(p.name for p in lake.partitions(table)) == ["date=2026-09-10"]
        assert list((lake.table_dir(table) / TRASH).iterdir()) == []  # grace 0: gone


def test_quarantine_keeps_one_row_per_quarantine_id(lake: Lake) -> None:
    lake.write_partitioned(
        QUARANTINE, quarantined(["a", "b"], start_of(DAY)), "received_at", "c", 1
    )
    lake.write_partitioned(
        QUARANTINE, quarantined(["b", "c"], start_of(DAY)), "received_at", "c", 2
    )
    (part,) = [p for p in run(lake).compacted if p.table == QUARANTINE]
    assert (part.rows_in, part.rows_out, part.duplicates) == (4, 3, 1)


def test_a_crashed_compaction_leaves_only_invisible_staging_which_the_next_run_clears(
    lake: Lake, tmp_path: Path
) -> None:
    lake.write_partitioned(READINGS, readings(["m-1"], start_of(DAY), 5), "ts", "c", 1)
    leftover = lake.table_dir(READINGS) / STAGING / f"date={DAY}.crashed"
    leftover.mkdir(parents=True)
    pl.read_parquet(next(lake.data_files(READINGS))).write_parquet(leftover / "compact-x.parquet")
    catalog = tmp_path / "c.duckdb"
    ensure_catalog(catalog, lake)
    con = connect_readonly(catalog)
    try:
        assert con.execute("SELECT count(*) FROM readings").fetchall() == [(5,)]
    finally:
        con.close()
    run(lake, settle_s=10**9)  # nothing settled, staging still cleared
    assert list(leftover.parent.iterdir()) == []


def test_a_second_compactor_is_told_not_queued(lake: Lake) -> None:
    with _compactor(lake, READINGS), pytest.raises(CompactionBusy, match="another compaction"):
        run(lake)


def test_writers_and_readers_during_repeated_compaction_lose_and_double_nothing(
    lake: Lake, tmp_path: Path
) -> None:
    """A writer lands files into the day being compacted while DuckDB readers count."""
    catalog = tmp_path / "c.duckdb"
    ensure_catalog(catalog, lake)
    devices = [f"m-{i:03d}" for i in range(40)]
    stop = threading.Event()
    written: list[int] = []
    seen: list[tuple[int, int]] = []
    failures: list[str] = []

    def write() -> None:
        batch = 0
        while not stop.is_set() and batch < 400:
            batch += 1
            minute = start_of(DAY) + timedelta(minutes=batch)
            landed = readings(devices, minute, 1)
            lake.write_partitioned(READINGS, landed, "ts", "w", batch)
            written.append(landed.height)

    def read() -> None:
        con = connect_readonly(catalog)
        try:
            while not stop.is_set():
                try:
                    n, distinct = con.execute(
                        "SELECT count(*), count(DISTINCT (device_id, ts)) FROM readings"
                    ).fetchall()[0]
                    seen.append((n, distinct))
                except duckdb.IOException as exc:
                    failures.append(str(exc))
        finally:
            con.close()

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for t in threads:
        t.start()
    compactions = late = 0
    deadline = time.monotonic() + 20
    while threads[0].is_alive() and time.monotonic() < deadline:
        for part in run(lake, grace_s=0.0).compacted:
            compactions += 1
            late += part.late_files
    threads[0].join()
    stop.set()
    threads[1].join()
    run(lake, grace_s=0.0)

    total = sum(written)
    assert compactions >= 3
    out = pl.read_parquet([str(p) for p in lake.data_files(READINGS)])
    assert out.height == out.select("device_id", "ts").n_unique() == total == 400 * 40
    assert len(files(lake, READINGS, DAY)) == 1
    # Every successful count is exact (no file counted twice) and never goes backwards.
    assert seen, "no reader query succeeded"
    assert all(n == d for n, d in seen)
    drops = [(a, b) for (a, _), (b, _) in itertools.pairwise(seen) if b < a]
    assert not drops, (drops[:10], compactions)
    assert all("No such file" in f for f in failures)
    print(f"compactions={compactions} late_files={late} reads={len(seen)} failed={len(failures)}")


def test_jobs_after_compaction_give_the_same_tables(tmp_path: Path) -> None:
    from edge.devices import DEMO_DATA_DIR
    from schemas.calendar import parse_shift_calendar
    from tests.wattline.test_jobs import MONDAY_LOCAL, land
    from warehouse.registry import load_registry

    settings = Settings(
        lake=LakeSettings(tmp_path / "lake", compact_settle_s=0.0),
        catalog=CatalogSettings(tmp_path / "c.duckdb"),
    )
    lake = Lake(settings.lake.root)
    load_registry(
        lake, DEMO_DATA_DIR / "devices.csv", DEMO_DATA_DIR / "sites.csv", parse_shift_calendar
    )
    for batch in range(4):  # four landings, all of the same two days: many files per day
        start = MONDAY_LOCAL + timedelta(hours=12 * batch)
        land(lake, start, start + timedelta(hours=12), batch=batch + 1)
    run_jobs(settings, compact=False)

    def table(name: str) -> pl.DataFrame:
        con = connect_readonly(settings.catalog.path)
        try:
            frame: pl.DataFrame = con.sql(f"SELECT * FROM {name} ORDER BY ALL").pl()
        finally:
            con.close()
        return frame

    before = table("load_factor"), table("alerts").drop("last_seen_at", strict=False)
    many = sum(1 for _ in lake.data_files(READINGS))
    report = run_jobs(settings)  # compacts, then recomputes the days compaction rewrote
    assert report.days, "compacted files must count as new input"
    assert sum(1 for _ in lake.data_files(READINGS)) < many
    after = table("load_factor"), table("alerts").drop("last_seen_at", strict=False)
    assert before[0].equals(after[0])
    assert before[1].equals(after[1])
    assert os.path.exists(settings.lake.root / READINGS / TRASH)


def test_duckdb_estimates_readings_from_a_data_file_not_the_empty_schema_file(
    lake: Lake, tmp_path: Path
) -> None:
    """DuckDB sized a glob as rows(first file) x files, and as 1 row once a date filter
    pruned the first file: analysts' joins of readings with devices built their hash
    table on the readings (warehouse/catalog.py, view_sql)."""
    for k in range(3):
        landed = readings([f"m-{i:03d}" for i in range(50)], start_of(DAY + timedelta(k)), 100)
        lake.write_partitioned(READINGS, landed, "ts", "c", k + 1)
    catalog = tmp_path / "c.duckdb"
    ensure_catalog(catalog, lake)
    con = connect_readonly(catalog)
    try:
        plans = [
            con.execute(f"EXPLAIN SELECT device_id, power_kw FROM readings {where}").fetchall()
            for where in ("", f"WHERE date > DATE '{DAY}'")  # the first file pruned
        ]
    finally:
        con.close()
    for plan, rows in zip(plans, (15_000, 10_000), strict=True):
        estimates = [int(m.replace(",", "")) for m in re.findall(r"~([\d,]+) rows", plan[0][1])]
        assert estimates and min(estimates) >= rows, plan[0][1]


def test_prepare_moves_an_older_lakes_schema_file_to_the_end_of_the_glob(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    old = lake.table_dir(READINGS) / "date=1970-01-01" / "_schema.parquet"
    old.parent.mkdir(parents=True)
    READING_SCHEMA.to_frame().write_parquet(old)
    lake.prepare()
    assert not old.parent.exists()
    assert (lake.table_dir(READINGS) / "date=9999-12-31" / "_schema.parquet").exists()
