"""Load the device and site registries from CSV into the lake, all or nothing.

Every problem is reported with its file, row (1-based, as a spreadsheet shows it,
header = row 1), column and value, and nothing is written unless both files are
clean. The tables are Parquet files that the catalog's `devices` and `sites` views
read, so a load never waits for, or breaks, an analyst's open session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandera.polars as pa
import polars as pl

from schemas.registry import (
    DEVICE_COLUMNS,
    DEVICE_NUMERIC,
    DEVICE_SCHEMA,
    SITE_COLUMNS,
    SITE_NUMERIC,
    SITE_SCHEMA,
    Devices,
    Sites,
)
from warehouse.lake import Lake, write_atomic

log = logging.getLogger(__name__)


class RegistryError(ValueError):
    """One or more registry rows are wrong; `problems` lists each (file, row, column, text)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"registry not loaded, {len(problems)} problem(s):\n  {shown}{more}")


@dataclass(frozen=True)
class RegistryCounts:
    devices: int
    sites: int


def load_registry(
    lake: Lake,
    devices_csv: Path,
    sites_csv: Path,
    check_calendar: Callable[[str], object] | None = None,
    step: Callable[[str], object] = lambda _: None,
) -> RegistryCounts:
    """Validate both files, then replace the registry tables; raise RegistryError on any fault.

    `step` is told as each of the three phases (read, validate, write) starts, for a
    progress display on large files.
    """
    problems: list[str] = []
    step("reading")
    sites = _read(sites_csv, SITE_COLUMNS, SITE_NUMERIC, SITE_SCHEMA, problems)
    devices = _read(devices_csv, DEVICE_COLUMNS, DEVICE_NUMERIC, DEVICE_SCHEMA, problems)
    step("validating")
    if sites is not None:
        _validate(sites, Sites, sites_csv, "site", problems)
        _check_sites(sites, sites_csv, problems, check_calendar)
    if devices is not None:
        _validate(devices, Devices, devices_csv, "device_id", problems)
        if sites is not None:
            _check_device_sites(devices, sites, devices_csv, problems)
    if problems:
        raise RegistryError(problems)
    assert sites is not None and devices is not None
    step("writing")
    write_atomic(sites, lake.registry_path("sites"))
    write_atomic(devices, lake.registry_path("devices"))
    log.info("registry loaded devices=%d sites=%d", devices.height, sites.height)
    return RegistryCounts(devices=devices.height, sites=sites.height)


def read_csv_text(path: Path, problems: list[str]) -> tuple[pl.DataFrame, list[str]] | None:
    """A CSV file as text columns and its stripped header, or None with the problem said."""
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        problems.append(f"{path}: cannot read as CSV: {exc}")
        return None
    return raw, [c.strip() for c in raw.columns]


def _read(
    path: Path,
    columns: tuple[str, ...],
    numeric: tuple[str, ...],
    schema: pl.Schema,
    problems: list[str],
) -> pl.DataFrame | None:
    read = read_csv_text(path, problems)
    if read is None:
        return None
    raw, header = read
    missing = [c for c in columns if c not in header]
    extra = [c for c in header if c not in columns]
    if missing or extra:
        problems.append(
            f"{path}: header must be {','.join(columns)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(extra)}" if extra else "")
        )
        return None
    raw = raw.rename(dict(zip(raw.columns, header, strict=True))).select(columns)
    text = raw.with_columns(pl.all().fill_null("").str.strip_chars())
    blank_to_null = text.with_columns(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in columns
    )
    parsed = blank_to_null.with_columns(pl.col(c).cast(pl.Float64, strict=False) for c in numeric)
    for col in numeric:
        bad = blank_to_null.with_row_index("row", offset=2).filter(
            pl.col(col).is_not_null() & parsed[col].is_null()
        )
        for row, value in bad.select("row", col).iter_rows():
            problems.append(f"{path} row {row}, column {col}: '{value}' is not a number")
    return parsed.cast(schema)


def _validate(
    frame: pl.DataFrame,
    model: type[pa.DataFrameModel],
    path: Path,
    key: str,
    problems: list[str],
) -> None:
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.sort("index", "column", nulls_last=True)
        for case in cases.iter_rows(named=True):
            where = "" if case["index"] is None else f" row {case['index'] + 2}"
            ident = "" if case["index"] is None else f" ({key} {frame[key][case['index']]})"
            problems.append(
                f"{path}{where}{ident}, column {case['column']}: "
                f"'{case['failure_case']}' fails {case['check']}"
            )


def _check_sites(
    sites: pl.DataFrame,
    path: Path,
    problems: list[str],
    check_calendar: Callable[[str], object] | None,
) -> None:
    for i, (site, tz, calendar) in enumerate(
        sites.select("site", "timezone", "shift_calendar").iter_rows(), start=2
    ):
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                f"{path} row {i} (site {site}), column timezone: '{tz}' is not an "
                "IANA timezone such as Asia/Shanghai"
            )
        if calendar and check_calendar is not None:
            try:
                check_calendar(calendar)
            except ValueError as exc:
                problems.append(f"{path} row {i} (site {site}), column shift_calendar: {exc}")


def _check_device_sites(
    devices: pl.DataFrame, sites: pl.DataFrame, path: Path, problems: list[str]
) -> None:
    unknown = devices.with_row_index("row", offset=2).filter(
        ~pl.col("site").is_in(sites["site"].implode())
    )
    for row, device, site in unknown.select("row", "device_id", "site").iter_rows():
        problems.append(
            f"{path} row {row} (device_id {device}), column site: '{site}' is not in the sites file"
        )
