"""Waste rules: every device-day judged by every rule that applies to its kind.

Each rule gives, per device-day: `breach` (null when it cannot be judged that day),
`clear` (safely back on the good side, by the hysteresis margin), a severity, the
metric and threshold, the evidence (the figures that triggered it, as JSON), the
day's wasted kWh, and a recommendation a maintenance engineer can act on (English and
Chinese). Thresholds and their sources are in transforms/thresholds.py; the rule ids
follow domain.md (M1..M9 motors, P1 pumps, C1/C3 compressed air, T1/T2/T4 transformers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import polars as pl

from schemas.results import EVALUATION_SCHEMA
from transforms.thresholds import Thresholds

MOTOR_DRIVEN: Final = ("motor", "pump", "fan")


@dataclass(frozen=True)
class Rule:
    """One waste rule. `build` returns the rule's columns for the device-days of its kinds."""

    rule_id: str
    kinds: tuple[str, ...]
    build: Callable[[Thresholds], dict[str, pl.Expr]]


def _enough_running(t: Thresholds) -> pl.Expr:
    return pl.col("running_hours") >= t.min_running_hours


def _above(metric: pl.Expr, threshold: float, t: Thresholds, when: pl.Expr) -> dict[str, pl.Expr]:
    """Breach at or above `threshold`; clear below threshold × (1 − margin)."""
    return {
        "breach": pl.when(when & metric.is_not_null()).then(metric >= threshold),
        "clear": pl.when(when & metric.is_not_null()).then(
            metric < threshold * (1 - t.clear_margin)
        ),
        "metric": metric,
        "threshold": pl.lit(threshold),
    }


def _below(metric: pl.Expr, threshold: float, t: Thresholds, when: pl.Expr) -> dict[str, pl.Expr]:
    """Breach below `threshold`; clear at or above threshold × (1 + margin)."""
    return {
        "breach": pl.when(when & metric.is_not_null()).then(metric < threshold),
        "clear": pl.when(when & metric.is_not_null()).then(
            metric >= threshold * (1 + t.clear_margin)
        ),
        "metric": metric,
        "threshold": pl.lit(threshold),
    }


def _text(en: str, zh: str, *args: pl.Expr) -> dict[str, pl.Expr]:
    return {"recommendation": pl.format(en, *args), "recommendation_zh": pl.format(zh, *args)}


def _r(expr: pl.Expr, digits: int = 2) -> pl.Expr:
    return expr.round(digits)


def _pct(expr: pl.Expr) -> pl.Expr:
    return (expr * 100).round(0).fill_nan(None).cast(pl.Int64, strict=False)


def _share(part: str, whole: str) -> pl.Expr:
    return pl.when(pl.col(whole) > 0).then(pl.col(part) / pl.col(whole))


def idle_running(t: Thresholds) -> dict[str, pl.Expr]:
    """M1: energised with no useful load (β < 0.10 or at no-load current) (domain §2.6).

    Counted during production hours (or all day without a calendar): idling off shift is
    the off-shift rule's finding, so the same kWh is not reported twice.
    """
    hours = pl.col("idle_on_shift_hours")
    return {
        **_above(hours, t.idle_min_hours, t, pl.col("observed_hours") > 0),
        "severity": pl.when(hours >= 4).then(pl.lit("critical")).otherwise(pl.lit("warning")),
        "waste_kwh": pl.col("idle_on_shift_energy_kwh"),
        **_text(
            "Idled {} h at no load during production using {} kWh: stop it when the "
            "process does not need it (process interlock or idle-stop timer).",
            "生产时段空载运行 {} 小时，耗电 {} kWh："
            "工艺不需要时停机（加工艺联锁或空载停机定时器）。",
            _r(hours, 1),
            _r(pl.col("idle_on_shift_energy_kwh"), 1),
        ),
    }


def off_shift_running(t: Thresholds) -> dict[str, pl.Expr]:
    """M9/F4: running outside the site's production calendar (Busroot, faradai; domain §7)."""
    hours = pl.col("off_shift_running_hours")
    return {
        **_above(hours, t.offshift_min_hours, t, pl.col("observed_hours") > 0),
        "severity": pl.lit("warning"),
        "waste_kwh": pl.col("off_shift_energy_kwh"),
        **_text(
            "Ran {} h outside production hours using {} kWh: switch it off with the "
            "shift (schedule or interlock).",
            "非生产时段运行 {} 小时，耗电 {} kWh：随班次停机（定时或联锁）。",
            _r(hours, 1),
            _r(pl.col("off_shift_energy_kwh"), 1),
        ),
    }


def under_loaded(t: Thresholds) -> dict[str, pl.Expr]:
    """M2 大马拉小车: P75 of running load below 0.50 (warn) / 0.40 (alarm) (domain §2.6)."""
    p75 = pl.col("p75_load_factor")
    return {
        **_below(p75, t.underload_warn, t, _enough_running(t)),
        "severity": pl.when(p75 < t.underload_alarm)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        "waste_kwh": pl.col("resize_saving_kw").fill_null(0.0) * pl.col("running_hours"),
        **_text(
            "Oversized: 75 % of running time below {} of rated load (mean {}). Replace at "
            "the next overhaul with a {} kW motor, or add a VFD; saves about {} kW while "
            "running.",
            "大马拉小车：75% 运行时间负载率低于 {}（平均 {}）。大修时更换为 {} kW 电机或加变频器，"
            "运行时约节省 {} kW。",
            _r(p75),
            _r(pl.col("mean_load_factor")),
            pl.col("recommended_size_kw"),
            _r(pl.col("resize_saving_kw"), 1),
        ),
    }


def overloaded(t: Thresholds) -> dict[str, pl.Expr]:
    """M3/T2: median running load at or above rated; critical above the service factor."""
    p50 = pl.col("p50_load_factor")
    sf = pl.col("service_factor").fill_null(1.0)
    return {
        **_above(p50, t.zone_overloaded, t, _enough_running(t)),
        "severity": pl.when(p50 >= sf).then(pl.lit("critical")).otherwise(pl.lit("warning")),
        "waste_kwh": pl.lit(0.0),
        **_text(
            "Overloaded: median running load {} of rated. Check the driven load and "
            "cooling; resize before it fails.",
            "过载：运行负载率中位数 {}。检查负载与散热，及时更换合适容量设备。",
            _r(p50),
        ),
    }


def voltage_unbalance(t: Thresholds) -> dict[str, pl.Expr]:
    """M4: NEMA voltage unbalance > 1 % (derate), > 5 % do not operate (domain §1).

    Waste: extra winding heating ≈ 2·VU² % of the motor's losses (voltdropcalc, domain §1).
    """
    vu = pl.col("voltage_unbalance_pct")
    losses_kw = pl.col("mean_power_kw") * (1 - pl.col("mean_efficiency").fill_null(0.9))
    return {
        **_above(vu, t.voltage_unbalance_pct, t, _enough_running(t)),
        "severity": pl.when(vu > t.voltage_unbalance_stop_pct)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        "waste_kwh": losses_kw * 2 * vu.pow(2) / 100 * pl.col("running_hours"),
        **_text(
            "Voltage unbalance {} % (NEMA): derate the motor to {} of rating and find the "
            "cause (single-phase loads, loose connections, tap settings).",
            "电压不平衡 {}%（NEMA）：电机需降额至 {}，排查单相负荷、接头松动或分接头。",
            _r(vu),
            _r(pl.col("derating_factor")),
        ),
    }


def current_unbalance(t: Thresholds) -> dict[str, pl.Expr]:
    """M5: current unbalance > 10 % (Motors@Work FDD).

    Not raised while the supply voltage is itself unbalanced beyond M4's threshold: a few
    percent of voltage unbalance drives several times that in current, and the voltage
    alert names the cause.
    """
    cu = pl.col("current_unbalance_pct")
    supply_ok = pl.col("voltage_unbalance_pct").fill_null(0.0) <= t.voltage_unbalance_pct
    return {
        **_above(cu, t.current_unbalance_pct, t, _enough_running(t) & supply_ok),
        "severity": pl.lit("warning"),
        "waste_kwh": pl.lit(0.0),
        **_text(
            "Current unbalance {} %: check supply voltage balance, windings and connections.",
            "电流不平衡 {}%：检查供电电压平衡、绕组与接线。",
            _r(cu, 1),
        ),
    }


def low_power_factor(t: Thresholds) -> dict[str, pl.Expr]:
    """T4: site power factor below the tariff line 0.90 (cn_standards §8)."""
    pf = pl.col("mean_power_factor")
    return {
        **_below(pf, t.low_power_factor, t, pl.col("observed_hours") > 0),
        "severity": pl.lit("warning"),
        "waste_kwh": pl.lit(0.0),
        **_text(
            "Power factor {} at the transformer is below {}: add or repair capacitor "
            "compensation to avoid the tariff penalty.",
            "变压器功率因数 {} 低于 {}：增加或检修无功补偿电容，避免力调电费。",
            _r(pf),
            pl.lit(t.low_power_factor),
        ),
    }


def outside_por(t: Thresholds) -> dict[str, pl.Expr]:
    """P1: more than half the running time outside 70–120 % of BEP flow (ANSI/HI 9.6.3)."""
    share = _share("outside_por_hours", "running_hours")
    return {
        **_above(
            share,
            t.por_min_share,
            t,
            _enough_running(t) & pl.col("flow_bep_ratio_p50").is_not_null(),
        ),
        "severity": pl.when(pl.col("flow_bep_ratio_p50") < 0.5)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        "waste_kwh": pl.col("throttle_saving_kw").fill_null(0.0) * pl.col("running_hours"),
        **_text(
            "Runs at {} % of BEP flow (outside the preferred 70-120 %): throttled. Trim the "
            "impeller or fit a VFD; saves about {} kW.",
            "运行流量为最佳效率点的 {}%（偏离 70-120% 优先区）："
            "节流运行。切削叶轮或加变频器，约节省 {} kW。",
            _pct(pl.col("flow_bep_ratio_p50")),
            _r(pl.col("throttle_saving_kw"), 1),
        ),
    }


def compressor_leak(t: Thresholds) -> dict[str, pl.Expr]:
    """C1: leakage T/(T+t) from off-shift load/unload cycling > 10 % / 20 % (domain §5.4)."""
    leak = pl.col("leak_fraction")
    lost_kw = leak * pl.col("loaded_power_kw")
    return {
        **_above(leak, t.leak_warn, t, leak.is_not_null()),
        "severity": pl.when(leak > t.leak_alarm)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        "waste_kwh": lost_kw * 24.0,
        **_text(
            "Leaks: loaded {} % of the time with the plant idle (≈{} kW lost around the clock). "
            "Run an ultrasonic leak survey and fix the largest leaks.",
            "泄漏：停产时加载率 {}%（全天约损失 {} kW）。进行超声波检漏并修复大漏点。",
            _pct(leak),
            _r(lost_kw, 1),
        ),
    }


def compressor_unloaded(t: Thresholds) -> dict[str, pl.Expr]:
    """C3: unloaded running above 20 % of run hours (ITAC; domain §5.5).

    Judged on production hours: off-shift load/unload cycling is what the leak rule (C1)
    measures, and its energy is counted there.
    """
    share = _share("on_shift_unloaded_hours", "on_shift_running_hours")
    kwh = pl.col("on_shift_unloaded_hours") * pl.col("unloaded_power_kw")
    return {
        **_above(
            share, t.unloaded_share, t, pl.col("on_shift_running_hours") >= t.min_running_hours
        ),
        "severity": pl.lit("warning"),
        "waste_kwh": kwh,
        **_text(
            "Unloaded {} % of production running time ({} kWh): shorten the unload timer, "
            "add storage or a VSD trim compressor.",
            "生产时段空载运行占 {}%（{} kWh）：缩短空载停机时间、增加储气罐或配变频机。",
            _pct(share),
            _r(kwh, 1),
        ),
    }


def transformer_light_load(t: Thresholds) -> dict[str, pl.Expr]:
    """T1: β below P0/Pk (no-load loss dominates) most of the day (domain §6.2 derivation)."""
    share = _share("light_load_hours", "observed_hours")
    return {
        **_above(share, t.light_load_min_share, t, pl.col("observed_hours") >= t.min_running_hours),
        "severity": pl.lit("warning"),
        "waste_kwh": pl.col("light_load_waste_kwh"),
        **_text(
            "Lightly loaded (mean β {}, economic above {}) {} % of the day: move loads onto "
            "it, switch it off with a parallel unit, or right-size.",
            "轻载运行（平均负载率 {}，经济运行下限 {}）占全天 {}%："
            "转移负荷、与并列变压器切换停运或更换小容量。",
            _r(pl.col("mean_load_factor"), 3),
            _r(pl.col("no_load_loss_kw") / pl.col("load_loss_kw"), 3),
            _pct(share),
        ),
    }


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
            running_hours=_r(pl.col("running_hours")),
            p50_load_factor=_r(pl.col("p50_load_factor"), 3),
            p75_load_factor=_r(pl.col("p75_load_factor"), 3),
            energy_kwh=_r(pl.col("energy_kwh"), 1),
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
