"""Exact duplicate detection on (device_id, ts) for recently landed readings.

Where duplicates come from: a consumer that crashed after a file was renamed but
before its acks went out gets those messages again (QoS 1 redelivery); a gateway
killed between PUBACK and trimming its spool sends a batch twice; a broker restart
resends unacked messages. In every case the first copy landed *recently*, in this
writer's newest files. So the index holds the keys of the last `capacity` landed
readings (exact, no hashing, so no reading is ever mistaken for another) and is
rebuilt at start-up from this writer's newest files, then the newest compacted files
(compaction may have merged the writer's last files while it was down).

A replay older than the index (a gateway re-sending a spool after days) is caught
later by compaction, which deduplicates each partition (warehouse/compact.py).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import polars as pl

log = logging.getLogger(__name__)
KEY = ("device_id", "ts")


class RecentKeys:
    """The newest `capacity` (device_id, ts) keys, in landing order."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._chunks: deque[pl.DataFrame] = deque()
        self._size = 0
        # Newest ts per device ever indexed: a reading newer than that cannot be in the
        # index, so only the (rare) older ones are looked up. Never lowered on eviction,
        # which only sends a few more readings to the exact lookup.
        self._newest = pl.DataFrame(
            schema={"device_id": pl.String, "_newest": pl.Datetime("us", "UTC")}
        )

    def __len__(self) -> int:
        return self._size

    def drop_seen(
        self, frame: pl.DataFrame, sorted_by_key: bool = False
    ) -> tuple[pl.DataFrame, int]:
        """Remove rows already landed or repeated earlier in `frame`; return (kept, dropped).

        `sorted_by_key`: `frame` is stably sorted by (device_id, ts), so a repeat sits
        right after its first copy and one comparison with the row before finds it (a
        hash of every key costs 20x more: 12.6 ms against 0.6 ms for 200,000 rows).
        """
        if sorted_by_key:
            unique = frame.filter(
                _differs_from_previous("device_id") | _differs_from_previous("ts")
            )
        else:
            unique = frame.unique(subset=list(KEY), keep="first", maintain_order=True)
        if self._chunks:
            marked = unique.with_row_index("_i").join(
                self._newest, on="device_id", how="left", maintain_order="left"
            )
            maybe = marked.filter(pl.col("ts") <= pl.col("_newest")).select("_i", *KEY)
            if not maybe.is_empty():
                known = pl.concat(list(self._chunks), rechunk=False)
                seen = maybe.join(known, on=list(KEY), how="semi")["_i"]
                unique = marked.filter(~pl.col("_i").is_in(seen.implode())).select(unique.columns)
        return unique, frame.height - unique.height

    def add(self, keys: pl.DataFrame) -> None:
        chunk = keys.select(KEY)
        if chunk.is_empty():
            return
        self._chunks.append(chunk)
        self._size += chunk.height
        latest = chunk.group_by("device_id").agg(pl.col("ts").max().alias("_newest"))
        self._newest = (
            pl.concat([self._newest, latest]).group_by("device_id").agg(pl.col("_newest").max())
        )
        while self._chunks and self._size - self._chunks[0].height >= self.capacity:
            self._size -= self._chunks.popleft().height

    @classmethod
    def rebuild(
        cls,
        capacity: int,
        newest_first: Iterable[Path | str],
        storage_options: dict[str, str] | None = None,
    ) -> RecentKeys:
        """Load keys from files (paths or URIs), newest first, until the index is full."""
        index = cls(capacity)
        chunks: list[pl.DataFrame] = []
        total = 0
        for path in newest_first:
            if total >= capacity:
                break
            chunk = pl.read_parquet(
                path,
                columns=list(KEY),
                hive_partitioning=False,
                storage_options=storage_options or None,
            )
            chunks.append(chunk)
            total += chunk.height
        for chunk in reversed(chunks):
            index.add(chunk)
        log.info("dedup index rebuilt keys=%d files=%d", len(index), len(chunks))
        return index


def _differs_from_previous(column: str) -> pl.Expr:
    return (pl.col(column) != pl.col(column).shift()).fill_null(True)
