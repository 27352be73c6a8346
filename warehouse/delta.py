"""Readings and quarantine as Delta Lake tables: snapshots, many writers, object storage.

    <lake root>/delta/readings/_delta_log/00000000000000000042.json   the commits
    <lake root>/delta/readings/date=2026-12-01/part-...zstd.parquet  the data (hive layout)

Why Delta (measured on this machine, README "Table format"): a `deltalake` append
commits in 18 ms (1,000 rows) and 52 ms (200,000 rows) against pyiceberg's 39 ms and
115 ms with a SQLite catalog; DuckLake has no build for DuckDB 2.0. A commit is one
new log file created with put-if-absent, so any number of writers (processes or hosts)
append to one table: on a local disk by an atomic no-replace rename, on S3-compatible
storage by a conditional PUT (``conditional_put = "etag"``), so no catalog server is
needed. A reader lists the files of one version and reads exactly those: compaction
and retention write new versions and leave the old files for ``grace_s`` (vacuum), so
a query running across them never fails and never sees a day twice or half.

On a local disk Wattline writes its appends and file replacements (compaction, dedup,
expiry) itself, per the Delta protocol (warehouse/delta_log.py): an append costs a few
milliseconds however many files the table has, and neither kind waits for the other.
delta-rs creates the table, checkpoints and vacuums it, and does every commit on object
storage.

Durability: delta-rs does not fsync on a local disk, so after each of its commits the new
data files, the commit file and their directories are fsynced before the batch is acked
(Wattline's own commits fsync each of these before and after the link).
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from warehouse.delta_log import Added, Conflict, OwnLog, Unsupported
from warehouse.delta_store import FileStore, S3PgStore
from warehouse.lake import LakeError, fsync_dir  # fsync_dir opens read-only: files too

if TYPE_CHECKING:
    from deltalake import DeltaTable

# deltalake is imported where it is used: a reader that lists a local table's files by
# log replay (warehouse/delta_log.py) never loads it (18 MB of RSS).

log = logging.getLogger(__name__)

DELTA_DIR: Final = "delta"
REOPEN_EVERY: Final = 50
DATE: Final = "date"
TARGET_FILE_BYTES: Final = 256 * 1024 * 1024
APPEND_ATTEMPTS: Final = 5


@dataclass(frozen=True)
class DataFile:
    """One file of a table's current version, as the log records it."""

    uri: str
    size: int
    mtime_ms: int
    day: date
    rows: int
    path: str = ""  # relative to the table, as the log has it
    version: int = -1  # the version it was listed from


@dataclass
class DeltaTables:
    """The lake's Delta tables under one root URI (a local path or ``s3://bucket/prefix``)."""

    root: str
    storage_options: dict[str, str] = field(default_factory=dict)
    _open: dict[str, DeltaTable] = field(default_factory=dict, repr=False)
    _uses: dict[str, int] = field(default_factory=dict, repr=False)
    _logs: dict[str, OwnLog] = field(default_factory=dict, repr=False)
    own_commits: bool = True  # False: every commit through delta-rs (tests compare the two)
    # postgresql://...: on object storage, PostgreSQL orders the commits (delta_store.py)
    catalog_url: str = ""

    @property
    def coordinated(self) -> bool:
        return not self.local and bool(self.catalog_url)

    @property
    def own(self) -> bool:
        """Whether Wattline writes the commits itself (else delta-rs does)."""
        return self.own_commits and (self.local or self.coordinated)

    @property
    def local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    @property
    def root_uri(self) -> str:
        """The root as an absolute path (local) or the URI as given."""
        return str(Path(self.root.removeprefix("file://")).resolve()) if self.local else self.root

    def uri(self, table: str) -> str:
        base = self.root.rstrip("/")
        if self.local:
            return str(Path(base.removeprefix("file://")).resolve() / DELTA_DIR / table)
        return f"{base}/{DELTA_DIR}/{table}"

    def log(self, table: str) -> OwnLog | None:
        """Wattline's own committer for `table` once the table exists (see `own`)."""
        if not self.own:
            return None
        own = self._committer(table)
        return own if own.exists() else None

    def _committer(self, table: str) -> OwnLog:
        own = self._logs.get(table)
        if own is None:
            if self.local:
                store: FileStore | S3PgStore = FileStore(Path(self.uri(table)))
            else:
                store = S3PgStore(self.uri(table), self.storage_options, self.catalog_url)
            own = self._logs[table] = OwnLog(store, DATE)
        return own

    def close(self) -> None:
        """Close the PostgreSQL connections of coordinated tables."""
        for own in self._logs.values():
            if isinstance(own.store, S3PgStore):
                own.store.close()

    def table(self, table: str) -> DeltaTable | None:
        """The table at its newest version, or None before its first commit."""
        dt = self._open.get(table)
        # A DeltaTable kept open and updated commit after commit gets slower to write
        # through (measured, deltalake 1.6.6, 2,000-row appends: 16 ms at the 50th commit,
        # 62 ms at the 450th); one opened afresh starts from the last checkpoint. Reopened
        # every REOPEN_EVERY uses: 9 ms and 22 ms.
        uses = self._uses.get(table, 0) + 1
        if uses > REOPEN_EVERY:
            dt, uses = None, 1
        self._uses[table] = uses
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            if dt is None:
                dt = DeltaTable(self.uri(table), storage_options=self.storage_options or None)
                self._open[table] = dt
            else:
                dt.update_incremental()
        except TableNotFoundError:
            return None
        return dt

    def append(
        self, table: str, frame: pl.DataFrame, date_col: str, writer: str, batch: int
    ) -> int | None:
        """Commit `frame` as one new version (partitioned by the UTC date of `date_col`).

        Returns the version, durable when this returns; None for an empty frame.
        """
        if frame.is_empty():
            return None
        own = self.log(table)
        if own is None and self.own:
            own = self._create(table, frame, date_col)
        if own is not None:
            try:
                return self._append_own(own, frame, date_col, writer, batch)
            except (Unsupported, Conflict) as exc:
                log.warning("append to %s through delta-rs: %s", table, exc)
        data = frame.with_columns(pl.col(date_col).dt.date().alias(DATE)).to_arrow()
        # a nonce per commit: how this writer finds its own version, and knows whether an
        # attempt that raised was committed after all (it must not be written twice)
        nonce = uuid.uuid4().hex
        meta = {"wattline.writer": writer, "wattline.batch": str(batch), "wattline.commit": nonce}
        first = self.table(table)
        start = first.version() if first is not None else -1
        for attempt in range(1, APPEND_ATTEMPTS + 1):
            target = self.table(table)
            try:
                write_deltalake(
                    target or self.uri(table),
                    data,
                    mode="append",
                    partition_by=[DATE],
                    storage_options=self.storage_options or None,
                    writer_properties=_writer_props(),
                    commit_properties=_commit_props(custom_metadata=meta, max_commit_retries=50),
                )
                break
            except _commit_failed() as exc:
                # delta-rs refuses an append that raced a replace of *any* day (measured:
                # every overwrite-with-predicate fails one concurrent append). Nothing was
                # committed, unless the log says otherwise; files it wrote are unreferenced
                # and vacuum removes them.
                self._open.pop(table, None)  # its state after a failed commit is not trusted
                if self._find(table, start, nonce) is not None:
                    break
                if attempt == APPEND_ATTEMPTS:
                    raise
                log.warning("append to %s raced a rewrite (attempt %d): %s", table, attempt, exc)
        version = self._find(table, start, nonce)
        if version is None:
            raise LakeError(f"commit of {writer} batch {batch} not in {self.uri(table)}'s log")
        if self.local:
            self._fsync_version(table, version)
        return version

    def wait_checkpoint(self, table: str) -> None:
        """Let a checkpoint started by this process's last commit finish."""
        own = self._logs.get(table)
        if own is not None:
            own.wait_checkpoint()

    def _create(self, table: str, frame: pl.DataFrame, date_col: str) -> OwnLog | None:
        """Version 0 through delta-rs with the schema only (protocol and metadata): the
        data then goes the own way, without delta-rs holding a big first batch (measured:
        a 2.9 M-row first append took 1.8 GB through delta-rs). A coordinated table's
        version 0 is written by Wattline too: every commit of it goes through PostgreSQL."""
        if self.coordinated:
            own = self._committer(table)
            if not own.exists():
                own.create(frame, date_col, {"operation": "CREATE TABLE", "wattline.op": "create"})
            return self.log(table)
        empty = frame.head(0).with_columns(pl.col(date_col).dt.date().alias(DATE)).to_arrow()
        try:
            write_deltalake(
                self.uri(table),
                empty,
                mode="append",
                partition_by=[DATE],
                writer_properties=_writer_props(),
                commit_properties=_commit_props(custom_metadata={"wattline.op": "create"}),
            )
        except Exception as exc:  # another writer created it first: use theirs
            log.info("creating %s: %s", table, exc)
        self._fsync_log_dir(table)
        return self.log(table)

    def _append_own(
        self, own: OwnLog, frame: pl.DataFrame, date_col: str, writer: str, batch: int
    ) -> int:
        added = own.write_files(frame, date_col)
        info = {
            "operation": "WRITE",
            "operationParameters": {"mode": "Append", "partitionBy": json.dumps([DATE])},
            "isBlindAppend": True,
            "wattline.writer": writer,
            "wattline.batch": str(batch),
            "wattline.commit": uuid.uuid4().hex,
        }
        return own.commit(info, added)

    def _replace_own(
        self,
        own: OwnLog,
        files: list[DataFile],
        frame: pl.DataFrame | None,
        info: Mapping[str, object],
    ) -> int:
        """Remove exactly `files` and add `frame` (if any) in one version.

        Raises Conflict when a version newer than the one `files` were listed from
        removed any of them; appends meanwhile (to any day) are kept as they are.
        """
        read = min(f.version for f in files)
        if read < 0:
            raise Conflict("files listed without their version")
        added: list[Added] = []
        if frame is not None and not frame.is_empty():
            added = own.write_files(frame, DATE)
        return own.commit(info, added, [(f.path, f.day, f.size) for f in files], read_version=read)

    def files(self, table: str) -> list[DataFile]:
        """Every file of the newest version: what a reader of that version reads."""
        own = self.log(table)
        if own is None and self.own:
            return []  # no table yet (and no deltalake import to learn that: 17 MB)
        if own is not None:
            try:
                version, live = own.snapshot()
            except Unsupported as exc:
                log.info("listing %s through delta-rs: %s", table, exc)
            else:
                base = self.uri(table)
                return [
                    DataFile(f"{base}/{f.path}", f.size, f.mtime_ms, f.day, f.rows, f.path, version)
                    for f in live
                ]
        dt = self.table(table)
        if dt is None:
            return []
        import pyarrow as pa

        actions = pl.DataFrame(pa.table(dt.get_add_actions(flatten=True)))
        if actions.is_empty():
            return []
        base = self.uri(table)
        version = dt.version()
        return [
            DataFile(f"{base}/{path}", size, mtime, day, rows, path, version)
            for path, size, mtime, day, rows in actions.select(
                "path", "size_bytes", "modification_time", f"partition.{DATE}", "num_records"
            ).iter_rows()
        ]

    def days(self, table: str) -> dict[date, list[DataFile]]:
        out: dict[date, list[DataFile]] = {}
        for f in self.files(table):
            out.setdefault(f.day, []).append(f)
        return out

    def newest_first(self, table: str) -> list[str]:
        """File URIs, most recently written first: where a restarted writer's keys are."""
        return [f.uri for f in sorted(self.files(table), key=lambda f: f.mtime_ms, reverse=True)]

    def compact_day(self, table: str, day: date, files: list[DataFile] | None = None) -> int:
        """Merge a day's files (Delta OPTIMIZE); returns files removed."""
        own = self.log(table)
        if own is not None and files and len(files) > 1:
            merged = pl.read_parquet(
                [f.uri for f in sorted(files, key=lambda f: f.mtime_ms)], hive_partitioning=False
            ).drop(DATE, strict=False)
            info = {"operation": "OPTIMIZE", "operationParameters": {}, "isBlindAppend": False}
            self._replace_own(own, files, merged.with_columns(pl.lit(day).alias(DATE)), info)
            return len(files)
        dt = self.table(table)
        if dt is None:
            return 0
        metrics = dt.optimize.compact(
            partition_filters=[(DATE, "=", day.isoformat())],
            target_size=TARGET_FILE_BYTES,
            writer_properties=_writer_props(),
            commit_properties=_commit_props(max_commit_retries=50),
        )
        return int(metrics.get("numFilesRemoved", 0))

    def rewrite_day(
        self, table: str, day: date, frame: pl.DataFrame, files: list[DataFile] | None = None
    ) -> None:
        """Replace a settled day (`files`, all of it) with `frame` in one version."""
        own = self.log(table)
        if own is not None and files:
            predicate = f"{DATE} = '{day.isoformat()}'"
            info = {
                "operation": "WRITE",
                "operationParameters": {"mode": "Overwrite", "predicate": predicate},
                "isBlindAppend": False,
                "wattline.op": "dedup",
            }
            self._replace_own(own, files, frame.with_columns(pl.lit(day).alias(DATE)), info)
            return
        dt = self.table(table)
        assert dt is not None
        write_deltalake(
            dt,
            frame.with_columns(pl.lit(day).alias(DATE)).to_arrow(),
            mode="overwrite",
            predicate=f"{DATE} = '{day.isoformat()}'",
            partition_by=[DATE],
            writer_properties=_writer_props(),
            commit_properties=_commit_props(custom_metadata={"wattline.op": "dedup"}),
        )

    def expire_before(self, table: str, cutoff: date) -> list[date]:
        """Delete whole days before `cutoff` (a metadata-only Delta DELETE); the days gone."""
        own = self.log(table)
        if own is not None:
            old = [f for f in self.files(table) if f.day < cutoff]
            if old:
                predicate = f"{DATE} < '{cutoff.isoformat()}'"
                info = {"operation": "DELETE", "operationParameters": {"predicate": predicate}}
                self._replace_own(own, old, None, info)
            return sorted({f.day for f in old})
        dt = self.table(table)
        days = sorted({f.day for f in self.files(table) if f.day < cutoff}) if dt else []
        if dt is not None and days:
            dt.delete(f"{DATE} < '{cutoff.isoformat()}'")
        return days

    def vacuum(self, table: str, grace_s: float) -> int:
        """Delete files no version newer than `grace_s` ago reads (rounded up to hours)."""
        own = self.log(table)
        if own is not None and isinstance(own.store, S3PgStore):
            doomed = own.vacuum(grace_s, own.store.list_data())
            own.store.delete(doomed)
            return len(doomed)
        dt = self.table(table)
        if dt is None:
            return 0
        hours = math.ceil(max(0.0, grace_s) / 3600)
        removed = dt.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False)
        if dt.version() % 10 == 0 or removed:
            dt.create_checkpoint()
        return len(removed)

    def _find(self, table: str, after: int, nonce: str) -> int | None:
        """The version whose commit carries `nonce`, newer than `after`, or None.

        On a local disk the commit files are read; elsewhere `history()` is searched:
        its `version` labels are not trusted (measured with deltalake 1.6.6: off by one
        after concurrent commits), so on object storage the version returned is the
        loaded one, used only to say "committed".
        """
        if self.local:
            log_dir = Path(self.uri(table)) / "_delta_log"
            version = after + 1
            while (commit := log_dir / f"{version:020d}.json").exists():
                if nonce in commit.read_text():
                    return version
                version += 1
            return None
        for fresh in (False, True):
            if fresh:
                self._open.pop(table, None)
            dt = self.table(table)
            if dt is None:
                return None
            limit = max(8, dt.version() - after + 2)
            while True:
                entries = dt.history(limit)
                if any(e.get("wattline.commit") == nonce for e in entries):
                    return dt.version()
                if len(entries) < limit or limit > dt.version() - after + 64:
                    break
                limit *= 2
        return None

    def _fsync_log_dir(self, table: str) -> None:
        log_dir = Path(self.uri(table)) / "_delta_log"
        if log_dir.is_dir():
            for path in (
                log_dir / f"{0:020d}.json",
                log_dir,
                log_dir.parent,
                log_dir.parent.parent,
            ):
                if path.exists():
                    fsync_dir(path)

    def _fsync_version(self, table: str, version: int) -> None:
        base = Path(self.uri(table))
        commit = base / "_delta_log" / f"{version:020d}.json"
        dirs = {commit.parent}
        for line in commit.read_text().splitlines():
            add = json.loads(line).get("add")
            if add:
                path = base / add["path"]
                fsync_dir(path)
                dirs.add(path.parent)
        fsync_dir(commit)
        for d in dirs:
            fsync_dir(d)


def _writer_props() -> Any:
    from deltalake import WriterProperties

    return WriterProperties(compression="ZSTD")


def _commit_props(**kwargs: Any) -> Any:
    from deltalake import CommitProperties

    return CommitProperties(**kwargs)


def _commit_failed() -> type[Exception]:
    from deltalake.exceptions import CommitFailedError

    return CommitFailedError


def write_deltalake(*args: Any, **kwargs: Any) -> None:
    from deltalake import write_deltalake as write

    write(*args, **kwargs)


def settled(files: list[DataFile], now: float, settle_s: float) -> list[DataFile]:
    cutoff_ms = (now - settle_s) * 1000
    return [f for f in files if f.mtime_ms <= cutoff_ms]
