"""The DuckDB catalog: views over the lake, so analysts never block writers.

DuckDB lets one process write a database file and nobody else open it meanwhile.
So the catalog holds only view definitions (over Parquet globs, which see new files
at query time) and a version row; it is written at set-up, never while ingesting.
The consumer, the jobs and registry loads write Parquet; an analyst's open session
never makes them fail, and they never make the analyst's session fail.

The file is created with ``storage_compatibility_version = 'v1.4.0'``: duckdb 2.0
writes storage version 69 by default, which the DuckDB 1.x CLI and most SQL clients
cannot open ("can only read 64 to 68").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import duckdb

from warehouse.lake import (
    DEMAND,
    DEMAND_PEAKS,
    ENERGY_COST,
    EVALUATIONS,
    LOAD_FACTOR,
    QUARANTINE,
    READINGS,
    WHOLE,
    Lake,
)

log = logging.getLogger(__name__)
CATALOG_VERSION: Final = 1
DELTA_VIEWS: Final = (READINGS, QUARANTINE)  # views over a Delta version's files
STORAGE_COMPATIBILITY: Final = "v1.4.0"


class CatalogError(Exception):
    """The catalog could not be created or opened; the message says what to do."""


def view_sql(lake: Lake) -> dict[str, str]:
    """Every view the catalog defines, by name. SQL must parse on DuckDB 1.4+.

    ``union_by_name`` makes DuckDB read every file's footer when a query starts. That
    is what gives its planner true row counts: otherwise it sizes a glob as (rows of the
    first file) x (files), and as 1 row once a date filter prunes the first file, so
    an analyst's ``readings JOIN devices ... WHERE date >= ...`` built its hash table
    on the readings: 11 s and 6 GB instead of 2 s and 0.2 GB on a month (bench/scale.py).
    It also reads older files that lack a column added later as NULLs.
    """
    readings = _files_sql(lake.sources(READINGS))
    quarantine = _files_sql(lake.sources(QUARANTINE))
    devices = str(lake.registry_path("devices").resolve())
    sites = str(lake.registry_path("sites").resolve())
    days = {
        name: f"""
            SELECT * EXCLUDE (date) FROM read_parquet('{lake.glob(table)}',
                                                 hive_partitioning = true, union_by_name = true,
                                                 hive_types = {{'date': DATE}})"""
        for name, table in (
            ("load_factor", LOAD_FACTOR),
            ("rule_evaluations", EVALUATIONS),
            ("energy_cost", ENERGY_COST),
            ("demand", DEMAND),
            ("demand_peaks", DEMAND_PEAKS),
        )
    }
    return {
        "readings": f"""
            SELECT * FROM read_parquet({readings}, hive_partitioning = true, union_by_name = true,
                                       hive_types = {{'date': DATE}})""",
        "quarantine": f"""
            SELECT * EXCLUDE (rn) FROM (
                SELECT *, row_number() OVER (PARTITION BY quarantine_id ORDER BY received_at) AS rn
                FROM read_parquet({quarantine}, hive_partitioning = true, union_by_name = true,
                                  hive_types = {{'date': DATE}}))
            WHERE rn = 1""",
        "devices": f"SELECT * FROM read_parquet('{devices}')",
        "sites": f"SELECT * FROM read_parquet('{sites}')",
        **days,
        "alerts": f"SELECT * FROM read_parquet('{lake.alerts_path.resolve()}')",
        **{
            name: f"SELECT * FROM read_parquet('{lake.whole_path(name).resolve()}')"
            for name in WHOLE
        },
        "device_status": f"SELECT * FROM read_parquet('{lake.sparkplug_status_path.resolve()}')",
        **{
            name: f"SELECT * FROM read_parquet('{lake.drivers_path(name).resolve()}')"
            for name in ("production", "lines", "weather")
        },
    }


def _files_sql(paths: list[str]) -> str:
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    return f"[{quoted}]"


def connect_readonly(path: Path) -> duckdb.DuckDBPyConnection:
    """An analyst-style connection: read-only, so any number can be open at once.

    On a Delta lake the stored readings and quarantine views list the files of the
    version current when the catalog was last written; this connection gets temporary
    views over the newest version instead (snapshot reads: the files one version lists
    stay until vacuum, so a query never fails or sees a day twice).
    """
    if not path.exists():
        raise CatalogError(f"catalog {path} does not exist; run `wattline catalog init`")
    con = duckdb.connect(str(path), read_only=True)
    try:
        meta = dict(con.execute("SELECT key, value FROM wattline_meta").fetchall())
    except duckdb.Error:
        return con
    if meta.get("lake_format") == "delta" and meta.get("delta_uri", "").startswith("/"):
        lake = Lake.from_settings(Path(meta["lake_root"]), "delta", meta["delta_uri"])
        for name in DELTA_VIEWS:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {view_sql(lake)[name]}")
    return con


def ensure_catalog(path: Path, lake: Lake, strict: bool = True) -> None:
    """Create or update the catalog's views; leave it alone when it is already current.

    Checking read-only first means analysts' read-only sessions do not stop a consumer
    from starting when nothing needs to change. With ``strict=False`` (the consumer
    and the jobs, which only write Parquet) a catalog held open read-write by someone
    else is reported and skipped rather than fatal: an analyst never stops ingest.
    """
    lake.prepare()
    wanted = view_sql(lake)
    if path.exists() and _is_current(path, wanted):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(
            str(path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
        )
    except duckdb.IOException as exc:
        if not strict and path.exists():
            log.warning(
                "catalog %s is held open by another process; views not checked: %s", path, exc
            )
            return
        raise CatalogError(
            f"catalog {path} needs updating but another process holds it open ({exc}); "
            "close DuckDB sessions on it and retry"
        ) from exc
    try:
        try:
            con.execute("BEGIN")
            for name, sql in wanted.items():
                con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            hint = "an s3:// lake needs DuckDB's httpfs extension (INSTALL httpfs)"
            if not strict:
                log.warning("catalog %s views not updated (%s): %s", path, hint, exc)
                return
            raise CatalogError(f"catalog {path}: views not created ({hint}): {exc}") from exc
        con.execute(
            "CREATE TABLE IF NOT EXISTS wattline_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"
        )
        con.execute("DELETE FROM wattline_meta")
        con.executemany(
            "INSERT INTO wattline_meta VALUES (?, ?)",
            [
                ("catalog_version", str(CATALOG_VERSION)),
                ("lake_root", str(lake.root.resolve())),
                ("lake_format", "delta" if lake.delta else "parquet"),
                ("delta_uri", lake.delta.root_uri if lake.delta else ""),
            ]
            + [(f"view:{name}", _normalise(sql)) for name, sql in wanted.items()],
        )
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    log.info("catalog ready path=%s views=%d", path, len(wanted))


def _normalise(sql: str) -> str:
    return " ".join(sql.split())


def _is_current(path: Path, wanted: dict[str, str]) -> bool:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return False
    try:
        rows = con.execute("SELECT key, value FROM wattline_meta").fetchall()
    except duckdb.Error:
        return False
    finally:
        con.close()
    stored = dict(rows)
    expected = {f"view:{n}": _normalise(s) for n, s in wanted.items()}
    expected["catalog_version"] = str(CATALOG_VERSION)
    return all(stored.get(k) == v for k, v in expected.items())
