"""`wattline jobs run`: the analytics over what landed since the last run.

The runner does the I/O; transforms/ does the thinking on frames. Incremental: the
readings files that are new or changed since the last run (by size and mtime) name
their UTC date partitions; every site-local day those can touch (a UTC date reaches
the local day before and after) is recomputed from all its readings and its result
files replaced whole. Alerts are then derived again from every day's evaluations.
Idempotent: a second run, or a run after a crash, writes the same files.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from transforms.baseline import BaselineSettings, fit_baselines
from transforms.daily import analyse_days
from transforms.demand import monthly_demand
from transforms.enpi import baseline_inputs, production_intensity
from transforms.forecast import day_ahead, hourly_series
from transforms.tariff import load_shift, load_tariffs, realised_prices
from transforms.thresholds import Thresholds
from transforms.track_alerts import price_alerts, track_alerts
from warehouse.catalog import ensure_catalog
from warehouse.compact import MaintenanceReport, maintain
from warehouse.drivers import read_driver
from warehouse.lake import (
    BASELINE_DAILY,
    BASELINES,
    DEMAND,
    DEMAND_MONTHLY,
    DEMAND_PEAKS,
    ENERGY_COST,
    EVALUATIONS,
    FORECAST,
    LOAD_FACTOR,
    LOAD_SHIFT,
    PRODUCTION_INTENSITY,
    Lake,
    write_atomic,
)
from warehouse.results import Results
from wattline.config import Settings
from wattline.progress import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobReport:
    days: list[date]
    load_factor_rows: int
    evaluations: int
    alerts_open: int
    alerts_resolved: int
    seconds: float

    def summary(self) -> str:
        span = f"{self.days[0]}..{self.days[-1]}" if self.days else "nothing new"
        return (
            f"jobs: days {span} ({len(self.days)}), load_factor rows "
            f"{self.load_factor_rows}, evaluations {self.evaluations}, alerts open "
            f"{self.alerts_open}, resolved {self.alerts_resolved}, {self.seconds:.1f} s"
        )


def maintain_lake(settings: Settings) -> MaintenanceReport:
    """Expire, compact and purge the lake's readings and quarantine (the clock lives here)."""
    lake = settings.lake.open()
    lake.prepare()
    return _maintain(lake, settings)


def _maintain(lake: Lake, settings: Settings) -> MaintenanceReport:
    s = settings.lake
    if lake.delta is not None:
        from warehouse.delta_maintain import maintain_delta

        return maintain_delta(
            lake.delta,
            today=datetime.now(UTC).date(),
            now=time.time(),
            settle_s=s.compact_settle_s,
            retention_days=s.retention_days,
            grace_s=s.trash_grace_s,
        )
    return maintain(
        lake,
        today=datetime.now(UTC).date(),
        now=time.time(),
        settle_s=s.compact_settle_s,
        retention_days=s.retention_days,
        grace_s=s.trash_grace_s,
    )


def run_jobs(settings: Settings, full: bool = False, compact: bool = True) -> JobReport:
    """Lake maintenance first (fewer files to read), then the analytics of new days."""
    started = time.perf_counter()
    lake = settings.lake.open()
    lake.prepare()
    if compact:
        _maintain(lake, settings)
    results = Results(lake)
    ensure_catalog(settings.catalog.path, lake, strict=False)
    devices = pl.read_parquet(lake.registry_path("devices"))
    sites = pl.read_parquet(lake.registry_path("sites"))
    files = results.readings_files()
    seen = {} if full else results.load_state()
    changed = [Path(p) for p, sig in files.items() if seen.get(p) != sig]
    zones = _zones(sites)
    days = _local_days(changed, zones, settings.analytics.max_gap_s)
    a = settings.analytics
    tariffs = load_tariffs(a.tariff_file) if a.tariff_file else {}
    lf_rows = evals = 0
    progress = Progress("jobs", len(days))
    for chunk in _chunks(days, max(1, settings.analytics.chunk_days)):
        progress.step(f"days {chunk[0]}..{chunk[-1]}", len(chunk))
        utc = _utc_days(chunk, zones, settings.analytics.max_gap_s)
        readings = results.readings_for_utc_days(utc)
        if readings is None:
            continue
        out = analyse_days(readings, devices, sites, a, chunk, tariffs)
        for table, frame in (
            (LOAD_FACTOR, out.load_factor),
            (EVALUATIONS, out.evaluations),
            (ENERGY_COST, out.energy_cost),
            (DEMAND, out.demand),
            (DEMAND_PEAKS, out.demand_peaks),
        ):
            for (day,), part in frame.partition_by("day", as_dict=True).items():
                results.write_day(table, day, part)
        load_factor, evaluations = out.load_factor, out.evaluations
        lf_rows += load_factor.height
        evals += evaluations.height
        log.info(
            "jobs chunk days=%s..%s load_factor=%d evaluations=%d",
            chunk[0],
            chunk[-1],
            load_factor.height,
            evaluations.height,
        )
    progress.close()
    if a.energy_management:
        monthly = monthly_demand(
            results.scan(DEMAND_PEAKS), tariffs, a.demand_alert_fraction, devices
        )
        write_atomic(monthly, lake.whole_path(DEMAND_MONTHLY))
        _energy_performance(lake, results, sites, a)
    alerts = price_alerts(
        track_alerts(results.scan(EVALUATIONS), a.clear_days, a.annualise_days),
        sites,
        realised_prices(results.scan(ENERGY_COST), list(tariffs))
        if tariffs and a.energy_management
        else None,
        {site: t.currency for site, t in tariffs.items() if t.currency},
    )
    results.write_alerts(alerts)
    results.save_state(files)
    status = alerts["status"]
    report = JobReport(
        days,
        lf_rows,
        evals,
        int((status == "open").sum()),
        int((status == "resolved").sum()),
        time.perf_counter() - started,
    )
    log.info(report.summary())
    return report


def _energy_performance(lake: Lake, results: Results, sites: pl.DataFrame, a: Thresholds) -> None:
    """Production intensity, baselines with CUSUM and the day-ahead forecast: small tables
    over every day, so recomputed whole (a new production count or weather day changes
    past days too)."""
    energy_cost = results.scan(ENERGY_COST).collect()
    write_atomic(load_shift(energy_cost), lake.whole_path(LOAD_SHIFT))
    production = read_driver(lake, "production")
    lines = read_driver(lake, "lines")
    weather = read_driver(lake, "weather")
    load_factor = (
        results.scan(LOAD_FACTOR)
        .select("site", "device_id", "day", "energy_kwh", "running_hours", "observed_hours")
        .collect()
    )
    intensity = production_intensity(energy_cost, load_factor, production, lines, sites)
    write_atomic(intensity, lake.whole_path(PRODUCTION_INTENSITY))
    inputs = baseline_inputs(
        load_factor, energy_cost, production, lines, weather, sites, a.degree_day_base_c
    )
    period = (
        (date.fromisoformat(a.baseline_from), date.fromisoformat(a.baseline_to))
        if a.baseline_from
        else None
    )
    settings = BaselineSettings(
        variables=tuple(v for v in a.baseline_variables.split(",") if v),
        period=period,
        days=a.baseline_days,
        limits=a.baseline_limits,
        dof=a.baseline_dof,
        min_points=a.baseline_min_days,
        t_min=a.baseline_t_min,
    )
    baselines, daily = fit_baselines(inputs, settings)
    write_atomic(baselines, lake.whole_path(BASELINES))
    write_atomic(daily, lake.whole_path(BASELINE_DAILY))
    hourly = hourly_series(results.scan(DEMAND).collect(), sites)
    forecast = day_ahead(hourly, a.forecast_weeks, a.forecast_backtest_days)
    write_atomic(forecast, lake.whole_path(FORECAST))


def _zones(sites: pl.DataFrame) -> list[ZoneInfo]:
    """The sites' time zones; UTC alone when the registry has none yet."""
    names = sorted(set(sites["timezone"].drop_nulls().to_list())) if sites.height else []
    return [ZoneInfo(n) for n in names] or [ZoneInfo("UTC")]


def _local_days(changed: list[Path], zones: list[ZoneInfo], margin_s: float) -> list[date]:
    """Every site-local day a changed UTC date partition can touch, in any site's zone:
    its own instants, and `margin_s` before them (a reading's energy runs until the next
    reading, which may be in the changed partition)."""
    utc_days = {date.fromisoformat(p.parent.name.removeprefix("date=")) for p in changed}
    out: set[date] = set()
    for d in utc_days:
        midnight = datetime(d.year, d.month, d.day, tzinfo=UTC)
        start = midnight - timedelta(seconds=margin_s)
        end = midnight + timedelta(days=1, microseconds=-1)
        for zone in zones:
            first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
            out.update(first + timedelta(days=k) for k in range((last - first).days + 1))
    return sorted(out)


def _utc_days(local_days: list[date], zones: list[ZoneInfo], margin_s: float) -> list[date]:
    """The UTC date partitions a run of local days reads: the days' instants in every
    zone, widened by the longest interval a reading can count for (its next reading)."""
    margin = timedelta(seconds=margin_s)
    midnight = datetime.min.time()
    lo = min(datetime.combine(local_days[0], midnight, z).astimezone(UTC) for z in zones)
    end = local_days[-1] + timedelta(days=1)
    hi = max(datetime.combine(end, midnight, z).astimezone(UTC) for z in zones)
    lo, hi = lo - margin, hi + margin
    return [lo.date() + timedelta(days=k) for k in range((hi.date() - lo.date()).days + 1)]


def _chunks(days: list[date], size: int) -> list[list[date]]:
    """Runs of consecutive days, at most `size` long."""
    out: list[list[date]] = []
    for day in days:
        if out and len(out[-1]) < size and out[-1][-1] + timedelta(days=1) == day:
            out[-1].append(day)
        else:
            out.append([day])
    return out
