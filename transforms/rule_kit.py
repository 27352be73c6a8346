"""What every waste rule is made of: its shape, threshold tests with hysteresis, advice text.

A rule gives, per device-day, `breach` (null when it cannot be judged that day), `clear`
(safely back on the good side by the hysteresis margin), the metric and threshold, a
severity, the day's wasted kWh and a recommendation in English and Chinese.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from transforms.thresholds import Thresholds


@dataclass(frozen=True)
class Rule:
    """One waste rule. `build` returns the rule's columns for the device-days of its kinds."""

    rule_id: str
    kinds: tuple[str, ...]
    build: Callable[[Thresholds], dict[str, pl.Expr]]


def enough_running(t: Thresholds) -> pl.Expr:
    return pl.col("running_hours") >= t.min_running_hours


def above(metric: pl.Expr, threshold: float, t: Thresholds, when: pl.Expr) -> dict[str, pl.Expr]:
    """Breach at or above `threshold`; clear below threshold × (1 − margin)."""
    return {
        "breach": pl.when(when & metric.is_not_null()).then(metric >= threshold),
        "clear": pl.when(when & metric.is_not_null()).then(
            metric < threshold * (1 - t.clear_margin)
        ),
        "metric": metric,
        "threshold": pl.lit(threshold),
    }


def below(metric: pl.Expr, threshold: float, t: Thresholds, when: pl.Expr) -> dict[str, pl.Expr]:
    """Breach below `threshold`; clear at or above threshold × (1 + margin)."""
    return {
        "breach": pl.when(when & metric.is_not_null()).then(metric < threshold),
        "clear": pl.when(when & metric.is_not_null()).then(
            metric >= threshold * (1 + t.clear_margin)
        ),
        "metric": metric,
        "threshold": pl.lit(threshold),
    }


def advice(en: str, zh: str, *args: pl.Expr) -> dict[str, pl.Expr]:
    return {"recommendation": pl.format(en, *args), "recommendation_zh": pl.format(zh, *args)}


def rounded(expr: pl.Expr, digits: int = 2) -> pl.Expr:
    return expr.round(digits)


def percent(expr: pl.Expr) -> pl.Expr:
    return (expr * 100).round(0).fill_nan(None).cast(pl.Int64, strict=False)


def fraction_of(part: str, whole: str) -> pl.Expr:
    return pl.when(pl.col(whole) > 0).then(pl.col(part) / pl.col(whole))
