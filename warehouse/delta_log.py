"""Delta commits written by Wattline itself: appends and file replacements.

Why: through delta-rs a 2,000-row append costs 15-30 ms, most of it spent replaying and
re-validating the table's snapshot before the commit (it grows with the live files),
and delta-rs's overwrite of one day loses every race against an append to any other
day. A Wattline batch is a *blind append* (it reads nothing), and compaction replaces
files it names; both are simple in the Delta protocol
(https://github.com/delta-io/delta/blob/master/PROTOCOL.md, "Delta Log Entries",
"Optimistic concurrency"), so they are written here:

1. the data files are written (zstd Parquet, the table's schema minus the partition
   column, hive layout ``date=YYYY-MM-DD/``) and made durable;
2. the commit (``commitInfo`` plus ``add``/``remove`` actions, one JSON object a line)
   becomes version *v* by a put-if-absent of ``{v:020d}.json`` (warehouse/delta_store.py:
   ``link(2)`` on a local disk, a PostgreSQL claim on S3). If *v* exists, another writer
   won it: its actions are checked and the commit moves on to *v + 1*.

Conflicts (checked on every version committed since the snapshot the operation read):
a ``metaData`` or ``protocol`` action (schema or feature change) stops any commit; a
``remove`` of a file a replacement read stops that replacement (the day changed under
it; it is left for the next run). Appends of other writers never conflict, so appends
never wait for compaction and compaction never starves behind appends.

Readers are unchanged: delta-rs, polars and DuckDB read these versions like any other.
Every ``CHECKPOINT_EVERY`` versions the writer of that version asks delta-rs for a
checkpoint, so opening the table stays cheap. On S3 without PostgreSQL Wattline commits
through delta-rs (warehouse/delta.py), whose conditional PUT does step 2 there.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

import polars as pl

from warehouse.delta_store import LOG, Store, commit_name

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
class OwnLog:
    """One Delta table's log, read and committed to by this process (through `store`)."""

    store: Store
    partition: str
    _columns: dict[str, pl.DataType] | None = field(default=None, repr=False)
    _next: int = field(default=0, repr=False)
    _checkpointing: threading.Thread | None = field(default=None, repr=False)
    _exists: bool = field(default=False, repr=False)

    @property
    def log_dir(self) -> str:
        return f"{self.store.uri}/{LOG}"

    def exists(self) -> bool:
        """Whether version 0 is there (once seen, not asked again: a table stays)."""
        self._exists = self._exists or self.store.exists(commit_name(0))
        return self._exists

    def has(self, version: int) -> bool:
        return self.store.exists(commit_name(version))

    # ---- reading the log ------------------------------------------------------------

    def latest(self) -> int:
        """The newest version (walking forward from what this process last saw)."""
        version = self._next - 1
        if version < 0 or not self.has(version):
            version = self._checkpointed()
            if not self.has(version):
                raise Unsupported(f"{self.log_dir}: version {version} missing")
        while self.has(version + 1):
            version += 1
        self._next = version + 1
        return version

    def snapshot(self) -> tuple[int, list[LiveFile]]:
        """The newest version and its live files, by the protocol's log replay."""
        version, live, _ = self._replay()
        return version, live

    def _replay(self) -> tuple[int, list[LiveFile], dict[str, int]]:
        """The newest version, its live files, and the removed ones (path -> removed ms).

        The last checkpoint's ``add`` rows, then every commit after it in order (an
        ``add`` makes a path live, a ``remove`` ends it). Read with polars alone: opening
        the table with delta-rs to list 31 files cost a reader 35 MB of RSS and importing
        deltalake 18 MB more (bench/scale.py's queries). Tables using features this
        replay does not know (deletion vectors, column mapping, multi-part or v2
        checkpoints) raise Unsupported, and delta-rs lists them instead.
        """
        live: dict[str, LiveFile] = {}
        tombstones: dict[str, int] = {}
        version = -1
        marker = self.store.read_text(f"{LOG}/_last_checkpoint")
        if marker is not None:
            info = json.loads(marker)
            if "parts" in info or "v2Checkpoint" in info:
                raise Unsupported(f"{self.log_dir}: checkpoint kind {sorted(info)}")
            version = int(info["version"])
            checkpoint = pl.read_parquet(
                self.store.parquet_source(f"{LOG}/{version:020d}.checkpoint.parquet"),
                columns=["add", "remove", "protocol"],
            )
            for proto in checkpoint.get_column("protocol").drop_nulls().to_list():
                _readable(proto, self.log_dir)
            gone = checkpoint.get_column("remove").drop_nulls().struct.unnest()
            tombstones = {
                p: int(ms or 0) for p, ms in gone.select("path", "deletionTimestamp").iter_rows()
            }
            adds = checkpoint.get_column("add").drop_nulls().struct.unnest()
            if "deletionVector" in adds.columns and adds["deletionVector"].null_count() < len(adds):
                raise Unsupported(f"{self.log_dir}: deletion vectors")
            for path, size, mtime, stats in adds.select(
                "path", "size", "modificationTime", "stats"
            ).iter_rows():
                live[path] = self._live(path, size, mtime, stats)
        while (text := self.store.read_text(commit_name(version + 1))) is not None:
            version += 1
            for action in _actions(text):
                if add := action.get("add"):
                    if add.get("deletionVector"):
                        raise Unsupported(f"{self.log_dir}: deletion vectors")
                    live[add["path"]] = self._live(
                        add["path"], add["size"], add["modificationTime"], add.get("stats")
                    )
                elif remove := action.get("remove"):
                    live.pop(remove["path"], None)
                    tombstones[remove["path"]] = int(remove.get("deletionTimestamp") or 0)
                elif proto := action.get("protocol"):
                    _readable(proto, self.log_dir)
        if version < 0:
            raise Unsupported(f"{self.log_dir}: no version")
        removed = {p: ms for p, ms in tombstones.items() if p not in live}
        return version, list(live.values()), removed

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
            return int(json.loads(self.store.read_text(f"{LOG}/_last_checkpoint") or "")["version"])
        except (KeyError, ValueError):
            return 0

    def columns(self) -> dict[str, pl.DataType]:
        """The table's data columns (partition column excluded), in schema order."""
        if self._columns is None:
            from deltalake import DeltaTable

            dt = DeltaTable(self.store.uri, storage_options=self.store.options)
            proto = dt.protocol()
            if proto.min_writer_version > 2 or proto.writer_features:
                raise Unsupported(f"{self.store.uri}: writer protocol {proto}")
            if dt.metadata().partition_columns != [self.partition]:
                raise Unsupported(f"{self.store.uri}: partitioned by something else")
            schema = json.loads(dt.schema().to_json())
            columns: dict[str, pl.DataType] = {}
            for f in schema["fields"]:
                if f["name"] == self.partition:
                    continue
                kind = f["type"]
                if not isinstance(kind, str) or kind not in _DELTA_TYPES:
                    raise Unsupported(f"{self.store.uri}: column {f['name']} is {kind}")
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
        for day, part in parts:
            assert isinstance(day, date)
            rel = f"{self.partition}={day.isoformat()}/part-00000-{uuid.uuid4()}-c000.zstd.parquet"
            size = self.store.write_data(rel, part)  # durable when it returns
            added.append(Added(rel, day, size, part.height, _stats(part)))
        self.store.data_written()
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
        version = self._put("\n".join(lines) + "\n", read_version, reads)
        self.store.commit_written()
        if version % CHECKPOINT_EVERY == 0:
            self._checkpoint_soon(version)
        return version

    def _put(self, text: str, read_version: int | None, reads: set[str]) -> int:
        if read_version is None:
            version = self._next if self._next > 0 else self.latest() + 1
            if not self.has(version - 1):  # never commit past a gap
                version = self.latest() + 1
        else:
            version = read_version + 1
        while not self.store.put_commit(version, text):
            self._check(version, reads)
            version += 1
        self._next = version + 1
        return version

    def _check(self, version: int, reads: set[str]) -> None:
        """Raise if the other writer's `version` changes what this commit relies on."""
        text = self.store.read_text(commit_name(version))
        if text is None:
            raise Conflict(f"version {version} is taken but not readable yet")
        for action in _actions(text):
            if "metaData" in action or "protocol" in action:
                self._columns = None  # the next commit reads the schema again
                self._next = version + 1
                raise Conflict(f"version {version} changed the table's metadata or protocol")
            gone = action.get("remove")
            if gone and gone.get("path") in reads:
                raise Conflict(f"version {version} removed {gone['path']}, which this read")

    def create(self, frame: pl.DataFrame, day_col: str, info: Mapping[str, Any]) -> bool:
        """Version 0 (protocol and metadata, no data) from `frame`'s schema, partitioned
        by the UTC date of `day_col`; False when another writer created it first."""
        fields = []
        for name, dtype in frame.schema.items():
            kind = next((k for k, t in _DELTA_TYPES.items() if t == dtype), None)
            if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
                kind = "timestamp"  # cast to UTC microseconds on write
            if kind is None or kind == "timestamp_ntz":  # ntz needs a table feature
                raise Unsupported(f"column {name}: {dtype}")
            fields.append({"name": name, "type": kind, "nullable": True, "metadata": {}})
        fields.append({"name": self.partition, "type": "date", "nullable": True, "metadata": {}})
        now_ms = int(time.time() * 1000)
        schema = json.dumps({"type": "struct", "fields": fields}, separators=(",", ":"))
        lines = [
            {"commitInfo": {"timestamp": now_ms, "clientVersion": CLIENT, **info}},
            {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
            {
                "metaData": {
                    "id": str(uuid.uuid4()),
                    "format": {"provider": "parquet", "options": {}},
                    "schemaString": schema,
                    "partitionColumns": [self.partition],
                    "createdTime": now_ms,
                    "configuration": {},
                }
            },
        ]
        made = self.store.put_commit(0, "".join(json.dumps(x) + "\n" for x in lines))
        self.store.commit_written()
        return made

    def vacuum(self, grace_s: float, stored: list[tuple[str, float]]) -> list[str]:
        """Of the `stored` data files (name, last-modified epoch s), those no version of
        the last `grace_s` seconds reads: removed longer ago than that, or never committed
        and older than that. Returns them (to delete)."""
        _, live, tombstones = self._replay()
        keep = {f.path for f in live}
        cutoff_s = time.time() - grace_s
        doomed = []
        for name, mtime_s in stored:
            if name in keep:
                continue
            gone_s = tombstones[name] / 1000 if name in tombstones else mtime_s
            if gone_s < cutoff_s and mtime_s < cutoff_s:
                doomed.append(name)
        return doomed

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
            DeltaTable(
                self.store.uri, version=version, storage_options=self.store.options
            ).create_checkpoint()
        except Exception as exc:  # a missed checkpoint only slows readers down
            log.warning("checkpoint of %s at %d failed: %s", self.store.uri, version, exc)
            return
        seconds = time.perf_counter() - started
        log.debug("checkpoint %s at %d in %.3fs", self.store.uri, version, seconds)


def _actions(commit: str) -> Iterator[dict[str, Any]]:
    """The actions of one commit file (newline-delimited JSON)."""
    for line in commit.splitlines():
        if line.strip():
            yield json.loads(line)


def _readable(protocol: dict[str, Any], where: str) -> None:
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
