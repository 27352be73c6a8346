"""`wattline jobs run` on simulated plants: each scenario raises exactly its alert, healthy
equipment none; runs are incremental and idempotent; edge cases never guess."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from edge.devices import DEMO_DATA_DIR, load_devices, load_sites
from edge.scenarios import load_scenario_assignments
from edge.simulate import generate_messages
from ingest.dedup import RecentKeys
from ingest.pipeline import Batch, process
from schemas.calendar import parse_shift_calendar
from transforms.thresholds import Thresholds
from warehouse.catalog import connect_readonly
from warehouse.drivers import load_production
from warehouse.lake import QUARANTINE, READINGS, Lake
from warehouse.registry import load_registry
from wattline.config import CatalogSettings, LakeSettings, Settings
from wattline.jobs import run_jobs

MONDAY_LOCAL = datetime(2026, 11, 15, 16, tzinfo=UTC)  # Mon 2026-11-16 00:00 Asia/Shanghai
EXPECTED = {  # scenario device -> the one rule it must raise
    "motor-mixer-02": "under_loaded",
    "motor-grinder-03": "off_shift_running",
    "motor-extruder-04": "voltage_unbalance",
    "pump-process-02": "pump_outside_por",
    "compressor-02": "compressor_leak",
    "transformer-aux-02": "transformer_light_load",
}


TONNES = (14.4, 14.1, 14.6, 14.2, 14.5, 4.8, 0.0)  # Mon..Sun


def land(
    lake: Lake,
    start: datetime,
    end: datetime,
    batch: int,
    seed: int = 1,
    devices_csv: Path = DEMO_DATA_DIR / "devices.csv",
) -> int:
    """Simulated plant readings through the consumer's own code path into the lake."""
    devices = load_devices(devices_csv)
    sites = load_sites(DEMO_DATA_DIR / "sites.csv")
    plan = load_scenario_assignments(DEMO_DATA_DIR / "scenarios.csv")
    msgs = list(generate_messages(devices, sites, plan, start, end, 60.0, 60, seed=seed))
    now = int(time.time() * 1e6)
    landing = process(
        Batch([m[0] for m in msgs], [m[1] for m in msgs], [now] * len(msgs)),
        RecentKeys(10**7),
        262144,
        400 * 86400,
    )
    lake.prepare()
    lake.write_partitioned(READINGS, landing.readings, "ts", "test", batch)
    lake.write_partitioned(QUARANTINE, landing.quarantine, "received_at", "test", batch)
    return landing.readings.height


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("week")
    settings = Settings(
        lake=LakeSettings(root / "lake"),
        catalog=CatalogSettings(root / "wattline.duckdb"),
        analytics=Thresholds(tariff_file=str(DEMO_DATA_DIR / "tariffs.toml")),
    )
    lake = Lake(settings.lake.root)
    load_registry(
        lake, DEMO_DATA_DIR / "devices.csv", DEMO_DATA_DIR / "sites.csv", parse_shift_calendar
    )
    land(lake, MONDAY_LOCAL, MONDAY_LOCAL + timedelta(days=7), batch=1)
    production = root / "production.csv"
    production.write_text(
        "site,line,day,units,unit\n"
        + "".join(f"plant-sh,extrusion,2026-11-{16 + k},{t},t\n" for k, t in enumerate(TONNES))
    )
    lines = root / "lines.csv"
    lines.write_text(
        "site,line,device_id\nplant-sh,extrusion,motor-extruder-04\n"
        "plant-sh,extrusion,motor-grinder-03\n"
    )
    load_production(lake, production, lines)
    run_jobs(settings)
    return settings


def query(settings: Settings, sql: str) -> pl.DataFrame:
    con = connect_readonly(settings.catalog.path)
    try:
        frame: pl.DataFrame = con.sql(sql).pl()
        return frame
    finally:
        con.close()


def test_each_scenario_raises_exactly_its_alert_and_healthy_devices_none(week: Settings) -> None:
    alerts = query(week, "SELECT device_id, rule, status, severity FROM alerts")
    raised = {(d, r) for d, r in alerts.select("device_id", "rule").iter_rows()}
    assert raised == set(EXPECTED.items())
    assert set(alerts["status"]) == {"open"}


def test_alerts_carry_evidence_money_co2_and_advice_ranked_by_kwh(week: Settings) -> None:
    alerts = query(week, "SELECT * FROM alerts")
    assert alerts["waste_kwh_per_year"].to_list() == sorted(
        alerts["waste_kwh_per_year"].to_list(), reverse=True
    )
    for row in alerts.iter_rows(named=True):
        assert row["evidence"].startswith("{") and row["recommendation"]
        assert row["recommendation_zh"] and row["currency"] == "CNY"
        assert row["cost_per_year"] == pytest.approx(
            row["waste_kwh_per_year"] * row["price_per_kwh"]
        )
        assert 0.29 <= row["price_per_kwh"] <= 1.13  # between valley and peak
        assert row["co2_kg_per_year"] == pytest.approx(row["waste_kwh_per_year"] * 0.5306)
        assert row["opened_at"] is not None and row["alert_id"]
    leak = alerts.filter(pl.col("rule") == "compressor_leak").row(0, named=True)
    assert 0.30 < leak["metric"] < 0.40 and leak["severity"] == "critical"  # scenario ~35 %


def test_load_factor_table(week: Settings) -> None:
    lf = query(week, "SELECT * FROM load_factor WHERE day = DATE '2026-11-17'")
    by = {r["device_id"]: r for r in lf.iter_rows(named=True)}
    assert len(by) == 11
    assert by["motor-mixer-02"]["zone"] == "under-loaded"
    assert 0.18 < by["motor-mixer-02"]["p75_load_factor"] < 0.30
    assert by["motor-mixer-02"]["recommended_size_kw"] < 110
    assert by["motor-conveyor-01"]["zone"] == "efficient"
    assert by["motor-conveyor-01"]["method"] == "power_curve"
    assert by["motor-conveyor-01"]["running_hours"] == pytest.approx(12.0, abs=0.1)
    assert by["pump-process-02"]["flow_bep_ratio_p50"] == pytest.approx(0.40, abs=0.05)
    assert by["transformer-aux-02"]["beta_opt"] == pytest.approx((0.83 / 10.3) ** 0.5)
    assert by["motor-conveyor-01"]["gb12497_state"] == "economic"


def test_second_run_changes_nothing_and_a_crash_rerun_gives_the_same_tables(week: Settings) -> None:
    lake = week.lake.root
    before = {p: p.read_bytes() for p in lake.glob("[la]*/**/*.parquet")}
    assert run_jobs(week).days == []
    (lake / "_jobs" / "state.json").unlink()  # as if the run had crashed before its last step
    again = run_jobs(week)
    assert len(again.days) >= 7
    after = {p: p.read_bytes() for p in lake.glob("[la]*/**/*.parquet")}
    assert after.keys() == before.keys()
    for path, data in before.items():
        assert pl.read_parquet(data).equals(pl.read_parquet(after[path])), path


def test_new_day_is_processed_incrementally(tmp_path: Path) -> None:
    settings = Settings(
        lake=LakeSettings(tmp_path / "lake"), catalog=CatalogSettings(tmp_path / "c.duckdb")
    )
    lake = Lake(settings.lake.root)
    load_registry(
        lake, DEMO_DATA_DIR / "devices.csv", DEMO_DATA_DIR / "sites.csv", parse_shift_calendar
    )
    land(lake, MONDAY_LOCAL, MONDAY_LOCAL + timedelta(days=2), batch=1)
    first = run_jobs(settings)
    land(lake, MONDAY_LOCAL + timedelta(days=2), MONDAY_LOCAL + timedelta(days=3), batch=2)
    second = run_jobs(settings)
    assert date(2026, 11, 15) in first.days and date(2026, 11, 18) in second.days
    assert date(2026, 11, 15) not in second.days, "days the new file cannot touch are kept"


def test_unknown_device_and_missing_fields_are_reported_not_guessed(tmp_path: Path) -> None:
    settings = Settings(
        lake=LakeSettings(tmp_path / "lake"), catalog=CatalogSettings(tmp_path / "c.duckdb")
    )
    lake = Lake(settings.lake.root)
    csv = (DEMO_DATA_DIR / "devices.csv").read_text().splitlines()
    kept = [csv[0]] + [
        line.replace(",139.5,", ",,") if line.startswith("motor-conveyor-01") else line
        for line in csv[1:]
        if not line.startswith("motor-mixer-02")
    ]
    registry = tmp_path / "devices.csv"
    registry.write_text("\n".join(kept) + "\n")
    load_registry(lake, registry, DEMO_DATA_DIR / "sites.csv", parse_shift_calendar)
    land(lake, MONDAY_LOCAL, MONDAY_LOCAL + timedelta(days=1), batch=1)
    run_jobs(settings)
    lf = query(settings, "SELECT device_id, status, zone, p75_load_factor FROM load_factor")
    by = {r["device_id"]: r for r in lf.iter_rows(named=True)}
    assert by["motor-mixer-02"]["status"] == "unmatched: no nameplate"
    assert by["motor-conveyor-01"]["status"] == "unmatched: missing rated_current_a"
    for device in ("motor-mixer-02", "motor-conveyor-01"):
        assert by[device]["zone"] is None and by[device]["p75_load_factor"] is None
    alerts = query(settings, "SELECT device_id FROM alerts")
    assert not {"motor-mixer-02", "motor-conveyor-01"} & set(alerts["device_id"])


def test_an_all_stopped_day_is_reported_as_stopped_and_judged_by_no_rule(week: Settings) -> None:
    sunday = query(
        week,
        "SELECT device_id, status, running_hours, zone FROM load_factor "
        "WHERE day = DATE '2026-11-22' AND device_id = 'motor-conveyor-01'",
    )
    assert sunday.rows() == [("motor-conveyor-01", "stopped", 0.0, None)]
    verdicts = query(
        week,
        "SELECT breach FROM rule_evaluations WHERE day = DATE '2026-11-22' "
        "AND device_id = 'motor-conveyor-01' AND rule = 'under_loaded'",
    )
    assert verdicts["breach"].to_list() == [None]


def test_transformers_are_zoned_by_losses_not_motor_bands(week: Settings) -> None:
    zones = query(
        week,
        "SELECT device_id, zone FROM load_factor WHERE day = DATE '2026-11-17' "
        "AND kind = 'transformer' ORDER BY device_id",
    )
    assert zones.rows() == [
        ("transformer-aux-02", "light load"),
        ("transformer-main-01", "economic"),
    ]


def test_smaller_chunks_of_days_and_devices_give_the_same_tables(
    week: Settings, tmp_path: Path
) -> None:
    import shutil
    from dataclasses import replace

    copy = tmp_path / "lake"
    shutil.copytree(week.lake.root, copy)
    small = replace(
        week,
        lake=LakeSettings(copy),
        catalog=CatalogSettings(tmp_path / "c.duckdb"),
        analytics=replace(week.analytics, chunk_days=1, devices_per_pass=3),
    )
    run_jobs(small, full=True)
    for name in (
        "load_factor",
        "rule_evaluations",
        "energy_cost",
        "demand",
        "demand_peaks",
        "demand_monthly",
    ):
        a = query(week, f"SELECT * FROM {name} ORDER BY ALL")
        b = query(small, f"SELECT * FROM {name} ORDER BY ALL")
        assert a.height > 0, name
        assert a.equals(b), name


def test_the_bill_by_period_adds_up_to_the_metered_energy(week: Settings) -> None:
    # Every device-day's energy is split over the periods, nothing lost or doubled; the
    # bill (billing_meter) is the transformers' energy, since the plant has incomers.
    split = query(
        week,
        "SELECT device_id, day, sum(energy_kwh) AS kwh, bool_and(billing_meter) AS billed "
        "FROM energy_cost GROUP BY ALL ORDER BY ALL",
    )
    metered = query(week, "SELECT device_id, day, energy_kwh AS kwh FROM load_factor ORDER BY ALL")
    joined = split.join(metered, on=["device_id", "day"], how="full", coalesce=True)
    assert joined.height == metered.height == split.height
    assert joined["kwh"].to_list() == pytest.approx(joined["kwh_right"].to_list())
    billed = set(split.filter("billed")["device_id"])
    assert billed == {"transformer-main-01", "transformer-aux-02"}
    periods = query(week, "SELECT DISTINCT period FROM energy_cost WHERE billing_meter")
    assert set(periods["period"]) == {"peak", "flat", "valley"}  # November: no critical
    priced = query(week, "SELECT DISTINCT period, price_per_kwh FROM energy_cost")
    assert dict(priced.iter_rows()) == {"peak": 1.13, "flat": 0.70, "valley": 0.29}


def test_monthly_demand_is_the_largest_site_window_and_names_who_made_it(week: Settings) -> None:
    windows = query(
        week,
        "SELECT window_start, demand_kw FROM demand WHERE meter = 'site' "
        "ORDER BY demand_kw DESC LIMIT 1",
    ).row(0, named=True)
    # The site's window is the sum of its two transformers' windows.
    parts = query(
        week,
        "SELECT sum(demand_kw) AS kw FROM demand WHERE meter <> 'site' "
        f"AND window_start = TIMESTAMPTZ '{windows['window_start'].isoformat()}'",
    )
    assert parts["kw"][0] == pytest.approx(windows["demand_kw"])
    month = query(week, "SELECT * FROM demand_monthly").row(0, named=True)
    assert month["max_demand_kw"] == pytest.approx(windows["demand_kw"])
    assert month["window_start"] == windows["window_start"]
    assert month["contracted_kw"] == 1200.0
    assert month["demand_ratio"] == pytest.approx(month["max_demand_kw"] / 1200.0)
    assert month["approaching_contract"] == (month["demand_ratio"] >= 0.9)
    assert month["demand_charge"] == pytest.approx(40.0 * month["max_demand_kw"])
    top = query(
        week,
        "SELECT device_id, device_kw FROM demand_peaks WHERE rank = 1 "
        f"AND window_start = TIMESTAMPTZ '{windows['window_start'].isoformat()}'",
    ).row(0)
    assert (month["top_device_id"], month["top_device_kw"]) == top
    assert top[0] not in {"transformer-main-01", "transformer-aux-02"}


def test_alerts_are_priced_at_the_periods_the_device_ran_in(week: Settings) -> None:
    # Each device's realised price over its last 28 days, sum(cost) / sum(kWh); off-shift
    # running at the price of its off-shift energy (nights are valley, so it is cheaper).
    alerts = query(week, "SELECT device_id, rule, price_per_kwh FROM alerts")
    realised = query(
        week,
        "SELECT device_id, sum(cost) / sum(energy_kwh) AS p, "
        "sum(cost) FILTER (WHERE NOT on_shift) / sum(energy_kwh) FILTER (WHERE NOT on_shift) "
        "AS off FROM energy_cost GROUP BY device_id",
    )
    by = {d: (p, off) for d, p, off in realised.iter_rows()}
    for device, rule, price in alerts.iter_rows():
        p, off = by[device]
        assert price == pytest.approx(off if rule == "off_shift_running" else p, abs=1e-6), rule
    grinder = by["motor-grinder-03"]
    assert grinder[1] < grinder[0]  # its off-shift energy is cheaper than its mix


def test_kwh_and_co2_per_unit_per_line_and_site(week: Settings) -> None:
    rows = query(week, "SELECT * FROM production_intensity ORDER BY line NULLS LAST, day")
    line = rows.filter(pl.col("line") == "extrusion")
    assert line["units"].to_list() == list(TONNES)
    energy = query(
        week,
        "SELECT day, sum(energy_kwh) AS kwh FROM load_factor WHERE device_id IN "
        "('motor-extruder-04', 'motor-grinder-03') GROUP BY day ORDER BY day",
    )
    joined = line.join(energy, on="day")
    assert joined.height == 7
    assert joined["energy_kwh"].to_list() == pytest.approx(joined["kwh"].to_list())
    monday = line.row(0, named=True)
    assert monday["kwh_per_unit"] == pytest.approx(monday["energy_kwh"] / 14.4)
    assert monday["co2_kg"] == pytest.approx(monday["energy_kwh"] * 0.5306)
    assert monday["co2_kg_per_unit"] == pytest.approx(monday["co2_kg"] / 14.4)
    assert monday["cost_per_unit"] == pytest.approx(monday["cost"] / 14.4)
    assert monday["complete"] is True
    assert line.row(6, named=True)["kwh_per_unit"] is None  # nothing made on Sunday
    site = rows.filter(pl.col("line").is_null())
    billed = query(
        week,
        "SELECT day, sum(energy_kwh) AS kwh FROM energy_cost WHERE billing_meter "
        "GROUP BY day ORDER BY day",
    )
    assert site.join(billed, on="day")["energy_kwh"].to_list() == pytest.approx(
        site.join(billed, on="day")["kwh"].to_list()
    )


def test_a_week_is_too_short_for_a_baseline_and_says_so(week: Settings) -> None:
    baselines = query(week, "SELECT * FROM baselines")
    assert baselines.height == 12  # 11 devices and the site
    assert all(s.startswith("unfit: ") and "days < 12" in s for s in baselines["status"])
    daily = query(week, "SELECT * FROM baseline_daily")
    assert daily["expected_kwh"].null_count() == daily.height
    assert daily["cusum_kwh"].null_count() == daily.height


def test_the_day_ahead_forecast_covers_each_meter_and_a_short_history_has_no_backtest(
    week: Settings,
) -> None:
    forecast = query(week, "SELECT * FROM forecast ORDER BY meter, local_hour")
    assert set(forecast["meter"]) == {"site", "transformer-main-01", "transformer-aux-02"}
    assert forecast.group_by("meter").len()["len"].to_list() == [24, 24, 24]
    assert set(forecast["day"].cast(pl.String)) == {"2026-11-23"}  # the day after the week
    # One week of history: the forecast is last week's profile, and nothing to backtest.
    assert forecast["energy_kwh"].to_list() == pytest.approx(forecast["naive_kwh"].to_list())
    assert forecast["backtest_days"].null_count() == 72
    assert not forecast["beats_naive"].any()
