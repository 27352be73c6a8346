"""Registry loads: all or nothing, and every problem names its file, row and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from warehouse.catalog import connect_readonly, ensure_catalog
from warehouse.lake import Lake
from warehouse.registry import RegistryError, load_registry

DEVICES_HEADER = (
    "device_id,site,kind,rated_power_kw,rated_voltage_v,rated_current_a,"
    "rated_speed_rpm,rated_efficiency,rated_power_factor,service_factor,"
    "bep_flow_m3h,rated_flow_m3h,unloaded_power_kw,rated_kva,no_load_loss_kw,"
    "load_loss_kw"
)
SITES = (
    "site,timezone,tariff_per_kwh,currency,emission_kg_per_kwh,shift_calendar\n"
    "plant-sh,Asia/Shanghai,0.75,CNY,0.5703,Mon-Fri 08:00-20:00\n"
)


def write(tmp_path: Path, devices_rows: list[str], sites: str = SITES) -> tuple[Path, Path]:
    d = tmp_path / "devices.csv"
    d.write_text("\n".join([DEVICES_HEADER, *devices_rows]) + "\n")
    s = tmp_path / "sites.csv"
    s.write_text(sites)
    return d, s


def test_good_files_load_and_blank_means_unknown(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    d, s = write(
        tmp_path,
        [
            "m1,plant-sh,motor,75,380,140,1485,0.95,0.86,1.15,,,,,,",
            "t1,plant-sh,transformer,,,,,,,,,,,2000,2.1,15.0",
        ],
    )
    counts = load_registry(lake, d, s)
    assert (counts.devices, counts.sites) == (2, 1)
    ensure_catalog(tmp_path / "c.duckdb", lake)
    con = connect_readonly(tmp_path / "c.duckdb")
    rows = con.execute(
        "SELECT device_id, rated_power_kw, rated_kva FROM devices ORDER BY 1"
    ).fetchall()
    tariff = con.execute("SELECT tariff_per_kwh FROM sites").fetchall()
    con.close()
    assert rows == [("m1", 75.0, None), ("t1", None, 2000.0)]
    assert tariff == [(0.75,)]


def test_bad_rows_are_named_and_nothing_is_loaded(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.prepare()
    d, s = write(
        tmp_path,
        [
            "m1,plant-sh,motor,75,380,140,1485,0.95,0.86,1.15,,,,,,",
            "m2,plant-sh,motr,abc,380,140,1485,1.3,0.86,,,,,,,",
            "m1,elsewhere,pump,10,380,20,2950,0.9,0.85,,120,,,,,",
        ],
        sites=SITES + "bad site,Mars/Olympus,-1,yuan,0.5,\n",
    )
    with pytest.raises(RegistryError) as info:
        load_registry(lake, d, s)
    text = str(info.value)
    for expected in (
        "devices.csv row 3, column rated_power_kw: 'abc' is not a number",
        "row 3 (device_id m2), column kind",
        "row 3 (device_id m2), column rated_efficiency",
        "column device_id",  # duplicate m1
        "row 4 (device_id m1), column site: 'elsewhere' is not in the sites file",
        "sites.csv row 3 (site bad site), column timezone",
        "column currency",
        "column tariff_per_kwh",
    ):
        assert expected in text, expected
    con_files = sorted(p.name for p in (lake.root / "registry").iterdir())
    assert con_files == ["devices.parquet", "sites.parquet"]
    import polars as pl

    assert pl.read_parquet(lake.registry_path("devices")).height == 0, "nothing half-loaded"


def test_wrong_header_is_reported(tmp_path: Path) -> None:
    d, s = write(tmp_path, [])
    d.write_text("device_id,site,type\n")
    with pytest.raises(RegistryError, match="missing kind"):
        load_registry(Lake(tmp_path / "lake"), d, s)
