"""Production counts, line map and weather: checked CSV upserts."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.devices import DEMO_DATA_DIR
from schemas.calendar import parse_shift_calendar
from warehouse.drivers import DriversError, load_production, load_weather, read_driver
from warehouse.lake import Lake
from warehouse.registry import load_registry


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    load_registry(
        lake, DEMO_DATA_DIR / "devices.csv", DEMO_DATA_DIR / "sites.csv", parse_shift_calendar
    )
    return lake


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_production_is_upserted_by_site_line_and_day(lake: Lake, tmp_path: Path) -> None:
    lines = _csv(
        tmp_path,
        "lines.csv",
        "site,line,device_id\nplant-sh,extrusion,motor-extruder-04\n"
        "plant-sh,extrusion,motor-grinder-03\n",
    )
    first = _csv(
        tmp_path,
        "p1.csv",
        "site,line,day,units,unit\nplant-sh,extrusion,2026-11-16,120,t\n"
        "plant-sh,extrusion,2026-11-17,130,t\n",
    )
    assert load_production(lake, first, lines) == 2
    fix = _csv(
        tmp_path,
        "p2.csv",
        "site,line,day,units,unit\nplant-sh,extrusion,2026-11-17,131.5,t\n"
        "plant-sh,extrusion,2026-11-18,125,t\n",
    )
    assert load_production(lake, fix) == 2
    production = read_driver(lake, "production")
    assert [(str(d), u) for d, u in production.select("day", "units").iter_rows()] == [
        ("2026-11-16", 120.0),
        ("2026-11-17", 131.5),  # the corrected count replaced the first
        ("2026-11-18", 125.0),
    ]
    assert read_driver(lake, "lines").height == 2  # kept: the second load gave no map


def test_bad_production_rows_are_named_and_nothing_is_loaded(lake: Lake, tmp_path: Path) -> None:
    bad = _csv(
        tmp_path,
        "p.csv",
        "site,line,day,units,unit\n"
        "plant-sh,extrusion,2026-11-16,-5,t\n"
        "plant-xx,extrusion,2026-11-16,5,t\n"
        "plant-sh,extrusion,16/11/2026,5,t\n"
        "plant-sh,extrusion,2026-11-17,many,t\n"
        "plant-sh,extrusion,2026-11-18,5,\n"
        "plant-sh,extrusion,2026-11-19,5,t\n"
        "plant-sh,extrusion,2026-11-19,6,t\n",
    )
    lines = _csv(tmp_path, "l.csv", "site,line,device_id\nplant-sh,extrusion,no-such-device\n")
    with pytest.raises(DriversError) as info:
        load_production(lake, bad, lines)
    text = str(info.value)
    for reason in (
        "row 2, column units: -5.0 is negative",
        "row 3, column site: plant-xx is not in the sites registry",
        "row 4, column day: '16/11/2026' is not a date (YYYY-MM-DD)",
        "row 5, column units: 'many' is not a number",
        "row 6, column unit: is empty",
        "row 8: (site, line, day) appears more than once",
        "l.csv row 2: device no-such-device is not in the registry, not plant-sh",
    ):
        assert reason in text, reason
    assert read_driver(lake, "production").is_empty()


def test_weather_is_checked_and_upserted(lake: Lake, tmp_path: Path) -> None:
    good = _csv(tmp_path, "w.csv", "site,day,mean_temp_c\nplant-sh,2026-11-16,9.5\n")
    assert load_weather(lake, good) == 1
    bad = _csv(tmp_path, "w2.csv", "site,day,mean_temp_c\nplant-sh,2026-11-17,95\n")
    with pytest.raises(DriversError, match=r"row 2, column mean_temp_c: 95.0 °C is outside"):
        load_weather(lake, bad)
    header = _csv(tmp_path, "w3.csv", "site,date,temp\nplant-sh,2026-11-17,5\n")
    with pytest.raises(DriversError, match="header must be site,day,mean_temp_c"):
        load_weather(lake, header)
    assert read_driver(lake, "weather")["mean_temp_c"].to_list() == [9.5]
