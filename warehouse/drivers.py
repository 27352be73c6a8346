"""Relevant variables the telemetry does not carry: production counts and outdoor weather.

Plants count production in their MES or ERP and report it per line and day, so it comes
as CSV (not on the wire): `wattline production load production.csv [--lines lines.csv]`
and `wattline weather load weather.csv`. Loads are upserts: rows for a (site, line, day)
or (site, day) replace what was there, so a daily export can be loaded every day, and
a corrected file replaces its days. A file with any bad row is refused whole, each
problem named by file, row and column (like the registry).

    production.csv  site,line,day,units,unit        units produced that local day
    lines.csv       site,line,device_id             which devices make up a line
    weather.csv     site,day,mean_temp_c            the day's mean outdoor temperature

    drivers/production.parquet, drivers/lines.parquet, drivers/weather.parquet
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import polars as pl

from schemas.drivers import DRIVERS, LINE_SCHEMA, PRODUCTION_SCHEMA, WEATHER_SCHEMA
from schemas.wire import ID_PATTERN
from warehouse.lake import Lake, write_atomic
from warehouse.registry import read_csv_text

log = logging.getLogger(__name__)

_ID = re.compile(f"^{ID_PATTERN}$")


class DriversError(ValueError):
    """One or more rows are wrong; `problems` lists each (file, row, column, text)."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{what} not loaded, {len(problems)} problem(s):\n  {shown}{more}")


def read_driver(lake: Lake, name: str) -> pl.DataFrame:
    """A drivers table (empty, of the right schema, when nothing was loaded)."""
    path = lake.drivers_path(name)
    return pl.read_parquet(path) if path.exists() else DRIVERS[name].to_frame()


def load_production(lake: Lake, production_csv: Path, lines_csv: Path | None = None) -> int:
    """Check and upsert production counts (and replace the line map when given)."""
    problems: list[str] = []
    sites = _registry_ids(lake, "sites", "site")
    devices = pl.read_parquet(lake.registry_path("devices")).select("device_id", "site")
    frame = _read(production_csv, PRODUCTION_SCHEMA, problems)
    if frame is not None:
        _check_ids(frame, production_csv, ("site", "line"), problems)
        _check_known_sites(frame, production_csv, sites, problems)
        _check_unique(frame, production_csv, ("site", "line", "day"), problems)
        for row, value in _rows(frame, pl.col("units") < 0, "units"):
            problems.append(f"{production_csv} row {row}, column units: {value} is negative")
        mixed = (
            frame.group_by("site", "line").agg(pl.col("unit").n_unique()).filter(pl.col("unit") > 1)
        )
        for site, line, _ in mixed.iter_rows():
            problems.append(f"{production_csv}: line {site}/{line} mixes units; use one")
    lines = _read(lines_csv, LINE_SCHEMA, problems) if lines_csv else None
    if lines is not None and lines_csv is not None:
        _check_ids(lines, lines_csv, ("site", "line", "device_id"), problems)
        _check_unique(lines, lines_csv, ("device_id",), problems)
        known = lines.join(devices, on="device_id", how="left", suffix="_registry")
        for row, device, site, registered in (
            known.with_row_index("row", offset=2)
            .filter(pl.col("site_registry").is_null() | (pl.col("site_registry") != pl.col("site")))
            .select("row", "device_id", "site", "site_registry")
            .iter_rows()
        ):
            where = "is not in the registry" if registered is None else f"is on site {registered}"
            problems.append(f"{lines_csv} row {row}: device {device} {where}, not {site}")
    if problems:
        raise DriversError("production", problems)
    assert frame is not None
    merged = _upsert(read_driver(lake, "production"), frame, ["site", "line", "day"])
    write_atomic(merged, lake.drivers_path("production"))
    if lines is not None:
        write_atomic(lines.sort("site", "line", "device_id"), lake.drivers_path("lines"))
    log.info("production loaded rows=%d total=%d", frame.height, merged.height)
    return frame.height


def load_weather(lake: Lake, weather_csv: Path) -> int:
    problems: list[str] = []
    frame = _read(weather_csv, WEATHER_SCHEMA, problems)
    if frame is not None:
        _check_ids(frame, weather_csv, ("site",), problems)
        _check_known_sites(frame, weather_csv, _registry_ids(lake, "sites", "site"), problems)
        _check_unique(frame, weather_csv, ("site", "day"), problems)
        implausible = ~pl.col("mean_temp_c").is_between(-90.0, 60.0)
        for row, value in _rows(frame, implausible, "mean_temp_c"):
            problems.append(
                f"{weather_csv} row {row}, column mean_temp_c: {value} °C is outside -90..60"
            )
    if problems:
        raise DriversError("weather", problems)
    assert frame is not None
    merged = _upsert(read_driver(lake, "weather"), frame, ["site", "day"])
    write_atomic(merged, lake.drivers_path("weather"))
    return frame.height


def _upsert(old: pl.DataFrame, new: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    kept = old.join(new.select(key), on=key, how="anti")
    return pl.concat([kept, new.select(old.columns)]).sort(key)


def _registry_ids(lake: Lake, table: str, column: str) -> set[str]:
    path = lake.registry_path(table)
    return set(pl.read_parquet(path)[column].to_list()) if path.exists() else set()


def _read(path: Path, schema: pl.Schema, problems: list[str]) -> pl.DataFrame | None:
    read = read_csv_text(path, problems)
    if read is None:
        return None
    raw, header = read
    if sorted(header) != sorted(schema.names()):
        problems.append(
            f"{path}: header must be {','.join(schema.names())}, got {','.join(header)}"
        )
        return None
    text = raw.rename(dict(zip(raw.columns, header, strict=True))).select(schema.names())
    text = text.with_columns(pl.all().str.strip_chars()).with_columns(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in schema.names()
    )
    parsed = {}
    for name, dtype in schema.items():
        col = text[name]
        if dtype == pl.Date():
            parsed[name] = col.str.to_date("%Y-%m-%d", strict=False)
        elif dtype == pl.Float64():
            parsed[name] = col.cast(pl.Float64, strict=False)
        else:
            parsed[name] = col
        bad = text.with_row_index("row", offset=2).filter(parsed[name].is_null())
        for row, value in bad.select("row", name).iter_rows():
            what = "is empty" if value is None else f"'{value}' is not a {_kind(dtype)}"
            problems.append(f"{path} row {row}, column {name}: {what}")
    return pl.DataFrame(parsed).cast(schema)


def _kind(dtype: pl.DataType) -> str:
    return "date (YYYY-MM-DD)" if dtype == pl.Date() else "number"


def _rows(frame: pl.DataFrame, bad: pl.Expr, column: str) -> list[tuple[int, object]]:
    return (
        frame.with_row_index("row", offset=2)
        .filter(bad.fill_null(False))
        .select("row", column)
        .rows()
    )


def _check_ids(frame: pl.DataFrame, path: Path, columns: tuple[str, ...], out: list[str]) -> None:
    for column in columns:
        for row, value in frame.with_row_index("row", offset=2).select("row", column).iter_rows():
            if value is not None and not _ID.match(value):
                out.append(f"{path} row {row}, column {column}: '{value}' is not a valid id")


def _check_known_sites(frame: pl.DataFrame, path: Path, sites: set[str], out: list[str]) -> None:
    for row, site in _rows(frame, ~pl.col("site").is_in(sorted(sites)), "site"):
        out.append(f"{path} row {row}, column site: {site} is not in the sites registry")


def _check_unique(frame: pl.DataFrame, path: Path, key: tuple[str, ...], out: list[str]) -> None:
    dup = frame.with_row_index("row", offset=2).filter(pl.struct(key).is_duplicated())
    for row in dup["row"].to_list():
        out.append(f"{path} row {row}: ({', '.join(key)}) appears more than once")
