"""Alert lifecycle: opens on a breach, holds in the band, resolves after clear days, no flapping."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from schemas.results import EVALUATION_SCHEMA
from transforms.track_alerts import alert_id, price_alerts, track_alerts

D0 = date(2026, 11, 2)


def days(pattern: str, rule: str = "under_loaded", device: str = "m1") -> list[dict[str, object]]:
    """B = breach, C = clear by the margin, . = in the band, - = not evaluated."""
    rows = []
    for i, ch in enumerate(pattern):
        breach = {"B": True, "C": False, ".": False, "-": None}[ch]
        clear = {"B": False, "C": True, ".": False, "-": None}[ch]
        rows.append(
            {
                "device_id": device,
                "site": "plant",
                "kind": "motor",
                "rule": rule,
                "day": D0 + timedelta(days=i),
                "breach": breach,
                "clear": clear,
                "severity": "critical"
                if ch == "B" and i % 2
                else ("warning" if ch == "B" else None),
                "metric": 0.3,
                "threshold": 0.5,
                "evidence": "{}",
                "waste_kwh": 100.0 if ch == "B" else 0.0,
                "recommendation": "resize",
                "recommendation_zh": "更换",
            }
        )
    return rows


def run(rows: list[dict[str, object]]) -> pl.DataFrame:
    return track_alerts(
        pl.DataFrame(rows, schema=EVALUATION_SCHEMA).lazy(), clear_days=2, annualise_days=7
    )


def test_hovering_at_the_threshold_does_not_flap() -> None:
    alerts = run(days("B.B.B.B.B"))
    assert alerts.height == 1
    row = alerts.row(0, named=True)
    assert (row["status"], row["opened_day"], row["last_seen_day"]) == (
        "open",
        D0,
        D0 + timedelta(days=8),
    )


def test_resolves_only_after_consecutive_clear_days_then_reopens_as_a_new_alert() -> None:
    alerts = run(days("BBC.CC--BB")).sort("opened_day")
    assert alerts["status"].to_list() == ["resolved", "open"]
    first, second = alerts.row(0, named=True), alerts.row(1, named=True)
    assert first["resolved_day"] == D0 + timedelta(days=5)  # C . C C: the band reset the run
    assert first["days_breached"] == 2 and first["max_severity"] == "critical"
    assert second["opened_day"] == D0 + timedelta(days=8)
    assert first["alert_id"] != second["alert_id"]
    assert second["alert_id"] == alert_id("m1", "under_loaded", D0 + timedelta(days=8))


def test_unevaluated_days_and_clean_devices_raise_nothing() -> None:
    assert run(days("--CC.C") + days("CCCC", device="m2")).is_empty()


def test_yearly_waste_is_the_mean_of_recent_breach_days() -> None:
    rows = days("BBB")
    rows[0]["waste_kwh"] = 10.0
    alerts = run(rows)
    assert alerts["waste_kwh_per_year"].item() == (10 + 100 + 100) / 3 * 365


def test_rerun_gives_identical_alerts_and_prices_use_the_site() -> None:
    rows = days("BB.C") + days("B", rule="idle_running")
    assert run(rows).equals(run(list(reversed(rows))))
    sites = pl.DataFrame(
        {
            "site": ["plant"],
            "timezone": ["Asia/Shanghai"],
            "tariff_per_kwh": [0.75],
            "currency": ["CNY"],
            "emission_kg_per_kwh": [0.5306],
            "shift_calendar": [None],
        }
    )
    priced = price_alerts(run(rows), sites).sort("rule")
    row = priced.row(1, named=True)
    assert row["cost_per_year"] == row["waste_kwh_per_year"] * 0.75
    assert row["co2_kg_per_year"] == row["waste_kwh_per_year"] * 0.5306
    assert str(row["opened_at"]) == "2026-11-01 16:00:00+00:00"  # local midnight, UTC+8
