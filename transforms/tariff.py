"""Time-of-use tariffs: which period (critical peak, peak, flat, valley) each minute of
energy was used in, and what it cost.

China's industrial tariffs split the day into peak / flat / valley periods (峰/平/谷),
and many provinces add a critical-peak band (尖峰) in summer and winter months; the
hours differ by season, and rest days (weekends, public holidays) can follow their own
schedule, while some weekends are made working days (调休). A site's tariff is kept in
a TOML file (`analytics.tariff_file`, see README "Tariffs"); a site without one keeps
its flat `tariff_per_kwh` from the sites registry, priced as one period, "flat".

A schedule is a list of boundaries, ``"HH:MM" = "period"``: each period runs from its
boundary to the next one, and the first boundary must be "00:00", so every minute of
every day of every month has exactly one period (checked when the file is read).

Speed: the schedule becomes a lookup table of (site, month, rest day, minute of day)
-> (period, price), at most 12 x 2 x 1440 rows a site, joined onto the 1-minute buckets.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

import polars as pl

from schemas.energy import ENERGY_COST_SCHEMA, LOAD_SHIFT_SCHEMA

MINUTES_PER_DAY: Final = 1440
PERIODS: Final = ("critical", "peak", "flat", "valley")


class TariffError(ValueError):
    """A tariff file that cannot be used; the message names the site and the field."""


@dataclass(frozen=True)
class Season:
    name: str
    months: tuple[int, ...]
    workday: tuple[tuple[int, str], ...]  # (start minute of day, period), ascending from 0
    rest_day: tuple[tuple[int, str], ...]  # weekends and holidays


@dataclass(frozen=True)
class Tariff:
    site: str
    currency: str
    prices: dict[str, float]  # per kWh, by period
    seasons: tuple[Season, ...]
    holidays: frozenset[date] = frozenset()  # rest days that fall on a weekday
    workdays: frozenset[date] = frozenset()  # working days that fall on a weekend (调休)
    demand_charge_per_kw_month: float = 0.0  # on the month's maximum demand (按需量)
    contracted_kw: float | None = None  # the demand the site contracted with the utility
    capacity_charge_per_kva_month: float = 0.0  # on installed transformer kVA (按容量)
    basis: str = "demand"  # which of the two the site is billed on: demand or capacity
    rest_days: frozenset[int] = field(default=frozenset({6, 7}))  # ISO weekdays

    def period_at(self, day: date, minute_of_day: int) -> str:
        """The period of one local minute (the scalar form of `schedule_frame`)."""
        season = next(s for s in self.seasons if day.month in s.months)
        schedule = season.rest_day if self.is_rest_day(day) else season.workday
        return next(p for start, p in reversed(schedule) if start <= minute_of_day)

    def is_rest_day(self, day: date) -> bool:
        if day in self.workdays:
            return False
        return day in self.holidays or day.isoweekday() in self.rest_days


def load_tariffs(path: Path | str) -> dict[str, Tariff]:
    """Every site's tariff in a TOML file, checked; an empty path means no file."""
    if not str(path):
        return {}
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TariffError(f"tariff file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise TariffError(f"tariff file {path}: {e}") from None
    return {site: parse_tariff(site, body) for site, body in raw.items()}


def parse_tariff(site: str, body: Any) -> Tariff:
    """One site's table of a tariff file into a checked `Tariff`."""
    where = f"tariff for site {site!r}"
    if not isinstance(body, dict):
        raise TariffError(f"{where}: expected a table")
    known = {
        "currency",
        "prices",
        "season",
        "holidays",
        "workdays",
        "demand_charge_per_kw_month",
        "contracted_kw",
        "rest_weekdays",
        "capacity_charge_per_kva_month",
        "basis",
    }
    unknown = sorted(set(body) - known)
    if unknown:
        raise TariffError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    prices = body.get("prices")
    if not isinstance(prices, dict) or not prices:
        raise TariffError(f"{where}: `prices` must be a table of period = price per kWh")
    for name, price in prices.items():
        if name not in PERIODS:
            raise TariffError(f"{where}: period {name!r} is not one of {list(PERIODS)}")
        if not isinstance(price, int | float) or price < 0:
            raise TariffError(f"{where}: price of {name!r} must be a number >= 0")
    seasons = tuple(_season(where, i, s, set(prices)) for i, s in enumerate(body.get("season", [])))
    if not seasons:
        raise TariffError(f"{where}: at least one [[{site}.season]] is needed")
    covered = sorted(m for s in seasons for m in s.months)
    if covered != list(range(1, 13)):
        raise TariffError(
            f"{where}: the seasons' months must cover 1..12 exactly once, got {covered}"
        )
    charge = body.get("demand_charge_per_kw_month", 0.0)
    contracted = body.get("contracted_kw")
    if not isinstance(charge, int | float) or charge < 0:
        raise TariffError(f"{where}: demand_charge_per_kw_month must be a number >= 0")
    if contracted is not None and (not isinstance(contracted, int | float) or contracted <= 0):
        raise TariffError(f"{where}: contracted_kw must be a number > 0")
    capacity = body.get("capacity_charge_per_kva_month", 0.0)
    if not isinstance(capacity, int | float) or capacity < 0:
        raise TariffError(f"{where}: capacity_charge_per_kva_month must be a number >= 0")
    basis = body.get("basis", "demand")
    if basis not in ("demand", "capacity"):
        raise TariffError(f"{where}: basis must be 'demand' (per kW) or 'capacity' (per kVA)")
    rest = body.get("rest_weekdays", [6, 7])
    if not all(isinstance(d, int) and 1 <= d <= 7 for d in rest):
        raise TariffError(f"{where}: rest_weekdays are ISO weekdays 1 (Mon) .. 7 (Sun)")
    return Tariff(
        site=site,
        currency=str(body.get("currency", "")),
        prices={k: float(v) for k, v in prices.items()},
        seasons=seasons,
        holidays=_dates(where, "holidays", body.get("holidays", [])),
        workdays=_dates(where, "workdays", body.get("workdays", [])),
        demand_charge_per_kw_month=float(charge),
        contracted_kw=None if contracted is None else float(contracted),
        capacity_charge_per_kva_month=float(capacity),
        basis=basis,
        rest_days=frozenset(rest),
    )


def _season(where: str, i: int, raw: Any, periods: set[str]) -> Season:
    if not isinstance(raw, dict):
        raise TariffError(f"{where}: season {i} must be a table")
    name = str(raw.get("name", f"season {i}"))
    months = raw.get("months")
    if not isinstance(months, list) or not all(isinstance(m, int) and 1 <= m <= 12 for m in months):
        raise TariffError(f"{where}: season {name!r} needs `months`, a list of 1..12")
    if "workday" not in raw:
        raise TariffError(f"{where}: season {name!r} needs a `workday` schedule")
    workday = _schedule(f"{where}, season {name!r}, workday", raw["workday"], periods)
    rest = raw.get("rest_day")
    rest_day = (
        workday if rest is None else _schedule(f"{where}, season {name!r}, rest_day", rest, periods)
    )
    return Season(name, tuple(months), workday, rest_day)


def _schedule(where: str, raw: Any, periods: set[str]) -> tuple[tuple[int, str], ...]:
    if not isinstance(raw, dict) or not raw:
        raise TariffError(f'{where}: expected a table of "HH:MM" = "period"')
    out = []
    for hhmm, period in raw.items():
        out.append((_minute(where, hhmm), period))
        if period not in periods:
            raise TariffError(f"{where}: {hhmm} names period {period!r}, which has no price")
    out.sort()
    if out[0][0] != 0:
        raise TariffError(f'{where}: the first boundary must be "00:00"')
    starts = [m for m, _ in out]
    if len(set(starts)) != len(starts):
        raise TariffError(f"{where}: a boundary is given twice")
    return tuple(out)


def _minute(where: str, hhmm: str) -> int:
    try:
        h, m = hhmm.split(":")
        hour, minute = int(h), int(m)
    except ValueError:
        raise TariffError(f'{where}: boundary {hhmm!r} is not "HH:MM"') from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise TariffError(f"{where}: boundary {hhmm!r} is not a time of day")
    return hour * 60 + minute


def _dates(where: str, key: str, raw: Any) -> frozenset[date]:
    try:
        return frozenset(d if isinstance(d, date) else date.fromisoformat(str(d)) for d in raw)
    except (TypeError, ValueError):
        raise TariffError(f"{where}: `{key}` must be a list of dates (YYYY-MM-DD)") from None


SCHEDULE_SCHEMA: Final = pl.Schema(
    {
        "site": pl.String,
        "month": pl.Int8,
        "rest_day": pl.Boolean,
        "minute_of_day": pl.Int16,
        "period": pl.String,
        "price_per_kwh": pl.Float64,
    }
)


def schedule_frame(tariffs: dict[str, Tariff]) -> pl.DataFrame:
    """(site, month, rest_day, minute_of_day) -> (period, price_per_kwh) for every minute."""
    columns: dict[str, list[Any]] = {name: [] for name in SCHEDULE_SCHEMA.names()}
    for site, tariff in sorted(tariffs.items()):
        for season in tariff.seasons:
            for rest, schedule in ((False, season.workday), (True, season.rest_day)):
                bounds = [*(m for m, _ in schedule), MINUTES_PER_DAY]
                for (start, period), end in zip(schedule, bounds[1:], strict=True):
                    n = end - start
                    for month in season.months:
                        columns["site"] += [site] * n
                        columns["month"] += [month] * n
                        columns["rest_day"] += [rest] * n
                        columns["minute_of_day"] += list(range(start, end))
                        columns["period"] += [period] * n
                        columns["price_per_kwh"] += [tariff.prices[period]] * n
    return pl.DataFrame(columns, schema=SCHEDULE_SCHEMA)


def _special_days(tariffs: dict[str, Tariff]) -> pl.DataFrame:
    """(site, day, rest_day) for holidays and made-up working days."""
    rows = [
        (site, d, rest)
        for site, t in tariffs.items()
        for days, rest in ((t.holidays, True), (t.workdays, False))
        for d in days
    ]
    return pl.DataFrame(
        rows, schema={"site": pl.String, "day": pl.Date, "_special": pl.Boolean}, orient="row"
    )


def price_by_period(
    tagged: pl.DataFrame,
    devices: pl.DataFrame,
    sites: pl.DataFrame,
    tariffs: dict[str, Tariff],
) -> pl.DataFrame:
    """Energy and cost per device, site-local day and tariff period.

    `tagged` is 1-minute buckets with `day` and `local_minute_of_week`
    (transforms/tag_local_time.py). A site with a tariff is priced minute by minute; a
    site without one is priced at its registry `tariff_per_kwh` as period "flat" (cost
    null when that too is missing). `billing_meter` marks the rows a site bill adds up:
    the transformers (incomers) where the site has any registered, otherwise every
    device, so the loads under a transformer are not counted twice.
    """
    if tagged.is_empty():
        return ENERGY_COST_SCHEMA.to_frame()
    week_minute = pl.col("local_minute_of_week")
    frame = tagged.select(
        "day",
        "site",
        "device_id",
        "energy_kwh",
        "on_shift",
        month=pl.col("day").dt.month().cast(pl.Int8),
        minute_of_day=(week_minute % MINUTES_PER_DAY).cast(pl.Int16),
        weekday=(week_minute // MINUTES_PER_DAY + 1).cast(pl.Int8),
    )
    rest_weekdays = {site: sorted(t.rest_days) for site, t in tariffs.items()}
    is_rest: Any = pl.lit(False)
    for site, days in rest_weekdays.items():
        is_rest = (
            pl.when(pl.col("site") == site).then(pl.col("weekday").is_in(days)).otherwise(is_rest)
        )
    frame = (
        frame.join(_special_days(tariffs), on=["site", "day"], how="left")
        .with_columns(rest_day=pl.coalesce("_special", is_rest))
        .join(
            schedule_frame(tariffs),
            on=["site", "month", "rest_day", "minute_of_day"],
            how="left",
        )
        .join(sites.select("site", "tariff_per_kwh", "currency"), on="site", how="left")
        .with_columns(
            period=pl.coalesce("period", pl.lit("flat")),
            price_per_kwh=pl.coalesce("price_per_kwh", "tariff_per_kwh"),
            currency=_currency(tariffs),
        )
    )
    out = (
        frame.sort("device_id", "day", "minute_of_day")  # fixed order: reproducible sums
        .group_by(
            "day",
            "site",
            "device_id",
            "period",
            "on_shift",
            "price_per_kwh",
            "currency",
            maintain_order=True,
        )
        .agg(pl.col("energy_kwh").sum())
        .with_columns(cost=pl.col("energy_kwh") * pl.col("price_per_kwh"))
    )
    kinds = devices.select("device_id", "kind")
    out = out.join(kinds, on="device_id", how="left")
    incomers = devices.filter(pl.col("kind") == "transformer").get_column("site").unique().to_list()
    billing = (
        pl.when(pl.col("site").is_in(incomers))
        .then(pl.col("kind") == "transformer")
        .otherwise(True)
        .fill_null(False)
    )
    return (
        out.with_columns(billing_meter=billing)
        .select(ENERGY_COST_SCHEMA.names())
        .cast(ENERGY_COST_SCHEMA)
        .sort("day", "site", "device_id", "period", "on_shift")
    )


def realised_prices(energy_cost: pl.LazyFrame, sites: list[str], days: int = 28) -> pl.DataFrame:
    """Each device's average price over its latest `days` days, sum(cost) / sum(kWh): the
    mix of periods it actually ran in, and the same for its off-shift energy alone.

    Waste is known per day, not per minute, so an alert's waste is priced at these
    (transforms/track_alerts.price_alerts): off-shift running at the off-shift price,
    which is mostly valley or flat; everything else at the device's own mix. Only the
    `sites` with a time-of-use tariff are returned, so a flat site's alerts stay
    priced exactly at its registry tariff.
    """
    recent = energy_cost.filter(pl.col("site").is_in(sites)).filter(
        pl.col("day") > pl.col("day").max().over("device_id") - pl.duration(days=days)
    )
    off = pl.col("on_shift").not_().fill_null(False)
    return (  # sorted first: float sums in a fixed order give the same price every run
        recent.sort("device_id", "day", "period", "on_shift", nulls_last=True)
        .group_by("device_id", maintain_order=True)
        .agg(
            price_per_kwh=pl.col("cost").sum() / pl.col("energy_kwh").sum(),
            off_shift_price_per_kwh=pl.col("cost").filter(off).sum()
            / pl.col("energy_kwh").filter(off).sum(),
        )
        .with_columns(  # to 1e-6 a kWh: float sums vary in the last bit with chunking
            pl.when(pl.col(c).is_finite()).then(pl.col(c).round(6)).alias(c)
            for c in ("price_per_kwh", "off_shift_price_per_kwh")
        )
        .sort("device_id")
        .collect()
    )


def _currency(tariffs: dict[str, Tariff]) -> pl.Expr:
    expr: pl.Expr = pl.col("currency")
    for site, t in tariffs.items():
        if t.currency:
            expr = pl.when(pl.col("site") == site).then(pl.lit(t.currency)).otherwise(expr)
    return expr


def load_shift(energy_cost: pl.DataFrame) -> pl.DataFrame:
    """Per load and month: energy in the critical and peak periods and what it would
    cost less at the site's cheapest price (the valley, where there is one).

    An upper bound: whether a load can move (a batch process, a pump filling a tank, a
    compressor charging a receiver) and how much of it is the engineer's call; this
    ranks where moving it is worth the most. Billing meters (transformers) are left out:
    they are not loads.
    """
    if energy_cost.is_empty():
        return LOAD_SHIFT_SCHEMA.to_frame()
    cheapest = energy_cost.group_by("site").agg(valley_price_per_kwh=pl.col("price_per_kwh").min())
    peak = pl.col("period").is_in(["critical", "peak"])
    return (
        energy_cost.filter(pl.col("kind").fill_null("") != "transformer")
        .join(cheapest, on="site")
        .group_by(month=pl.col("day").dt.truncate("1mo"), site="site", device_id="device_id")
        .agg(
            pl.col("kind").first(),
            pl.col("currency").first(),
            pl.col("valley_price_per_kwh").first(),
            energy_kwh=pl.col("energy_kwh").sum(),
            peak_kwh=pl.col("energy_kwh").filter(peak).sum(),
            peak_cost=pl.col("cost").filter(peak).sum(),
        )
        .with_columns(
            peak_share=pl.col("peak_kwh") / pl.col("energy_kwh"),
            saving_if_shifted=pl.col("peak_cost")
            - pl.col("peak_kwh") * pl.col("valley_price_per_kwh"),
        )
        .select(LOAD_SHIFT_SCHEMA.names())
        .cast(LOAD_SHIFT_SCHEMA)
        .sort("month", "site", "saving_if_shifted", descending=[False, False, True])
    )
