"""Timestamp parsing and the split into readings and reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pandera.polars as pa
import polars as pl
import pytest

from ingest.candidates import CANDIDATE_SCHEMA
from schemas.readings import (
    READING_COLUMNS,
    READING_SCHEMA,
    Readings,
    parse_ts,
    passes_checks,
    split_candidates,
)
from schemas.wire import QUANTITY_RANGES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-21T08:00:00.000+08:00", datetime(2026, 11, 21, 0, 0, tzinfo=UTC)),
        ("2026-11-21T08:00:00Z", datetime(2026, 11, 21, 8, 0, tzinfo=UTC)),
        ("2026-11-21t08:00:00z", datetime(2026, 11, 21, 8, 0, tzinfo=UTC)),
        ("2026-11-21 08:00:00-03:30", datetime(2026, 11, 21, 11, 30, tzinfo=UTC)),
        (
            "2026-11-21T08:00:00.123456789+00:00",
            datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=UTC),
        ),
        ("1795219200123", datetime(2026, 11, 21, 0, 0, 0, 123000, tzinfo=UTC)),
        ("2026-13-21T08:00:00Z", None),
        ("2026-11-21T08:00:00", None),
    ],
)
def test_parse_ts(raw: str, expected: datetime | None) -> None:
    got = pl.select(parse_ts(pl.lit(raw))).item()
    assert got == expected


def candidates(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = {
        "_msg": 0,
        "_idx": 0,
        "device_id_msg": None,
        "gateway": None,
        "seq": None,
        "state": None,
        "_unknown": None,
    }
    frame = pl.DataFrame([{**base, **r} for r in rows], schema=CANDIDATE_SCHEMA)
    received = datetime(2026, 11, 21, 12, tzinfo=UTC)
    return frame.with_row_index("_row").with_columns(
        site=pl.lit("plant"),
        device_id=pl.lit("m1"),
        received_at=pl.lit(received).cast(pl.Datetime("us", "UTC")),
    )


def test_split_keeps_good_rows_and_names_each_reason() -> None:
    frame = candidates(
        [
            {"ts_raw": "1795219200000", "power_kw": 5.0},
            {"ts_raw": None, "power_kw": 5.0},
            {"ts_raw": "2026-11-21T08:00:00", "power_kw": 5.0},
            {"ts_raw": "1795219200000"},
            {"ts_raw": "1795219200000", "power_factor": 1.01, "temperature_c": 900.0},
            {"ts_raw": "1795219200000", "energy_kwh": float("inf")},
            {"ts_raw": "4102444800000", "power_kw": 1.0},  # 2100: a clock fault
            {"ts_raw": "1795219200000", "power_kw": 1.0, "_unknown": "unknown field(s): x=1"},
        ]
    )
    good, bad = split_candidates(frame, max_future_s=86400)
    assert good.columns == list(READING_COLUMNS)
    assert good["power_kw"].to_list() == [5.0]
    reasons = dict(bad.select("_row", "reason").iter_rows())
    assert reasons == {
        1: "missing_ts",
        2: "ts_without_zone",
        3: "no_quantity",
        4: "out_of_range",
        5: "not_finite",
        6: "bad_ts",
        7: "unknown_field",
    }
    detail = dict(bad.select("_row", "detail").iter_rows())[4]
    assert "power_factor=1.01" in detail and "temperature_c=900.0" in detail


def _typed(**overrides: object) -> pl.DataFrame:
    row: dict[str, object] = {c: None for c in READING_COLUMNS}
    received = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    row.update(site="s1", device_id="m-1", ts=received, received_at=received, power_kw=5.0)
    row.update(overrides)
    good = {**row, "power_kw": 1.0}
    return pl.DataFrame([good, row, good], schema=READING_SCHEMA)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"power_kw": -1e9},
        {"power_factor": 1.5},
        {"voltage_v": float("nan")},
        {"energy_kwh": float("inf")},
        {"temperature_c": float("-inf")},
        {"state": "dancing"},
        {"state": "running"},
        {"device_id": "has space"},
        {"site": None},
        {"ts": None},
        *[{q: hi} for q, (_, hi) in QUANTITY_RANGES.items()],
        *[{q: lo} for q, (lo, _) in QUANTITY_RANGES.items()],
        *[{q: hi * 1.01 + 1} for q, (_, hi) in QUANTITY_RANGES.items()],
    ],
)
def test_the_one_pass_check_agrees_with_pandera(overrides: dict[str, object]) -> None:
    """`passes_checks` decides whether pandera runs, so it must never pass what pandera fails."""
    frame = _typed(**overrides)
    try:
        Readings.validate(frame, lazy=True)
        pandera_ok = True
    except pa.errors.SchemaErrors:
        pandera_ok = False
    assert passes_checks(frame) is pandera_ok


def test_the_one_pass_check_refuses_a_wrong_schema() -> None:
    frame = _typed().with_columns(pl.col("seq").cast(pl.Int32))
    assert not passes_checks(frame)


def test_integer_ts_rows_split_the_same_with_and_without_the_epoch_shortcut() -> None:
    """`ts_ms` on every row takes the cast instead of the text parse: same rows, same reasons."""
    rows: list[dict[str, object]] = []
    for ms in [1795219200000, 946684799999, 946684800000, 1795305600000, 1795392000001, -5, 0]:
        rows += [
            {"ts_raw": str(ms), "ts_ms": ms, "power_kw": 5.0},
            {"ts_raw": str(ms), "ts_ms": ms},  # no quantity
            {"ts_raw": str(ms), "ts_ms": ms, "power_factor": 1.5},  # out of range
            {"ts_raw": str(ms), "ts_ms": ms, "power_kw": 1.0, "_unknown": "unknown field(s): x=1"},
        ]
    with_hint = candidates(rows)
    without = with_hint.with_columns(ts_ms=pl.lit(None, pl.Int64))
    fast_good, fast_bad = split_candidates(with_hint, max_future_s=86400)
    slow_good, slow_bad = split_candidates(without, max_future_s=86400)
    assert fast_good.equals(slow_good) and fast_good.height > 0
    assert fast_bad.sort("_row").equals(slow_bad.sort("_row")) and fast_bad.height > 10
