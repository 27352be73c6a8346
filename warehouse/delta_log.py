"""Delta commits written by Wattline itself, on a local disk: appends and file replacements.

Why: through delta-rs a 2,000-row append costs 15-30 ms, most of it spent replaying and
re-validating the table's snapshot before the commit (it grows with the live files),
and delta-rs's overwrite of one day loses every race against an append to any other
day. A Wattline batch is a *blind append* (it reads nothing), and compaction replaces
files it names; both are simple in the Delta protocol
(https://github.com/delta-io/delta/blob/master/PROTOCOL.md, "Delta Log Entries",
"Optimistic concurrency"), so on a local disk they are written here:

1. the data files are written (zstd Parquet, the table's schema minus the partition
   column, hive layout ``date=YYYY-MM-DD/``) and fsynced;
2. the commit (``commitInfo`` plus ``add``/``remove`` actions, one JSON object a line) is
   written to a temporary file in ``_delta_log`` and fsynced;
3. it becomes version *v* by ``link(2)`` to ``{v:020d}.json``: put-if-absent, the same
   mutual exclusion delta-rs uses on a local disk. If *v* exists, another writer won it:
   its actions are checked and the commit moves on to *v + 1*.

Conflicts (checked on every version committed since the snapshot the operation read):
a ``metaData`` or ``protocol`` action (schema or feature change) stops any commit; a
``remove`` of a file a replacement read stops that replacement (the day changed under
it; it is left for the next run). Appends of other writers never conflict, so appends
never wait for compaction and compaction never starves behind appends.

Readers are unchanged: delta-rs, polars and DuckDB read these versions like any other.
Every ``CHECKPOINT_EVERY`` versions the writer of that version asks delta-rs for a
checkpoint, so opening the table stays cheap. On object storage Wattline commits
through delta-rs (warehouse/delta.py), whose conditional PUT does step 3 there.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

log = logging.getLogger(__name__)

CHECKPOINT_EVERY: Final = 100
CLIENT: Final = "wattline"
MAX_STAT_CHARS: Final = 32
# Delta primitive types Wattline writes itself; a table using others goes through delta-rs
_DELTA_TYPES: Final[dict[str, pl.DataType]] = {
    "string": pl.String(),
    "long": pl.Int64(),
    "integer": pl.Int32(),
    "short": pl.Int16(),
    "byte": pl.Int8(),
    "double": pl.Float64(),
    "float": pl.Float32(),
    "boolean": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
    "timestamp_ntz": pl.Datetime("us"),
    "date": pl.Date(),
    "binary": pl.Binary(),
}


class Conflict(Exception):
    """A newer version makes this commit wrong: the operation is left for a later run."""


class Unsupported(Exception):
    """This table or frame is not one Wattline commits itself (delta-rs does it)."""


@dataclass(frozen=True)
class Added:
    """One data file written for a commit, not yet part of any version."""

    path: str  # relative to the table
    day: date
    size: int
    rows: int
    stats: str


@dataclass(frozen=True)
class LiveFile:
    """One file of a version, as log replay finds it."""

    path: str  # relative to the table
    size: int
    mtime_ms: int
    day: date
    rows: int


@dataclass
class LocalLog:
    """One Delta table's log on a local disk, committed to by this process."""

    table_dir: Path
    partition: str
    _columns: dict[str, pl.DataType] | None = field(default=None, repr=False)
    _next: int = field(default=0, repr=False)
    _checkpointing: threading.Thread | None = field(default=None, repr=False)

    @property
    def log_dir(self) -> Path:
        return self.table_dir / "_delta_log"

    def exists(self) -> bool:
        return (self.log_dir / f"{0:020d}.json").exists()

    def commit_path(self, version: int) -> Path:
        return self.log_dir / f"{version:020d}.json"

    # ---- reading the log ------------------------------------------------------------

    def latest(self) -> int:
        """The newest version (walking forward from what this process last saw)."""
        version = self._next - 1
        if version < 0 or not self.commit_path(version).exists():
            version = self._checkpointed()
            if not self.commit_path(version).exists():
                raise Unsupported(f"{self.log_dir}: version {version} missing")
        while self.commit_path(version + 1).exists():
            version += 1
        self._next = version + 1
        return version

    def snapshot(self) -> tuple[int, list[LiveFile]]:
        """The newest version and its live files, by the protocol's log replay.

        The last checkpoint's ``add`` rows, then every commit after it in order (an
        ``add`` makes a path live, a ``remove`` ends it). Read with polars alone: opening
        the table with delta-rs to list 31 files cost a reader 35 MB of RSS and importing
        deltalake 18 MB more (bench/scale.py's queries). Tables using features this
        replay does not know (deletion vectors, column mapping, multi-part or v2
        checkpoints) raise Unsupported, and delta-rs lists them instead.
        """
        live: dict[str, LiveFile] = {}
        version = -1
        marker = self.log_dir / "_last_checkpoint"
        if marker.exists():
            info = json.loads(marker.read_text())
            if "parts" in info or "v2Checkpoint" in info:
                raise Unsupported(f"{self.log_dir}: checkpoint kind {sorted(info)}")
            version = int(info["version"])
            checkpoint = pl.read_parquet(
                self.log_dir / f"{version:020d}.checkpoint.parquet", columns=["add", "protocol"]
            )
            for proto in checkpoint.get_column("protocol").drop_nulls().to_list():
                _readable(proto, self.log_dir)
            adds = checkpoint.get_column("add").drop_nulls().struct.unnest()
            if "deletionVector" in adds.columns and adds["deletionVector"].null_count() < len(adds):
                raise Unsupported(f"{self.log_dir}: deletion vectors")
            for path, size, mtime, stats in adds.select(
                "path", "size", "modificationTime", "stats"
            ).iter_rows():
                live[path] = self._live(path, size, mtime, stats)
        while (commit := self.commit_path(version + 1)).exists():
            version += 1
            for line in commit.read_text().splitlines():
                if not line.strip():
                    continue
                action = json.loads(line)
                if add := action.get("add"):
                    if add.get("deletionVector"):
                        raise Unsupported(f"{self.log_dir}: deletion vectors")
                    live[add["path"]] = self._live(
                        add["path"], add["size"], add["modificationTime"], add.get("stats")
                    )
                elif remove := action.get("remove"):
                    live.pop(remove["path"], None)
                elif proto := action.get("protocol"):
                    _readable(proto, self.log_dir)
        if version < 0:
            raise Unsupported(f"{self.log_dir}: no version")
        return version, list(live.values())

    def _live(self, path: str, size: int, mtime_ms: int, stats: str | None) -> LiveFile:
        prefix = f"{self.partition}="
        if not path.startswith(prefix) or not stats:
            raise Unsupported(f"{self.log_dir}: {path} outside {prefix}* or without stats")
        rows = json.loads(stats).get("numRecords")
        if rows is None:
            raise Unsupported(f"{self.log_dir}: {path} has no numRecords")
        day = date.fromisoformat(path[len(prefix) : len(prefix) + 10])
        return LiveFile(path, int(size), int(mtime_ms), day, int(rows))

    def _checkpointed(self) -> int:
        try:
            return int(json.loads((self.log_dir / "_last_checkpoint").read_text())["version"])
        except (FileNotFoundError, KeyError, ValueError):
            return 0

    def columns(self) -> dict[str, pl.DataType]:
        """The table's data columns (partition column excluded), in schema order."""
        if self._columns is None:
            from deltalake import DeltaTable

            dt = DeltaTable(str(self.table_dir))
            proto = dt.protocol()
            if proto.min_writer_version > 2 or proto.writer_features:
                raise Unsupported(f"{self.table_dir}: writer protocol {proto}")
            if dt.metadata().partition_columns != [self.partition]:
                raise Unsupported(f"{self.table_dir}: partitioned by something else")
            schema = json.loads(dt.schema().to_json())
            columns: dict[str, pl.DataType] = {}
            for f in schema["fields"]:
                if f["name"] == self.partition:
                    continue
                kind = f["type"]
                if not isinstance(kind, str) or kind not in _DELTA_TYPES:
                    raise Unsupported(f"{self.table_dir}: column {f['name']} is {kind}")
                columns[f["name"]] = _DELTA_TYPES[kind]
            self._columns = columns
        return self._columns

    # ---- writing --------------------------------------------------------------------

    def write_files(self, frame: pl.DataFrame, day_col: str) -> list[Added]:
        """Write `frame` (its columns those of the table) as one file per UTC day."""
        columns = self.columns()
        if set(frame.columns) - {self.partition} - {day_col} - set(columns) or not set(
            columns
        ) <= set(frame.columns):
            raise Unsupported(f"frame columns {frame.columns} are not {list(columns)}")
        data = frame.drop(self.partition) if self.partition in frame.columns else frame
        if data.schema != columns:  # cast only when needed: it costs ~1 ms a batch
            data = data.select(
                [pl.col(name).cast(kind, strict=True) for name, kind in columns.items()]
            )
        days = frame.get_column(day_col)
        if days.dtype != pl.Date:
            days = days.dt.date()
        first = days.min()
        if first == days.max():  # the usual batch: one day, no partitioning pass
            parts = [(first, data)]
        else:
            split = data.with_columns(days.alias("__day")).partition_by(
                "__day", as_dict=True, maintain_order=True
            )
            parts = [(day, part.drop("__day")) for (day,), part in split.items()]
        added = []
        new_dir = False
        for day, part in parts:
            assert isinstance(day, date)
            rel = f"{self.partition}={day.isoformat()}/part-00000-{uuid.uuid4()}-c000.zstd.parquet"
            path = self.table_dir / rel
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
                new_dir = True
            part.write_parquet(path, compression="zstd", statistics=True)
            _fsync(path)
            _fsync(path.parent)
            added.append(Added(rel, day, path.stat().st_size, part.height, _stats(part)))
        if new_dir:
            _fsync(self.table_dir)
        return added

    def commit(
        self,
        info: Mapping[str, Any],
        added: Iterable[Added],
        removed: Iterable[tuple[str, date, int]] = (),
        *,
        read_version: int | None = None,
    ) -> int:
        """Commit the actions as the next version; returns it, durable.

        `read_version`: the version the removed files were read from; versions after it
        that remove any of them raise Conflict (a blind append passes None).
        """
        now_ms = int(time.time() * 1000)
        removed = list(removed)
        reads = {path for path, _, _ in removed}
        lines = [json.dumps({"commitInfo": {"timestamp": now_ms, "clientVersion": CLIENT, **info}})]
        lines += [
            json.dumps(
                {
                    "remove": {
                        "path": path,
                        "deletionTimestamp": now_ms,
                        "dataChange": info.get("operation") != "OPTIMIZE",
                        "extendedFileMetadata": True,
                        "partitionValues": {self.partition: day.isoformat()},
                        "size": size,
                    }
                }
            )
            for path, day, size in removed
        ]
        lines += [
            json.dumps(
                {
                    "add": {
                        "path": a.path,
                        "partitionValues": {self.partition: a.day.isoformat()},
                        "size": a.size,
                        "modificationTime": now_ms,
                        "dataChange": info.get("operation") != "OPTIMIZE",
                        "stats": a.stats,
                    }
                }
            )
            for a in added
        ]
        tmp = self.log_dir / f".tmp-{uuid.uuid4().hex}.json"
        tmp.write_text("\n".join(lines) + "\n")
        _fsync(tmp)
        try:
            version = self._link(tmp, read_version, reads)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync(self.log_dir)
        if version % CHECKPOINT_EVERY == 0:
            self._checkpoint_soon(version)
        return version

    def _link(self, tmp: Path, read_version: int | None, reads: set[str]) -> int:
        if read_version is None:
            version = self._next if self._next > 0 else self.latest() + 1
            if not self.commit_path(version - 1).exists():  # never commit past a gap
                version = self.latest() + 1
        else:
            version = read_version + 1
        while True:
            try:
                os.link(tmp, self.commit_path(version))
            except FileExistsError:
                self._check(version, reads)
                version += 1
                continue
            self._next = version + 1
            return version

    def _check(self, version: int, reads: set[str]) -> None:
        """Raise if the other writer's `version` changes what this commit relies on."""
        for line in self.commit_path(version).read_text().splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "metaData" in action or "protocol" in action:
                self._columns = None  # the next commit reads the schema again
                self._next = version + 1
                raise Conflict(f"version {version} changed the table's metadata or protocol")
            gone = action.get("remove")
            if gone and gone.get("path") in reads:
                raise Conflict(f"version {version} removed {gone['path']}, which this read")

    def _checkpoint_soon(self, version: int) -> None:
        """Checkpoint `version` beside the writer (~0.1 s; 1 ms an append if inline).

        Not a daemon: the interpreter lets it finish at exit. A process killed during it
        leaves no partial checkpoint (delta-rs writes it to a temporary name and renames
        it), only an older `_last_checkpoint`, which readers handle.
        """
        if self._checkpointing is not None and self._checkpointing.is_alive():
            return  # the next multiple of CHECKPOINT_EVERY does it
        self._checkpointing = threading.Thread(
            target=self._checkpoint, args=(version,), name="delta-checkpoint"
        )
        self._checkpointing.start()

    def wait_checkpoint(self) -> None:
        if self._checkpointing is not None:
            self._checkpointing.join()

    def _checkpoint(self, version: int) -> None:
        from deltalake import DeltaTable

        started = time.perf_counter()
        try:
            DeltaTable(str(self.table_dir), version=version).create_checkpoint()
        except Exception as exc:  # a missed checkpoint only slows readers down
            log.warning("checkpoint of %s at %d failed: %s", self.table_dir, version, exc)
            return
        seconds = time.perf_counter() - started
        log.debug("checkpoint %s at %d in %.3fs", self.table_dir, version, seconds)


def _readable(protocol: dict[str, Any], where: Path) -> None:
    """Refuse a protocol whose reader features change what the file list means."""
    if int(protocol.get("minReaderVersion") or 1) > 1 or protocol.get("readerFeatures"):
        raise Unsupported(f"{where}: reader protocol {protocol}")


def _stats(frame: pl.DataFrame) -> str:
    """Delta file statistics: numRecords, and min/max/nullCount of the scalar columns."""
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for series in frame.iter_columns():  # a Series' min/max: ~20 us; a select of all: 0.6 ms
        name = series.name
        nulls[name] = series.null_count()
        if series.dtype in (pl.Binary, pl.Boolean):
            continue
        lo, hi = _stat(series.min()), _stat(series.max())
        if lo is not None and hi is not None:
            mins[name], maxs[name] = lo, hi
    return json.dumps(
        {"numRecords": frame.height, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
        separators=(",", ":"),
    )


def _stat(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if value.tzinfo else "%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= MAX_STAT_CHARS else None  # no truncated bounds
    return value


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
