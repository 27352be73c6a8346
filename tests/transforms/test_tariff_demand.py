"""Time-of-use pricing and maximum demand, against days split by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from transforms.demand import check_window, demand_windows, monthly_demand
from transforms.tag_local_time import tag_local_time
from transforms.tariff import (
    Tariff,
    TariffError,
    load_shift,
    load_tariffs,
    price_by_period,
    schedule_frame,
)

TARIFF = """
[plant-a]
currency = "CNY"
demand_charge_per_kw_month = 40.0
contracted_kw = 130.0
holidays = ["2026-10-01"]
workdays = ["2026-10-11"]        # a Sunday made a working day
prices = { critical = 1.5, peak = 1.2, flat = 0.7, valley = 0.3 }

[[plant-a.season]]
name = "summer"
months = [7, 8, 9]
rest_day = { "00:00" = "valley" }
[plant-a.season.workday]
"00:00" = "valley"
"08:00" = "flat"
"10:00" = "peak"
"12:00" = "flat"
"13:00" = "critical"
"15:00" = "peak"
"17:00" = "flat"
"22:00" = "valley"

[[plant-a.season]]
name = "rest of year"
months = [1, 2, 3, 4, 5, 6, 10, 11, 12]
workday = { "00:00" = "valley", "08:00" = "peak", "20:00" = "flat", "22:00" = "valley" }
rest_day = { "00:00" = "valley", "08:00" = "flat", "22:00" = "valley" }
"""

SITES = pl.DataFrame(
    {
        "site": ["plant-a", "plant-b"],
        "timezone": ["Asia/Shanghai", "Asia/Shanghai"],
        "tariff_per_kwh": [0.75, 0.6],
        "currency": ["CNY", "CNY"],
        "emission_kg_per_kwh": [0.53, 0.53],
        "shift_calendar": [None, None],
    }
)
DEVICES = pl.DataFrame(
    {
        "device_id": ["motor-1", "motor-2", "tx-1", "motor-b"],
        "site": ["plant-a", "plant-a", "plant-a", "plant-b"],
        "kind": ["motor", "motor", "transformer", "motor"],
    }
)
SHANGHAI = timedelta(hours=8)


@pytest.fixture
def tariffs(tmp_path: Path) -> dict[str, Tariff]:
    path = tmp_path / "tariffs.toml"
    path.write_text(TARIFF)
    return load_tariffs(path)


def _local_day(day: date, device: str, site: str, kwh_per_minute: float) -> pl.DataFrame:
    """A whole site-local day of 1-minute buckets at a constant power."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - SHANGHAI
    minutes = [start + timedelta(minutes=k) for k in range(1440)]
    return pl.DataFrame(
        {
            "site": site,
            "device_id": device,
            "minute": pl.Series(minutes, dtype=pl.Datetime("us", "UTC")),
            "energy_kwh": kwh_per_minute,
        }
    )


def _tag(buckets: pl.DataFrame) -> pl.DataFrame:
    return tag_local_time(buckets.lazy(), SITES).collect()


def _split(priced: pl.DataFrame) -> dict[str, tuple[float, float]]:
    return {
        r["period"]: (round(r["energy_kwh"], 9), round(r["cost"], 9))
        for r in priced.iter_rows(named=True)
    }


def test_summer_workday_split_by_hand(tariffs: dict[str, Tariff]) -> None:
    # Wednesday 2026-07-15 at 60 kW: 1 kWh a minute. By hand: valley 00-08 + 22-24 = 600
    # min, flat 08-10 + 12-13 + 17-22 = 480, peak 10-12 + 15-17 = 240, critical 13-15 = 120;
    # cost 600 x 0.3 + 480 x 0.7 + 240 x 1.2 + 120 x 1.5 = 180 + 336 + 288 + 180 = 984.
    priced = price_by_period(
        _tag(_local_day(date(2026, 7, 15), "motor-1", "plant-a", 1.0)), DEVICES, SITES, tariffs
    )
    assert _split(priced) == {
        "valley": (600.0, 180.0),
        "flat": (480.0, 336.0),
        "peak": (240.0, 288.0),
        "critical": (120.0, 180.0),
    }
    assert priced["cost"].sum() == pytest.approx(984.0)
    assert set(priced["day"]) == {date(2026, 7, 15)}
    assert priced["billing_meter"].to_list() == [False] * 4  # plant-a bills on its transformer


def test_rest_days_holidays_and_made_up_workdays(tariffs: dict[str, Tariff]) -> None:
    saturday = _tag(_local_day(date(2026, 7, 18), "motor-1", "plant-a", 1.0))
    assert _split(price_by_period(saturday, DEVICES, SITES, tariffs)) == {"valley": (1440.0, 432.0)}
    # National Day (a Thursday) follows the rest-day schedule of its season: valley
    # 00-08 and 22-24 (600 min), flat 08-22 (840 min).
    holiday = _tag(_local_day(date(2026, 10, 1), "motor-1", "plant-a", 1.0))
    assert _split(price_by_period(holiday, DEVICES, SITES, tariffs)) == {
        "valley": (600.0, 180.0),
        "flat": (840.0, 588.0),
    }
    # Sunday 2026-10-11 is a working day: valley 600, peak 08-20 = 720, flat 20-22 = 120.
    sunday = _tag(_local_day(date(2026, 10, 11), "motor-1", "plant-a", 1.0))
    assert _split(price_by_period(sunday, DEVICES, SITES, tariffs)) == {
        "valley": (600.0, 180.0),
        "peak": (720.0, 864.0),
        "flat": (120.0, 84.0),
    }


def test_a_site_without_a_tariff_keeps_its_flat_price(tariffs: dict[str, Tariff]) -> None:
    priced = price_by_period(
        _tag(_local_day(date(2026, 7, 15), "motor-b", "plant-b", 0.5)), DEVICES, SITES, tariffs
    )
    columns = ("period", "energy_kwh", "price_per_kwh", "cost", "billing_meter")
    assert priced.select(columns).rows() == [("flat", 720.0, 0.6, pytest.approx(432.0), True)]


def test_schedule_covers_every_minute_once(tariffs: dict[str, Tariff]) -> None:
    frame = schedule_frame(tariffs)
    assert frame.height == 12 * 2 * 1440
    assert frame.select("month", "rest_day", "minute_of_day").is_duplicated().sum() == 0
    t = tariffs["plant-a"]
    assert t.period_at(date(2026, 7, 15), 13 * 60) == "critical"
    assert t.period_at(date(2026, 7, 15), 13 * 60 - 1) == "flat"


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (("months = [7, 8, 9]", "months = [7, 8]"), "cover 1..12 exactly once"),
        (('"00:00" = "valley"\n"08:00"', '"01:00" = "valley"\n"08:00"'), '"00:00"'),
        (('"17:00" = "flat"', '"17:00" = "shoulder"'), "has no price"),
        (("critical = 1.5", "critical = -1.5"), ">= 0"),
        (('"15:00" = "peak"', '"25:00" = "peak"'), "not a time of day"),
        (("contracted_kw = 130.0", "contracted = 130.0"), "unknown keys ['contracted']"),
        (("contracted_kw = 130.0", 'basis = "kva"'), "basis must be 'demand'"),
    ],
)
def test_bad_tariff_files_say_what_is_wrong(
    tmp_path: Path, edit: tuple[str, str], reason: str
) -> None:
    path = tmp_path / "t.toml"
    path.write_text(TARIFF.replace(*edit, 1))
    with pytest.raises(TariffError, match="plant-a") as err:
        load_tariffs(path)
    assert reason in str(err.value)


def _minutes(site: str, device: str, local_start: datetime, kwh: list[float]) -> pl.DataFrame:
    start = local_start.replace(tzinfo=UTC) - SHANGHAI
    return pl.DataFrame(
        {
            "site": site,
            "device_id": device,
            "minute": pl.Series(
                [start + timedelta(minutes=k) for k in range(len(kwh))],
                dtype=pl.Datetime("us", "UTC"),
            ),
            "energy_kwh": kwh,
        }
    )


def test_demand_windows_at_their_boundaries(tariffs: dict[str, Tariff]) -> None:
    ten = datetime(2026, 7, 15, 10, 0)
    # motor-1: 2 kWh a minute 10:00-10:14 (120 kW), then 5 kWh at 10:15 (20 kW).
    # motor-2: 1 kWh a minute 10:00-10:29 (60 kW in both windows).
    # tx-1, the incomer, metres both plus 0.1 kWh a minute of losses.
    m1 = [2.0] * 15 + [5.0]
    m2 = [1.0] * 30
    tx = [a + b + 0.1 for a, b in zip(m1 + [0.0] * 14, m2, strict=True)]
    buckets = pl.concat(
        [
            _minutes("plant-a", "motor-1", ten, m1),
            _minutes("plant-a", "motor-2", ten, m2),
            _minutes("plant-a", "tx-1", ten, tx),
        ]
    )
    demand, peaks = demand_windows(_tag(buckets), DEVICES, 15)
    site = demand.filter(pl.col("meter") == "site")
    w1 = datetime(2026, 7, 15, 2, 0, tzinfo=UTC)  # 10:00 Shanghai
    w2 = w1 + timedelta(minutes=15)
    assert site.select("window_start", "demand_kw").rows() == [
        (w1, pytest.approx((30 + 15 + 1.5) * 4)),
        (w2, pytest.approx((5 + 15 + 1.5) * 4)),
    ]
    assert demand.filter(pl.col("meter") == "tx-1").height == 2  # per transformer too
    assert peaks.select("window_start", "rank", "device_id", "device_kw").rows() == [
        (w1, 1, "motor-1", pytest.approx(120.0)),
        (w1, 2, "motor-2", pytest.approx(60.0)),
    ]
    assert peaks["share"][0] == pytest.approx(120.0 / 186.0)
    month = monthly_demand(peaks, tariffs, alert_fraction=0.9)
    row = month.row(0, named=True)
    assert row["month"] == date(2026, 7, 1)
    assert row["max_demand_kw"] == pytest.approx(186.0)
    assert row["top_device_id"] == "motor-1"
    assert row["demand_ratio"] == pytest.approx(186.0 / 130.0)
    assert row["approaching_contract"] is True
    assert row["demand_charge"] == pytest.approx(186.0 * 40.0)
    assert row["basis"] == "demand" and row["charge_by_capacity"] is None  # no kVA known
    # The same month billed on installed capacity (按容量): 28 per kVA of the 250 kVA
    # transformer = 7,000, whatever the demand; the demand-basis figure stays for comparison.
    capacity = {
        "plant-a": replace(tariffs["plant-a"], basis="capacity", capacity_charge_per_kva_month=28.0)
    }
    devices = DEVICES.with_columns(rated_kva=pl.when(pl.col("kind") == "transformer").then(250.0))
    billed = monthly_demand(peaks, capacity, 0.9, devices).row(0, named=True)
    assert billed["installed_kva"] == 250.0
    assert billed["charge_by_capacity"] == pytest.approx(7000.0)
    assert billed["charge_by_demand"] == pytest.approx(186.0 * 40.0)
    assert billed["demand_charge"] == pytest.approx(7000.0)


def test_a_window_must_divide_the_day() -> None:
    check_window(15)
    with pytest.raises(ValueError, match="divide a day"):
        check_window(7)


def test_load_shift_prices_peak_energy_at_the_valley(tariffs: dict[str, Tariff]) -> None:
    # The summer workday at 1 kWh a minute: peak 240 kWh x 1.2 + critical 120 x 1.5 = 468;
    # at the valley price 360 x 0.3 = 108; the most moving it could save is 360.
    day = _local_day(date(2026, 7, 15), "motor-1", "plant-a", 1.0)
    incomer = _local_day(date(2026, 7, 15), "tx-1", "plant-a", 1.0)
    priced = price_by_period(_tag(pl.concat([day, incomer])), DEVICES, SITES, tariffs)
    shift = load_shift(priced)
    assert shift["device_id"].to_list() == ["motor-1"]  # the transformer is not a load
    row = shift.row(0, named=True)
    assert row["month"] == date(2026, 7, 1)
    assert (row["peak_kwh"], row["energy_kwh"]) == (pytest.approx(360.0), pytest.approx(1440.0))
    assert row["peak_share"] == pytest.approx(0.25)
    assert row["peak_cost"] == pytest.approx(468.0)
    assert row["valley_price_per_kwh"] == 0.3
    assert row["saving_if_shifted"] == pytest.approx(360.0)
