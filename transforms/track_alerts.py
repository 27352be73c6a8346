"""Alert lifecycle: daily rule evaluations into alerts that open, escalate and resolve.

Hysteresis (peers.md: ThingsBoard users ask for it, #7943): an alert opens on the first
evaluated day its condition holds; it resolves only after `clear_days` consecutive
evaluated days on the safe side of the threshold by `clear_margin`. Days in between
(neither breaching nor clearly clear) keep it as it is, so a value hovering at a
threshold does not flap. Days a rule could not be evaluated (device stopped, no data)
neither open nor resolve anything.

The whole table is derived from the evaluations every run, so rerunning is idempotent:
the same evaluations give the same alerts with the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import polars as pl

from schemas.results import ALERT_SCHEMA, EVALUATION_SCHEMA, PRICED_ALERT_SCHEMA

SEVERITY_RANK: Final = {"info": 0, "warning": 1, "critical": 2}
EVALUATION_COLUMNS: Final = tuple(EVALUATION_SCHEMA.names())


@dataclass
class _Episode:
    opened: date
    last_seen: date
    severity: str
    max_severity: str
    row: dict[str, Any]
    wastes: list[float]
    clear_run: int = 0
    resolved: date | None = None


def track_alerts(evaluations: pl.LazyFrame, clear_days: int, annualise_days: int) -> pl.DataFrame:
    """One row per alert episode (open or resolved), ranked by yearly waste."""
    evaluated = evaluations.filter(pl.col("breach").is_not_null())
    ever = evaluated.filter(pl.col("breach")).select("device_id", "rule").unique()
    rows = (
        evaluated.join(ever, on=["device_id", "rule"], how="semi")
        .sort("device_id", "rule", "day")
        .collect()
    )
    alerts: list[dict[str, Any]] = []
    for (_device, _rule), group in rows.group_by(["device_id", "rule"], maintain_order=True):
        alerts.extend(_episodes(group.iter_rows(named=True), clear_days, annualise_days))
    frame = pl.DataFrame(alerts, schema=ALERT_SCHEMA) if alerts else ALERT_SCHEMA.to_frame()
    return frame.sort(["waste_kwh_per_year", "alert_id"], descending=[True, False], nulls_last=True)


def _episodes(days: Any, clear_days: int, annualise_days: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    current: _Episode | None = None
    for row in days:
        if current is None:
            if row["breach"]:
                current = _Episode(
                    row["day"],
                    row["day"],
                    row["severity"],
                    row["severity"],
                    row,
                    [row["waste_kwh"] or 0.0],
                )
            continue
        if row["breach"]:
            current.last_seen, current.row, current.clear_run = row["day"], row, 0
            current.severity = row["severity"]
            if SEVERITY_RANK[row["severity"]] > SEVERITY_RANK[current.max_severity]:
                current.max_severity = row["severity"]
            current.wastes.append(row["waste_kwh"] or 0.0)
        elif row["clear"]:
            current.clear_run += 1
            if current.clear_run >= clear_days:
                current.resolved = row["day"]
                out.append(_alert_row(current, annualise_days))
                current = None
        else:
            current.clear_run = 0
    if current is not None:
        out.append(_alert_row(current, annualise_days))
    return out


def _alert_row(episode: _Episode, annualise_days: int) -> dict[str, Any]:
    row = episode.row
    recent = episode.wastes[-annualise_days:]
    return {
        "alert_id": alert_id(row["device_id"], row["rule"], episode.opened),
        "device_id": row["device_id"],
        "site": row["site"],
        "kind": row["kind"],
        "rule": row["rule"],
        "severity": episode.severity,
        "max_severity": episode.max_severity,
        "status": "resolved" if episode.resolved else "open",
        "opened_day": episode.opened,
        "last_seen_day": episode.last_seen,
        "resolved_day": episode.resolved,
        "days_breached": len(episode.wastes),
        "metric": row["metric"],
        "threshold": row["threshold"],
        "evidence": row["evidence"],
        "waste_kwh_per_year": sum(recent) / len(recent) * 365.0,
        "recommendation": row["recommendation"],
        "recommendation_zh": row["recommendation_zh"],
    }


def alert_id(device_id: str, rule: str, opened: date) -> str:
    """Stable for one episode of one condition on one device: reruns keep the id."""
    text = f"{device_id}|{rule}|{opened.isoformat()}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def price_alerts(
    alerts: pl.DataFrame,
    sites: pl.DataFrame,
    prices: pl.DataFrame | None = None,
    currencies: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Money and CO2 per year and day bounds as instants.

    The price is the device's realised time-of-use price where its site has a tariff
    (`prices`, transforms/tariff.realised_prices; off-shift running at the price of its
    off-shift energy), otherwise the site's flat registry tariff; CO2 uses the site's grid
    emission factor. `opened_at` is the start of the opened day in the site's zone;
    `last_seen_at` and `resolved_at` the end of their days (evaluation is per site-local day).
    """
    if prices is None:
        prices = pl.DataFrame(
            schema={
                "device_id": pl.String,
                "price_per_kwh": pl.Float64,
                "off_shift_price_per_kwh": pl.Float64,
            }
        )
    currency: pl.Expr = pl.col("currency")
    for site, code in (currencies or {}).items():
        currency = pl.when(pl.col("site") == site).then(pl.lit(code)).otherwise(currency)
    off_shift = pl.col("rule") == "off_shift_running"
    priced = (
        alerts.join(
            sites.select("site", "timezone", "tariff_per_kwh", "currency", "emission_kg_per_kwh"),
            on="site",
            how="left",
        )
        .join(prices, on="device_id", how="left")
        .with_columns(
            price_per_kwh=pl.when(off_shift)
            .then(pl.coalesce("off_shift_price_per_kwh", "price_per_kwh", "tariff_per_kwh"))
            .otherwise(pl.coalesce("price_per_kwh", "tariff_per_kwh")),
            currency=currency,
        )
        .with_columns(
            cost_per_year=pl.col("waste_kwh_per_year") * pl.col("price_per_kwh"),
            co2_kg_per_year=pl.col("waste_kwh_per_year") * pl.col("emission_kg_per_kwh"),
        )
    )
    stamps: dict[str, Any] = {}
    for name, day, end in (
        ("opened_at", "opened_day", 0),
        ("last_seen_at", "last_seen_day", 1),
        ("resolved_at", "resolved_day", 1),
    ):
        expr: Any = pl.lit(None, dtype=pl.Datetime("us", "UTC"))
        for site, tz in sites.select("site", "timezone").iter_rows():
            bound = pl.col(day).cast(pl.Datetime("us")) + pl.duration(days=end)
            local = bound.dt.replace_time_zone(tz)
            expr = (
                pl.when(pl.col("site") == site)
                .then(local.dt.convert_time_zone("UTC"))
                .otherwise(expr)
            )
        stamps[name] = expr
    return (
        priced.with_columns(**stamps).select(PRICED_ALERT_SCHEMA.names()).cast(PRICED_ALERT_SCHEMA)
    )
