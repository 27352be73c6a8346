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


MWH_PER_KWH: Final = 1_000_000  # energy is summed as integer mWh: exact in any order


def to_mwh(kwh: pl.Expr) -> pl.Expr:
    """kWh as integer milliwatt-hours. Sums of these are exact and the same in any order
    or chunking (float sums differ in the last bit), at 0.5 mWh a bucket of rounding."""
    return (kwh * MWH_PER_KWH).round().cast(pl.Int64)


def _lookup(tariffs: dict[str, Tariff]) -> tuple[list[str], pl.Series]:
    """(the tariff sites in order, the period code of every (site, month, rest day,
    minute)), laid out so that code = table[((site·12 + month−1)·2 + rest)·1440 + minute]."""
    sites = sorted(tariffs)
    codes: list[int] = []
    for site in sites:
        tariff = tariffs[site]
        for month in range(1, 13):
            season = next(x for x in tariff.seasons if month in x.months)
            for schedule in (season.workday, season.rest_day):
                bounds = [*(m for m, _ in schedule), MINUTES_PER_DAY]
                for (begin, period), stop in zip(schedule, bounds[1:], strict=True):
                    codes += [PERIODS.index(period)] * (stop - begin)
    return sites, pl.Series("code", codes, dtype=pl.UInt8)


def _rest_day(tariffs: dict[str, Tariff], weekday: pl.Expr) -> pl.Expr:
    """Whether the row's local day follows its site's rest-day schedule."""
    out: pl.Expr = pl.lit(False)
    day = pl.col("day")
    for site, t in tariffs.items():
        rest = (
            pl.when(day.is_in(sorted(t.workdays)))
            .then(False)
            .when(day.is_in(sorted(t.holidays)))
            .then(True)
            .otherwise(weekday.is_in(sorted(t.rest_days)))
        )
        out = pl.when(pl.col("site") == site).then(rest).otherwise(out)
    return out


def price_by_period(
    tagged: pl.DataFrame,
    devices: pl.DataFrame,
    sites: pl.DataFrame,
    tariffs: dict[str, Tariff],
) -> pl.DataFrame:
    """Energy and cost per device, site-local day, tariff period and shift state.

    `tagged` is 1-minute buckets with `day` and `local_minute_of_week`
    (transforms/tag_local_time.py). A site with a tariff is priced minute by minute; a
    site without one is priced at its registry `tariff_per_kwh` as period "flat" (cost
    null when that too is missing). `billing_meter` marks the rows a site bill adds up:
    the transformers (incomers) where the site has any registered, otherwise every
    device, so the loads under a transformer are not counted twice.

    Speed: each bucket's period is an array lookup (no join on the 1-minute rows), and
    energy is summed as integer mWh (`to_mwh`), so the result is the same to the bit
    however the rows are split or ordered.
    """
    if tagged.is_empty():
        return ENERGY_COST_SCHEMA.to_frame()
    sums = (
        coded_minutes(tagged, tariffs)
        .group_by("day", "site", "device_id", "code", "on_shift")
        .agg(pl.col("mwh").sum())
        .collect()
    )
    return priced(sums, devices, sites, tariffs)


def coded_minutes(tagged: pl.DataFrame, tariffs: dict[str, Tariff]) -> pl.LazyFrame:
    """The 1-minute buckets with their period `code` (index in PERIODS) and energy as
    integer mWh: each bucket's period is an array lookup, no join on the 1-minute rows."""
    week_minute = pl.col("local_minute_of_week")
    minute = week_minute % MINUTES_PER_DAY
    weekday = week_minute // MINUTES_PER_DAY + 1
    order, table = _lookup(tariffs)
    site_index = pl.col("site").replace_strict(
        order, list(range(len(order))), default=None, return_dtype=pl.Int64
    )
    key = (
        (site_index * 12 + pl.col("day").dt.month().cast(pl.Int64) - 1) * 2
        + _rest_day(tariffs, weekday).cast(pl.Int64)
    ) * MINUTES_PER_DAY + minute.cast(pl.Int64)
    code = pl.lit(table).gather(key.fill_null(0)) if len(table) else pl.lit(None, pl.UInt8)
    flat = PERIODS.index("flat")
    return tagged.lazy().select(
        "day",
        "site",
        "device_id",
        "on_shift",
        "minute",
        "local_minute_of_week",
        code=pl.when(site_index.is_not_null()).then(code).otherwise(flat).cast(pl.UInt8),
        mwh=to_mwh(pl.col("energy_kwh")),
    )


def priced(
    sums: pl.DataFrame, devices: pl.DataFrame, sites: pl.DataFrame, tariffs: dict[str, Tariff]
) -> pl.DataFrame:
    """ENERGY_COST rows from integer-mWh sums per (day, site, device_id, code, on_shift)
    (any finer grouping is added up first)."""
    if sums.is_empty():
        return ENERGY_COST_SCHEMA.to_frame()
    sums = sums.group_by("day", "site", "device_id", "code", "on_shift").agg(pl.col("mwh").sum())
    prices = pl.DataFrame(
        [
            (site, PERIODS.index(period), price)
            for site, t in tariffs.items()
            for period, price in t.prices.items()
        ],
        schema={"site": pl.String, "code": pl.UInt8, "tariff_price": pl.Float64},
        orient="row",
    )
    out = (
        sums.with_columns(pl.col("code").cast(pl.UInt8))
        .join(prices, on=["site", "code"], how="left")
        .join(sites.select("site", "tariff_per_kwh", "currency"), on="site", how="left")
        .with_columns(
            period=pl.col("code").replace_strict(list(range(len(PERIODS))), list(PERIODS)),
            price_per_kwh=pl.coalesce("tariff_price", "tariff_per_kwh"),
            currency=_currency(tariffs),
            energy_kwh=pl.col("mwh") / MWH_PER_KWH,
        )
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
