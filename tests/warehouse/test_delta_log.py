"""Wattline's own Delta commits on a local disk: races, conflicts, readers, checkpoints."""

from __future__ import annotations

import json
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable

from tests.warehouse.test_delta import PAST, TODAY, delta_lake, delta_tables, readings
from warehouse.delta import DeltaTables
from warehouse.delta_log import CHECKPOINT_EVERY, Conflict
from warehouse.delta_maintain import maintain_delta
from warehouse.lake import READINGS


def _append_many(root: str, writer: str, n: int) -> None:
    tables = DeltaTables(root)
    for k in range(n):
        device = f"{writer}-{k % 4}"
        tables.append(READINGS, readings(TODAY, k * 10, 10, device=device), "ts", writer, k)


def commits(table_dir: Path) -> list[list[dict[str, Any]]]:
    return [
        [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
        for p in sorted((table_dir / "_delta_log").glob("*.json"))
    ]


def test_writers_in_two_processes_race_for_versions_and_lose_nothing(tmp_path: Path) -> None:
    lake = delta_lake(tmp_path / "lake")
    assert lake.delta is not None
    lake.delta.append(READINGS, readings(PAST, 0, 1), "ts", "seed", 0)  # creates the table
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(lake.root), w, 120)) for w in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    table_dir = tmp_path / "lake" / "delta" / READINGS
    log = commits(table_dir)
    batches = [
        (a["commitInfo"]["wattline.writer"], a["commitInfo"]["wattline.batch"])
        for c in log[2:]  # after the create and the seed
        for a in c
        if "commitInfo" in a
    ]
    assert len(log) == 242 and sorted(batches) == sorted({*batches})  # each batch once
    assert not list((table_dir / "_delta_log").glob(".tmp-*")), "no temporary commit left"
    dt = DeltaTable(str(table_dir))
    assert dt.version() == 241
    frame = pl.from_arrow(dt.to_pyarrow_table())
    assert isinstance(frame, pl.DataFrame)
    assert frame.height == 1 + 2 * 120 * 10
    assert frame.select(pl.struct("device_id", "ts").n_unique()).item() == frame.height
    assert (table_dir / "_delta_log" / "_last_checkpoint").exists()
    checkpoint = json.loads((table_dir / "_delta_log" / "_last_checkpoint").read_text())
    assert checkpoint["version"] == 2 * CHECKPOINT_EVERY


def test_readers_use_the_stats_and_see_every_row(tmp_path: Path) -> None:
    _, tables = delta_tables(tmp_path / "lake")
    for k in range(6):  # 6 hours of one day, one file an hour
        tables.append(READINGS, readings(PAST, k * 3600, 3600), "ts", "w", k)
    uri = tables.uri(READINGS)
    t0 = datetime(PAST.year, PAST.month, PAST.day, 2, tzinfo=UTC)
    hour = pl.col("ts").is_between(t0, t0 + timedelta(hours=1), closed="left")
    assert pl.scan_delta(uri).filter(hour).select(pl.len()).collect().item() == 3600
    add = [a["add"] for c in commits(Path(uri)) for a in c if "add" in a]  # one an hour
    stats = json.loads(add[2]["stats"])
    assert stats["numRecords"] == 3600
    assert stats["minValues"]["ts"].startswith(t0.strftime("%Y-%m-%dT%H:%M:%S"))
    assert stats["nullCount"] == {"site": 0, "device_id": 0, "ts": 0, "power_kw": 0}
    dataset = DeltaTable(uri).to_pyarrow_dataset()
    assert dataset.count_rows() == 6 * 3600
    files = [f.uri for f in tables.files(READINGS)]
    con = duckdb.connect()
    got = con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchall()
    con.close()
    assert got == [(6 * 3600,)] and len(files) == 6


def test_a_rewrite_keeps_a_late_file_landed_while_it_ran(tmp_path: Path) -> None:
    lake, tables = delta_tables(tmp_path / "lake")
    tables.append(READINGS, readings(PAST, 0, 100), "ts", "w", 1)
    tables.append(READINGS, readings(PAST, 50, 100), "ts", "w", 2)
    files = tables.days(READINGS)[PAST]
    late = DeltaTables(str(lake.root))  # another consumer, appending between read and commit
    late.append(READINGS, readings(PAST, 1000, 10, device="late"), "ts", "x", 1)
    merged = readings(PAST, 0, 150)
    tables.rewrite_day(READINGS, PAST, merged, files)
    now = tables.days(READINGS)[PAST]
    assert sorted(f.rows for f in now) == [10, 150]  # the late file stays beside the merge


def test_a_rewrite_gives_way_when_its_files_were_compacted_meanwhile(tmp_path: Path) -> None:
    lake, tables = delta_tables(tmp_path / "lake")
    tables.append(READINGS, readings(PAST, 0, 100), "ts", "w", 1)
    tables.append(READINGS, readings(PAST, 0, 100), "ts", "w", 2)  # the same rows again
    files = tables.days(READINGS)[PAST]
    other = DeltaTables(str(lake.root))  # another maintenance run got there first
    report = maintain_delta(
        other, today=TODAY, now=time.time(), settle_s=0, retention_days=0, grace_s=3600
    )
    assert [p.rows_out for p in report.compacted] == [100]
    with pytest.raises(Conflict, match="removed"):
        tables.rewrite_day(READINGS, PAST, readings(PAST, 0, 100), files)
    assert [f.rows for f in tables.days(READINGS)[PAST]] == [100], "never doubled"


def test_an_append_after_a_metadata_change_goes_through_delta_rs(tmp_path: Path) -> None:
    _, tables = delta_tables(tmp_path / "lake")
    tables.append(READINGS, readings(TODAY, 0, 10), "ts", "w", 1)
    tables.append(READINGS, readings(TODAY, 10, 10), "ts", "w", 2)  # the own path is warm
    dt = DeltaTable(tables.uri(READINGS))
    dt.alter.set_table_properties({"delta.logRetentionDuration": "interval 60 days"})
    version = tables.append(READINGS, readings(TODAY, 20, 10), "ts", "w", 3)
    last = commits(Path(tables.uri(READINGS)))[-1]
    assert version == 4  # 0 created the table, 1 and 2 appended, 3 set the property
    assert last[0]["commitInfo"]["clientVersion"].startswith("delta-rs"), "fell back"
    assert tables.append(READINGS, readings(TODAY, 30, 10), "ts", "w", 4) == 5
    assert commits(Path(tables.uri(READINGS)))[-1][0]["commitInfo"]["clientVersion"] == "wattline"
    assert DeltaTable(tables.uri(READINGS)).to_pyarrow_dataset().count_rows() == 40


def test_expiry_removes_old_days_in_one_commit_of_removes(tmp_path: Path) -> None:
    _, tables = delta_tables(tmp_path / "lake")
    old = TODAY - timedelta(days=40)
    tables.append(READINGS, readings(old, 0, 10), "ts", "w", 1)
    tables.append(READINGS, readings(old - timedelta(days=1), 0, 10), "ts", "w", 2)
    tables.append(READINGS, readings(TODAY, 0, 10), "ts", "w", 3)
    assert tables.expire_before(READINGS, TODAY - timedelta(days=30)) == [
        old - timedelta(days=1),
        old,
    ]
    last = commits(Path(tables.uri(READINGS)))[-1]
    assert [next(iter(a)) for a in last] == ["commitInfo", "remove", "remove"]
    assert set(tables.days(READINGS)) == {TODAY}


def test_log_replay_lists_what_delta_rs_lists(tmp_path: Path) -> None:
    """Own and delta-rs commits mixed, a checkpoint, rewrite, OPTIMIZE, expiry: the file
    list by our replay (what readers use) is delta-rs's, file for file."""
    lake, tables = delta_tables(tmp_path / "lake")
    rs = DeltaTables(str(lake.root), own_commits=False)
    old = TODAY - timedelta(days=40)
    tables.append(READINGS, readings(old, 0, 5), "ts", "w", 0)
    for k in range(CHECKPOINT_EVERY + 5):
        day = PAST if k % 2 else TODAY
        (rs if k % 7 == 3 else tables).append(READINGS, readings(day, k * 10, 10), "ts", "w", k)
    tables.wait_checkpoint(READINGS)
    assert (Path(tables.uri(READINGS)) / "_delta_log" / "_last_checkpoint").exists()
    rs.compact_day(READINGS, TODAY)  # delta-rs OPTIMIZE: removes and adds
    maintain_delta(
        tables, today=TODAY, now=time.time(), settle_s=0, retention_days=30, grace_s=3600
    )

    def listing(t: DeltaTables) -> list[tuple[str, int, int]]:
        return sorted((f.path, f.size, f.rows) for f in t.files(READINGS))

    ours = listing(tables)
    assert ours == listing(rs)
    assert {p.split("/")[0] for p, _, _ in ours} == {f"date={PAST}", f"date={TODAY}"}
    assert sum(r for _, _, r in ours) == (CHECKPOINT_EVERY + 5) * 10
