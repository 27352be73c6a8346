"""Analysts open the catalog with the real DuckDB 1.x CLI, read-only, while the consumer runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ConsumerThread, Publisher, settings_for
from warehouse.catalog import CatalogError, connect_readonly, ensure_catalog
from warehouse.lake import Lake
from wattline.broker import Broker


def duckdb_cli() -> str:
    found = shutil.which("duckdb", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("duckdb CLI (PyPI duckdb-cli 1.5.x) is missing: it is a dev dependency")
    return found


def cli_query(catalog: Path, sql: str) -> str:
    out = subprocess.run(
        [duckdb_cli(), "-readonly", "-csv", "-noheader", str(catalog), "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.broker
def test_duckdb_1x_cli_reads_the_catalog_while_the_consumer_runs(
    broker: Broker, publisher: Publisher, site: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, tmp_path, site)
    version = subprocess.run([duckdb_cli(), "--version"], capture_output=True, text=True).stdout
    assert version.startswith("v1."), version
    with ConsumerThread(settings):
        analyst = connect_readonly(settings.catalog.path)  # held open all along
        publisher.publish(f"telemetry/{site}/m1", {"ts": 1795219200000, "power_kw": 3.5})
        seen = ""
        deadline = time.monotonic() + 10
        while seen != "1" and time.monotonic() < deadline:
            seen = cli_query(
                settings.catalog.path, f"SELECT count(*) FROM readings WHERE site = '{site}'"
            )
        assert seen == "1", "new data is visible to a 1.x client within seconds"
        publisher.publish(f"telemetry/{site}/m1", {"ts": 1795219201000, "power_kw": 4.5})
        deadline = time.monotonic() + 10
        count = 0
        while count != 2 and time.monotonic() < deadline:
            count = analyst.execute(
                "SELECT count(*) FROM readings WHERE site = ?", [site]
            ).fetchall()[0][0]
        assert count == 2, "an open session sees new files at query time"
        analyst.close()
    assert cli_query(settings.catalog.path, "SELECT count(*) FROM devices") == "0"


def hold_open(path: Path, read_only: bool) -> subprocess.Popen[str]:
    """An analyst's session in another process."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; "
            f"c = duckdb.connect(sys.argv[1], read_only={read_only}); "
            "print('open', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
    return holder


def stop(holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait()
    assert holder.stdout is not None
    holder.stdout.close()


def test_analyst_sessions_never_stop_ingest_from_starting(tmp_path: Path) -> None:
    lake, path = Lake(tmp_path / "lake"), tmp_path / "c.duckdb"
    ensure_catalog(path, lake)
    reader = hold_open(path, read_only=True)
    try:
        ensure_catalog(path, lake)  # current: read-only check suffices, no error
        with pytest.raises(CatalogError, match="another process holds it open"):
            ensure_catalog(path, Lake(tmp_path / "lake2"))  # a real change must say why
    finally:
        stop(reader)
    writer = hold_open(path, read_only=False)
    try:
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(path), read_only=True)  # DuckDB's rule: one writer, nobody else
        ensure_catalog(path, lake, strict=False)  # the consumer warns and goes on
        with pytest.raises(CatalogError):
            ensure_catalog(path, lake)  # `wattline catalog init` says what to do
    finally:
        stop(writer)
