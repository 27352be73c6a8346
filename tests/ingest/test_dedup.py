"""The dedup index: exact on (device_id, ts), bounded, and fast for the usual all-new batch."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl

from ingest.dedup import RecentKeys

T0 = datetime(2026, 11, 21, tzinfo=UTC)


def keys(device: str, seconds: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"device_id": [device] * len(seconds), "ts": [T0 + timedelta(seconds=s) for s in seconds]},
        schema={"device_id": pl.String, "ts": pl.Datetime("us", "UTC")},
    )


def test_repeats_within_a_batch_and_redeliveries_are_dropped_new_readings_kept() -> None:
    index = RecentKeys(capacity=100)
    kept, dropped = index.drop_seen(pl.concat([keys("a", [1, 2, 2]), keys("b", [1])]))
    assert (kept.height, dropped) == (3, 1)
    index.add(kept)
    again = pl.concat([keys("a", [2, 3]), keys("b", [0, 1])])  # 2 and b@1 landed before
    kept, dropped = index.drop_seen(again)
    assert dropped == 2
    assert sorted(kept.rows()) == sorted(pl.concat([keys("a", [3]), keys("b", [0])]).rows())


def test_older_readings_not_in_the_index_are_kept() -> None:
    index = RecentKeys(capacity=100)
    index.add(keys("a", [10, 20, 30]))
    kept, dropped = index.drop_seen(keys("a", [15, 25, 30]))  # a late replay of new readings
    assert dropped == 1 and kept["ts"].to_list() == [T0 + timedelta(seconds=s) for s in (15, 25)]


def test_the_index_is_bounded_and_forgets_oldest_first() -> None:
    index = RecentKeys(capacity=4)
    for start in range(0, 12, 2):
        index.add(keys("a", [start, start + 1]))
    assert len(index) <= 6
    kept, dropped = index.drop_seen(keys("a", [0, 11]))  # 0 was forgotten, 11 is recent
    assert dropped == 1 and kept["ts"].to_list() == [T0]


def test_sorted_batches_drop_the_same_repeats_as_the_hash() -> None:
    """The neighbour comparison for sorted batches keeps the first copy, as unique() does."""
    rng = random.Random(5)
    for _ in range(50):
        rows = [(rng.choice("abc"), rng.randrange(20), rng.random()) for _ in range(60)]
        frame = pl.DataFrame(
            {
                "device_id": [d for d, _, _ in rows],
                "ts": [T0 + timedelta(seconds=s) for _, s, _ in rows],
                "power_kw": [v for _, _, v in rows],
            }
        ).sort("device_id", "ts", maintain_order=True)
        index = RecentKeys(capacity=100)
        index.add(keys("a", [3, 4]))
        by_hash = index.drop_seen(frame)
        by_order = index.drop_seen(frame, sorted_by_key=True)
        assert by_order[1] == by_hash[1] > 0
        assert by_order[0].equals(by_hash[0])
