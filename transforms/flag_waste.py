"""Waste rules: every device-day judged by every rule that applies to its kind.

Each rule gives, per device-day: `breach` (null when it cannot be judged that day),
`clear` (safely back on the good side, by the hysteresis margin), a severity, the
metric and threshold, the evidence (the figures that triggered it, as JSON), the
day's wasted kWh, and a recommendation a maintenance engineer can act on (English and
Chinese). Thresholds and their sources are in transforms/thresholds.py; the rule ids
follow domain.md (M1..M9 motors, P1 pumps, C1/C3 compressed air, T1/T2/T4 transformers).
"""

from __future__ import annotations

from typing import Final

import polars as pl

from schemas.registry import MOTOR_DRIVEN
from schemas.results import EVALUATION_SCHEMA
from transforms.rule_kit import Rule, rounded
from transforms.rules_motor import (
    current_unbalance,
    idle_running,
    off_shift_running,
    overloaded,
    under_loaded,
    voltage_unbalance,
)
from transforms.rules_plant import (
    compressor_leak,
    compressor_unloaded,
    low_power_factor,
    outside_por,
    transformer_light_load,
)
from transforms.thresholds import Thresholds

RULES: Final = (
    Rule("idle_running", MOTOR_DRIVEN, idle_running),
    Rule("off_shift_running", MOTOR_DRIVEN, off_shift_running),
    Rule("under_loaded", MOTOR_DRIVEN, under_loaded),
    Rule("overloaded", (*MOTOR_DRIVEN, "transformer"), overloaded),
    Rule("voltage_unbalance", MOTOR_DRIVEN, voltage_unbalance),
    Rule("current_unbalance", MOTOR_DRIVEN, current_unbalance),
    Rule("low_power_factor", ("transformer",), low_power_factor),
    Rule("pump_outside_por", ("pump", "fan"), outside_por),
    Rule("compressor_leak", ("compressor",), compressor_leak),
    Rule("compressor_unloaded", ("compressor",), compressor_unloaded),
    Rule("transformer_light_load", ("transformer",), transformer_light_load),
)


def flag_waste(load_factor: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """Every applicable rule on every matched device-day, in EVALUATION_SCHEMA."""
    matched = load_factor.filter(~pl.col("status").str.starts_with("unmatched"))
    parts = []
    for rule in RULES:
        rows = matched.filter(pl.col("kind").is_in(rule.kinds))
        if rows.is_empty():
            continue
        built = rule.build(t)
        evidence = pl.struct(
            metric=built["metric"],
            threshold=built["threshold"],
            running_hours=rounded(pl.col("running_hours")),
            p50_load_factor=rounded(pl.col("p50_load_factor"), 3),
            p75_load_factor=rounded(pl.col("p75_load_factor"), 3),
            energy_kwh=rounded(pl.col("energy_kwh"), 1),
        ).struct.json_encode()
        parts.append(
            rows.select(
                "device_id",
                "site",
                "kind",
                pl.lit(rule.rule_id).alias("rule"),
                "day",
                *[
                    built[c].alias(c)
                    for c in ("breach", "clear", "severity", "metric", "threshold", "waste_kwh")
                ],
                evidence.alias("evidence"),
                built["recommendation"].alias("recommendation"),
                built["recommendation_zh"].alias("recommendation_zh"),
            ).cast(EVALUATION_SCHEMA)
        )
    if not parts:
        return EVALUATION_SCHEMA.to_frame()
    return (
        pl.concat(parts)
        .with_columns(pl.when(pl.col("breach")).then(pl.col("severity")).alias("severity"))
        .sort("day", "device_id", "rule")
    )
